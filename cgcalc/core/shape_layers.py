"""The ops that move numbers around without computing anything new: reshape, transpose, sum_to, broadcast_to,
identity — and step, relu's mask, whose own derivative is 0. Derivative graphs are made of them (each op's
backward written as ops: a broadcast input's gradient is a `sum_to`, matmul's dx is `dout @ transpose(W)`).

Shapes in attributes are per row, as every layout's: in a batch the runtime puts the row axis in front, and
each layer keeps the leading axes it did not ask for (`lead`) as they are.
"""

from __future__ import annotations

from typing import Any

from ..errors import GraphError, ShapeError, suggest
from .base import Layer, Layout, Ops, Shape, broadcast_shapes, fmt_shape
from .kernels import Number, zeros_like


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _shape_attr(op: str, v: Any, minus_one: bool = False) -> Shape:
    ok = isinstance(v, (list, tuple)) and len(v) <= 32 and all(_is_int(n) and (n >= 0 or n == -1) for n in v)
    if not ok or (not minus_one and -1 in v) or list(v).count(-1) > 1:
        extra = " (one -1 allowed)" if minus_one else ""
        raise GraphError(f"{op}: shape must be a list of whole numbers >= 0{extra}, got {v!r}")
    return tuple(int(n) for n in v)


def _target(op: str, attrs: dict[str, Any]) -> Shape:
    """The `shape` a node must give. The compiler hands a node written without any attribute the op's defaults
    unchecked, and the default is None: say what is missing (located at the node) rather than fail on None."""
    if attrs["shape"] is None:
        raise ShapeError(f"{op} needs its target shape: {op}(x, shape=[...])")
    return attrs["shape"]


def _only(op: str, attrs: dict[str, Any], allowed: dict[str, Any]) -> None:
    for key in attrs:
        if key not in allowed:
            raise GraphError(f"op '{op}' has no attribute '{key}'" + suggest(key, allowed))


