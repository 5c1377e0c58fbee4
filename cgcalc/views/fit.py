"""A fit turned into text: the loss curve as a small chart of block characters, and the rows of the
parameters' table (before and after). Pure strings; render.py puts them on the terminal."""

from __future__ import annotations

import math

from ..numbers import fmt_num, fmt_value

BLOCKS = " ▁▂▃▄▅▆▇█"  # eighths of a character cell, bottom up
WIDTH, HEIGHT = 60, 6


def loss_chart(losses: list[float], per: str = "step", width: int = WIDTH, height: int = HEIGHT) -> list[str]:
    """The curve as `height` lines of bars, one column per step (or, for more steps than `width`, for evenly
    spaced steps, the first and the last among them), the largest and smallest loss shown on the axis, the first
    and last step below. A log scale when the losses are all positive and span more than two orders of
    magnitude (the usual curve: most of the fall comes first)."""
    n = len(losses)
    if not n or not all(math.isfinite(x) for x in losses):
        return []
    w = min(n, width)
    shown = [losses[round(j * (n - 1) / (w - 1))] for j in range(w)] if w > 1 else losses[:1]
    lo, hi = min(shown), max(shown)
    log = lo > 0 and hi / lo > 100
    ys = [math.log10(x) for x in shown] if log else shown
    levels = height * 8
    if hi > lo:
        y0, y1 = min(ys), max(ys)
        heights = [1 + round((y - y0) / (y1 - y0) * (levels - 1)) for y in ys]
    else:
        heights = [levels // 2] * w
    top, bottom = fmt_num(hi, 3), fmt_num(lo, 3)
    pad = max(len(top), len(bottom))
    lines = []
    for r in range(height - 1, -1, -1):
        label = top if r == height - 1 else bottom if r == 0 else ""
        cells = "".join(BLOCKS[min(8, max(0, h - r * 8))] for h in heights)
        lines.append(f"{label:>{pad}} ┤{cells}".rstrip())
    first, last = "1", f"{n:,}"
    axis = first + " " * max(1, w - len(first) - len(last)) + last if w > 1 else first
    unit = f"{per}{'s' if n > 1 else ''}" + (", log scale" if log else "")
    lines.append(" " * (pad + 2) + axis + f"  ({unit})")
    return lines


def summary(result, precision: int = 6) -> list[str]:
    """What was run, and where the loss went."""
    r = result
    lines = []
    how = f"{r.optimizer} (lr {fmt_num(r.lr, precision)})"
    if r.mode == "inputs":
        size = f"{r.steps:,} step{'s' * (r.steps != 1)}"
    else:
        size = (
            f"{r.steps:,} step{'s' * (r.steps != 1)} in {r.epochs:,} epoch{'s' * (r.epochs != 1)} over "
            f"{r.rows:,} rows (batch {r.batch_size:,}, seed {r.seed})"
        )
    lines.append(f"{r.graph_name}: {how}, {size}, minimizing {r.output}")
    if r.interrupted:
        lines.append(f"interrupted after step {r.steps:,}")
    if r.losses:
        first, last = r.losses[0], r.losses[-1]
        lines.append(f"{r.output} per {r.per}: {fmt_num(first, precision)} → {fmt_num(last, precision)}")
    if r.outputs:
        where = f", the mean over all {r.rows:,} rows" if r.mode != "inputs" else ""
        values = ", ".join(f"{k} = {fmt_value(v, precision)}" for k, v in r.outputs.items())
        lines.append(f"at the trained parameters{where}: {values}")
    return lines


def param_rows(result, precision: int = 6) -> list[tuple[str, str, str]]:
    """(name, before, after) for each parameter, rounded as tables show numbers."""
    return [
        (name, fmt_value(result.before[name], precision), fmt_value(v, precision)) for name, v in result.params.items()
    ]
