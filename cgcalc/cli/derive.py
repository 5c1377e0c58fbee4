"""The commands of second and higher derivatives: derive (the derivative graph, as a file) and hessian."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Annotated

import typer

from ..errors import UsageError
from .common import Format, GraphArg, OutputOpt, SetOpt, _errors, _load, _overrides, _print, _warn, app

WrtOpt = Annotated[
    str | None,
    typer.Option(
        "--wrt",
        metavar="NAME,...",
        help="The inputs to differentiate with respect to (default: every one with a gradient).",
    ),
]


class GraphFormat(StrEnum):
    yaml = "yaml"
    json = "json"


def _names(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [n.strip() for n in text.split(",")]
    if not all(names):
        raise UsageError(f"--wrt takes NAME,NAME,..., got {text!r}")
    return names


@app.command()
def derive(
    graph: GraphArg,
    wrt: WrtOpt = None,
    output: OutputOpt = None,
    order: Annotated[int, typer.Option("--order", "-n", min=1, max=16, help="Differentiate this many times.")] = 1,
    out: Annotated[
        str | None, typer.Option("--out", "-o", help="Write the graph here (.json: JSON); default or -: stdout.")
    ] = None,
    fmt: Annotated[
        GraphFormat | None, typer.Option("--format", "-f", help="yaml or json (default: from -o, else yaml).")
    ] = None,
) -> None:
    """The derivative graph: the same inputs, and nodes computing d OUTPUT / d x for each --wrt input (named
    d_OUTPUT_d_x; with --order N, every N-th partial, dN_OUTPUT_d_x_d_y...). Run it, draw it, derive it again."""
    with _errors():
        g = _load(graph)
        chosen = fmt.value if fmt else ("json" if out and out.lower().endswith(".json") else "yaml")
        text = g.derive_text(_names(wrt), output, order, chosen)
        if out and out != "-":
            from ..io.atomic import write

            write(out, text, inputs=[("graph file", graph)])
        else:
            sys.stdout.write(text)


def _vector(text: str) -> dict:
    """--hvp NAME=VALUE,NAME=VALUE (a VALUE may be a list: commas inside brackets belong to it)."""
    items, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch == "["
        depth -= ch == "]"
        if ch == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    items.append(text[start:])
    return _overrides([item.replace("--hvp", "") for item in items if item.strip()])


@app.command()
def hessian(
    graph: GraphArg,
    wrt: WrtOpt = None,
    output: OutputOpt = None,
    set_: SetOpt = None,
    hvp: Annotated[
        str | None,
        typer.Option(
            "--hvp", metavar="NAME=VALUE,...", help="The Hessian times this vector, without forming the matrix."
        ),
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="table, json or csv.")] = Format.table,
    precision: Annotated[int, typer.Option("--precision", "-p", min=1, max=17)] = 6,
    max_elements: Annotated[
        int, typer.Option("--max-elements", min=1, help="The most elements of --wrt inputs a matrix is formed for.")
    ] = 400,
) -> None:
    """Second partials of a scalar output with respect to the --wrt inputs (array inputs by element, W[0,1])."""
    from ..numbers import dumps

    with _errors():
        g = _load(graph)
        overrides = _overrides(set_)
        if hvp is not None:
            vector = _vector(hvp)
            hv = g.hvp(vector, overrides, wrt=_names(wrt), output=output)
            out_name = output or g.outputs[0]
            if fmt is Format.json:
                from ..core.runtime import to_plain

                data = {"graph": g.name, "output": out_name, "hvp": {k: to_plain(v) for k, v in hv.items()}}
                sys.stdout.write(dumps(data) + "\n")
            elif fmt is Format.csv:
                from ..views.export import csv_text

                sys.stdout.write(csv_text(["input", "hvp"], [[k, v] for k, v in hv.items()]))
            else:
                from ..views.render_trace import hvp_table

                _print(hvp_table(g.name, out_name, hv, precision))
            return
        from ..views.hessian import hessian as make_hessian

        h = make_hessian(g, overrides, _names(wrt), output, max_elements)
        if fmt is Format.json:
            sys.stdout.write(dumps(h.to_dict()) + "\n")
        elif fmt is Format.csv:
            from ..views.export import csv_text

            rows = [[label, *row] for label, row in zip(h.labels, h.matrix.tolist())]
            sys.stdout.write(csv_text(["", *h.labels], rows))
        else:
            from ..views.render_trace import hessian_table

            _print(hessian_table(h, precision))
        for w in h.warnings():
            _warn(w)
