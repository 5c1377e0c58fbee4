"""Chapter 7: conv2d, max_pool and avg_pool, computed through im2col as the book's Convolution and Pooling —
and the functions im2col and col2im (conv_grad_layers.py has the ops their backward is written with).

x is (N, C, H, W), a filter W (FN, C, FH, FW), as in the book. In a batch the runtime puts a row axis in front
of every value, and each function here keeps the axes in front of its own as they are (`...`). The output size is
(H + 2 pad - FH) / stride + 1, refused before running when it is not a whole number.

im2col is the book's: one row per output position (n, oh, ow), one column per (c, fy, fx). It is made here in
one copy of a strided view of the windows (the book's fills a 6-D array, then copies it transposed); col2im,
its adjoint, adds each window back where it came from, one (fy, fx) offset at a time, as the book's does.
"""

from __future__ import annotations

from typing import Any

from ..errors import GraphError, ShapeError, suggest
from .base import Layer, Layout, Ops, Shape, fmt_shape

Array = Any  # a numpy array


# --- im2col and col2im, on arrays with axes in front ---------------------------------------------------


def windows(x: Array, fh: int, fw: int, stride: int, pad: int) -> Array:
    """x (..., H, W) as its fh x fw windows: (..., OH, OW, fh, fw), a read-only view (of a padded copy when
    pad > 0; zeros, as the book's np.pad)."""
    import numpy as np
    from numpy.lib.stride_tricks import sliding_window_view

    if pad:
        x = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(pad, pad), (pad, pad)])
    w = sliding_window_view(x, (fh, fw), axis=(-2, -1))
    return w[..., ::stride, ::stride, :, :] if stride > 1 else w


def fold(win: Array, hw: tuple[int, int], stride: int, pad: int) -> Array:
    """The adjoint of `windows`: win (..., OH, OW, fh, fw) added back into (..., H, W), each element where
    its window took it from (overlaps summed; what fell on the padding dropped)."""
    import numpy as np

    *lead, oh, ow, fh, fw = win.shape
    h, w = hw
    if stride == fh == fw and not pad and oh * fh == h and ow * fw == w:  # windows that tile x: no overlap
        return np.moveaxis(win, -3, -2).reshape(*lead, h, w)
    img = np.zeros((*lead, h + 2 * pad, w + 2 * pad))
    for y in range(fh):
        for x in range(fw):
            img[..., y : y + stride * oh : stride, x : x + stride * ow : stride] += win[..., y, x]
    return img[..., pad : h + pad, pad : w + pad] if pad else img


def im2col(x: Array, fh: int, fw: int, stride: int, pad: int) -> Array:
    """The book's im2col: x (..., N, C, H, W) -> (..., N * OH * OW, C * fh * fw)."""
    import numpy as np

    w = windows(x, fh, fw, stride, pad)  # (..., N, C, OH, OW, fh, fw)
    *lead, n, c, oh, ow, _, _ = w.shape
    return np.moveaxis(w, -5, -3).reshape(*lead, n * oh * ow, c * fh * fw)


def col2im(col: Array, shape: Shape, fh: int, fw: int, stride: int, pad: int) -> Array:
    """The book's col2im, im2col's adjoint: col (..., N * OH * OW, C * fh * fw) -> (..., N, C, H, W)."""
    import numpy as np

    n, c, h, w = shape
    oh, ow = (h + 2 * pad - fh) // stride + 1, (w + 2 * pad - fw) // stride + 1
    win = col.reshape(*col.shape[:-2], n, oh, ow, c, fh, fw)
    return fold(np.moveaxis(win, -3, -5), (h, w), stride, pad)


# --- attributes and shapes ---------------------------------------------------------------------------


def _whole(op: str, key: str, v: Any, low: int) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < low:
        raise GraphError(f"{op}: {key} must be a whole number >= {low}, got {v!r}")
    return v


