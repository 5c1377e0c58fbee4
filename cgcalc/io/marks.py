"""Marked values: a graph file's values with where each one stands, for the fast readers' errors.

json.loads and fastyaml keep no position per value (that is what makes them fast). When a graph read by one
of them turns out to be wrong, its text is read once more into Marked nodes — mappings, sequences and
scalars, each with the line and column PyYAML would give it — and built and compiled again, now with
every position at hand: JSON by the small scanner below, fastyaml's subset by fastyaml itself.
"""

from __future__ import annotations

import bisect
import json
import re

from ..core.spec import Pos


class Marked:
    """A value as written: id 'mapping' (value: [(key, value), ...], duplicates kept), 'sequence' (value: a list)
    or 'scalar' (value: its text); pos: (line, column), or an offset into the text (see Lines); style: '"'
    for a quoted scalar, else None."""

    __slots__ = ("id", "value", "pos", "style")

    def __init__(self, id: str, value, pos, style: str | None = None) -> None:
        self.id, self.value, self.pos, self.style = id, value, pos, style


class Lines:
    """Offsets into a text -> (line, column), 1-based, counting line breaks as YAML does (CR LF, CR, LF,
    NEL, LS, PS) and columns in characters."""

    def __init__(self, text: str) -> None:
        self.starts = [0] + [m.end() for m in re.finditer("\r\n|[\r\n\x85\u2028\u2029]", text)]

    def pos(self, offset: int) -> tuple[int, int]:
        line = bisect.bisect_right(self.starts, offset)
        return line, offset - self.starts[line - 1] + 1


# a JSON text's tokens: strings, punctuation, and everything else (numbers, true, false, null, NaN, Infinity)
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\],:]|[^\s{}\[\],:"]+')


def json_marked(text: str) -> Marked | None:
    """The Marked tree of a JSON text that json.loads reads (positions as offsets: see Lines), or None if
    it holds no value."""
    root = None
    stack: list[list] = []  # open containers: [node, the key read and waiting for its value]
    for m in _TOKEN.finditer(text):
        tok = m.group()
        c = tok[0]
        if c in ",:":
            continue
        if c in "}]":
            stack.pop()
            continue
        if c == "{" or c == "[":
            node = Marked("mapping" if c == "{" else "sequence", [], m.start())
        elif c == '"':
            node = Marked("scalar", json.loads(tok), m.start(), '"')
        else:
            node = Marked("scalar", tok, m.start())
        if not stack:
            root = node
        else:
            top = stack[-1]
            if top[0].id == "sequence":
                top[0].value.append(node)
            elif top[1] is None:
                top[1] = node
            else:
                top[0].value.append((top[1], node))
                top[1] = None
        if node.id != "scalar":
            stack.append([node, None])
    return root


class MarkedView:
    """The builder's view (see build.Builder) of Marked nodes; `lines` when their positions are offsets."""

    composed = True  # positions exact, duplicate keys kept for the builder to refuse
    numbers_as_text = False

    def __init__(self, lines: Lines | None = None) -> None:
        self.lines = lines

    @staticmethod
    def kind(n: Marked) -> str:
        return n.id

    def pos(self, n: Marked) -> Pos:
        return self.lines.pos(n.pos) if self.lines is not None else n.pos

    @staticmethod
    def items(n: Marked) -> list:
        return n.value

    @staticmethod
    def seq(n: Marked) -> list:
        return n.value

    @staticmethod
    def text(n: Marked) -> str:
        return n.value

    @staticmethod
    def plain(n: Marked) -> bool:
        return not n.style
