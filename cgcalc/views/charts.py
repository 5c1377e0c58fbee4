"""Terminal charts as plain text: a line chart drawn in braille dots, a heat map in shades and the bars of a
tornado. Each chart is a list of lines, each line a list of (text, style name) segments; render.py gives the
style names their colours. Pure: no Rich, no printing, the same text on every terminal."""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..numbers import fmt_num

Line = list[tuple[str, str]]  # (text, style name); "" is plain

# the dot (column, row) of a braille cell -> its bit (Unicode's braille patterns, U+2800)
_BRAILLE = {
    (0, 0): 0x01,
    (0, 1): 0x02,
    (0, 2): 0x04,
    (1, 0): 0x08,
    (1, 1): 0x10,
    (1, 2): 0x20,
    (0, 3): 0x40,
    (1, 3): 0x80,
}
SHADES = "·░▒▓█"  # a heat map's levels, lowest first (a NaN is a blank)
TICK_DIGITS = 5


class Canvas:
    """A grid of character cells, each 2 x 4 braille dots; a cell may instead hold one character of its own."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.bits = [[0] * width for _ in range(height)]
        self.styles = [[""] * width for _ in range(height)]
        self.chars: dict[tuple[int, int], tuple[str, str]] = {}

    def dot(self, px: int, py: int, style: str) -> None:
        if 0 <= px < 2 * self.width and 0 <= py < 4 * self.height:
            row, col = py // 4, px // 2
            self.bits[row][col] |= _BRAILLE[(px % 2, py % 4)]
            self.styles[row][col] = style

    def line(self, p0: tuple[int, int], p1: tuple[int, int], style: str) -> None:
        """Bresenham's line between two dots."""
        (x0, y0), (x1, y1) = p0, p1
        dx, dy = abs(x1 - x0), -abs(y1 - y0)
        sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
        err = dx + dy
        while True:
            self.dot(x0, y0, style)
            if (x0, y0) == (x1, y1):
                return
            e2 = 2 * err
            if e2 >= dy:
                err += dy
                x0 += sx
            if e2 <= dx:
                err += dx
                y0 += sy

    def put(self, col: int, row: int, char: str, style: str, over: bool = True) -> None:
        """One character in a cell (over: even where dots are)."""
        if 0 <= col < self.width and 0 <= row < self.height and (over or not self.bits[row][col]):
            self.chars[(col, row)] = (char, style)

    def lines(self) -> list[Line]:
        out = []
        for row in range(self.height):
            line: Line = []
            for col in range(self.width):
                if (col, row) in self.chars:
                    line.append(self.chars[(col, row)])
                elif self.bits[row][col]:
                    line.append((chr(0x2800 + self.bits[row][col]), self.styles[row][col]))
                else:
                    line.append((" ", ""))
            out.append(_merged(line))
        return out


def _merged(line: Line) -> Line:
    """Neighbouring segments of one style joined (fewer spans for the terminal)."""
    out: Line = []
    for text, style in line:
        if out and out[-1][1] == style:
            out[-1] = (out[-1][0] + text, style)
        else:
            out.append((text, style))
    return out


def _span(lo: float, hi: float) -> tuple[float, float]:
    """A range to draw values between: widened when flat (a constant derivative), so that it has a middle."""
    if hi > lo:
        return lo, hi
    pad = abs(lo) * 0.1 or 1.0
    return lo - pad, hi + pad


def _thinned(xs, ys, columns: int) -> tuple[list[float], list[float]]:
    """The points sorted by x; past a few thousand, of the points in each of `columns` columns the first, the
    lowest, the highest and the last: the same picture as all of them, drawn in time bounded by the chart's
    width rather than the sweep's length (a column holding a NaN is a gap, as the NaN would be)."""
    import numpy as np

    x, y = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
    keep = np.isfinite(x)
    x, y = x[keep], y[keep]
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    if x.size <= 4 * columns:
        return x.tolist(), y.tolist()
    span = (x[-1] - x[0]) or 1.0
    col = np.round((x - x[0]) / span * (columns - 1)).astype(np.int64)
    starts = np.flatnonzero(np.r_[True, col[1:] != col[:-1]])
    ends = np.r_[starts[1:], x.size] - 1
    lows, highs = np.minimum.reduceat(y, starts), np.maximum.reduceat(y, starts)
    px = np.stack([x[starts], x[starts], x[starts], x[ends]], axis=1).ravel()
    py = np.stack([y[starts], lows, highs, y[ends]], axis=1).ravel()
    return px.tolist(), py.tolist()


