"""`cgcalc batch`'s options as the library takes them (the same for the local and the dask engine): what a run
adds to each row's own columns and results, and how its text is written; checked against the graph; the column
rules of the rows they make; the names of the result columns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..core.compiler import Plan
from ..io.columns import ROW_NUMBER, ColumnRules


@dataclass(frozen=True)
class Options:
    """What a run adds to the rows' own columns and results, and how its text is written (`cgcalc batch`'s
    options, the same for the local and the dask engine)."""

    sets: dict[str, Any] = field(default_factory=dict)  # --set: input -> value, for rows that leave it out
    nodes: tuple[str, ...] = ()  # --nodes: their values as results too
    node_grads: bool = False  # --nodes-grad: and dO/dN
    float_format: str | None = None  # --float-format / --precision (None: shortest round-trip)
    delimiter: str = ","  # of CSV in and out
    row_number: bool = False  # --row-number: each row's line first
    keep: tuple[str, ...] = ()  # --keep: columns copied from each row to its output row, in front
    keep_all: bool = False  # --keep-all: every column that is not an input
    ignore_outputs: bool = False  # --ignore-outputs: the columns batch writes are dropped, not errors


def check_options(plan: Plan, outputs: list[str], options: Options) -> None:
    """UsageError for options that do not fit the graph: a --set, --nodes or --keep name, --row-number's column."""
    from ..errors import UsageError, suggest

    inputs = [i.name for i in plan.inputs]
    nodes = list(plan.names[len(inputs) :])
    for name in options.sets:
        if name not in inputs:
            raise UsageError(f"--set {name}: not an input of the graph{suggest(name, inputs)}")
    for name in options.nodes:
        if name in inputs:
            raise UsageError(f"--nodes {name}: an input, not a node (its value is the row's own)")
        if name not in nodes:
            raise UsageError(f"--nodes {name}: no node of that name in the graph{suggest(name, nodes)}")
    if options.node_grads and not options.nodes:
        raise UsageError("--nodes-grad adds the gradients of the --nodes: give them with --nodes NAME,...")
    for name in options.keep:
        if name in inputs:
            raise UsageError(f"--keep {name}: an input of the graph (its cells are copied anyway): keep other columns")
    if options.row_number and ROW_NUMBER in inputs:
        raise UsageError(f"--row-number writes a column '{ROW_NUMBER}', and the graph has an input of that name")
    results = result_names(plan, outputs, options) + [ROW_NUMBER] * options.row_number
    clash = [k for k in options.keep if k in results]
    if clash:
        raise UsageError(f"--keep {clash[0]}: this run writes a result column of that name too")


def rules_for(plan: Plan, outputs: list[str], options: Options) -> ColumnRules:
    """The column rules of the rows: the inputs, --keep's and --ignore-outputs' (knowing the graph's nodes), and
    the names of the columns this run writes (a kept column of the same name is an error)."""
    n_in = len(plan.inputs)
    results = set(result_names(plan, outputs, options)) | ({ROW_NUMBER} if options.row_number else set())
    return ColumnRules(
        tuple(plan.names[:n_in]),
        options.keep,
        options.keep_all,
        options.ignore_outputs,
        frozenset(plan.names[n_in:]),
        frozenset(results),
    )


def result_names(plan: Plan, outputs: list[str], options: Options | None = None) -> list[str]:
    """The result columns run_batch gives (BatchResult.columns()): every output, the --nodes, then dO/dX for
    each differentiated output and each input X with a gradient (then each --nodes-grad node with one)."""
    nodes = options.nodes if options else ()
    outs = list(dict.fromkeys([*plan.outputs, *outputs, *nodes]))
    wrt = [i.name for i in plan.inputs if i.grad]
    if options and options.node_grads:
        wrt += [x for x in nodes if plan.has_grad[plan.index[x]]]
    return outs + [f"d{o}/d{x}" for o in outputs for x in wrt]
