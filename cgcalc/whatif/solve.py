"""Goal seek: the value of one input at which the output equals a target (Newton with the exact derivative,
safeguarded by bisection)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

from ..core.compiler import Plan
from ..core.runtime import run
from ..core.vectorized import run_batch
from ..errors import UsageError
from ..numbers import fmt_num
from .common import NoSolution, _base, _columns, _scalar_input


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
