"""The Python API: load a graph file, run it, read the result."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from .core.compiler import Plan, compile_graph
from .core.runtime import Result, gc_paused, run
from .core.spec import GraphSpec, Limits
from .core.vectorized import BatchResult, run_batch
from .errors import GraphError
from .io.read import decode, read_graph
from .io.source import is_json, read_limited


class Graph:
    """A compiled graph, ready to run any number of times (each run is independent)."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self._hvp_graphs: dict = {}  # (wrt, output) -> the Hessian-vector-product graph, built once

    @property
    def spec(self) -> GraphSpec:
        return self.plan.spec

    @property
    def name(self) -> str:
        return self.plan.spec.name

    @property
    def inputs(self) -> tuple[str, ...]:
        return tuple(i.name for i in self.plan.inputs)

    @property
    def outputs(self) -> tuple[str, ...]:
        return self.plan.outputs

    def run(
        self, overrides: Mapping[str, Any] | None = None, /, *, output: str | list[str] | None = None, **inputs: Any
    ) -> Result:
        """Run forward and backward.

        Parameters
        ----------
        overrides : mapping, optional
            Input name -> value (a number, nested list or ndarray), replacing the file's value.
        output : str or list of str, optional
            The output whose gradient is computed (default: the first of the graph's outputs); a list
            computes the gradient of each (the first is the selected one).
        **inputs
            More overrides, by keyword: ``g.run(apple=120)``.

        Returns
        -------
        Result
            ``value(name)``, ``grad(name)``, ``to_dict()``.
        """
        merged = dict(overrides or {})
        merged.update(inputs)
        outs = [output] if isinstance(output, str) else output
        return run(self.plan, merged, outs)

    def run_batch(
        self, columns: Mapping[str, Any], *, output: str | list[str] | None = None, exact: bool = True
    ) -> BatchResult:
        """Run many rows at once, vectorized.

        Parameters
        ----------
        columns : mapping
            Input name -> array whose first axis is the row; inputs left out keep the file's values.
        output : str or list of str, optional
            As in `run`.
        exact : bool
            For a graph of scalars, compute exp/log/tanh/pow/sigmoid/sin/cos with the C library, element by
            element, so that every row equals `run` bit for bit (default); False uses numpy's faster versions.

        Returns
        -------
        BatchResult
            ``outputs[name]`` and ``grads[output][input]``: arrays with a leading row axis;
            ``columns()`` in the order `cgcalc batch` writes them.
        """
        outs = [output] if isinstance(output, str) else output
        return run_batch(self.plan, columns, outs, exact)

    def derive(self, wrt: Sequence[str] | None = None, output: str | None = None, order: int = 1) -> Graph:
        """The derivative graph: the same inputs, and as outputs d output / d x for each x in `wrt` (default:
        every input that takes a gradient), named d_O_d_x; for order N, every N-th partial, dN_O_d_x_d_y...
        It is an ordinary graph: run it, export it, derive it again."""
        from .derivatives import derive_text

        return _load_json(derive_text(self.plan, self.name, wrt, output, order, "json"))

    def derive_text(
        self, wrt: Sequence[str] | None = None, output: str | None = None, order: int = 1, fmt: str = "yaml"
    ) -> str:
        """`derive` as the text of a graph file ("yaml" or "json"), as `cgcalc derive` writes it."""
        from .derivatives import derive_text

        return derive_text(self.plan, self.name, wrt, output, order, fmt)

    def hessian(
        self, overrides: Mapping[str, Any] | None = None, *, wrt: Sequence[str] | None = None, output: str | None = None
    ) -> tuple[list[str], Any]:
        """The matrix of second partials of a scalar output with respect to the elements of `wrt` (default:
        every input that takes a gradient): (labels such as 'W[0,1]', an (n, n) ndarray). For scalar inputs,
        one forward run of the order-2 derivative graph; for arrays, one vectorized run of the
        Hessian-vector-product graph with a row per element. Either graph is built once per Graph."""
        from .derivatives import hessian

        return hessian(self.plan, self._hvp_graphs, _load_json, overrides, wrt, output)

    def hvp(
        self,
        vector: Mapping[str, Any],
        overrides: Mapping[str, Any] | None = None,
        *,
        wrt: Sequence[str] | None = None,
        output: str | None = None,
    ) -> dict[str, Any]:
        """The Hessian-vector product H v without forming H: `vector` gives v by input (0 for an input of `wrt`
        it leaves out); `wrt` defaults to every input that takes a gradient. Returns input -> (H v) for that
        input, of its shape."""
        from .derivatives import hvp

        return hvp(self.plan, self._hvp_graphs, _load_json, vector, overrides, wrt, output)

    def trace(self, overrides: Mapping[str, Any] | None = None, /, *, output: str | None = None, **inputs: Any) -> Any:
        """Backprop step by step (a views.trace.Trace), as `cgcalc trace` shows it: a notebook displays the step list, ``str()`` is the
        text; ``.forward``, ``.backward`` (upstream gradient and what each step passes on) and ``.grads``."""
        from .views.notebook import trace

        merged = dict(overrides or {})
        merged.update(inputs)
        return trace(self.plan, merged, output)

    def draw(self, overrides: Mapping[str, Any] | None = None, /, *, output: str | None = None, **inputs: Any) -> Any:
        """The picture of a run (a views.notebook.Picture), values above the edges and gradients below (Graphviz's layout when installed, else
        the built-in one): a notebook displays it; ``.svg`` is its SVG text, ``.save(path)`` writes it."""
        from .views.notebook import draw

        return draw(self.run(overrides, output=output, **inputs))

    def _repr_svg_(self) -> str | None:  # a notebook shows the picture (views/notebook.py)
        from .views.notebook import graph_picture

        picture = graph_picture(self)
        return picture._repr_svg_() if picture else None

    def _repr_html_(self) -> str | None:  # without Graphviz: the built-in layout, as HTML
        from .views.notebook import graph_picture

        picture = graph_picture(self)
        return picture._repr_html_() if picture else None

    # --- what-if: sweep, tornado, solve (computed in whatif.py) --------------------------------------------

    def sweep(
        self,
        ranges: Mapping[str, tuple[float, float, int]],
        overrides: Mapping[str, Any] | None = None,
        *,
        output: str | None = None,
    ) -> dict:
        """The output and its derivative with respect to each swept input at evenly spaced points, computed as
        one vectorized run.

        Parameters
        ----------
        ranges : mapping
            One or two scalar inputs -> (start, stop, n): n >= 2 values from start to stop, both included. Two
            make a grid, the first input varying slowest.
        overrides : mapping, optional
            Values of the other inputs, as in `run`.
        output : str, optional
            A scalar output (default: the first of the graph's outputs).

        Returns
        -------
        dict
            ``{"graph", "output", "inputs": [names], "points": [{name: x, ..., "value": v, "grad": {name: g}}]}``,
            the JSON of `cgcalc sweep --format json`.
        """
        from .whatif import axis, sweep

        axes = [axis(name, spec) for name, spec in ranges.items()]
        return sweep(self.plan, axes, overrides, output).to_dict()

    def tornado(
        self,
        overrides: Mapping[str, Any] | None = None,
        *,
        by: float = 0.1,
        ranges: Mapping[str, tuple[float, float]] | None = None,
        output: str | None = None,
    ) -> dict:
        """Each scalar input moved down and up with the others fixed: by the fraction `by` of its value (0.1:
        ±10%), or to its (low, high) in `ranges`. The output's values there are computed (one vectorized run),
        not extrapolated.

        Returns
        -------
        dict
            ``{"graph", "output", "base": v, "rows": [{"input", "low_input", "high_input", "low", "high",
            "swing"}]}``, rows sorted by swing (|high - low|), largest first; low and high are the output at
            low_input and high_input.
        """
        from .whatif import tornado

        return tornado(self.plan, overrides, by, ranges, output).to_dict()

    def solve(
        self,
        vary: str,
        target: float,
        overrides: Mapping[str, Any] | None = None,
        *,
        output: str | None = None,
        within: tuple[float, float] | None = None,
        tol: float | None = None,
    ) -> dict:
        """Goal seek: the value of the scalar input `vary` at which the output equals `target`, by Newton steps
        with the exact gradient (bisection where the gradient is zero or a step leaves the bounds).

        Parameters
        ----------
        within : (low, high), optional
            Look only there (Newton starts at the file's value, or in the middle when that is outside).
        tol : float, optional
            Accept |output - target| <= tol (default 1e-9 * max(1, |target|)).

        Returns
        -------
        dict
            ``{"graph", "output", "target", "input", "value", "residual", "iterations"}``.

        Raises
        ------
        cgcalc.whatif.NoSolution
            No value in range gives the target (the message says what the output does there).
        """
        from .whatif import solve

        return solve(self.plan, vary, target, overrides, output, within, tol).to_dict()

    def fit(
        self,
        params: Sequence[str],
        rows: Any = None,
        *,
        optimizer: str = "sgd",
        lr: float | None = None,
        steps: int | None = None,
        epochs: int | None = None,
        batch_size: int | None = None,
        seed: int = 0,
        output: str | None = None,
        overrides: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Any:
        """Minimize a scalar output over some of the inputs (the parameters), as `cgcalc fit` does.

        Parameters
        ----------
        params : list of str
            The inputs to change.
        rows : str, path or mapping, optional
            A rows file (CSV, JSON Lines, Parquet) or columns (input name -> array with a leading row axis):
            one sample per row, minibatches by a seeded shuffle per epoch. Default: the graph's own inputs.
        optimizer : str
            sgd, momentum, nesterov, adagrad, rmsprop, adam (the book's rules) or newton.
        lr, steps, epochs, batch_size, seed
            The learning rate (default: the book's), how long (steps, or epochs over the rows), the minibatch
            size (default 100, or all rows when fewer), the shuffle's seed.
        output : str, optional
            The output to minimize (default: the first).
        overrides : mapping, optional
            Input values to start from, or to hold, instead of the file's.
        **options
            momentum, beta1, beta2, decay_rate (RMSprop's); gradient="numerical" (the book's chapter 4 central
            differences, h = 1e-4) instead of backprop; log_outputs=True (the other outputs in ``log``, per step,
            or per epoch over every row); callback(step, total, loss), called after each step.

        Returns
        -------
        FitResult
            ``losses``, ``params`` (the new values), ``before``, ``outputs`` (at the trained parameters),
            ``log``, ``to_dict()``, ``to_text()`` and ``graph``, the trained Graph.
        """
        from .fit import fit

        run = {"optimizer": optimizer, "lr": lr, "steps": steps, "epochs": epochs, "batch_size": batch_size}
        return fit(
            self, params, rows, seed=seed, output=output, overrides=overrides, loads=_load_json, **run, **options
        )

    def __repr__(self) -> str:
        return f"<cgcalc.Graph {self.name!r}: {len(self.plan.inputs)} inputs, {len(self.plan.steps)} nodes>"


def loads(
    text: str | bytes,
    *,
    file: str | None = None,
    name: str | None = None,
    limits: Limits | None = None,
    json: bool = False,
) -> Graph:
    """Compile a graph from YAML (or JSON) text.

    Parameters
    ----------
    text : str or bytes
        The graph file's content.
    file : str, optional
        A file name to show in error messages.
    name : str, optional
        The graph's name when the text gives none.
    json : bool
        Try the fast JSON reader first (JSON is also valid YAML, so YAML text still loads).

    Raises
    ------
    GraphError
        With file, line and column of the problem.
    """
    limits = limits or Limits.from_env()
    with gc_paused():
        text = decode(text, file, limits)
        reading = read_graph(text, file, name=name, limits=limits, json=json)
        try:
            return Graph(compile_graph(reading, limits))
        except GraphError:
            if not reading.fast:
                raise
        # a fast reading keeps no positions: read the text again into values that know where they stand
        again = reading.reader
        del reading
        return Graph(compile_graph(read_graph(text, file, name=name, limits=limits, again=again), limits))


def load(path: str | os.PathLike) -> Graph:
    """Compile a graph file (``.yaml``, ``.yml`` or ``.json``; any other name is read as JSON when its text starts
    with ``{``, else as YAML).

    Raises
    ------
    GraphError
        The file cannot be read, or is invalid (with line and column).
    """
    path = os.fspath(path)
    limits = Limits.from_env()
    try:
        with open(path, "rb") as f:
            data = read_limited(f, path, limits)
    except OSError as e:
        raise GraphError(f"cannot read the file: {e.strerror or e}", file=path) from None
    return loads(data, file=path, limits=limits, json=is_json(data, path))


def _load_json(text: str, name: str | None = None) -> Graph:
    """A graph cgcalc wrote itself, as JSON (a derivative graph, a trained one)."""
    return loads(text, json=True, name=name)
