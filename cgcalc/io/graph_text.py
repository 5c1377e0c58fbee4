"""A graph's values (name, description, inputs, nodes, outputs) -> the text of a graph file: YAML, in the
flow style people write (one line per input and node), or JSON. What `cgcalc derive` (`terms_text`: a
derivative graph's terms written as they are, without a document of them) and `fit -o` (`to_text`) write;
the readers take both back exactly (floats as their shortest round-trip text)."""

from __future__ import annotations

import json
from itertools import product
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import Any

from ..core.attr_values import thawed
from ..core.derive import Layout
from ..core.terms import VALUE
from ..numbers import dumps, parse_number, strict
from .read import reads_back_plain

_WORDS = frozenset(("inf", "nan", "infinity"))  # names YAML's reader would take for numbers in `in`
_LONGEST = max(map(len, _WORDS))
# every spelling of them (YAML reads .NaN, .Inf... in any case): a set of names that holds none needs no check
_WORD_FORMS = frozenset(map("".join, (p for w in _WORDS for p in product(*((c, c.upper()) for c in w)))))


def to_text(doc: dict, fmt: str = "yaml", header: str = "") -> str:
    """The file's text; `header` (YAML only) is written as comment lines first."""
    if fmt == "json":
        return dumps(doc) + "\n"
    lines = _head(doc, header)
    refs: dict = {}  # each name or constant's text, once
    for name, node in doc["nodes"].items():
        if isinstance(node, str):  # an expression, as the file wrote it (`fit -o` keeps them): plain if it can be
            lines.append(f"  {name}: {node if reads_back_plain(node) else json.dumps(node, ensure_ascii=False)}")
            continue
        ins = []
        for r in node["in"]:
            text = refs.get(r)
            if text is None:  # a plain name (the usual) as it is, else (a number, a name to quote) by _value
                plain = type(r) is str and r.isidentifier() and r.lower() not in _WORDS
                text = refs[r] = r if plain else _value(r, names=True)
            ins.append(text)
        attrs = (
            "".join(f", {k}: {_value(v)}" for k, v in node.items() if k not in ("op", "in")) if len(node) > 2 else ""
        )
        lines.append(f"  {name}: {{op: {node['op']}, in: [{', '.join(ins)}]{attrs}}}")
    lines.append(f"outputs: {_value(doc['outputs'], names=True)}")
    return "\n".join(lines) + "\n"


