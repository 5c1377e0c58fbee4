"""The ops the backward of conv2d, max_pool and avg_pool is written with as ops (their `backward_ops`): im2col,
col2im and max_mask, each a layer with its own numeric backward and backward_ops, so a derivative graph of a
convolution runs and differentiates again."""

from __future__ import annotations

from ..errors import ShapeError
from .base import Layer, Layout, Ops, Shape, fmt_shape
from .conv_layers import Array, checked_attrs, col2im, im2col, image_shape, need_attrs, out_size
from .kernels import Number, zeros_like
from .prob_layers import AxisLayer


class _Cols(Layer):
    """im2col and col2im: a filter_h x filter_w window moved by `stride` over an image padded by `pad`."""

    elementwise = False
    __slots__ = ()

    @classmethod
    def check_attrs(cls, attrs):
        return checked_attrs(cls, attrs, {"filter_h": 1, "filter_w": 1, "stride": 1, "pad": 0})

    @classmethod
    def cols_shape(cls, image: Shape, attrs: dict) -> Shape:
        """The columns' shape for an image (N, C, H, W): one row per output position, one column per (c, fy, fx)."""
        n, c, h, w = image
        fh, fw, s, p = attrs["filter_h"], attrs["filter_w"], attrs["stride"], attrs["pad"]
        return (n * out_size(cls.op, "height", h, fh, s, p) * out_size(cls.op, "width", w, fw, s, p), c * fh * fw)


class Im2col(_Cols):
    op, symbol = "im2col", "im2col"
    forward_rule = (
        "x (N, C, H, W) as the book's im2col: one row per output position, one column per (c, fy, fx) of a "
        "filter_h x filter_w window: (N*OH*OW, C*filter_h*filter_w)"
    )
    backward_rule = "dx = col2im(dout) (each window's gradient added back where it came from)"
    attr_defaults = {"filter_h": None, "filter_w": None, "stride": 1, "pad": 0}
    __slots__ = ("filter_h", "filter_w", "stride", "pad", "shape")

    def __init__(self, filter_h: int = 1, filter_w: int = 1, stride: int = 1, pad: int = 0) -> None:
        self.filter_h, self.filter_w, self.stride, self.pad = filter_h, filter_w, stride, pad

    @classmethod
    def layout(cls, shapes, attrs):
        (sx,) = shapes
        need_attrs("im2col", attrs, "filter_h", "filter_w")
        out = cls.cols_shape(image_shape("im2col", sx), attrs)
        return Layout((sx,), out, out, attrs)

    def forward(self, x: Array) -> Array:
        self.shape = x.shape[-4:]
        return im2col(x, self.filter_h, self.filter_w, self.stride, self.pad)

    def backward(self, dout: Array) -> tuple:
        return (col2im(dout, self.shape, self.filter_h, self.filter_w, self.stride, self.pad),)

    @staticmethod
    def backward_ops(g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        return (g.op("col2im", dout, shape=g.shape(ins[0]), **attrs),)


class Col2im(_Cols):
    op, symbol = "col2im", "col2im"
    forward_rule = (
        "the book's col2im, im2col's adjoint: each row's window of (c, fy, fx) added into an array of `shape` "
        "(N, C, H, W) where im2col took it from (overlaps summed)"
    )
    backward_rule = "dcol = im2col(dout)"
    attr_defaults = {"shape": None, "filter_h": None, "filter_w": None, "stride": 1, "pad": 0}
    __slots__ = ("shape", "filter_h", "filter_w", "stride", "pad")

    def __init__(self, shape: Shape = (), filter_h: int = 1, filter_w: int = 1, stride: int = 1, pad: int = 0) -> None:
        self.shape, self.filter_h, self.filter_w, self.stride, self.pad = shape, filter_h, filter_w, stride, pad

    @classmethod
    def layout(cls, shapes, attrs):
        (sc,) = shapes
        need_attrs("col2im", attrs, "shape", "filter_h", "filter_w")
        want = cls.cols_shape(attrs["shape"], attrs)
        if sc != want:
            raise ShapeError(
                f"col2im: col must be (N*OH*OW, C*filter_h*filter_w) = {fmt_shape(want)} for shape "
                f"{fmt_shape(attrs['shape'])}, got {fmt_shape(sc)}"
            )
        return Layout((sc,), attrs["shape"], attrs["shape"], attrs)

    def forward(self, col: Array) -> Array:
        return col2im(col, self.shape, self.filter_h, self.filter_w, self.stride, self.pad)

    def backward(self, dout: Array) -> tuple:
        return (im2col(dout, self.filter_h, self.filter_w, self.stride, self.pad),)

    @staticmethod
    def backward_ops(g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        return (g.op("im2col", dout, **{k: v for k, v in attrs.items() if k != "shape"}),)


class MaxMask(AxisLayer):
    op, symbol = "max_mask", "max mask"
    forward_rule = "1 at the first maximum along `axis` (default -1; np.argmax's), 0 elsewhere: max_pool's backward"
    backward_rule = "dx = 0 (flat but where the maximum moves)"
    __slots__ = ("x",)

    @classmethod
    def layout(cls, shapes, attrs):
        lay = super().layout(shapes, attrs)
        if shapes[0][lay.attrs["axis"]] == 0:
            raise ShapeError(f"max_mask: axis {attrs['axis']} of {fmt_shape(shapes[0])} is empty: no maximum to mark")
        return lay

    def forward(self, x: Number) -> Number:
        import numpy as np

        self.x = x
        arg = np.expand_dims(np.argmax(x, axis=self.axis), self.axis)
        mask = np.zeros(np.shape(x))
        np.put_along_axis(mask, arg, 1.0, axis=self.axis)
        return mask

    def backward(self, dout: Number) -> tuple:
        return (zeros_like(self.x),)

    @staticmethod
    def backward_ops(g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        return (None,)