def checked_attrs(cls: type[Layer], attrs: dict[str, Any], lows: dict[str, int]) -> dict[str, Any]:
    out = dict(cls.attr_defaults)
    for key, v in attrs.items():
        if key not in out:
            raise GraphError(f"op '{cls.op}' has no attribute '{key}'" + suggest(key, out))
        if key == "shape":
            ok = isinstance(v, (list, tuple)) and len(v) == 4 and all(isinstance(n, int) and n >= 0 for n in v)
            if not ok or any(isinstance(n, bool) for n in v):
                raise GraphError(f"{cls.op}: shape must be 4 whole numbers >= 0, [N, C, H, W], got {v!r}")
            out[key] = tuple(v)
        else:
            out[key] = _whole(cls.op, key, v, lows[key])
    return out


def out_size(op: str, what: str, n: int, f: int, stride: int, pad: int) -> int:
    """(n + 2 pad - f) / stride + 1, a whole number >= 1 (else ShapeError saying which)."""
    span = n + 2 * pad - f
    if span < 0:
        raise ShapeError(f"{op}: the {what} {f} is larger than the input's {n} + 2 * pad {pad}")
    if span % stride:
        raise ShapeError(
            f"{op}: the output {what} ({n} + 2 * {pad} - {f}) / {stride} + 1 = {span / stride + 1:g} is not a whole "
            "number: choose stride and pad so that stride divides (H + 2 pad - FH)"
        )
    return span // stride + 1


def image_shape(op: str, sx: Shape) -> Shape:
    if len(sx) != 4:
        raise ShapeError(f"{op} needs x of shape (N, C, H, W), got {fmt_shape(sx)}")
    return sx


def need_attrs(op: str, attrs: dict, *keys: str) -> None:
    missing = [k for k in keys if attrs.get(k) is None]
    if missing:
        raise ShapeError(f"{op} needs {' and '.join(missing)}: {op}(..., " + ", ".join(f"{k}=..." for k in keys) + ")")


# --- conv2d --------------------------------------------------------------------------------------------


