"""`sweep --plot`: the sweep drawn by matplotlib as a PNG, SVG or PDF file's bytes. matplotlib is the optional
`plot` extra (`pip install 'cgcalc[plot]'`); without it, a UsageError saying so. Never writes a file itself."""

from __future__ import annotations

import io
import math

from ..errors import UsageError
from ..numbers import fmt_num

FORMATS = ("png", "svg", "pdf")
SIZE = (8.0, 6.0)  # inches
DPI = 100  # a PNG of 800 x 600 pixels
INSTALL = "--plot needs matplotlib, which is not installed: pip install 'cgcalc[plot]' (or pip install matplotlib)"


def picture_format(path: str) -> str:
    """png, svg or pdf, from the file's extension; a UsageError for any other."""
    ext = path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
    if ext not in FORMATS:
        raise UsageError(f"--plot writes a .png, .svg or .pdf file, not {path!r}")
    return ext


def require() -> None:
    """matplotlib can be imported, or a UsageError saying how to install it."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UsageError(INSTALL) from None


def picture(sw, fmt: str) -> bytes:
    """The sweep as a picture: for one input, the output with its tangent at the file's value above, its
    derivative below; for two, a heat map of the output with contour lines."""
    require()
    import matplotlib

    matplotlib.rcParams["svg.hashsalt"] = "cgcalc"  # the same ids in every SVG of the same sweep
    from matplotlib.figure import Figure

    fig = Figure(figsize=SIZE, dpi=DPI, layout="constrained")
    out, names = sw.output, sw.inputs
    x0s = [sw.at["inputs"][n] for n in names]
    y0 = sw.at["value"]
    if len(names) == 1:
        _lines(fig, sw, names[0], x0s[0], y0)
    else:
        _heat(fig, sw, names, x0s, y0)
    span = " × ".join(f"{a.name} from {fmt_num(a.start, 6)} to {fmt_num(a.stop, 6)}" for a in sw.axes)
    fig.suptitle(f"{sw.graph}: {out} for {span}")
    buf = io.BytesIO()
    # no date in the file: the same sweep draws the same bytes
    metadata = {"png": {"Software": "cgcalc"}, "svg": {"Date": None}, "pdf": {"CreationDate": None}}[fmt]
    fig.savefig(buf, format=fmt, dpi=DPI, metadata=metadata)
    return buf.getvalue()


def _lines(fig, sw, name: str, x0: float, y0: float) -> None:
    import numpy as np

    out = sw.output
    xs, ys, ds = sw.columns[name], sw.values, sw.grads[name]
    g0 = sw.at["grad"][name]
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    top.plot(xs, ys, color="tab:blue", label=out)
    lo, hi = min(sw.axes[0].start, sw.axes[0].stop), max(sw.axes[0].start, sw.axes[0].stop)
    top.set_xlim(lo, hi)
    finite = ys[np.isfinite(ys)]
    if finite.size:  # the curve's range: the tangent is drawn across it, and may leave it
        y_lo, y_hi = float(finite.min()), float(finite.max())
        pad = (y_hi - y_lo) * 0.05 or abs(y_hi) * 0.05 or 1.0
        top.set_ylim(y_lo - pad, y_hi + pad)
    if lo <= x0 <= hi and math.isfinite(y0) and math.isfinite(g0):
        top.plot(
            [lo, hi],
            [y0 + g0 * (lo - x0), y0 + g0 * (hi - x0)],
            color="tab:orange",
            linestyle="--",
            label=f"tangent at {name} = {fmt_num(x0, 6)}: slope {fmt_num(g0, 6)}",
        )
        top.plot([x0], [y0], "o", color="tab:red", label=f"{out} = {fmt_num(y0, 6)} (the file's value)")
    top.set_ylabel(out)
    top.legend(loc="best", fontsize="small")
    top.grid(True, alpha=0.3)
    bottom.plot(xs, ds, color="tab:purple")
    if lo <= x0 <= hi and math.isfinite(g0):
        bottom.plot([x0], [g0], "o", color="tab:red")
    bottom.set_ylabel(f"∂{out}/∂{name}")
    bottom.set_xlabel(name)
    bottom.grid(True, alpha=0.3)


def _heat(fig, sw, names: list[str], x0s: list[float], y0: float) -> None:
    import numpy as np

    (a, b), (na, nb) = names, (sw.axes[0].n, sw.axes[1].n)
    xs, ys = sw.axes[0].values(), sw.axes[1].values()
    z = np.asarray(sw.values).reshape(na, nb).T  # rows: the second input (y), columns: the first (x)
    ax = fig.subplots()
    mesh = ax.pcolormesh(xs, ys, z, shading="nearest", cmap="viridis")
    if na >= 2 and nb >= 2 and np.isfinite(z).any() and np.nanmax(z) > np.nanmin(z):
        contours = ax.contour(xs, ys, z, levels=8, colors="white", linewidths=0.6, alpha=0.8)
        ax.clabel(contours, fontsize="x-small", fmt=lambda v: fmt_num(v, 4))
    inside = all(min(s.start, s.stop) <= x <= max(s.start, s.stop) for s, x in zip(sw.axes, x0s))
    if inside:
        ax.plot([x0s[0]], [x0s[1]], "o", color="tab:red", label=f"the file's values: {sw.output} = {fmt_num(y0, 6)}")
        ax.legend(loc="best", fontsize="small")
    fig.colorbar(mesh, ax=ax, label=sw.output)
    ax.set_xlabel(a)
    ax.set_ylabel(b)