def tick(x: float, span: float = 0.0) -> str:
    """An axis label; a value within rounding of 0, for the range it is on, is 0."""
    return fmt_num(0.0 if abs(x) < 1e-12 * span else x, TICK_DIGITS)


def _x_axis(width: int, ticks: list[tuple[int, float]], indent: int, label: str) -> list[Line]:
    """The axis line with its ticks (column, value), and their values beneath, each centred on its tick (the
    last one ending there); a value that would touch the one before it is left out."""
    axis = ["─"] * width
    labels = [" "] * (width + 12)
    end = -1
    for i, (col, value) in enumerate(ticks):
        axis[col] = "┬"
        text = tick(value, abs(ticks[-1][1] - ticks[0][1]))
        start = max(0, col - len(text) // 2) if i < len(ticks) - 1 else max(0, col - len(text) + 1)
        if start <= end:
            continue
        labels[start : start + len(text)] = text
        end = start + len(text)
    return [
        [(" " * indent + "└", "axis"), ("".join(axis), "axis")],
        [(" " * (indent + 1) + "".join(labels).rstrip(), "label"), (f"   {label}", "name")],
    ]


def line_chart(
    xs: Sequence[float],
    ys: Sequence[float],
    *,
    width: int = 60,
    height: int = 10,
    x_label: str = "",
    y_label: str = "",
    style: str = "curve",
    tangent: tuple[float, float, float] | None = None,
    mark: tuple[float, float] | None = None,
) -> list[Line]:
    """y against x, the points joined by lines; a tangent (x0, y0, slope) as a dotted line where the curve is
    not, and a mark (x0, y0) as a dot. Points where y is not finite leave a gap."""
    xs, ys = _thinned(xs, ys, 2 * width)
    pts = list(zip(xs, ys))
    finite = [y for _, y in pts if math.isfinite(y)]
    x_lo, x_hi = _span(min(x for x, _ in pts), max(x for x, _ in pts))
    y_lo, y_hi = _span(min(finite), max(finite)) if finite else (-1.0, 1.0)
    c = Canvas(width, height)

    def px(x: float) -> int:
        return round((x - x_lo) / (x_hi - x_lo) * (2 * width - 1))

    def py(y: float) -> int:
        return round((y_hi - y) / (y_hi - y_lo) * (4 * height - 1))

    prev = None
    for x, y in pts:
        if not math.isfinite(y):
            prev = None
            continue
        p = (px(x), py(y))
        if prev is None:
            c.dot(*p, style)
        else:
            c.line(prev, p, style)
        prev = p
    if tangent is not None:
        x0, y0, slope = tangent
        for col in range(width):
            x = x_lo + (2 * col + 0.5) / (2 * width - 1) * (x_hi - x_lo)
            y = y0 + slope * (x - x0)
            if y_lo <= y <= y_hi:
                c.put(col, py(y) // 4, "·", "tangent", over=False)
    if mark is not None and x_lo <= mark[0] <= x_hi and y_lo <= mark[1] <= y_hi:
        c.put(px(mark[0]) // 2, py(mark[1]) // 4, "●", "mark")
    # the range's ends on the top and bottom rows, and its middle on the row it falls in
    labels = {0: tick(y_hi), height - 1: tick(y_lo)}
    if height >= 5:
        labels[py((y_lo + y_hi) / 2) // 4] = tick((y_lo + y_hi) / 2)
    indent = max(len(t) for t in labels.values()) + 1
    out: list[Line] = [[(" " * indent + " " + y_label, "name")]] if y_label else []
    for row, line in enumerate(c.lines()):
        text = labels.get(row)
        lead = (text.rjust(indent - 1) + " ┤") if text else (" " * indent + "│")
        out.append([(lead, "axis"), *line])
    n = 5 if width >= 40 else 3
    ticks = [x_lo + (x_hi - x_lo) * i / (n - 1) for i in range(n)]
    return out + _x_axis(width, [(px(x) // 2, x) for x in ticks], indent, x_label)


def levels(lo: float, hi: float, v: float) -> int:
    """v's shade among SHADES, equal fifths of [lo, hi]."""
    if hi <= lo:
        return len(SHADES) // 2
    return min(len(SHADES) - 1, int((v - lo) / (hi - lo) * len(SHADES)))


def heat_map(
    xs: Sequence[float],
    ys: Sequence[float],
    grid,
    *,
    width: int = 60,
    height: int = 20,
    x_label: str = "",
    y_label: str = "",
    mark: tuple[float, float] | None = None,
) -> tuple[list[Line], tuple[float, float]]:
    """grid[i][j] = the value at (xs[i], ys[j]), as shades: x across, y up (each cell the nearest point; a
    point is several characters wide when there are few). Returns the lines and the range of the shades."""
    import numpy as np

    nx, ny = len(xs), len(ys)
    grid = np.asarray(grid, dtype=np.float64)
    finite = grid[np.isfinite(grid)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    cell = max(1, min(4, width // nx))
    cols = min(width, nx * cell)
    rows = min(height, ny)

    def index(k: int, n_cells: int, n: int) -> int:
        return round(k * (n - 1) / (n_cells - 1)) if n_cells > 1 else 0

    col_points = [min(nx - 1, k // cell) if nx * cell <= width else index(k, cols, nx) for k in range(cols)]
    row_points = [index(rows - 1 - r, rows, ny) for r in range(rows)]  # the top row is the highest y
    mark_cell = None
    if mark is not None and min(xs) <= mark[0] <= max(xs) and min(ys) <= mark[1] <= max(ys):
        # the cell whose point is nearest (the first of a point's cells)
        k = min(range(cols), key=lambda k: abs(xs[col_points[k]] - mark[0]))
        r = min(range(rows), key=lambda r: abs(ys[row_points[r]] - mark[1]))
        mark_cell = (k, r)
    labels = {r: tick(ys[row_points[r]]) for r in ([0, (rows - 1) // 2, rows - 1] if rows >= 5 else [0, rows - 1])}
    indent = max(len(t) for t in labels.values()) + 1
    out: list[Line] = [[(" " * indent + " " + y_label, "name")]] if y_label else []
    for r in range(rows):
        text = labels.get(r)
        line: Line = [((text.rjust(indent - 1) + " ┤") if text else (" " * indent + "│"), "axis")]
        for k in range(cols):
            v = float(grid[col_points[k], row_points[r]])
            if mark_cell == (k, r):
                line.append(("●", "mark"))
            elif math.isfinite(v):
                level = levels(lo, hi, v)
                line.append((SHADES[level], f"heat{level}"))
            else:
                line.append((" ", ""))
        out.append(_merged(line))
    # ticks on points, evenly spaced: 5 or 6 of them where the points divide so (and there is room), else 3 or 2
    n = next(n for n in (5, 6, 3, 4, 2) if (nx - 1) % (n - 1) == 0 and (n <= 3 or cols >= 8 * n))
    ticks = []
    for i in range(0, nx, (nx - 1) // (n - 1)):
        shown = [k for k in range(cols) if col_points[k] == i] or [
            min(range(cols), key=lambda k: abs(col_points[k] - i))
        ]
        ticks.append((shown[len(shown) // 2] if 0 < i < nx - 1 else shown[0 if i == 0 else -1], xs[i]))
    return out + _x_axis(cols, ticks, indent, x_label), (lo, hi)


def bars(rows: Sequence[tuple[float, float]], base: float, width: int = 25) -> list[Line]:
    """A tornado's bars, one line per (low, high) pair, about the base in the middle column: to the output at
    the low input in light shade, to the output at the high input in full blocks. Both sides share one scale,
    the largest distance from the base, so that equal moves look equal."""
    half = width // 2
    reach = max((abs(v - base) for pair in rows for v in pair if math.isfinite(v)), default=0.0) or 1.0

    def pos(v: float) -> int:
        return half + round((v - base) / reach * half)

    out = []
    for low, high in rows:
        cells = [(" ", "")] * (2 * half + 1)
        ends = [(v, char, style) for v, char, style in ((low, "░", "low"), (high, "█", "high")) if math.isfinite(v)]
        ends.sort(key=lambda e: -abs(pos(e[0]) - half))  # the longer first: the shorter stays in sight
        for v, char, style in ends:
            p = pos(v)
            for k in range(min(p, half), max(p, half) + 1):
                cells[k] = (char, style)
        cells[half] = ("│", "axis")
        out.append(_merged(cells))
    return out