class Conv2d(Layer):
    op, symbol, arity = "conv2d", "conv", 3
    elementwise = False
    forward_rule = (
        "x (N, C, H, W) convolved with W (FN, C, FH, FW), plus b (FN,): im2col(x) @ W.reshape(FN, -1).T + b, "
        "as (N, FN, OH, OW); OH = (H + 2 pad - FH) / stride + 1 (`stride` 1, `pad` 0: zeros)"
    )
    backward_rule = (
        "with d = dout as (N*OH*OW, FN): db = sum of d over rows;  dW = (d.T @ im2col(x)) as W's shape;  "
        "dx = col2im(d @ W.reshape(FN, -1))  (the book's Convolution)"
    )
    attr_defaults = {"stride": 1, "pad": 0}
    __slots__ = ("stride", "pad", "x_shape", "col", "W")

    def __init__(self, stride: int = 1, pad: int = 0) -> None:
        self.stride, self.pad = stride, pad

    @classmethod
    def check_attrs(cls, attrs):
        return checked_attrs(cls, attrs, {"stride": 1, "pad": 0})

    @classmethod
    def layout(cls, shapes, attrs):
        sx, sw, sb = shapes
        n, c, h, w = image_shape("conv2d", sx)
        if len(sw) != 4:
            raise ShapeError(f"conv2d needs W of shape (FN, C, FH, FW), got {fmt_shape(sw)}")
        fn, cw, fh, fw = sw
        if cw != c:
            raise ShapeError(
                f"conv2d: x {fmt_shape(sx)} has {c} channels, W {fmt_shape(sw)} filters of {cw} (W is (FN, C, FH, FW))"
            )
        if sb != (fn,):
            raise ShapeError(
                f"conv2d: b must have shape (FN,) = {fmt_shape((fn,))} for W {fmt_shape(sw)}, got {fmt_shape(sb)}"
            )
        s, p = attrs["stride"], attrs["pad"]
        oh, ow = out_size("conv2d", "height", h, fh, s, p), out_size("conv2d", "width", w, fw, s, p)
        out = (n, fn, oh, ow)
        return Layout((sx, sw, sb), out, out, attrs)

    def forward(self, x: Array, W: Array, b: Array) -> Array:
        import numpy as np

        fn, c, fh, fw = W.shape[-4:]
        n, _, h, w = x.shape[-4:]
        s, p = self.stride, self.pad
        self.x_shape = (n, c, h, w)
        self.col = col = im2col(x, fh, fw, s, p)  # (..., N*OH*OW, C*FH*FW)
        self.W = W
        out = col @ _T(W.reshape(*W.shape[:-4], fn, c * fh * fw)) + b[..., None, :]
        oh, ow = (h + 2 * p - fh) // s + 1, (w + 2 * p - fw) // s + 1
        return np.moveaxis(out.reshape(*out.shape[:-2], n, oh, ow, fn), -1, -3)

    def backward(self, dout: Array) -> tuple:
        import numpy as np

        W = self.W
        fn, c, fh, fw = W.shape[-4:]
        d = np.moveaxis(dout, -3, -1)
        n, oh, ow = d.shape[-4:-1]
        d = d.reshape(*d.shape[:-4], n * oh * ow, fn)
        db = d.sum(axis=-2)
        dW = _T(_T(self.col) @ d).reshape(*d.shape[:-2], fn, c, fh, fw)  # the book's col.T @ dout, as BLAS is given it
        dcol = d @ W.reshape(*W.shape[:-4], fn, c * fh * fw)
        return col2im(dcol, self.x_shape, fh, fw, self.stride, self.pad), dW, db

    @staticmethod
    def backward_ops(g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        x, W, _ = ins
        fn, c, fh, fw = g.shape(W)
        sizes = {"filter_h": fh, "filter_w": fw, "stride": attrs["stride"], "pad": attrs["pad"]}
        col = g.op("im2col", x, **sizes)  # (N*OH*OW, C*FH*FW)
        n, _, oh, ow = g.shape(dout)
        d = g.op("reshape", g.op("transpose", dout, axes=(0, 2, 3, 1)), shape=(n * oh * ow, fn))
        db = g.op("sum", d, axis=0)
        dW = g.op("reshape", g.op("matmul", g.op("transpose", d), col), shape=(fn, c, fh, fw))
        dcol = g.op("matmul", d, g.op("reshape", W, shape=(fn, c * fh * fw)))
        return g.op("col2im", dcol, shape=g.shape(x), **sizes), dW, db


def _T(a: Array) -> Array:
    return a.swapaxes(-1, -2)


# --- pooling -------------------------------------------------------------------------------------------


class _Pool(Layer):
    arity = 1
    elementwise = False
    attr_defaults = {"pool_h": 2, "pool_w": 2, "stride": 2, "pad": 0}
    __slots__ = ("pool_h", "pool_w", "stride", "pad", "hw", "arg")

    def __init__(self, pool_h: int = 2, pool_w: int = 2, stride: int = 2, pad: int = 0) -> None:
        self.pool_h, self.pool_w, self.stride, self.pad = pool_h, pool_w, stride, pad

    @classmethod
    def check_attrs(cls, attrs):
        return checked_attrs(cls, attrs, {"pool_h": 1, "pool_w": 1, "stride": 1, "pad": 0})

    @classmethod
    def layout(cls, shapes, attrs):
        (sx,) = shapes
        n, c, h, w = image_shape(cls.op, sx)
        s, p = attrs["stride"], attrs["pad"]
        out = (
            n,
            c,
            out_size(cls.op, "height", h, attrs["pool_h"], s, p),
            out_size(cls.op, "width", w, attrs["pool_w"], s, p),
        )
        return Layout((sx,), out, out, attrs)

    def windows_of(self, x: Array) -> Array:
        self.hw = x.shape[-2:]
        return windows(x, self.pool_h, self.pool_w, self.stride, self.pad)  # (..., N, C, OH, OW, ph, pw)

    def folded(self, dwin: Array) -> tuple[Array]:
        return (fold(dwin, self.hw, self.stride, self.pad),)

    @staticmethod
    def _pooled(g: Ops, x: int, attrs: dict) -> tuple[int, Shape, dict]:
        """x's windows as the book's Pooling lays them out: im2col(x) as (N*OH*OW*C, pool_h*pool_w)."""
        sizes = {
            "filter_h": attrs["pool_h"],
            "filter_w": attrs["pool_w"],
            "stride": attrs["stride"],
            "pad": attrs["pad"],
        }
        col = g.op("im2col", x, **sizes)
        return g.op("reshape", col, shape=(-1, attrs["pool_h"] * attrs["pool_w"])), g.shape(col), sizes

    @staticmethod
    def _column(g: Ops, dout: int) -> int:
        """dout (N, C, OH, OW) as the one column (N*OH*OW*C, 1) of the book's Pooling.backward."""
        return g.op("reshape", g.op("transpose", dout, axes=(0, 2, 3, 1)), shape=(-1, 1))


class MaxPool(_Pool):
    op, symbol = "max_pool", "max pool"
    forward_rule = (
        "the max of each pool_h x pool_w window of x (N, C, H, W), every `stride` (defaults 2, 2, 2; `pad` 0: zeros, "
        "as the book's, so a padded window's max is at least 0)"
    )
    backward_rule = "dx = dout at the window's first maximum (np.argmax's), 0 elsewhere; overlaps summed"
    __slots__ = ()

    def forward(self, x: Array) -> Array:
        win = self.windows_of(x)
        flat = win.reshape(*win.shape[:-2], self.pool_h * self.pool_w)
        self.arg = flat.argmax(axis=-1)[..., None]
        return flat.max(axis=-1)

    def backward(self, dout: Array) -> tuple:
        import numpy as np

        arg = self.arg
        dflat = np.zeros(arg.shape[:-1] + (self.pool_h * self.pool_w,))
        np.put_along_axis(dflat, arg, np.broadcast_to(dout, arg.shape[:-1])[..., None], axis=-1)
        return self.folded(dflat.reshape(*dflat.shape[:-1], self.pool_h, self.pool_w))

    @staticmethod
    def backward_ops(g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        (x,) = ins
        col, col_shape, sizes = _Pool._pooled(g, x, attrs)
        dcol = g.mul(g.op("max_mask", col), _Pool._column(g, dout))
        return (g.op("col2im", g.op("reshape", dcol, shape=col_shape), shape=g.shape(x), **sizes),)


class AvgPool(_Pool):
    op, symbol = "avg_pool", "avg pool"
    forward_rule = (
        "the mean of each pool_h x pool_w window of x (N, C, H, W), every `stride` (defaults 2, 2, 2; `pad` 0: "
        "zeros, counted in the mean)"
    )
    backward_rule = "dx = dout / (pool_h * pool_w) spread over the window; overlaps summed"
    __slots__ = ()

    def forward(self, x: Array) -> Array:
        return self.windows_of(x).mean(axis=(-2, -1))

    def backward(self, dout: Array) -> tuple:
        import numpy as np

        d = dout / (self.pool_h * self.pool_w)
        return self.folded(np.broadcast_to(d[..., None, None], d.shape + (self.pool_h, self.pool_w)))

    @staticmethod
    def backward_ops(g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        (x,) = ins
        ph, pw = attrs["pool_h"], attrs["pool_w"]
        _, col_shape, sizes = _Pool._pooled(g, x, attrs)
        d = g.div(_Pool._column(g, dout), g.const(float(ph * pw)))
        m = col_shape[0] * col_shape[1] // (ph * pw)
        dcol = g.op("reshape", g.op("broadcast_to", d, shape=(m, ph * pw)), shape=col_shape)
        return (g.op("col2im", dcol, shape=g.shape(x), **sizes),)
