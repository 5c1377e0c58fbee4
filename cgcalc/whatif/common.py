"""What the three what-if commands share: elasticities, the parsing of their options, the checks of the base
run and of an input, and run_batch's columns."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from ..core.compiler import Plan
from ..core.runtime import Result, check_outputs, run
from ..errors import CgcalcError, UsageError, suggest
from ..numbers import fmt_num, parse_number

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
