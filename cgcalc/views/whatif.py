"""The what-if results (whatif.py's Sweep, Tornado, Solution) as CSV and strict JSON text. A sweep may have
millions of points: its rows are written by one %-template per row, as `batch` writes its rows."""

from __future__ import annotations

import json

from ..numbers import NONFINITE, dumps
from .export import csv_text


def _texts(a) -> list[str]:
    """Shortest round-trip text of each float; non-finite ones as JSON's usual strings."""
    out = list(map(float.__repr__, a.tolist()))
    if not all(x == x and x not in (float("inf"), float("-inf")) for x in a.tolist()):
        out = [NONFINITE.get(t, t) for t in out]
    return out


def _columns(sw) -> list:
    return [sw.columns[n] for n in sw.inputs] + [sw.values] + [sw.grads[n] for n in sw.inputs]


def sweep_header(sw) -> list[str]:
    """The CSV columns: the swept inputs, the output, then d output / d input for each (as `batch` names them)."""
    return [*sw.inputs, sw.output, *(f"d{sw.output}/d{n}" for n in sw.inputs)]


def sweep_csv(sw) -> str:
    cols = [_texts(c) for c in _columns(sw)]
    template = ",".join(["%s"] * len(cols)) + "\n"
    return csv_text(sweep_header(sw), []) + "".join([template % row for row in zip(*cols)])


def sweep_json(sw) -> str:
    """The JSON of a sweep, one point a line: {"graph", "output", "inputs", "points": [...]}."""
    head = {"graph": sw.graph, "output": sw.output, "inputs": sw.inputs}
    key = [json.dumps(n, ensure_ascii=False).replace("%", "%%") for n in sw.inputs]
    template = (
        "{"
        + ", ".join(f"{k}: %s" for k in key)
        + ', "value": %s, "grad": {'
        + ", ".join(f"{k}: %s" for k in key)
        + "}}"
    )
    cols = [[f'"{t}"' if t in NONFINITE.values() else t for t in _texts(c)] for c in _columns(sw)]
    points = ",\n  ".join([template % row for row in zip(*cols)])
    return dumps(head)[:-1] + f',\n "points": [\n  {points}]}}\n'


TORNADO_KEYS = ("input", "low_input", "high_input", "low", "high", "swing")


def tornado_csv(t) -> str:
    return csv_text(list(TORNADO_KEYS), [[getattr(r, k) for k in TORNADO_KEYS] for r in t.rows])


def tornado_json(t) -> str:
    d = t.to_dict()
    rows = ",\n  ".join(dumps(r) for r in d["rows"])
    head = {k: d[k] for k in ("graph", "output", "base")}
    return dumps(head)[:-1] + f',\n "rows": [\n  {rows}]}}\n'


def solve_csv(s) -> str:
    d = s.to_dict()
    return csv_text(list(d), [[str(x) if type(x) is int else x for x in d.values()]])


def solve_json(s) -> str:
    return dumps(s.to_dict()) + "\n"
