"""The what-if results (whatif.py's Sweep, Tornado, Solution) as CSV and strict JSON text. A sweep may have
millions of points: its rows are written by one %-template per row, as `batch` writes its rows."""

from __future__ import annotations

import json

from ..numbers import NONFINITE, dumps
from .export import csv_text


def _finite(a) -> bool:
    import numpy as np

    return bool(np.isfinite(a).all())


def _texts(a) -> list[str]:
    """Shortest round-trip text of each float; non-finite ones as JSON's usual strings."""
    out = list(map(float.__repr__, a.tolist()))
    return out if _finite(a) else [NONFINITE.get(t, t) for t in out]


def _columns(sw) -> list:
    return [sw.columns[n] for n in sw.inputs] + [sw.values] + [sw.grads[n] for n in sw.inputs]


def _rows(cols: list, template: str, quote: str = "") -> str:
    """One %-template per row: repr() of finite floats straight into the line (as `batch` writes rows); a column
    with a NaN or an infinity as text (`quote`d for JSON)."""
    parts, specs = [], []
    for c in cols:
        if _finite(c):
            specs.append("%r")
            parts.append(c.tolist())
        else:
            specs.append("%s")
            parts.append([f"{quote}{t}{quote}" if t in NONFINITE.values() else t for t in _texts(c)])
    line = template % tuple(specs)
    return "".join([line % row for row in zip(*parts)])


def sweep_header(sw) -> list[str]:
    """The CSV columns: the swept inputs, the output, then d output / d input for each (as `batch` names them)."""
    return [*sw.inputs, sw.output, *(f"d{sw.output}/d{n}" for n in sw.inputs)]


def sweep_csv(sw) -> str:
    cols = _columns(sw)
    return csv_text(sweep_header(sw), []) + _rows(cols, ",".join(["%s"] * len(cols)) + "\n")


def sweep_json(sw) -> str:
    """The JSON of a sweep, one point a line: {"graph", "output", "inputs", "points": [...]}."""
    head = {"graph": sw.graph, "output": sw.output, "inputs": sw.inputs}
    key = [json.dumps(n, ensure_ascii=False).replace("%", "%%") for n in sw.inputs]
    template = (
        "{"
        + ", ".join(f"{k}: %s" for k in key)
        + ', "value": %s, "grad": {'
        + ", ".join(f"{k}: %s" for k in key)
        + "}},\n  "
    )
    points = _rows(_columns(sw), template, quote='"').removesuffix(",\n  ")
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
