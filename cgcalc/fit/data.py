"""What fit reads and writes besides the graph: the rows (a whole CSV, JSON Lines or Parquet file as columns,
read by the readers `batch` uses, so the same cells are accepted and a bad one is named the same way), and the
trained graph (the graph file's values with the parameters' new values, written by io.graph_text)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ..core.compiler import Plan
from ..errors import RowsError, UsageError, suggest

CHUNK_ROWS = 1 << 16  # rows read at a time (all are kept: an epoch shuffles them)


def rows_format(path: str) -> str:
    """csv, jsonl or parquet, by the file's extension (as `batch` chooses); csv when it tells nothing."""
    from ..io.arrow import PARQUET_EXTS

    p = path.lower()
    return "jsonl" if p.endswith((".jsonl", ".ndjson")) else "parquet" if p.endswith(PARQUET_EXTS) else "csv"


def read_rows(path: str, plan: Plan, fmt: str | None = None) -> dict[str, Any]:
    """Every row of a rows file, as input name -> float64 array with a leading row axis."""
    fmt = fmt or rows_format(path)
    names = [i.name for i in plan.inputs]
    if fmt == "parquet":
        from ..io.arrow import PARQUET_CHUNK_ROWS, ParquetRows, why_not

        no_arrow = why_not()
        if no_arrow is not None:
            raise UsageError(f"Parquet needs pyarrow ({no_arrow})")
        if not os.path.isfile(path):
            raise UsageError(f"{path}: no such file")
        return _gather(ParquetRows(path, path, names).chunks(PARQUET_CHUNK_ROWS, None), path)
    from ..io.rows import CsvRows, JsonlRows, rows_text

    try:
        raw = open(path, "rb")  # noqa: SIM115 - closed below, with the text wrapper around it
    except OSError as e:
        raise UsageError(f"{path}: cannot read the file: {e.strerror or e}") from None
    with rows_text(raw, path) as text:
        try:
            if fmt == "csv":
                reader = CsvRows(text, path, names)
            else:
                reader = JsonlRows(text, path, names, dict(zip(names, plan.shapes)))
            return _gather(reader.chunks(CHUNK_ROWS, None), path)
        except UnicodeDecodeError:
            raise UsageError(f"{path}: not UTF-8 text") from None


def _gather(chunks, file: str) -> dict[str, Any]:
    """The chunks' columns joined; every row must set the same inputs, with the same shapes (a minibatch is
    one vectorized run)."""
    import numpy as np

    parts: dict[str, list] = {}
    first = None
    for chunk in chunks:
        sig = {k: v.shape[1:] for k, v in chunk.columns.items()}
        if first is None:
            first = sig
            parts = {k: [] for k in sig}
        elif sig != first:
            raise RowsError(
                f"this row sets {_sig_text(sig)}, the first row {_sig_text(first)}: fit needs every row to set "
                "the same inputs with the same shapes",
                file=file,
                line=int(chunk.lines[0]),
            )
        for k, v in chunk.columns.items():
            parts[k].append(v)
    if not parts or not any(len(p) for p in parts.values()):
        raise RowsError("no rows to fit to", file=file)
    return {k: np.concatenate(v) if len(v) > 1 else v[0] for k, v in parts.items()}


def _sig_text(sig: dict) -> str:
    return ", ".join(f"{k} {'×'.join(map(str, s)) or 'number'}" for k, s in sig.items())


def given_rows(rows: Mapping[str, Any], plan: Plan) -> dict[str, Any]:
    """Columns given to the Python API: input name -> array-like with a leading row axis, all of one length."""
    from ..core.runtime import real_array

    names = [i.name for i in plan.inputs]
    out, n = {}, None
    for name, col in rows.items():
        if name not in names:
            raise UsageError(f"rows: '{name}' is not an input of the graph{suggest(name, names)}")
        a = real_array(col, f"rows column '{name}'")
        if a.ndim == 0:
            raise UsageError(f"rows column '{name}' needs a leading row axis (got a single number)")
        if n is not None and len(a) != n:
            raise UsageError(f"rows column '{name}' has {len(a)} rows, others have {n}")
        n = len(a)
        out[name] = a
    if not out or not n:
        raise UsageError("rows: no rows to fit to")
    return out


def trained_document(plan: Plan, values: Mapping[str, Any]) -> dict:
    """The graph file's values (name, description, inputs, nodes, outputs), with each input's value from
    `values` (the trained parameters, and the values the other inputs had): nodes as the file wrote them (an
    expression stays an expression), so that the trained file reads as the original does."""
    from ..core.attr_values import file_attrs
    from ..core.derive import nested

    spec = plan.spec
    inputs: dict[str, Any] = {}
    for inp in plan.inputs:
        v = values.get(inp.name)
        if v is None:
            v = nested(inp.value, inp.shape) if inp.shape else inp.value
        elif type(v) is not float:
            v = v.tolist() if getattr(v, "ndim", 0) else float(v)
        inputs[inp.name] = v if inp.grad else {"value": v, "grad": False}
    nodes: dict[str, Any] = {}
    for st in plan.steps:  # the nodes in the order they run (each after its inputs)
        if "." in st.name:
            continue  # an inner node of an expression (no name a file writes has a dot): written as the expression
        if st.name in spec.exprs:
            nodes[st.name] = spec.exprs[st.name]
        else:
            ins = [plan.names[a] if a < plan.n_named else plan.constants[a - plan.n_named] for a in st.args]
            nodes[st.name] = {"op": st.op, "in": ins, **file_attrs(st.cls, st.attrs)}
    doc = {"name": spec.name, "description": spec.description, "inputs": inputs, "nodes": nodes}
    doc["outputs"] = list(plan.outputs)
    return doc
