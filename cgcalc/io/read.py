"""Graph text -> GraphSpec: the readers. The only module that imports yaml.

JSON files (`.json`) are read by the json module and YAML files in the usual plain subset by fastyaml;
anything else, and every error, by PyYAML (composed nodes with positions, never constructed objects). The
values go to spec._Builder, or for the straight path (json_head, yaml_head) to compiler.compile_plain.
"""

from __future__ import annotations

import os

from ..core.spec import GraphSpec, Limits, Pos, _Builder, _FastYaml, _Plain
from ..errors import GraphError
from ..numbers import parse_number


class _Yaml:
    """A view of PyYAML's composed nodes, for spec._Builder."""

    composed = True

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


def _head_text(text: str | bytes, limits: Limits) -> str | None:
    """The text for a straight path, or None (too large, not UTF-8: `parse` says so)."""
    if len(text) > limits.max_file_bytes:
        return None
    if isinstance(text, bytes):
        try:
            return text.decode("utf-8-sig")
        except UnicodeDecodeError:
            return None
    return text


def _default_name(name: str | None, file: str | None) -> str:
    return name or (os.path.splitext(os.path.basename(file))[0] if file else "graph")


def json_head(
    text: str | bytes, file: str | None = None, *, name: str | None = None, limits: Limits | None = None
) -> tuple[GraphSpec, dict] | None:
    """For JSON text: its GraphSpec without the nodes, and the 'nodes' object as read, for the compiler to
    take straight from the JSON values (compiler.compile_plain). None when that is not how to read it
    (not JSON, no nodes object, or anything to report: `parse` then reads it and says where)."""
    limits = limits or Limits.from_env()
    text = _head_text(text, limits)
    if text is None:
        return None
    default_name = _default_name(name, file)
    # Read without the hook that refuses a key written twice (a Python call per object), then count: every
    # key is followed by one ':', so if the file has as many ':' as the values read have keys, no key was
    # lost to a duplicate. (A ':' inside a string, a description say, makes the counts differ: then the
    # file is read again with the hook.)
    plain = _json_plain(text, unique=False)
    for unique in (False, True):
        if plain is None:
            return None
        try:
            head = _Builder(_Plain, file, limits).graph(plain, default_name, raw_nodes=True)
        except GraphError:
            return None
        if head[1] is None:
            return None
        if unique or _keys(plain) == text.count(":"):
            return head
        plain = _json_plain(text)
    return None


def yaml_head(
    text: str | bytes, file: str | None = None, *, name: str | None = None, limits: Limits | None = None
) -> tuple[GraphSpec, dict, dict] | None:
    """json_head for YAML in fastyaml's subset: the GraphSpec without its nodes, the nodes as fastyaml read
    them (every scalar a str) and fastyaml's positions, for compiler.compile_plain; None otherwise."""
    from . import fastyaml

    limits = limits or Limits.from_env()
    text = _head_text(text, limits)
    read = fastyaml.read(text) if text is not None else None
    if read is None:
        return None
    try:
        head = _Builder(_FastYaml, file, limits, read[1]).graph(read[0], _default_name(name, file), raw_nodes=True)
    except GraphError:
        return None
    return None if head[1] is None else (head[0], head[1], read[1])


def _keys(top: dict) -> int:
    """The keys of a graph's JSON values as the builder accepted them (only the top, inputs, an input's
    {value, grad} and nodes hold objects: anything else would have been refused)."""
    n = len(top)
    inputs = top.get("inputs")
    if type(inputs) is dict:
        n += len(inputs) + sum(len(v) for v in inputs.values() if type(v) is dict)
    nodes = top["nodes"]
    try:
        return n + len(nodes) + sum(map(len, nodes.values()))
    except TypeError:  # a node that is not an object: compile_plain takes no such graph anyway
        return -1


def parse(
    text: str | bytes,
    file: str | None = None,
    *,
    name: str | None = None,
    limits: Limits | None = None,
    json_first: bool = False,
    fast: bool = True,
) -> GraphSpec:
    """Read a graph's text (YAML, or JSON when json_first) into a GraphSpec; raises GraphError.

    The fast readers (json, fastyaml) keep only each entry's line: on an error they step aside and PyYAML
    reads the file again, to report it with its line and column; callers that find an error later (the
    compiler) do the same when `spec.exact_positions` is False (fast=False)."""
    limits = limits or Limits.from_env()
    if len(text) > limits.max_file_bytes:
        raise GraphError(
            f"file is {len(text):,} bytes, over the limit of {limits.max_file_bytes:,} "
            "(raise it with CGCALC_MAX_FILE_BYTES)",
            file=file,
        )
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise GraphError(f"the file is not UTF-8 text (byte {e.start})", file=file) from None
    default_name = _default_name(name, file)
    if json_first and fast:
        plain = _json_plain(text)
        if plain is not None:
            try:
                return _Builder(_Plain, file, limits).graph(plain, default_name)
            except GraphError as e:
                # found again below with its line and column, unless YAML cannot read this JSON at all
                try:
                    root = _composed(text, file)
                except GraphError:
                    raise e from None
                return _Builder(_Yaml, file, limits).graph(root, default_name)
    elif fast:
        from . import fastyaml

        read = fastyaml.read(text)
        if read is not None:
            try:
                return _Builder(_FastYaml, file, limits, read[1]).graph(read[0], default_name)
            except GraphError:
                pass  # found again below, with its line and column
    root = _composed(text, file)
    return _Builder(_Yaml, file, limits).graph(root, default_name)


def _json_int(text: str) -> int | float:
    """JSON integers: exact when they fit a float's integers, else a float (1 and 400 zeros is inf)."""
    return int(text) if len(text) <= 15 else float(text)


def _json_plain(text: str, unique: bool = True):
    """JSON values, or None when the text is not JSON (the YAML path then reports the error); unique:
    None also when an object has a key twice (else the last one is kept)."""
    import json

    def pairs(items):
        d = dict(items)
        if len(d) != len(items):
            raise ValueError("duplicate key")
        return d

    try:
        return json.loads(
            text, object_pairs_hook=pairs if unique else None, parse_constant=lambda c: None, parse_int=_json_int
        )
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
    b = _Builder(_Yaml, None, limits)
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
