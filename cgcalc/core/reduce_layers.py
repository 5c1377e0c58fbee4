"""The reductions beyond sum and mean: max, min, logsumexp (over `axis`, with `keepdims`, as nn_layers' _Reduce:
axes counted from the end, so that one layer serves a batch with a row axis in front), and argmax.

max and min split the gradient evenly among tied extremes (torch's and jax's rule: the result is symmetric in
them); argmax's output is an index, and takes no gradient.
"""

from __future__ import annotations

from typing import Any

from ..errors import GraphError, ShapeError, suggest
from .base import Layer, Layout, Ops, Shape, fmt_shape
from .kernels import Number
from .nn_layers import _axes, _is_int, _Reduce

Array = Any  # a numpy array


def _kept(shape: Shape, axes: tuple[int, ...]) -> Shape:
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


class _NonEmpty(_Reduce):
    """A reduction that has no value over no elements (numpy's max raises there): refused before running."""

    __slots__ = ()

    @classmethod
    def layout(cls, shapes, attrs):
        lay = super().layout(shapes, attrs)
        (shape,) = shapes
        if any(shape[a] == 0 for a in lay.attrs["axes"]):
            raise ShapeError(f"{cls.op} over an empty axis of shape {fmt_shape(shape)}: it has no value there")
        return lay


