"""A fast reader for the plain subset of YAML that graph files are usually written in.

PyYAML builds a Python object (and two position marks) for every scalar, which makes a 100,000-node file
take seconds. Most graph files use only: top-level `key: value` lines, `inputs:`/`nodes:` blocks of
`name: value` lines, plain scalars, and one-line (or bracket-continued) flow collections such as
`{op: mul, in: [a, b]}` or `[[1, 2], [3, 4]]`, and a double-quoted `name` and `description` as cgcalc
writes them (`derive`, `fit -o`: JSON's string syntax, which YAML reads the same). This module reads exactly
that subset and returns plain Python data (every scalar a str, as written) with the line and column of each
entry; on anything else — other quotes, tags, anchors, block sequences, tabs, duplicate keys, a syntax
error — it returns None, and the caller uses PyYAML. `read_marked` reads the same subset into marks.Marked nodes, every value with its
line and column as PyYAML gives them: the text read again when a graph read the fast way has an error.
"""

from __future__ import annotations

import bisect
import json
import re

_KEY = re.compile(r"([A-Za-z_][A-Za-z0-9_]*):(?: +(.*))?\Z")
_ENTRY = re.compile(r"( +)([A-Za-z_][A-Za-z0-9_]*):(?: +(.*))?\Z")
# tabs and other control characters (YAML refuses some); the indicators that matter only at the start of a
# scalar (quotes, & * ! | > % @ ` and "- ") are checked there
_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\ufeff\u2028\u2029]")
_IN_COMMENT = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\ufeff\u2028\u2029]")  # a comment may hold a tab
# the usual node line, read by one regular expression: `  name: {op: mul, in: [a, b]}`
_NODE = re.compile(r"\{op: ([A-Za-z_][A-Za-z0-9_]*), in: \[([A-Za-z0-9_., +\-]*)\]\}\Z")
_FLOW_KEY = re.compile(r"([A-Za-z_][A-Za-z0-9_]*): +")
_INDICATOR = set("-?:,[]{}#&*!|>'\"%@`")
_TEXT_KEYS = ("name", "description")  # the top-level keys a double-quoted value is read for
# a double-quoted scalar in the escapes YAML and JSON read alike (no \u: JSON pairs surrogates, YAML not)
_QUOTED = re.compile(r'"(?:[^"\\]|\\["\\bfnrt])*"\Z')


class _Unsupported(Exception):
    pass


def read(text: str):
    """(data, positions) for the supported subset, or None. positions: {(section, name): (line, col)}."""
    try:
        return _Reader(text).document()
    except (_Unsupported, RecursionError):
        return None


def read_marked(text: str):
    """The marks.Marked tree of a text in the supported subset (every value with its line and column), or None."""
    try:
        return _Reader(text, marked=True).document()
    except (_Unsupported, RecursionError):
        return None


