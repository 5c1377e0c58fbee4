"""Graph text -> a Reading, for the compiler: the readers. The only module that imports yaml.

JSON files (`.json`) are read by the json module and YAML files in the usual plain subset by fastyaml;
anything else by PyYAML (composed nodes with positions, never constructed objects). Their values go to
build.Builder, which hands the compiler the records. A file is read once; only when a fast reading has an
error is its text read again, by marks.py or fastyaml (never PyYAML), to say where.
"""

from __future__ import annotations

import os
from itertools import compress, repeat

from ..core.spec import Limits, Pos
from ..errors import GraphError
from ..numbers import parse_number
from .build import Builder


class Plain:
    """The builder's view (build.Builder) of json.loads' values: no positions; keys unique (see _no_key_lost)."""

    composed = False
    numbers_as_text = False  # a str is text; numbers are int and float

    @staticmethod
    def kind(n) -> str:
        if isinstance(n, dict):
            return "mapping"
        if isinstance(n, list):
            return "sequence"
        return "scalar"

    @staticmethod
    def pos(n) -> Pos:
        return None

    @staticmethod
    def items(n):
        return list(n.items())

    @staticmethod
    def seq(n):
        return n

    @staticmethod
    def text(n) -> str:
        if n is None:
            return "null"
        if isinstance(n, bool):
            return "true" if n else "false"
        return n if isinstance(n, str) else repr(n)

    @staticmethod
    def plain(n) -> bool:
        return not isinstance(n, str)


class FastYaml(Plain):
    """The builder's view of fastyaml's values: plain data in which every scalar is a str, as written, unquoted."""

    numbers_as_text = True

    @staticmethod
    def plain(n) -> bool:
        return True


class _Yaml:
    """The builder's view (build.Builder) of PyYAML's composed nodes."""

    composed = True
    numbers_as_text = False

    @staticmethod
    def kind(n) -> str:
        return n.id  # 'scalar', 'sequence', 'mapping'

    @staticmethod
    def pos(n) -> Pos:
        m = n.start_mark
        return (m.line + 1, m.column + 1)

    @staticmethod
    def items(n):
        return n.value

    @staticmethod
    def seq(n):
        return n.value

    @staticmethod
    def text(n) -> str:
        return n.value

    @staticmethod
    def plain(n) -> bool:
        # None (pure Python loader) or "" (libyaml); `!!str 2` is text, though written plain
        return not n.style and not (n.tag == _STR_TAG and _yaml11_number(n.value))


_CORE_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "seq", "map")}
_STR_TAG = "tag:yaml.org,2002:str"


def _yaml11_number(text: str) -> bool:
    """Would YAML 1.1 read this plain text as an int or a float? (Then a str tag on it was explicit.)"""
    from yaml.resolver import Resolver

    for tag, regexp in Resolver.yaml_implicit_resolvers.get(text[:1], []):
        if tag.endswith((":int", ":float")) and regexp.match(text):
            return True
    return False


def reads_back_plain(text: str) -> bool:
    """Does `key: TEXT` in a YAML file read back as this same string, by the fast reader and by PyYAML (a plain
    scalar that resolves to a string: not a number, a bool or null)? What a graph writer checks before writing an
    expression unquoted, so that the file stays in the fast reader's subset."""
    from yaml.resolver import Resolver

    from . import fastyaml

    read = fastyaml.read(f"key: {text}\n")
    if read is None or read[0] != {"key": text}:
        return False
    for tag, regexp in Resolver.yaml_implicit_resolvers.get(text[:1], []):
        if regexp.match(text):
            return tag == _STR_TAG
    return True


def _compose_yaml(text: str | bytes, file: str | None):
    import yaml

    loader_cls = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.compose(text, Loader=loader_cls)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        what = str(e.problem or "invalid YAML")
        if e.context:
            cm = e.context_mark
            started = f" that starts at line {cm.line + 1}, column {cm.column + 1}" if cm and cm is not mark else ""
            what += f" ({e.context}{started})"
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise GraphError(f"YAML syntax: {what}", file=file, line=line, col=col) from None
    except yaml.reader.ReaderError as e:  # a character YAML does not allow (a control character, NUL)
        line = col = None
        if isinstance(text, str) and isinstance(e.position, int):
            line = text.count("\n", 0, e.position) + 1
            col = e.position - (text.rfind("\n", 0, e.position) + 1) + 1
        what = (
            f"character #x{e.character:04x} is not allowed in YAML" if isinstance(e.character, int) else str(e.reason)
        )
        raise GraphError(f"YAML syntax: {what}", file=file, line=line, col=col) from None
    except yaml.YAMLError as e:
        raise GraphError(f"YAML syntax: {' '.join(str(e).split())}", file=file) from None


