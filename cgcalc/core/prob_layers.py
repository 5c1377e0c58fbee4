"""softmax, log_softmax and one_hot: the pieces softmax_with_loss's backward is written with as ops (and the
book's chapter 3 softmax). Stable at +-1000: x - max(x) first, log-sum-exp for the log."""

from __future__ import annotations

from typing import Any

from ..errors import GraphError, ShapeError, suggest
from .base import Layer, Layout, Ops, fmt_shape
from .kernels import Number


def _axis_attrs(cls: type[Layer], attrs: dict[str, Any]) -> dict[str, Any]:
    out = dict(cls.attr_defaults)
    for key, v in attrs.items():
        if key != "axis":
            raise GraphError(f"op '{cls.op}' has no attribute '{key}'" + suggest(key, out))
        if not isinstance(v, int) or isinstance(v, bool):
            raise GraphError(f"{cls.op}: axis must be an integer, got {v!r}")
        out["axis"] = v
    return out


def _axis_layout(cls: type[Layer], shapes, attrs) -> Layout:
    (sa,) = shapes
    axis = attrs["axis"]
    if not -len(sa) <= axis < len(sa):
        raise ShapeError(f"{cls.op}: axis {axis} is out of range for shape {fmt_shape(sa)}")
    return Layout((sa,), sa, sa, {"axis": axis % len(sa) - len(sa)})  # from the end: per row, in a batch


def log_softmax(x: Any, axis: int) -> Any:
    """log softmax(x) along `axis`, as softmax_with_loss computes it (so that both give the same bits)."""
    import numpy as np

    x = np.asarray(x)
    z = x - x.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


class Softmax(Layer):
    op, symbol = "softmax", "softmax"
    elementwise = False
    forward_rule = "exp(x) / sum(exp(x)) along `axis` (default -1)"
    backward_rule = "dx = y * dout - y * sum(y * dout, axis)  (y = softmax(x))"
    attr_defaults = {"axis": -1}
    __slots__ = ("axis", "out")

    def __init__(self, axis: int = -1) -> None:
        self.axis = axis

    @classmethod
    def check_attrs(cls, attrs):
        return _axis_attrs(cls, attrs)

    @classmethod
    def layout(cls, shapes, attrs):
        return _axis_layout(cls, shapes, attrs)

    def forward(self, x: Number) -> Number:
        import numpy as np

        self.out = y = np.exp(log_softmax(x, self.axis))
        return y

    def backward(self, dout: Number) -> tuple[Number]:
        y = self.out
        dx = y * dout  # DeZero's Softmax.backward
        return (dx - y * dx.sum(axis=self.axis, keepdims=True),)

    @staticmethod
    def backward_ops(g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        dx = g.mul(out, dout)
        return (g.sub(dx, g.mul(out, g.op("sum", dx, axis=attrs["axis"], keepdims=True))),)


class LogSoftmax(Layer):
    op, symbol = "log_softmax", "log softmax"
    elementwise = False
    forward_rule = "x - log(sum(exp(x))) along `axis` (default -1)"
    backward_rule = "dx = dout - softmax(x) * sum(dout, axis)"
    attr_defaults = {"axis": -1}
    __slots__ = ("axis", "out")

    def __init__(self, axis: int = -1) -> None:
        self.axis = axis

    @classmethod
    def check_attrs(cls, attrs):
        return _axis_attrs(cls, attrs)

    @classmethod
    def layout(cls, shapes, attrs):
        return _axis_layout(cls, shapes, attrs)

    def forward(self, x: Number) -> Number:
        self.out = y = log_softmax(x, self.axis)
        return y

    def backward(self, dout: Number) -> tuple[Number]:
        import numpy as np

        return (dout - np.exp(self.out) * dout.sum(axis=self.axis, keepdims=True),)

    @staticmethod
    def backward_ops(g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        (x,) = ins
        axis = attrs["axis"]
        y = g.op("softmax", x, axis=axis)
        return (g.sub(dout, g.mul(y, g.op("sum", dout, axis=axis, keepdims=True))),)


class OneHot(Layer):
    op, symbol = "one_hot", "one-hot"
    elementwise = False
    forward_rule = "class indices t as one-hot rows of `classes` columns: shape t's + (classes,)"
    backward_rule = "none (t holds labels)"
    attr_defaults = {"classes": None}
    __slots__ = ("classes",)

    def __init__(self, classes: int = 1) -> None:
        self.classes = classes

    @classmethod
    def check_attrs(cls, attrs):
        for key in attrs:
            if key != "classes":
                raise GraphError(f"op '{cls.op}' has no attribute '{key}'" + suggest(key, cls.attr_defaults))
        c = attrs.get("classes")
        if not isinstance(c, int) or isinstance(c, bool) or c < 1:
            raise GraphError(f"one_hot needs classes, a whole number >= 1, got {c!r}")
        return {"classes": c}

    @classmethod
    def layout(cls, shapes, attrs):
        (st,) = shapes
        if attrs["classes"] is None:  # a node without attributes gets the defaults unchecked (see shape_layers)
            raise ShapeError("one_hot needs classes, a whole number >= 1: one_hot(t, classes=...)")
        out = st + (attrs["classes"],)
        return Layout((st,), out, out, attrs)

    def forward(self, t: Number) -> Number:
        import numpy as np

        t = np.asarray(t)
        bad = (t != np.floor(t)) | (t < 0) | (t >= self.classes)
        if bad.any():
            raise GraphError(f"one_hot: class index {t[bad].flat[0]!r} is not an integer in 0..{self.classes - 1}")
        return (np.arange(self.classes) == t[..., None]).astype(np.float64)

    def backward(self, dout: Number) -> tuple[None]:
        return (None,)

    @staticmethod
    def backward_ops(g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        return (None,)
