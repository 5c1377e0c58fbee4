"""Pure string producers for machine-readable output: JSON (strict RFC 8259) and CSV."""

from __future__ import annotations

import csv
import io
import json
import math

from .runtime import Result

NONFINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def fmt_float(x: float) -> str:
    """Shortest round-trip text of a float; non-finite values as JSON's usual strings."""
    return repr(x) if math.isfinite(x) else NONFINITE[repr(x)]


def strict(v):
    """A plain value (float, nested lists, dicts) with NaN and infinities replaced by strings."""
    if type(v) is float:
        return v if math.isfinite(v) else NONFINITE[repr(v)]
    if isinstance(v, list):
        return [strict(x) for x in v]
    if isinstance(v, dict):
        return {k: strict(x) for k, x in v.items()}
    return v


def dumps(v) -> str:
    return json.dumps(strict(v), allow_nan=False, ensure_ascii=False)


def to_json(result: Result) -> str:
    """One JSON object; one line per node so that it also reads well without jq."""
    d = result.to_dict()
    head = {k: d[k] for k in ("graph", "output", "outputs")}
    text = dumps(head)[:-1]
    nodes = ",\n  ".join(dumps(n) for n in d["nodes"])
    return f'{text},\n "nodes": [\n  {nodes}]}}\n'


def cell(v) -> str:
    """A CSV cell: a number in round-trip form, an array as JSON, nothing for no value."""
    if v is None:
        return ""
    if type(v) is float:
        return fmt_float(v)
    return dumps(v)


def to_csv(result: Result) -> str:
    d = result.to_dict()
    outs = list(result.grads)
    multi = len(outs) > 1
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["name", "op", "inputs", "value", "grad"] + [f"d{o}" for o in outs if multi])
    for n in d["nodes"]:
        row = [n["name"], n["op"], " ".join(n["inputs"]), cell(n["value"]), cell(n["grad"])]
        if multi:
            row += [cell(n["grads"][o]) for o in outs]
        w.writerow(row)
    return buf.getvalue()