class _Reader:
    def __init__(self, text: str, marked: bool = False) -> None:
        self.lines = text.split("\n")
        self.i = 0
        self.positions: dict[tuple[str, str], tuple[int, int]] = {}
        self.marked = marked
        if marked:
            from .marks import Marked

            self.node = Marked

    def next_content(self):
        """The next line that is not blank or a comment: (index, text without comment), or None."""
        while self.i < len(self.lines):
            raw = self.lines[self.i].rstrip("\r")
            text = raw.lstrip(" ")
            if text.startswith("#") and not _IN_COMMENT.search(text):
                self.i += 1
                continue
            if _FORBIDDEN.search(raw):  # also in a comment (YAML takes a lone CR, NEL, LS, PS as a line break)
                raise _Unsupported
            if not text:
                self.i += 1
                continue
            if "#" in raw:
                cut = raw.find(" #")
                if cut < 0 or "#" in raw[:cut]:
                    raise _Unsupported
                raw = raw[:cut]
            return self.i, raw.rstrip()
        return None

    def document(self):
        data: dict = {}
        while True:
            item = self.next_content()
            if item is None:
                break
            i, line = item
            m = _KEY.match(line)
            if not m or m.group(1) in data:
                raise _Unsupported
            key, value = m.group(1), m.group(2)
            self.i += 1
            if key in ("inputs", "nodes") and value is None:
                value = self.block(key)
            elif value is None:
                raise _Unsupported  # null, or a block of another kind
            elif key in _TEXT_KEYS and value.startswith('"'):
                if not _QUOTED.match(value):
                    raise _Unsupported
                text = json.loads(value)
                value = self.node("scalar", text, (i + 1, len(line) - len(value) + 1), '"') if self.marked else text
            else:
                value = self.value(value, i, len(line) - len(value))
            data[key] = (self.node("scalar", key, (i + 1, 1)), value) if self.marked else value
        if not data:
            return None
        return self.mapping(data) if self.marked else (data, self.positions)

    def mapping(self, entries: dict):
        """In marked mode: a block mapping, its entries (key, value) pairs; it stands where its first key does."""
        pairs = list(entries.values())
        return self.node("mapping", pairs, pairs[0][0].pos)

    def block(self, section: str):
        out: dict = {}
        indent = None
        while True:
            item = self.next_content()
            if item is None:
                break
            i, line = item
            if not line.startswith(" "):
                break  # the next top-level key
            m = _ENTRY.match(line)
            if not m:
                raise _Unsupported
            if indent is None:
                indent = len(m.group(1))
            elif len(m.group(1)) != indent:
                raise _Unsupported
            name, value = m.group(2), m.group(3)
            if value is None or name in out:
                raise _Unsupported
            self.i += 1
            pos = (i + 1, indent + 1)
            if self.marked:
                out[name] = (self.node("scalar", name, pos), self.value(value, i, len(line) - len(value)))
            else:
                out[name] = self.value(value, i)
            self.positions[(section, name)] = pos
        if not out:
            raise _Unsupported
        return self.mapping(out) if self.marked else out

    def value(self, text: str, i: int, col: int = 0):
        """The value written at line i (0-based), column col (0-based; needed in marked mode only), going on
        over more lines if a flow collection does."""
        text = text.strip()
        m = None if self.marked else _NODE.match(text)
        if m:
            refs = [r.strip() for r in m.group(2).split(",")] if m.group(2).strip() else []
            if all(r and not _bad_start(r, True) and ":" not in r for r in refs):
                return {"op": m.group(1), "in": refs}
        if text[0] not in "[{":
            return self.node("scalar", _plain_block(text), (i + 1, col + 1)) if self.marked else _plain_block(text)
        starts, where = [0], [(i + 1, col + 1)]  # each line's piece of the joined text: its offset, (line, col)
        # a flow collection may go on over more lines (more indented) until its brackets close
        while _depth(text) > 0:
            if self.i >= len(self.lines):
                raise _Unsupported
            more = self.lines[self.i].rstrip("\r")
            if _FORBIDDEN.search(more) or "#" in more or not more.startswith(" "):
                raise _Unsupported
            text += " "
            starts.append(len(text))
            where.append((self.i + 1, len(more) - len(more.lstrip()) + 1))
            text += more.strip()
            self.i += 1
        mark = None
        if self.marked:

            def mark(kind: str, value, offset: int):
                k = bisect.bisect_right(starts, offset) - 1
                return self.node(kind, value, (where[k][0], where[k][1] + offset - starts[k]))

        value, end = _flow(text, 0, mark)
        if text[end:].strip():
            raise _Unsupported
        return value


def _depth(text: str) -> int:
    return text.count("[") + text.count("{") - text.count("]") - text.count("}")


def _bad_start(text: str, flow: bool = False) -> bool:
    """Does YAML read this scalar as something other than plain text (a quote, an alias, a tag, ...)?"""
    c = text[0]
    if c == "-" or (c in "?:" and not flow):  # plain when followed by a non-space: -0.5, -x
        return len(text) < 2 or text[1] == " "
    return c in _INDICATOR


def _plain_block(text: str) -> str:
    """A plain scalar in block context, as YAML reads it (here: the text itself), or unsupported."""
    if _bad_start(text) or ": " in text or text.endswith(":"):
        raise _Unsupported
    return text


def _flow(text: str, pos: int, mark=None):
    """A flow collection starting at text[pos]: (value, position after it). With `mark` (kind, value, offset
    -> marks.Marked), the value as Marked nodes."""
    opening = text[pos]
    closing = "]" if opening == "[" else "}"
    start = pos
    pos += 1
    items: list = []
    mapping: dict = {}
    while True:
        while pos < len(text) and text[pos] == " ":
            pos += 1
        if pos >= len(text):
            raise _Unsupported
        if text[pos] == closing:
            if opening == "[":
                return (items if mark is None else mark("sequence", items, start)), pos + 1
            return (mapping if mark is None else mark("mapping", list(mapping.values()), start)), pos + 1
        if opening == "{":
            m = _FLOW_KEY.match(text, pos)
            if not m or m.group(1) in mapping:
                raise _Unsupported
            key = m.group(1) if mark is None else mark("scalar", m.group(1), pos)
            pos = m.end()
        if text[pos] in "[{":
            value, pos = _flow(text, pos, mark)
        else:
            end = pos
            while end < len(text) and text[end] not in ",]}[{":
                end += 1
            value = text[pos:end].strip()
            if not value or _bad_start(value, True) or ":" in value:
                raise _Unsupported
            if mark is not None:
                value = mark("scalar", value, pos)
            pos = end
        if opening == "[":
            items.append(value)
        else:
            mapping[m.group(1)] = value if mark is None else (key, value)
        while pos < len(text) and text[pos] == " ":
            pos += 1
        if pos < len(text) and text[pos] == ",":
            pos += 1
        elif pos >= len(text) or text[pos] != closing:
            raise _Unsupported
