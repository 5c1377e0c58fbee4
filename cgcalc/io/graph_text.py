"""A graph's values (name, description, inputs, nodes, outputs) -> the text of a graph file: YAML, in the
flow style people write (one line per input and node), or JSON. What `cgcalc derive` and `fit -o` write;
the readers take both back exactly (floats as their shortest round-trip text)."""

from __future__ import annotations

import json
from typing import Any

from ..numbers import dumps, parse_number

_WORDS = frozenset(("inf", "nan", "infinity"))  # names YAML's reader would take for numbers in `in`


def to_text(doc: dict, fmt: str = "yaml", header: str = "") -> str:
    """The file's text; `header` (YAML only) is written as comment lines first."""
    if fmt == "json":
        return dumps(doc) + "\n"
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    for key in ("name", "description"):
        if doc.get(key):
            lines.append(f"{key}: {json.dumps(doc[key], ensure_ascii=False)}")
    lines.append("inputs:" if doc["inputs"] else "inputs: {}")
    for name, v in doc["inputs"].items():
        lines.append(f"  {name}: {_value(v)}")
    lines.append("nodes:")
    refs: dict = {}  # each name or constant's text, once
    for name, node in doc["nodes"].items():
        if isinstance(node, str):  # an expression, as the file wrote it (`fit -o` keeps them)
            lines.append(f"  {name}: {json.dumps(node, ensure_ascii=False)}")
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