class _Extreme(_NonEmpty):
    """max and min over `axis`: ties share the gradient evenly."""

    __slots__ = ("x", "out")

    def forward(self, x: Number) -> Number:
        self.shape = getattr(x, "shape", ())
        if not self.axes:
            return x
        self.x = x
        self.out = out = self.reduce(x)
        return out

    def backward(self, dout: Number) -> tuple:
        if not self.axes:
            return (dout,)
        import numpy as np

        d = dout if self.keepdims or type(dout) is float else np.expand_dims(dout, self.axes)
        mask = self._tied()  # every tied extreme (none where the slice holds a NaN: its gradient is NaN)
        return (d * mask / mask.sum(axis=self.axes, keepdims=True),)

    def _tied(self) -> Array:
        import numpy as np

        return self.x == (self.out if self.keepdims else np.expand_dims(self.out, self.axes))

    def sides(self) -> tuple:
        return (self._tied(),) if self.axes else ()

    @classmethod
    def backward_ops(cls, g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        (x,) = ins
        shape = g.shape(x)
        axes = _axes(cls.op, shape, attrs["axis"])
        if not axes:
            return (dout,)
        kept = _kept(shape, axes)
        m = g.op("reshape", out, shape=kept)
        # x <= max everywhere, so 1 - step(max - x) is 1 exactly at the maxima (min: 1 - step(x - min))
        gap = g.sub(m, x) if cls.op == "max" else g.sub(x, m)
        mask = g.sub(g.const(1.0), g.op("step", gap))
        count = g.op("sum", mask, axis=list(axes), keepdims=True)
        return (g.div(g.mul(g.op("reshape", dout, shape=kept), mask), count),)


class MaxLayer(_Extreme):
    op, symbol = "max", "max"
    forward_rule = "largest element of x over `axis` (default: all), `keepdims` (default false)"
    backward_rule = "dx = dout at the maximum, 0 elsewhere; tied maxima share it evenly (dout / their count each)"
    __slots__ = ()

    def reduce(self, x: Array) -> Array:
        return x.max(axis=self.axes, keepdims=self.keepdims)


class MinLayer(_Extreme):
    op, symbol = "min", "min"
    forward_rule = "smallest element of x over `axis` (default: all), `keepdims` (default false)"
    backward_rule = "dx = dout at the minimum, 0 elsewhere; tied minima share it evenly (dout / their count each)"
    __slots__ = ()

    def reduce(self, x: Array) -> Array:
        return x.min(axis=self.axes, keepdims=self.keepdims)


class LogSumExp(_NonEmpty):
    op, symbol = "logsumexp", "logΣexp"
    forward_rule = "log(sum(exp(x))) over `axis` (default: all), `keepdims`; as m + log(sum(exp(x - m))), m = max"
    backward_rule = "dx = dout * exp(x - out)  (softmax of x over the axes)"
    __slots__ = ("x", "kept")

    def forward(self, x: Number) -> Number:
        self.shape = getattr(x, "shape", ())
        if not self.axes:  # of one number: the number
            return x
        import numpy as np

        m = x.max(axis=self.axes, keepdims=True)
        m = np.where(np.isfinite(m), m, 0.0)  # all -inf (or an inf): no shift, and -inf (inf) comes out
        self.x = x
        self.kept = kept = np.log(np.exp(x - m).sum(axis=self.axes, keepdims=True)) + m
        return kept if self.keepdims else np.squeeze(kept, axis=self.axes)

    def backward(self, dout: Number) -> tuple:
        if not self.axes:
            return (dout,)
        import numpy as np

        d = dout if self.keepdims or type(dout) is float else np.expand_dims(dout, self.axes)
        return (d * np.exp(self.x - self.kept),)

    @classmethod
    def backward_ops(cls, g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        (x,) = ins
        shape = g.shape(x)
        axes = _axes(cls.op, shape, attrs["axis"])
        if not axes:
            return (dout,)
        kept = _kept(shape, axes)
        y = g.op("exp", g.sub(x, g.op("reshape", out, shape=kept)))
        return (g.mul(g.op("reshape", dout, shape=kept), y),)


class ArgMax(Layer):
    op, symbol = "argmax", "argmax"
    elementwise = False
    takes_grad = False
    forward_rule = "index of the largest element along `axis` (default: of x flattened); the first of ties"
    backward_rule = "none: its output is an index and takes no gradient (as a `grad: false` input); x gets 0"
    attr_defaults = {"axis": None}
    __slots__ = ("axis", "rank", "out")

    def __init__(self, axis: int | None = None, rank: int = 0) -> None:
        self.axis, self.rank = axis, rank  # axis from the end (None: all the `rank` axes), as a layout gives it

    @classmethod
    def check_attrs(cls, attrs):
        for key in attrs:
            if key != "axis":
                raise GraphError(f"op '{cls.op}' has no attribute '{key}'" + suggest(key, cls.attr_defaults))
        axis = attrs.get("axis")
        if axis is not None and not _is_int(axis):
            raise GraphError(f"argmax: axis must be an integer, got {axis!r}")
        return {"axis": axis}

    @classmethod
    def layout(cls, shapes, attrs):
        (sa,) = shapes
        axis = attrs["axis"]
        if axis is None:
            if 0 in sa:
                raise ShapeError(f"argmax of an empty array of shape {fmt_shape(sa)}")
            return Layout((sa,), (), (), {"axis": None, "rank": len(sa)})
        if not -len(sa) <= axis < len(sa):
            raise ShapeError(f"argmax: axis {axis} is out of range for shape {fmt_shape(sa)}")
        a = axis % len(sa)
        if sa[a] == 0:
            raise ShapeError(f"argmax over an empty axis of shape {fmt_shape(sa)}")
        out = sa[:a] + sa[a + 1 :]
        return Layout((sa,), out, out, {"axis": a - len(sa), "rank": len(sa)})

    def forward(self, x: Number) -> Number:
        self.out = out = self.index(x)
        return out

    def index(self, x: Number) -> Number:
        if type(x) is float:
            return 0.0
        import numpy as np

        if self.axis is None:  # over the row's own axes, flattened (a batch's row axis kept)
            lead = x.shape[: x.ndim - self.rank]
            return np.argmax(x.reshape(lead + (-1,)), axis=-1).astype(np.float64)
        return np.argmax(x, axis=self.axis).astype(np.float64)

    def backward(self, dout: Number) -> tuple:
        return (None,)

    def sides(self) -> tuple:
        return (self.out,)  # another index chosen: a jump

    @staticmethod
    def backward_ops(g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        return (None,)