def _size(shape: Shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _lead(x: Any, rank: int) -> tuple[int, ...]:
    """The axes in front of the `rank` axes a layer asked for (a batch's row axis), or ()."""
    shape = getattr(x, "shape", ())
    return tuple(shape[: len(shape) - rank])


class Reshape(Layer):
    op, symbol = "reshape", "reshape"
    elementwise = False
    forward_rule, backward_rule = (
        "x with the elements in the same order, as `shape` (one -1 allowed)",
        ("dx = dout reshaped back to x's shape"),
    )
    attr_defaults = {"shape": None}
    __slots__ = ("shape", "rank", "x_shape")

    def __init__(self, shape: Shape = (), rank: int = 0) -> None:
        self.shape, self.rank = shape, rank

    @classmethod
    def check_attrs(cls, attrs):
        _only(cls.op, attrs, cls.attr_defaults)
        if attrs.get("shape") is None:
            raise GraphError("reshape needs its target shape: reshape(x, shape=[...])")
        return {"shape": _shape_attr(cls.op, attrs["shape"], minus_one=True)}

    @classmethod
    def layout(cls, shapes, attrs):
        (sa,) = shapes
        shape = _target(cls.op, attrs)
        if -1 in shape:
            known = _size(tuple(n for n in shape if n != -1))
            if known == 0 or _size(sa) % known:
                raise ShapeError(f"reshape: cannot reshape {fmt_shape(sa)} to {fmt_shape(shape)}")
            shape = tuple(_size(sa) // known if n == -1 else n for n in shape)
        if _size(shape) != _size(sa):
            raise ShapeError(f"reshape: {fmt_shape(sa)} has {_size(sa)} elements, {fmt_shape(shape)} {_size(shape)}")
        return Layout((sa,), shape, shape, {"shape": shape, "rank": len(sa)})

    def forward(self, x: Number) -> Number:
        import numpy as np

        self.x_shape = np.shape(x)
        return np.reshape(x, _lead(x, self.rank) + self.shape)

    def backward(self, dout: Number) -> tuple[Number]:
        import numpy as np

        return (np.reshape(dout, self.x_shape),)

    @staticmethod
    def backward_ops(g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        (x,) = ins
        return (g.op("reshape", dout, shape=g.shape(x)),)


class Transpose(Layer):
    op, symbol = "transpose", "ᵀ"
    elementwise = False
    forward_rule = "x with its axes permuted: `axes` (default: reversed; x.T in expressions)"
    backward_rule = "dx = dout transposed back (the inverse permutation)"
    attr_defaults = {"axes": None}
    __slots__ = ("axes",)

    def __init__(self, axes: tuple[int, ...] = ()) -> None:
        self.axes = axes  # per row: a batch's row axis stays in front

    @classmethod
    def check_attrs(cls, attrs):
        _only(cls.op, attrs, cls.attr_defaults)
        axes = attrs.get("axes")
        if axes is not None and not (isinstance(axes, (list, tuple)) and all(map(_is_int, axes))):
            raise GraphError(f"transpose: axes must be a list of integers, got {axes!r}")
        return {"axes": None if axes is None else tuple(axes)}

    @classmethod
    def layout(cls, shapes, attrs):
        (sa,) = shapes
        axes = attrs["axes"]
        axes = tuple(reversed(range(len(sa)))) if axes is None else tuple(a % len(sa) if sa else a for a in axes)
        if sorted(axes) != list(range(len(sa))):
            raise ShapeError(f"transpose: axes {list(attrs['axes'])} are not a permutation of {fmt_shape(sa)}'s axes")
        out = tuple(sa[a] for a in axes)
        return Layout((sa,), out, out, {"axes": axes})

    def forward(self, x: Number) -> Number:
        import numpy as np

        lead = len(_lead(x, len(self.axes)))
        return np.transpose(x, tuple(range(lead)) + tuple(lead + a for a in self.axes))

    def backward(self, dout: Number) -> tuple[Number]:
        import numpy as np

        inverse = tuple(np.argsort(self.axes))
        lead = len(_lead(dout, len(self.axes)))
        return (np.transpose(dout, tuple(range(lead)) + tuple(lead + int(a) for a in inverse)),)

    @staticmethod
    def backward_ops(g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        (x,) = ins
        axes = attrs["axes"]
        rank = len(g.shape(x))
        axes = tuple(reversed(range(rank))) if axes is None else tuple(a % rank for a in axes)
        inverse = [axes.index(i) for i in range(rank)]
        return (g.op("transpose", dout, axes=inverse),)


class SumTo(Layer):
    op, symbol = "sum_to", "sum_to"
    elementwise = False
    forward_rule = "x summed down to `shape`: over the axes broadcasting would add or stretch (DeZero's sum_to)"
    backward_rule = "dx = dout broadcast back to x's shape"
    attr_defaults = {"shape": None}
    __slots__ = ("shape", "rank", "x_shape")

    def __init__(self, shape: Shape = (), rank: int = 0) -> None:
        self.shape, self.rank = shape, rank

    @classmethod
    def check_attrs(cls, attrs):
        _only(cls.op, attrs, cls.attr_defaults)
        if attrs.get("shape") is None:
            raise GraphError("sum_to needs its target shape: sum_to(x, shape=[...])")
        return {"shape": _shape_attr(cls.op, attrs["shape"])}

    @classmethod
    def layout(cls, shapes, attrs):
        (sa,) = shapes
        shape = _target(cls.op, attrs)
        try:
            fits = len(shape) <= len(sa) and broadcast_shapes(sa, shape) == sa
        except ShapeError:
            fits = False
        if not fits:
            raise ShapeError(f"sum_to: {fmt_shape(sa)} cannot be summed to {fmt_shape(shape)}")
        return Layout((sa,), shape, shape, {"shape": shape, "rank": len(sa)})

    def forward(self, x: Number) -> Number:
        self.x_shape = shape = getattr(x, "shape", ())
        if shape[len(shape) - self.rank :] == self.shape:
            return x
        lead = len(shape) - self.rank  # a batch's row axis, kept
        extra = self.rank - len(self.shape)  # x's axes in front of `shape`'s
        axes = tuple(range(lead, lead + extra)) + tuple(
            lead + extra + i for i, n in enumerate(self.shape) if n == 1 and shape[lead + extra + i] != 1
        )
        return x.sum(axis=axes, keepdims=True).reshape(shape[:lead] + self.shape)

    def backward(self, dout: Number) -> tuple[Number]:
        import numpy as np

        shape = self.x_shape
        lead = shape[: len(shape) - self.rank]
        d = np.reshape(dout, lead + (1,) * (self.rank - len(self.shape)) + self.shape)
        return (np.broadcast_to(d, shape),)

    @staticmethod
    def backward_ops(g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        (x,) = ins
        return (g.op("broadcast_to", dout, shape=g.shape(x)),)


class BroadcastTo(Layer):
    op, symbol = "broadcast_to", "broadcast"
    elementwise = False
    forward_rule = "x repeated along new leading axes and axes of length 1, to `shape` (numpy's broadcast_to)"
    backward_rule = "dx = sum_to(dout, x's shape)"
    attr_defaults = {"shape": None}
    __slots__ = ("shape",)

    def __init__(self, shape: Shape = ()) -> None:
        self.shape = shape

    @classmethod
    def check_attrs(cls, attrs):
        _only(cls.op, attrs, cls.attr_defaults)
        if attrs.get("shape") is None:
            raise GraphError("broadcast_to needs its target shape: broadcast_to(x, shape=[...])")
        return {"shape": _shape_attr(cls.op, attrs["shape"])}

    @classmethod
    def layout(cls, shapes, attrs):
        (sa,) = shapes
        shape = _target(cls.op, attrs)
        try:
            fits = len(sa) <= len(shape) and broadcast_shapes(sa, shape) == shape
        except ShapeError:
            fits = False
        if not fits:
            raise ShapeError(f"broadcast_to: {fmt_shape(sa)} cannot be broadcast to {fmt_shape(shape)}")
        view = (1,) * (len(shape) - len(sa)) + sa  # at the target's rank: in a batch, row against row
        return Layout((view,), shape, shape, {"shape": shape})

    def forward(self, x: Number) -> Number:
        import numpy as np

        return np.broadcast_to(x, _lead(x, len(self.shape)) + self.shape)

    def backward(self, dout: Number) -> tuple[Number]:
        return (dout,)  # summed back to x's shape by the runtime, as every broadcast is

    @staticmethod
    def backward_ops(g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        (x,) = ins
        return (g.op("sum_to", dout, shape=g.shape(x)),)


class Identity(Layer):
    op, symbol = "identity", "="
    forward_rule, backward_rule = "x", "dx = dout"
    __slots__ = ()

    def forward(self, x: Number) -> Number:
        return x

    def backward(self, dout: Number) -> tuple[Number]:
        return (dout,)

    @staticmethod
    def backward_ops(g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        return (dout,)


class Step(Layer):
    op, symbol = "step", "step"
    forward_rule = "1 where x > 0, else 0 (relu's mask: relu(x) = x * step(x))"
    backward_rule = "dx = 0 (flat on both sides; no derivative at x = 0)"
    __slots__ = ("x",)

    def forward(self, x: Number) -> Number:
        self.x = x
        if type(x) is float:
            return 0.0 if x <= 0 else 1.0  # NaN: 1, as relu's mask passes a NaN's gradient on
        import numpy as np

        return np.where(x <= 0, 0.0, 1.0)

    def backward(self, dout: Number) -> tuple[Number]:
        return (zeros_like(self.x),)

    @staticmethod
    def backward_ops(g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        return (None,)
