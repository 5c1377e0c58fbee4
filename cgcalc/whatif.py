"""What-if questions answered with the exact gradients: elasticities, sweeps, tornado rows and goal seek.

Plain numbers in, plain records out (each with `to_dict()`, the JSON shape of its command); the views draw
them and the CLI prints them. Every sweep and tornado is one vectorized run (`run_batch`), so that a point
equals `run` at that point (bit for bit for a graph of scalars).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from .core.compiler import Plan
from .core.runtime import Result, check_outputs, run
from .core.vectorized import run_batch
from .errors import CgcalcError, UsageError, suggest
from .numbers import fmt_num, parse_number

MAX_POINTS = 10_000_000  # of a sweep, all together (a grid of 3,163 x 3,163); `batch` streams more


class NoSolution(CgcalcError):
    """solve found no value of the input that gives the target (the CLI's exit 1: computed, but not found)."""


# --- elasticity -------------------------------------------------------------------------------------------


def elasticities(result: Result, output: str | None = None) -> list:
    """By slot, d O / d x · x / O for the output O (its sum, for an array: the gradient is that of sum(O)),
    elementwise for an array x; None where it is undefined (O = 0, or no gradient)."""
    out = output or result.output
    o = result.value(out)
    total = float(o) if type(o) is float else float(o.sum())
    grads = result.grads[out]
    if total == 0:
        return [None] * len(grads)
    return [None if g is None else _plain(g * v / total) for g, v in zip(grads, result.values)]


def _plain(v):
    """A float, or a read-only array (as a Result's values are)."""
    if getattr(v, "ndim", 0) == 0:
        return float(v)
    v.flags.writeable = False
    return v


# --- what the commands are given ----------------------------------------------------------------------------


class Axis(NamedTuple):
    """One swept input: N evenly spaced values from START to STOP, both included."""

    name: str
    start: float
    stop: float
    n: int

    def values(self):
        import numpy as np

        return np.linspace(self.start, self.stop, self.n)


def axis(name: str, spec: Any) -> Axis:
    """An Axis from the Python API's (start, stop, n)."""
    import operator

    try:
        start, stop, n = spec
        return Axis(name, float(start), float(stop), operator.index(n))
    except (TypeError, ValueError):
        raise UsageError(f"sweep of '{name}': expected (start, stop, n) with a whole n, got {spec!r}") from None


def _number(text: str, what: str, bad: str) -> float:
    x = parse_number(text.strip())
    if x is None or not math.isfinite(x):
        raise UsageError(f"{bad}: {what} must be a finite number, got {text.strip() or 'nothing'!r}")
    return x


def parse_axis(text: str) -> Axis:
    """NAME=START:STOP:N, as `sweep` takes it."""
    usage = "NAME=START:STOP:N, e.g. apple=50:150:11"
    name, eq, rest = text.partition("=")
    name = name.strip()
    parts = rest.split(":")
    if not eq or not name or len(parts) != 3:
        raise UsageError(f"bad range {text!r}: expected {usage}")
    start = _number(parts[0], "START", f"bad range {text!r}")
    stop = _number(parts[1], "STOP", f"bad range {text!r}")
    n_text = parts[2].strip()
    n = int(n_text) if n_text.isdigit() else None
    if n is None or n < 2:
        raise UsageError(f"bad range {text!r}: N must be a whole number of at least 2, got {n_text or 'nothing'!r}")
    if start == stop:
        raise UsageError(f"bad range {text!r}: START and STOP are equal (nothing to sweep)")
    return Axis(name, start, stop, n)


def parse_bounds(text: str, option: str) -> tuple[float, float]:
    """LO:HI (with LO < HI), for `--within` and `--range NAME=LO:HI`."""
    usage = "LO:HI, e.g. 0:100"
    parts = text.split(":")
    if len(parts) != 2:
        raise UsageError(f"bad {option} {text!r}: expected {usage}")
    lo, hi = (_number(p, w, f"bad {option} {text!r}") for p, w in zip(parts, ("LO", "HI")))
    if not lo < hi:
        raise UsageError(f"bad {option} {text!r}: LO must be below HI")
    return lo, hi


def parse_range(text: str) -> tuple[str, tuple[float, float]]:
    """NAME=LO:HI, as `tornado --range` takes it."""
    name, eq, rest = text.partition("=")
    if not eq or not name.strip():
        raise UsageError(f"bad --range {text!r}: expected NAME=LO:HI, e.g. tax=1.0:1.2")
    return name.strip(), parse_bounds(rest, f"--range {name.strip()}")


def parse_percent(text: str) -> float:
    """'10%' or '10' (percent) as a fraction, 0.1."""
    t = text.strip().removesuffix("%")
    x = parse_number(t.strip())
    if x is None or not math.isfinite(x) or x <= 0:
        raise UsageError(f"bad --by {text!r}: expected a percentage above 0, e.g. 10%")
    return x / 100


def parse_target(text: str, default_output: str) -> tuple[str, float]:
    """O=VALUE (or a bare VALUE, for the graph's first output), as `solve --target` takes it."""
    name, eq, value = text.rpartition("=")
    x = parse_number(value.strip())
    if (eq and not name.strip()) or x is None or not math.isfinite(x):
        raise UsageError(f"bad --target {text!r}: expected OUTPUT=VALUE with a finite number, e.g. price=800")
    return name.strip() or default_output, x


# --- checks shared by the three commands ------------------------------------------------------------------


def _scalar(v) -> bool:
    return getattr(v, "ndim", 0) == 0


def _base(plan: Plan, overrides: Mapping[str, Any] | None, output: str | None, command: str) -> Result:
    """The run at the file's values (with the overrides): its output must be a scalar."""
    out = check_outputs(plan, [output] if output else None)[0]
    base = run(plan, overrides, [out], exact=True)
    value = base.value(out)
    if not _scalar(value):
        raise UsageError(
            f"{command} needs a scalar output; '{out}' has shape {tuple(value.shape)} (choose another with --output)"
        )
    return base


def _scalar_input(plan: Plan, base: Result, name: str, command: str, verb: str) -> None:
    inputs = [i.name for i in plan.inputs]
    slot = plan.index.get(name)
    if slot is None:
        raise UsageError(f"{command}: '{name}' is not an input of the graph{suggest(name, inputs)}")
    if slot >= len(inputs):
        raise UsageError(f"{command}: '{name}' is a node, not an input: {command} {verb} inputs{suggest(name, inputs)}")
    if not plan.inputs[slot].grad:
        raise UsageError(f"{command}: '{name}' is a constant (grad: false); {command} {verb} inputs with a gradient")
    v = base.values[slot]
    if not _scalar(v):
        raise UsageError(
            f"{command}: '{name}' is an array of shape {tuple(v.shape)}; {command} {verb} scalar inputs "
            "(give arrays their values with --set)"
        )


def _columns(base: Result, overrides: Mapping[str, Any] | None, rows: int, moved: Mapping[str, Any]) -> dict:
    """run_batch's columns: the moved inputs, and each --set input's value (as the base run read it) repeated."""
    import numpy as np

    cols = {}
    for name in overrides or ():
        if name not in moved:
            v = np.asarray(base.value(name), dtype=np.float64)
            cols[name] = np.broadcast_to(v, (rows, *v.shape))
    cols.update(moved)
    return cols


def _point(names: Sequence[str], xs: Sequence[float]) -> str:
    return ", ".join(f"{n} = {fmt_num(x, 6)}" for n, x in zip(names, xs))


# --- sweep ----------------------------------------------------------------------------------------------------


class Sweep(NamedTuple):
    """The output and its derivatives at every point of a sweep (a grid for two inputs, the first varying
    slowest). Arrays of one value per point."""

    graph: str
    output: str
    axes: list[Axis]
    columns: dict  # input name -> the input's value at each point
    values: Any  # the output at each point
    grads: dict  # input name -> d output / d input at each point
    at: dict  # the run at the file's values (with --set): {"inputs": {name: x}, "value": v, "grad": {name: g}}
    warnings: list[str]

    @property
    def inputs(self) -> list[str]:
        return [a.name for a in self.axes]

    def to_dict(self) -> dict:
        names = self.inputs
        xs = [self.columns[n].tolist() for n in names]
        gs = [self.grads[n].tolist() for n in names]
        values = self.values.tolist()
        if len(names) == 1:
            (a,) = names
            points = [{a: x, "value": v, "grad": {a: g}} for x, v, g in zip(xs[0], values, gs[0])]
        else:
            a, b = names
            points = [
                {a: x, b: y, "value": v, "grad": {a: ga, b: gb}}
                for x, y, v, ga, gb in zip(xs[0], xs[1], values, gs[0], gs[1])
            ]
        return {"graph": self.graph, "output": self.output, "inputs": names, "points": points}


def sweep(
    plan: Plan,
    axes: Sequence[Axis],
    overrides: Mapping[str, Any] | None = None,
    output: str | None = None,
) -> Sweep:
    """The output and its gradient with respect to each swept input at every point, in one vectorized run."""
    import numpy as np

    if not 1 <= len(axes) <= 2:
        raise UsageError(f"sweep takes one or two NAME=START:STOP:N, got {len(axes)}")
    for a in axes:
        if not (isinstance(a.n, int) and a.n >= 2):
            raise UsageError(f"sweep of '{a.name}': N must be a whole number of at least 2, got {a.n!r}")
        if not (math.isfinite(a.start) and math.isfinite(a.stop)) or a.start == a.stop:
            raise UsageError(f"sweep of '{a.name}': START and STOP must be finite and different")
    names = [a.name for a in axes]
    if len(set(names)) < len(names):
        raise UsageError(f"sweep: '{names[0]}' is swept twice")
    for n in names:
        if overrides and n in overrides:
            raise UsageError(f"sweep: '{n}' is both swept and set with --set (choose one)")
    base = _base(plan, overrides, output, "sweep")
    for n in names:
        _scalar_input(plan, base, n, "sweep", "varies")
    total = math.prod(a.n for a in axes)
    if total > MAX_POINTS:
        counts = " × ".join(f"{a.n:,}" for a in axes)
        raise UsageError(
            f"sweep of {counts} = {total:,} points is over the limit of {MAX_POINTS:,} "
            "(cgcalc batch evaluates any number of rows, streaming)"
        )
    out = base.output
    at_axis = [a.values() for a in axes]
    if len(axes) == 1:
        moved = {names[0]: at_axis[0]}
    else:  # the grid, the first input varying slowest
        moved = {names[0]: np.repeat(at_axis[0], axes[1].n), names[1]: np.tile(at_axis[1], axes[0].n)}
    r = run_batch(plan, _columns(base, overrides, total, moved), [out])
    values = r.outputs[out]
    if values.shape != (total,):  # an input that changes the output's shape along the sweep cannot: scalars
        raise UsageError(f"sweep needs a scalar output; '{out}' has shape {values.shape[1:]}")
    grads = {n: r.grads[out][n] for n in names}
    at = {
        "inputs": {n: float(base.value(n)) for n in names},
        "value": float(base.value(out)),
        "grad": {n: float(base.grad(n)) for n in names},
    }
    warnings = []
    for what, a in [(out, values)] + [(f"d{out}/d{n}", grads[n]) for n in names]:
        finite = np.isfinite(a)
        if finite.all():
            continue
        bad = ~finite
        first = int(np.argmax(bad))
        where = _point(names, [moved[n][first] for n in names])
        warnings.append(f"{what} is not finite at {int(bad.sum()):,} of {total:,} points (the first: {where})")
    return Sweep(plan.spec.name, out, list(axes), moved, values, grads, at, warnings)


# --- tornado --------------------------------------------------------------------------------------------------


class TornadoRow(NamedTuple):
    input: str
    value: float  # the input's own value (the file's, or --set)
    low_input: float
    high_input: float
    low: float  # the output at low_input, the other inputs fixed (computed, not extrapolated)
    high: float
    swing: float  # |high - low|
    grad: float  # d output / d input at the base point
    linear_low: float  # the gradient's linear estimate: base + grad * (low_input - value)
    linear_high: float


class Tornado(NamedTuple):
    graph: str
    output: str
    base: float
    by: float  # the fraction inputs without a --range move by (0.1: ±10%)
    rows: list[TornadoRow]  # sorted by swing, largest first (ties in file order)
    ranged: list[str]  # the inputs moved to --range bounds rather than by `by`
    skipped: list[str]  # inputs not moved: arrays, and constants (grad: false)
    warnings: list[str]

    def to_dict(self) -> dict:
        keys = ("input", "low_input", "high_input", "low", "high", "swing")
        return {
            "graph": self.graph,
            "output": self.output,
            "base": self.base,
            "rows": [{k: getattr(r, k) for k in keys} for r in self.rows],
        }


def tornado(
    plan: Plan,
    overrides: Mapping[str, Any] | None = None,
    by: float = 0.1,
    ranges: Mapping[str, tuple[float, float]] | None = None,
    output: str | None = None,
) -> Tornado:
    """Each scalar input moved down and up (by the fraction `by` of its value, or to its `ranges` bounds) with the
    others fixed; the output at each, computed in one vectorized run, and the gradient's linear estimate."""
    import numpy as np

    if not (math.isfinite(by) and by > 0):
        raise UsageError(f"tornado: by must be a fraction above 0, got {by!r}")
    ranges = dict(ranges or {})
    base = _base(plan, overrides, output, "tornado")
    for name in ranges:
        _scalar_input(plan, base, name, "tornado", "moves")
    out = base.output
    moving = [i.name for s, i in enumerate(plan.inputs) if i.grad and _scalar(base.values[s])]
    skipped = [i.name for i in plan.inputs if i.name not in moving]
    if not moving:
        raise UsageError(
            f"tornado moves scalar inputs with a gradient, and {plan.spec.name} has none "
            f"(its inputs are arrays or constants: {', '.join(skipped)})"
        )
    warnings, bounds = [], []
    for name in moving:
        x = float(base.value(name))
        if name in ranges:
            bounds.append(ranges[name])
            continue
        bounds.append((x - by * abs(x), x + by * abs(x)))
        if x == 0:
            warnings.append(f"'{name}' is 0: moving it by ±{by:.0%} leaves it at 0 (give --range {name}=LO:HI)")
    k = len(moving)
    cols = {}
    for i, name in enumerate(moving):
        col = np.full(2 * k, float(base.value(name)))
        col[2 * i : 2 * i + 2] = bounds[i]
        cols[name] = col
    r = run_batch(plan, _columns(base, overrides, 2 * k, cols), [out], grads=False)
    at = r.outputs[out].tolist()
    y0 = float(base.value(out))
    rows = []
    for i, name in enumerate(moving):
        lo_x, hi_x = bounds[i]
        x, g = float(base.value(name)), float(base.grad(name))
        low, high = at[2 * i], at[2 * i + 1]
        rows.append(
            TornadoRow(name, x, lo_x, hi_x, low, high, abs(high - low), g, y0 + g * (lo_x - x), y0 + g * (hi_x - x))
        )
    rows.sort(key=lambda row: -row.swing if row.swing == row.swing else math.inf)
    bad = [row.input for row in rows if not (math.isfinite(row.low) and math.isfinite(row.high))]
    if bad:
        warnings.append(f"{out} is not finite where {', '.join(bad)} {'is' if len(bad) == 1 else 'are'} moved")
    ranged = [n for n in moving if n in ranges]
    return Tornado(plan.spec.name, out, y0, by, rows, ranged, skipped, warnings)


# --- solve ------------------------------------------------------------------------------------------------------


class Solution(NamedTuple):
    graph: str
    output: str
    target: float
    input: str
    value: float  # the input's value that gives the target
    residual: float  # output - target there
    iterations: int  # Newton and bisection steps (a scan for a bracket is not one)
    start: float  # where Newton started (the file's value, or --set; the middle of --within if outside it)
    method: str  # "Newton"; "Newton and bisection" when it had to bracket; "a scan" when a scanned value hit it

    def to_dict(self) -> dict:
        keys = ("graph", "output", "target", "input", "value", "residual", "iterations")
        return {k: getattr(self, k) for k in keys}


SCAN_POINTS = 129  # a bracket is looked for at this many points of --within, in one vectorized run


def solve(
    plan: Plan,
    vary: str,
    target: float,
    overrides: Mapping[str, Any] | None = None,
    output: str | None = None,
    within: tuple[float, float] | None = None,
    tol: float | None = None,
    max_iter: int = 100,
) -> Solution:
    """The value of input `vary` at which the output equals `target`: Newton steps with the exact gradient
    while they stay in bounds and make progress; then, inside a bracket of opposite residuals (the one Newton
    crossed, or one found by a vectorized scan), Newton steps safeguarded by bisection. NoSolution when there is
    none in range."""
    if isinstance(target, bool) or not isinstance(target, int | float) or not math.isfinite(target):
        raise UsageError(f"solve: the target must be a finite number, got {target!r}")
    target = float(target)
    if tol is not None and not (math.isfinite(tol) and tol > 0):
        raise UsageError(f"solve: --tol must be a number above 0, got {tol!r}")
    if within is not None and not (within[0] < within[1]):
        raise UsageError(f"solve: --within needs LO below HI, got {within!r}")
    if overrides and vary in overrides:
        raise UsageError(f"solve: '{vary}' is both varied and set with --set (choose one)")
    base = _base(plan, overrides, output, "solve")
    _scalar_input(plan, base, vary, "solve", "varies")
    return _Seek(plan, base, vary, target, overrides, within, tol, max_iter).run()


class _Seek:
    """One goal seek: the residual r(x) = output(x) - target and its exact derivative, one run per step."""

    def __init__(self, plan, base, vary, target, overrides, within, tol, max_iter) -> None:
        self.plan, self.base, self.vary, self.target = plan, base, vary, target
        self.out = base.output
        self.overrides = overrides
        self.fixed = dict(overrides or {})
        self.lo, self.hi = within if within is not None else (-math.inf, math.inf)
        self.tol = tol if tol is not None else 1e-9 * max(1.0, abs(target))
        self.max_iter = max_iter
        self.steps = 0
        x0 = float(base.value(vary))
        self.start = x0 if self.lo <= x0 <= self.hi else (self.lo + self.hi) / 2
        self.method = "Newton"

    def f(self, x: float) -> tuple[float, float]:
        if x == self.start and self.steps == 0 and self.start == float(self.base.value(self.vary)):
            return float(self.base.value(self.out)) - self.target, float(self.base.grad(self.vary))
        self.fixed[self.vary] = x
        r = run(self.plan, self.fixed, [self.out], exact=True)
        return float(r.value(self.out)) - self.target, float(r.grad(self.vary))

    def found(self, x: float, fx: float) -> Solution:
        p = self.plan
        return Solution(p.spec.name, self.out, self.target, self.vary, x, fx, self.steps, self.start, self.method)

    def run(self) -> Solution:
        x = self.start
        fx, dfx = self.f(x)
        while math.isfinite(fx):
            if abs(fx) <= self.tol:
                return self.found(x, fx)
            if self.steps >= self.max_iter or not (math.isfinite(dfx) and dfx != 0):
                break
            nx = x - fx / dfx
            if not (self.lo <= nx <= self.hi) or nx == x:
                break  # a step out of bounds (or none at all): bracket instead
            nfx, ndfx = self.f(nx)
            self.steps += 1
            if math.isfinite(nfx) and (nfx > 0) != (fx > 0):
                return self.bracketed((x, fx), (nx, nfx), ndfx)
            if not math.isfinite(nfx) or abs(nfx) >= abs(fx):
                break  # into a region where the output is not finite, or no progress
            x, fx, dfx = nx, nfx, ndfx
        if self.steps >= self.max_iter:
            raise self.not_converged(x, fx)
        self.method = "Newton and bisection"
        found = self.scan(x if math.isfinite(fx) else self.start)
        if len(found) == 1:
            self.method = "a scan" if not self.steps else "Newton and a scan"
            return self.found(*found[0])
        far, near = sorted(found, key=lambda p: -abs(p[1]))
        return self.bracketed(far, near, self.f(near[0])[1])

    def bracketed(self, a, b, dfx) -> Solution:
        """Newton from b (dfx its derivative) inside [a, b] (opposite residuals), halving it where a step would
        leave it or the last step did not halve the residual (as rtsafe, Numerical Recipes 9.4): it never leaves
        the bracket, so it converges, or finds the output jumping across the target."""
        x, fx = b  # the newest point, whose derivative is dfx
        (xa, fa, da), (xb, fb, db) = sorted([(*a, math.nan), (*b, dfx)])
        slow = False
        while self.steps < self.max_iter:
            nx = x - fx / dfx if math.isfinite(dfx) and dfx != 0 and not slow else math.nan
            if not (xa < nx < xb):
                nx = xa + (xb - xa) / 2
                self.method = "Newton and bisection"
            width = xb - xa
            # a bracket too narrow for its ends' slopes to bridge: the output jumps across the target
            slopes = max((abs(d) for d in (da, db) if math.isfinite(d)), default=0.0)
            if nx in (xa, xb) or (
                width <= 1e-12 * max(1.0, abs(xa), abs(xb)) and width * slopes < min(abs(fa), abs(fb))
            ):
                raise self.jump(xa, fa, xb, fb)
            last = fx
            x = nx
            fx, dfx = self.f(x)
            self.steps += 1
            if not math.isfinite(fx):
                raise NoSolution(
                    f"no solution found: {self.out} is not finite at {self.vary} = {fmt_num(x, 12)}, between two "
                    f"values where it is on either side of {fmt_num(self.target, 10)}"
                )
            if abs(fx) <= self.tol:
                return self.found(x, fx)
            slow = abs(fx) > abs(last) / 2
            if (fx > 0) == (fa > 0):
                xa, fa, da = x, fx, dfx
            else:
                xb, fb, db = x, fx, dfx
        raise self.not_converged(x, fx)

    def scan(self, x: float) -> list[tuple[float, float]]:
        """A bracket nearest x, [(xa, fa), (xb, fb)] of opposite signs, or [(xs, 0)], a point on the target: at
        SCAN_POINTS evenly spaced points of --within, or, unbounded, at x ± 1e-9 to 1e18 times max(1, |x|)."""
        import numpy as np

        bounded = math.isfinite(self.lo)
        if bounded:
            xs = np.unique(np.append(np.linspace(self.lo, self.hi, SCAN_POINTS), x))
        else:
            offsets = max(1.0, abs(x)) * 2.0 ** np.arange(-30, 61)
            xs = np.unique(np.concatenate([x - offsets, [x], x + offsets]))
        cols = _columns(self.base, self.overrides, len(xs), {self.vary: xs})
        r = run_batch(self.plan, cols, [self.out], grads=False)
        fs = r.outputs[self.out] - self.target
        ok = np.flatnonzero(np.isfinite(fs))
        near = np.abs(xs - x)
        on = ok[np.abs(fs[ok]) <= self.tol]
        if on.size:
            i = on[np.argmin(near[on])]
            return [(float(xs[i]), float(fs[i]))]
        crossings = [(i, j) for i, j in zip(ok[:-1], ok[1:]) if (fs[i] > 0) != (fs[j] > 0)]
        if crossings:
            i, j = min(crossings, key=lambda p: min(near[p[0]], near[p[1]]))
            return [(float(xs[i]), float(fs[i])), (float(xs[j]), float(fs[j]))]
        span = (
            f"in [{fmt_num(self.lo, 10)}, {fmt_num(self.hi, 10)}]"
            if bounded
            else (f"from {fmt_num(float(xs[0]), 3)} to {fmt_num(float(xs[-1]), 3)}")
        )
        if not ok.size:
            raise NoSolution(f"no solution: {self.out} is not finite anywhere {self.vary} was tried {span}")
        ys = fs[ok] + self.target
        lo, hi = fmt_num(float(ys.min()), 6), fmt_num(float(ys.max()), 6)
        stays = f"stays at {lo}" if lo == hi else f"stays between {lo} and {hi}"
        raise NoSolution(
            f"no solution: {self.out} does not reach {fmt_num(self.target, 10)} for {self.vary} {span}: it {stays} "
            f"there ({len(xs):,} values tried{'' if bounded else '; --within LO:HI to look elsewhere'})"
        )

    def jump(self, xa: float, fa: float, xb: float, fb: float) -> NoSolution:
        t = self.target
        return NoSolution(
            f"no solution: {self.out} jumps across {fmt_num(t, 10)} at {self.vary} = {fmt_num(xa, 12)} (from "
            f"{fmt_num(fa + t, 10)} to {fmt_num(fb + t, 10)}): no value gives it within {self.tol:g}"
        )

    def not_converged(self, x: float, fx: float) -> NoSolution:
        return NoSolution(
            f"no solution found: {self.out} did not come within {self.tol:g} of {fmt_num(self.target, 10)} in "
            f"{self.max_iter} iterations (the last: {self.out} = {fmt_num(fx + self.target, 10)} at {self.vary} = "
            f"{fmt_num(x, 12)})"
        )