def _head(doc: dict, header: str) -> list[str]:
    """A YAML file's lines down to `nodes:`: the header's comment lines, name, description and inputs."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    for key in ("name", "description"):
        if doc.get(key):
            lines.append(f"{key}: {json.dumps(doc[key], ensure_ascii=False)}")
    lines.append("inputs:" if doc["inputs"] else "inputs: {}")
    for name, v in doc["inputs"].items():
        lines.append(f"  {name}: {_value(v)}")
    lines.append("nodes:")
    return lines


def terms_text(lay: Layout, fmt: str = "yaml", header: str = "") -> str:
    """A derivative graph's text (the same as `to_text` of its document), written from its terms in one pass:
    derive writes tens of thousands of nodes."""
    terms, names = lay.terms, list(lay.names)  # (copied: the layout stays as it was)
    yaml = fmt != "json"
    used = lay.fresh.used
    refs = _refs(names, used, yaml)
    const, attr = (_float, _yaml_attrs) if yaml else (_js, _json_attrs)
    # (a plain t-name is not added to `used`: no later name can be one, a taken one's is t1_2...)
    nodes, k, fresh = [], 0, None
    for t in lay.order:
        op, args, attrs, _, value, _ = terms[t]
        if op == "const":
            refs[t] = const(value)
            continue
        name = names[t]
        if name is None:  # a term without a name: t1, t2... (or, where the graph has that name, t1_2...)
            k += 1
            name = f"t{k}"
            if name in used:
                if fresh is None:  # (copied: the layout stays as it was)
                    fresh = lay.fresh.copy()
                    used = fresh.used
                name = fresh(name)
            names[t] = name
            refs[t] = name if yaml else f'"{name}"'
        n = len(args)
        if yaml and not attrs and 0 < n < 3:  # the usual line, in one string
            if n == 2:
                nodes.append(f"  {name}: {{op: {op}, in: [{refs[args[0]]}, {refs[args[1]]}]}}")
            else:
                nodes.append(f"  {name}: {{op: {op}, in: [{refs[args[0]]}]}}")
            continue
        ins = ", ".join(map(refs.__getitem__, args))
        more = attr(attrs) if attrs else ""
        if yaml:
            nodes.append(f"  {name}: {{op: {op}, in: [{ins}]{more}}}")
        else:
            nodes.append(f'{refs[t]}: {{"op": "{op}", "in": [{ins}]{more}}}')
    for name, t in lay.aliases:
        r = refs[t] or const(terms[t][VALUE])
        nodes.append(
            f"  {name}: {{op: identity, in: [{r}]}}" if yaml else f'{_js(name)}: {{"op": "identity", "in": [{r}]}}'
        )
    if yaml:
        lines = _head(lay.head, header) + nodes
        lines.append(f"outputs: {_value(lay.outputs, names=True)}")
        return "\n".join(lines) + "\n"
    head = dumps(lay.head)[:-1]  # {"name": ..., "description": ..., "inputs": {...}
    text = f'{head}, "nodes": {{{", ".join(nodes)}}}, "outputs": {_js(lay.outputs)}}}'
    if not text.isprintable():  # as dumps does: then every character past ASCII escaped
        text = json.dumps(json.loads(text), allow_nan=False)
    return text + "\n"


def _refs(names: list[str | None], used: set[str], yaml: bool) -> list[Any]:
    """What a reference to a term writes, by term: its name (plain in YAML unless it would read as something
    else), or None (a constant's value: its writer's). `used`: every name in `names`, and others taken; the
    names are identifiers (core/derive.layout makes them so)."""
    refs: list[Any] = list(names)
    if yaml and used.isdisjoint(_WORD_FORMS):
        return refs  # (the usual: every name plain, found without the loop below)
    for t, n in enumerate(names):
        if n is None:
            continue
        if not yaml:
            refs[t] = _js(n)
        elif not n.isidentifier() or (len(n) <= _LONGEST and n.lower() in _WORDS):
            refs[t] = _value(n, names=True)
    return refs


def _yaml_attrs(attrs: tuple) -> str:
    return "".join(f", {k}: {_value(thawed(v))}" for k, v in attrs)


def _json_attrs(attrs: tuple) -> str:
    return "".join(f", {_js(k)}: {_js(thawed(v))}" for k, v in attrs)


_encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode


def _js(v: Any) -> str:
    """v as dumps writes it (before its check that the whole text is printable)."""
    return encode_basestring(v) if type(v) is str else _encode(strict(v))


def flow_value(v: Any) -> str:
    """A value as a graph file's YAML flow style writes it: numbers at full precision, `true`, `[1, 2]`."""
    return _value(v)


def _value(v: Any, names: bool = False) -> str:
    """A YAML flow value: numbers at full precision, names plain unless YAML would read them as something else."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return _float(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        if names or v.isidentifier():
            plain = v.isidentifier() and parse_number(v) is None
            return v if plain else json.dumps(v)
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_value(x, names=k == 'in')}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x, names) for x in v) + "]"
    if v is None:
        return "null"
    raise TypeError(f"cannot write {v!r} in a graph file")


def _float(x: float) -> str:
    if x != x:
        return ".nan"
    if x in (float("inf"), float("-inf")):
        return ".inf" if x > 0 else "-.inf"
    if x == int(x) and abs(x) < 1e16 and str(x) != "-0.0":
        return str(int(x))  # 100, as people write it (read back as the same float)
    return repr(x)
