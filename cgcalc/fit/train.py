"""The training loop of `cgcalc fit` and `Graph.fit`: minimize a scalar output of a graph over some of its
inputs (the parameters), with the book's optimizers or Newton's method.

- Without rows: each step evaluates the graph at its own inputs (the book's chapter 4 `gradient_descent` on
  x0² + x1², DeZero's Rosenbrock).
- With rows, each row is one sample (values of the inputs that are not parameters), and a step works on a
  minibatch of them, drawn by a seeded shuffle per epoch (the last minibatch of an epoch may be smaller):
  - a graph of one sample per run (each row's shapes are the graph's): one vectorized run_batch of the
    minibatch; the loss is the mean of the rows' outputs, the gradient the mean of the rows' gradients;
  - a graph written for a whole batch (the book's style: x is N×D, t N labels, the loss averages): the
    minibatch's rows are stacked into those inputs (x becomes B×D) and the graph is run once.
- A step is: the loss and the gradient at the current parameters (step.py), then the optimizer's update. The loss
  curve has the loss of each step (or of each epoch: the mean over its rows), before that step's update.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from typing import Any

from ..core.runtime import check_outputs, input_values, shape_of
from ..errors import ShapeError, UsageError, suggest
from . import optimizers
from .result import Diverged, FitResult
from .step import Newton, Point, numerical_gradient, pruned

DEFAULT_STEPS = 100  # without rows (the book's gradient_descent: step_num=100)
DEFAULT_EPOCHS = 10  # with rows
DEFAULT_BATCH = 100  # the book's train_neuralnet.py; all rows when there are fewer
EVAL_ROWS = 1 << 16  # rows per run when the trained parameters are evaluated on every row


def fit(
    graph,
    params: Sequence[str],
    rows: Any = None,
    *,
    optimizer: str = "sgd",
    lr: float | None = None,
    momentum: float = 0.9,
    beta1: float = 0.9,
    beta2: float = 0.999,
    decay_rate: float = 0.99,
    steps: int | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    output: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    callback: Callable[[int, int, float], None] | None = None,
    log_outputs: bool = False,
    gradient: str = "backprop",
    loads: Callable[[str], Any] | None = None,
) -> FitResult:
    """Minimize `output` of `graph` (a cgcalc Graph) over the inputs named in `params`; see Graph.fit."""
    plan = graph.plan
    output = check_outputs(plan, [output] if output else None)[0]
    if optimizer not in optimizers.NAMES:
        raise UsageError(f"unknown optimizer '{optimizer}'{suggest(optimizer, optimizers.NAMES)}")
    lr = optimizers.DEFAULT_LR[optimizer] if lr is None else float(lr)
    base = input_values(plan, overrides)  # by slot: the file's values, or --set's
    params = _checked_params(plan, params)
    columns = None
    if rows is not None:
        from .data import given_rows, read_rows

        columns = given_rows(rows, plan) if isinstance(rows, Mapping) else read_rows(str(rows), plan)
        both = [p for p in params if p in columns]
        if both:
            raise UsageError(f"'{both[0]}' is a parameter and a column of the rows: it can be only one of them")
    loop = _Loop(plan, output, base, params, columns, steps, epochs, batch_size, seed, log_outputs, gradient)
    if optimizer == "newton" and columns is not None:
        # (Graph.hessian's derivative graphs are built for the file's shapes, and a minibatch has its own)
        raise UsageError("newton works on the graph's own inputs, without rows: use another optimizer with --rows")
    opt = None if optimizer == "newton" else optimizers.make(optimizer, lr, momentum, beta1, beta2, decay_rate)
    opt = opt and optimizers.packed(opt, loop.start)
    newton = Newton(graph, output, overrides, lr) if opt is None else None
    return loop.run(opt or newton, optimizer, lr, graph.name, callback, loads)


def _checked_params(plan, params: Sequence[str]) -> list[str]:
    if isinstance(params, str):
        params = [params]
    params = list(params)
    names = [i.name for i in plan.inputs]
    if not params:
        raise UsageError("fit needs at least one parameter: the inputs to change (--params NAME,...)")
    for p in params:
        slot = plan.index.get(p)
        if slot is None or slot >= len(names):
            kind = "a node, not an input" if slot is not None else "not an input of the graph"
            raise UsageError(f"parameter '{p}' is {kind}{suggest(p, names)}")
        if not plan.inputs[slot].grad:
            raise UsageError(f"parameter '{p}' is written with grad: false, so it has no gradient to follow")
    dup = [p for p in params if params.count(p) > 1]
    if dup:
        raise UsageError(f"parameter '{dup[0]}' is named twice")
    return params


def _copy(v):
    if type(v) is float:
        return v
    import numpy as np

    return np.array(v, dtype=np.float64)  # a writable copy of the caller's (or the file's) array


def _mean0(a):
    """The mean over the row axis, a.mean(axis=0) without its Python wrapper (the same sum, divided by the
    number of rows the same way); a float for a column of numbers."""
    import numpy as np

    m = np.add.reduce(a, axis=0)
    if m.ndim == 0:
        return float(m / len(a))
    m /= len(a)  # (the sum is a new array)
    return m


class _Loop:
    def __init__(self, plan, output, base, params, columns, steps, epochs, batch_size, seed, log_outputs, gradient):
        self.plan, self.output, self.base = plan, output, base
        if gradient not in ("backprop", "numerical"):
            raise UsageError(f"the gradient is 'backprop' or 'numerical', not {gradient!r}")
        self.gradient = gradient
        self.start = {p: _copy(base[plan.index[p]]) for p in params}
        self.others = [o for o in plan.outputs if o != output]
        self.columns = columns
        self.point = Point(plan, output, base, params)  # every node: the other outputs too
        self.seed = seed
        if columns is None:
            if epochs is not None:
                raise UsageError("--epochs counts passes over the rows: give --rows, or count --steps")
            if batch_size is not None:
                raise UsageError("--batch-size needs --rows")
            self.mode, self.n, self.batch = "inputs", None, None
            self.steps, self.epochs = DEFAULT_STEPS if steps is None else steps, None
            self._check_scalar(self.point.values(self.start))
        else:
            self.n = n = len(next(iter(columns.values())))
            self.batch = min(n, DEFAULT_BATCH if batch_size is None else batch_size)
            if steps is not None and epochs is not None:
                raise UsageError("give --steps or --epochs, not both")
            self.steps, self.epochs = steps, (DEFAULT_EPOCHS if steps is None and epochs is None else epochs)
            self.mode = self._mode(columns)
        for what, v in (("steps", self.steps), ("epochs", self.epochs), ("batch size", self.batch)):
            if v is not None and v < 1:
                raise UsageError(f"the number of {what} must be at least 1, got {v}")
        self.per = "epoch" if self.epochs is not None else "step"
        # the other outputs at every step (a per-step log) come from the same forward run; otherwise the steps
        # run only what the loss needs, and a per-epoch log evaluates the others once per epoch, on every row
        self.step_others = log_outputs and self.per == "step" and bool(self.others)
        self.epoch_others = log_outputs and self.per == "epoch" and bool(self.others)
        self.train = self.point if self.step_others else Point(pruned(plan, output, params), output, base, params)
        self.total = self.steps if self.steps is not None else self.epochs * -(-self.n // self.batch)  # updates

    def _mode(self, columns) -> str:
        """The mode: "rows" when every row has the shapes the graph's inputs have (one sample per run), else "batch" when
        the rows stacked fit the graph (written for a whole batch), else an error saying both."""
        plan = self.plan
        shapes = {k: shape_of(self.base[plan.index[k]]) for k in columns}
        if all(c.shape[1:] == shapes[k] for k, c in columns.items()):
            self._check_scalar(self.point.values(self.start), "a row")
            return "rows"
        vals = self.point.values(self.start, {k: c[:2] for k, c in columns.items()})
        try:
            self._check_scalar(vals, "a minibatch")
        except ShapeError as e:
            given = ", ".join(f"{k} {_shape_text(c.shape[1:])}" for k, c in columns.items())
            graph = ", ".join(f"{k} {_shape_text(s)}" for k, s in shapes.items())
            raise UsageError(
                f"a row gives {given}, and the graph has {graph}: neither one row per run nor rows stacked into "
                f"a batch fits the graph ({e.message})"
            ) from None
        return "batch"

    def _check_scalar(self, vals: list, what: str = "") -> None:
        shapes = self.plan.infer([shape_of(v) for v in vals])[0]
        shape = shapes[self.plan.index[self.output]]
        if shape:
            per = f" for {what}" if what else ""
            raise UsageError(
                f"fit minimizes a number, and '{self.output}' has shape {_shape_text(shape)}{per}: choose a "
                "scalar output (--output), e.g. a mean"
            )

    # --- a step's loss and gradient (and, for a per-step log, the other outputs) ------------------------

    def evaluate(self, params: dict, idx=None) -> tuple[float, dict, list]:
        cols = None if idx is None else {k: c[idx] for k, c in self.columns.items()}
        numerical = self.gradient == "numerical"
        if self.mode == "rows":
            loss, grads, others = self._rows(self.train, params, cols, self.step_others, grads=not numerical)
        else:
            point, rows = self.train, None if idx is None else len(idx)
            full, grads = point.run(point.values(params, cols), rows, grads=not numerical)
            others = [full[point.plan.index[o]] for o in self.others] if self.step_others else []
            loss = float(full[point.out])
        if numerical:
            grads = numerical_gradient(lambda p: self._loss(p, cols), params)
        return loss, grads, others

    def _loss(self, params: dict, cols) -> float:
        if self.mode == "rows":
            return self._rows(self.train, params, cols, False, grads=False)[0]
        point = self.train
        full, _ = point.run(point.values(params, cols), None if cols is None else len(next(iter(cols.values()))), False)
        return full[point.out]

    def _rows(self, point: Point, params: dict, cols: dict, others: bool, grads: bool = True):
        """One vectorized run of the rows: the mean loss, the mean gradients, the means of the other outputs."""
        import numpy as np

        from ..core.vectorized import run_batch

        b = len(next(iter(cols.values())))
        columns = dict(cols)
        for p, v in params.items():
            columns[p] = np.broadcast_to(v, (b, *np.shape(v)))
        r = run_batch(point.plan, columns, [self.output], exact=False, grads=grads)
        loss = _mean0(r.outputs[self.output])
        g = {p: _mean0(r.grads[self.output][p]) for p in params} if grads else None
        return loss, g, [_mean0(r.outputs[o]) for o in self.others] if others else []

    def everywhere(self, params: dict) -> dict:
        """Every output of the graph at `params`: the mean over every row (in runs of EVAL_ROWS), or at the
        graph's inputs; forward only."""
        names = [self.output, *self.others]
        point, index = self.point, self.plan.index
        if self.mode == "inputs":
            full, _ = point.run(point.values(params), grads=False)
            return {o: _plain(full[index[o]]) for o in names}
        sums: list = [0.0] * len(names)
        for start in range(0, self.n, EVAL_ROWS):
            sl = slice(start, min(start + EVAL_ROWS, self.n))
            cols = {k: c[sl] for k, c in self.columns.items()}
            if self.mode == "rows":
                loss, _, others = self._rows(point, params, cols, True, grads=False)
            else:
                full, _ = point.run(point.values(params, cols), sl.stop - sl.start, grads=False)
                loss, others = full[point.out], [full[index[o]] for o in self.others]
            b = sl.stop - sl.start
            sums = [s + b * v for s, v in zip(sums, [loss, *others])]
        return {o: _plain(s / self.n) for o, s in zip(names, sums)}

    # --- the loop ------------------------------------------------------------------------------------

    def run(self, opt, optimizer: str, lr: float, graph_name: str, callback, loads) -> FitResult:
        """Every step, then every output at the trained parameters: the FitResult."""
        self.opt, self.lr, self.callback = opt, lr, callback
        self.info = {"graph_name": graph_name, "optimizer": optimizer, "lr": lr, "loads": loads}
        p = _Progress(dict(self.start))
        arrays = self.mode != "inputs" or any(type(v) is not float for v in self.base)
        if arrays:  # (a graph of scalars, without rows, never imports numpy)
            import numpy as np
        try:
            # numpy's warnings off, once: a non-finite value is found in the loss, and said so
            with np.errstate(all="ignore") if arrays else nullcontext():
                if self.mode == "inputs":
                    for _ in range(self.steps):
                        p.record(*self.step(p, None))
                else:
                    self._epochs(p)
                outputs = self.everywhere(p.params)
        except KeyboardInterrupt as e:  # Ctrl-C (or SIGTERM): what was done, with the last whole parameters
            e.fit_result = self.result(p, interrupted=True)
            raise
        final = outputs[self.output]
        if not _finite(final):
            raise Diverged(
                f"the loss '{self.output}' is {'NaN' if final != final else 'infinite'} at the trained parameters "
                f"(after step {p.done}): the last step diverged (try a smaller --lr than {lr:g})",
                p.done,
                self.result(p, outputs=outputs),
            )
        return self.result(p, outputs=outputs)

    def _epochs(self, p: _Progress) -> None:
        """The epochs (or the steps, when counted) over the rows, each epoch in a fresh seeded order."""
        import numpy as np

        rng = np.random.default_rng(self.seed)
        steps, per = self.steps, self.per
        while steps is None or p.done < steps:
            if self.epochs is not None and p.epochs >= self.epochs:
                break
            order = rng.permutation(self.n)
            total, seen = 0.0, 0
            for start in range(0, self.n, self.batch):
                idx = order[start : start + self.batch]
                loss, others = self.step(p, idx)
                if per == "step":
                    p.record(loss, others)
                else:
                    total += len(idx) * loss
                    seen += len(idx)
                if steps is not None and p.done >= steps:
                    break
            p.epochs += 1
            if per == "epoch":
                p.losses.append(total / seen)
                at_end = self.everywhere(p.params) if self.epoch_others else {}
                p.log.append((p.epochs, p.losses[-1], *(at_end[o] for o in self.others if at_end)))

    def step(self, p: _Progress, idx) -> tuple[float, list]:
        """One update: the loss (and the other outputs of a per-step log) before it."""
        loss, grads, others = self.evaluate(p.params, idx)
        if not math.isfinite(loss):
            what = "NaN" if loss != loss else "infinite"
            where = f" (epoch {p.epochs + 1})" if self.mode != "inputs" else ""
            last = f"; the last finite loss was {p.losses[-1]:.6g}" if self.per == "step" and p.losses else ""
            raise Diverged(
                f"the loss '{self.output}' is {what} at step {p.done + 1}{where}: the run diverged{last} "
                f"(try a smaller --lr than {self.lr:g})",
                p.done + 1,
                self.result(p),
            )
        p.params = self.opt.update(p.params, grads)  # one assignment: the parameters are always a whole set
        p.done += 1
        if self.callback is not None:
            self.callback(p.done, self.total, loss)
        return loss, others

    def result(self, p: _Progress, **extra) -> FitResult:
        rows = self.mode != "inputs"
        logged = [self.per, self.output, *(self.others if self.step_others or self.epoch_others else ())]
        return FitResult(
            **self.info,
            output=self.output,
            per=self.per,
            steps=p.done,
            epochs=p.epochs if rows else None,
            rows=self.n,
            batch_size=self.batch,
            seed=self.seed if rows else None,
            mode=self.mode,
            losses=p.losses,
            log_names=logged,
            log=p.log,
            before=self.start,
            params=p.params,
            plan=self.plan,
            values={i.name: self.base[s] for s, i in enumerate(self.plan.inputs)},
            **extra,
        )


class _Progress:
    """What a run has done so far: the parameters (always a whole set: an update makes a new one), the updates
    made, the epochs completed, the loss curve and the log."""

    def __init__(self, params: dict) -> None:
        self.params = params
        self.done = self.epochs = 0
        self.losses: list[float] = []
        self.log: list[tuple] = []

    def record(self, loss: float, others: list) -> None:
        """A step's entry of the curve and the log (per step)."""
        self.losses.append(loss)
        self.log.append((self.done, loss, *map(_plain, others)))


def _plain(v):
    if type(v) is float:
        return v
    return float(v) if getattr(v, "ndim", 0) == 0 else v


def _finite(v) -> bool:
    if type(v) is float:
        return math.isfinite(v)
    import numpy as np

    return bool(np.isfinite(v).all())


def _shape_text(shape: tuple) -> str:
    return "×".join(map(str, shape)) if shape else "a number"