def _refuse_tags(text: str | bytes, file: str | None) -> None:
    """A tag is never data: refuse every tag written in the text (its events: an alias is not expanded) that
    is not one of the core schema's. (A composed node's tag cannot tell a written tag from one YAML 1.1
    resolved by itself, such as !!timestamp for `2001-12-14`.)"""
    if ("!" if isinstance(text, str) else b"!") not in text:
        return  # no tag can be written without one
    import yaml

    for event in yaml.parse(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
        tag = getattr(event, "tag", None)
        if tag is not None and tag not in _CORE_TAGS:
            m = event.start_mark
            shown = tag.replace("tag:yaml.org,2002:", "!!")
            raise GraphError(
                f"tag '{shown}' is not allowed (cgcalc reads data, never objects)",
                file=file,
                line=m.line + 1,
                col=m.column + 1,
            )


def _composed(text: str | bytes, file: str | None):
    """PyYAML's node tree of the text, once it is known to hold no tag but the core schema's."""
    root = _compose_yaml(text, file)
    _refuse_tags(text, file)
    return root


def decode(text: str | bytes, file: str | None, limits: Limits) -> str:
    """A graph file's text: refused over the size limit, or when it is not UTF-8 (a BOM is dropped)."""
    if len(text) > limits.max_file_bytes:
        raise GraphError(
            f"file is {len(text):,} bytes, over the limit of {limits.max_file_bytes:,} "
            "(raise it with CGCALC_MAX_FILE_BYTES)",
            file=file,
        )
    if isinstance(text, bytes):
        try:
            return text.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise GraphError(f"the file is not UTF-8 text (byte {e.start})", file=file) from None
    return text


def _default_name(name: str | None, file: str | None) -> str:
    return name or (os.path.splitext(os.path.basename(file))[0] if file else "graph")


def read_graph(
    text: str,
    file: str | None = None,
    *,
    name: str | None = None,
    limits: Limits | None = None,
    json: bool = False,
    again: str | None = None,
) -> Builder:
    """A Reading of a graph's text (see `decode`) for compiler.compile_graph: JSON first when `json` (JSON is
    also YAML), then YAML in fastyaml's subset, then any YAML (PyYAML: the only reading that may read tags,
    anchors, quotes). Raises GraphError for the file's head (name, description, inputs).

    The reading of json or fastyaml is fast: its errors have no line or column. A caller that meets one
    reads the text again with `again=reading.reader`: into values that each know where they stand
    (marks.py), compiled the same way, which then says where."""
    limits = limits or Limits.from_env()
    default_name = _default_name(name, file)
    if again == "json" or (json and again is None):
        values = None if again else _json_values(text)
        if values is not None and _no_key_lost(text, values):
            try:
                return Builder(Plain, file, limits, reader="json").read(values, default_name)
            except GraphError:
                pass  # read again, with positions
        if again or values is not None:
            from .marks import Lines, MarkedView, json_marked

            return Builder(MarkedView(Lines(text)), file, limits).read(json_marked(text), default_name)
    from . import fastyaml

    if again == "fastyaml":
        from .marks import MarkedView

        return Builder(MarkedView(), file, limits).read(fastyaml.read_marked(text), default_name)
    read = fastyaml.read(text)
    if read is not None:
        try:
            return Builder(FastYaml, file, limits, read[1], reader="fastyaml").read(read[0], default_name)
        except GraphError:
            return read_graph(text, file, name=name, limits=limits, again="fastyaml")
    return Builder(_Yaml, file, limits).read(_composed(text, file), default_name)


def _no_key_lost(text: str, values) -> bool:
    """Did json.loads keep every key? It reads without a hook that refuses a key written twice (a Python call
    per object), so count: each key is followed by one ':', and in a valid graph only its name and
    description may hold one in a string (names, ops and expressions cannot; numbers are numbers). So if the
    text has as many ':' as the values have keys plus those, no key was lost to a duplicate; otherwise the
    graph is wrong somewhere, and the marked reading says where. (An escaped ':', \\u003a, in the name or
    description could hide one: such a text is read the marked way too.)"""
    if type(values) is not dict:
        return False
    n = len(values)
    for key in ("name", "description"):
        if type(values.get(key)) is str and ":" in values[key]:
            if "\\u003" in text:
                return False
            n += values[key].count(":")
    for key in ("inputs", "nodes"):
        d = values.get(key)
        if type(d) is dict:  # and in it, the objects: an input's {value, grad}, the nodes (expressions are str)
            n += len(d) + sum(map(len, compress(d.values(), map(isinstance, d.values(), repeat(dict)))))
    return n == text.count(":")


def _json_int(text: str) -> int | float:
    """JSON integers: exact when they fit a float's integers, else a float (1 and 400 zeros is inf)."""
    return int(text) if len(text) <= 15 else float(text)


def _json_values(text: str):
    """JSON values (of a key written twice, the last), or None when the text is not JSON (then it is read as
    YAML, which reports the error)."""
    import json

    try:
        return json.loads(text, parse_constant=lambda c: None, parse_int=_json_int)
    except (ValueError, RecursionError):
        return None


def parse_value(text: str, what: str, limits: Limits | None = None):
    """A value given on the command line or in a rows file: a number, or a YAML/JSON list of numbers.
    Returns a float, or (flat elements, shape)."""
    x = parse_number(text.strip())
    if x is not None:
        return x
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise GraphError(f"bad value for {what}: {text!r} is not valid UTF-8 text") from None
    limits = limits or Limits.from_env()
    if len(text) > limits.max_file_bytes:
        raise GraphError(f"{what} is over {limits.max_file_bytes:,} bytes")
    b = Builder(_Yaml, None, limits)
    try:
        node = _compose_yaml(text, None)
    except GraphError:
        raise GraphError(f"bad value for {what}: {text!r} is not a number or a list of numbers") from None
    try:
        _refuse_tags(text, None)
        if node is None or node.id != "sequence":
            raise GraphError(f"bad value for {what}: {text!r} is not a number or a list of numbers")
        return b.array(node, what)
    except GraphError as e:
        e.line = e.col = None
        raise
