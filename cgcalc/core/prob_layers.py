"""softmax, log_softmax and one_hot: the pieces softmax_with_loss's backward is written with as ops (and the
book's chapter 3 softmax), stable at +-1000: x - max(x) first, log-sum-exp for the log. And chapter 4's
functions: cross_entropy_error and mean_squared_error as the book writes them, and accuracy."""

from __future__ import annotations

from typing import Any

from ..errors import GraphError, ShapeError, suggest
from .base import Layer, Layout, Ops, Shape, broadcast_shapes, fmt_shape
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


class AxisLayer(Layer):
    """An op of one input along one `axis` (default -1, the last), of the input's shape: softmax, log_softmax,
    max_mask."""

    elementwise = False
    attr_defaults = {"axis": -1}
    __slots__ = ("axis",)

    def __init__(self, axis: int = -1) -> None:
        self.axis = axis

    @classmethod
    def check_attrs(cls, attrs):
        return _axis_attrs(cls, attrs)

    @classmethod
    def layout(cls, shapes, attrs):
        return _axis_layout(cls, shapes, attrs)


def softmax(x: Any, axis: int) -> Any:
    """The book's softmax (chapter 3), along `axis`: exp(x - max) / sum(exp(x - max)), as softmax_with_loss
    computes it."""
    import numpy as np

    x = np.asarray(x)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(x: Any, axis: int) -> Any:
    """log softmax(x) along `axis`, as softmax_with_loss computes it (so that both give the same bits)."""
    import numpy as np

    x = np.asarray(x)
    z = x - x.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


class Softmax(AxisLayer):
    op, symbol = "softmax", "softmax"
    forward_rule = "exp(x) / sum(exp(x)) along `axis` (default -1), as the book: x - max(x) first"
    backward_rule = "dx = y * dout - y * sum(y * dout, axis)  (y = softmax(x))"
    __slots__ = ("out",)

    def forward(self, x: Number) -> Number:
        self.out = y = softmax(x, self.axis)
        return y

    def backward(self, dout: Number) -> tuple[Number]:
        y = self.out
        dx = y * dout  # DeZero's Softmax.backward
        return (dx - y * dx.sum(axis=self.axis, keepdims=True),)

    @staticmethod
    def backward_ops(g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        dx = g.mul(out, dout)
        return (g.sub(dx, g.mul(out, g.op("sum", dx, axis=attrs["axis"], keepdims=True))),)


class LogSoftmax(AxisLayer):
    op, symbol = "log_softmax", "log softmax"
    forward_rule = "x - log(sum(exp(x))) along `axis` (default -1)"
    backward_rule = "dx = dout - softmax(x) * sum(dout, axis)"
    __slots__ = ("out",)

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
        return one_hot("one_hot", t, self.classes)

    def backward(self, dout: Number) -> tuple[None]:
        return (None,)

    @staticmethod
    def backward_ops(g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        return (None,)


def one_hot(op: str, t: Any, classes: int) -> Any:
    """Class indices as one-hot rows (a new last axis of `classes`); GraphError for an index that is not one."""
    import numpy as np

    t = np.asarray(t)
    bad = (t != np.floor(t)) | (t < 0) | (t >= classes)
    if bad.any():
        raise GraphError(f"{op}: class index {float(t[bad].flat[0])!r} is not an integer in 0..{classes - 1}")
    return (np.arange(classes) == t[..., None]).astype(np.float64)


def _labels_layout(op: str, shapes: list[Shape]) -> Layout:
    """y (C,) or (N, C) against t one-hot (y's shape) or class indices (y's without its last axis): a scalar."""
    sy, st = shapes
    if len(sy) not in (1, 2):
        raise ShapeError(f"{op} needs y of shape (C,) or (N, C), got {fmt_shape(sy)}")
    if st != sy and st != sy[:-1]:
        raise ShapeError(
            f"{op}: t must have y's shape {fmt_shape(sy)} (one-hot) "
            f"or {fmt_shape(sy[:-1])} (class indices), got {fmt_shape(st)}"
        )
    if 0 in sy:
        raise ShapeError(f"{op} needs at least one class and one sample, got y of shape {fmt_shape(sy)}")
    return Layout((sy, st), (), (), {"indices": st != sy, "samples": len(sy) == 2})


DELTA = 1e-7  # the book's `delta`: log(0) would be -inf


class CrossEntropyError(Layer):
    op, symbol, arity = "cross_entropy_error", "cross\nentropy", 2
    elementwise = False
    forward_rule = (
        "the book's: -sum(t * log(y + 1e-7)) / N; y (C,) or (N, C) (N = 1 for one sample); "
        "t one-hot, or class indices: -sum(log(y[i, t_i] + 1e-7)) / N"
    )
    backward_rule = "dy = -t / (y + 1e-7) / N;  dt = -log(y + 1e-7) / N  (none for class indices)"
    __slots__ = ("indices", "samples", "y", "t", "n")

    def __init__(self, indices: bool = False, samples: bool = False) -> None:
        self.indices, self.samples = indices, samples

    @classmethod
    def layout(cls, shapes, attrs):
        return _labels_layout(cls.op, shapes)

    def forward(self, y: Any, t: Any) -> float:
        import numpy as np

        y, t = np.asarray(y), np.asarray(t)
        self.n = y.shape[-2] if self.samples else 1
        logs = np.log(y + DELTA)
        if self.indices:
            t = one_hot(self.op, t, y.shape[-1])
            # the book's y[np.arange(batch_size), t]: only the true class's log counts (nothing else is summed)
            loss = -np.take_along_axis(logs, np.argmax(t, axis=-1)[..., None], axis=-1)[..., 0]
        else:
            loss = -(t * logs).sum(axis=-1)
        self.y, self.t = y, t
        if self.samples:
            loss = loss.sum(axis=-1) / self.n
        return 0.0 + loss

    def backward(self, dout: Any) -> tuple:
        import numpy as np

        d = np.reshape(dout, np.shape(dout) + (1,) * (self.y.ndim - np.ndim(dout)))
        dy = -(d * self.t) / (self.y + DELTA) / self.n
        dt = None if self.indices else -(d * np.log(self.y + DELTA)) / self.n
        return dy, dt

    @staticmethod
    def backward_ops(g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        y, t = ins
        sy = g.shape(y)
        indices = g.shape(t) != sy
        n = g.const(float(sy[-2] if len(sy) == 2 else 1))
        shifted = g.add(y, g.const(DELTA))
        onehot = g.op("one_hot", t, classes=sy[-1]) if indices else t
        dy = g.div(g.div(g.neg(g.mul(dout, onehot)), shifted), n)
        dt = None if indices else g.div(g.neg(g.mul(dout, g.op("log", shifted))), n)
        return dy, dt


class MeanSquaredError(Layer):
    op, symbol, arity = "mean_squared_error", "squared\nerror", 2
    elementwise = False
    forward_rule = "the book's: 0.5 * sum((y - t) ** 2) over every element (no division by N; y, t broadcast)"
    backward_rule = "dy = dout * (y - t);  dt = -(dout * (y - t))"
    __slots__ = ("rank", "diff")

    def __init__(self, rank: int = 0) -> None:
        self.rank = rank  # of the difference per row: its axes, counted from the end, are summed

    @classmethod
    def layout(cls, shapes, attrs):
        out = broadcast_shapes(*shapes)
        views = tuple((1,) * (len(out) - len(s)) + s for s in shapes)  # in a batch, row against row
        return Layout(views, (), (), {"rank": len(out)})

    def forward(self, y: Number, t: Number) -> Number:
        self.diff = d = y - t
        sq = d * d
        if self.rank:
            sq = sq.sum(axis=tuple(range(-self.rank, 0)))
        return 0.5 * sq

    def backward(self, dout: Number) -> tuple:
        d = self.diff
        if type(dout) is not float and self.rank:
            import numpy as np

            dout = np.reshape(dout, np.shape(dout) + (1,) * self.rank)
        dy = dout * d
        return dy, -dy

    @staticmethod
    def backward_ops(g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        y, t = ins
        dy = g.mul(dout, g.sub(y, t))
        return dy, g.neg(dy)


class Accuracy(Layer):
    op, symbol, arity = "accuracy", "accuracy", 2
    elementwise = False
    takes_grad = False
    forward_rule = (
        "the book's: the share of samples whose argmax(y) is the label (argmax of t one-hot, or t's class "
        "index); y (C,) or (N, C): 1 or 0 for one sample"
    )
    backward_rule = "none: its output takes no gradient (as a `grad: false` input); y and t get 0"
    __slots__ = ("indices", "samples", "out")

    def __init__(self, indices: bool = False, samples: bool = False) -> None:
        self.indices, self.samples = indices, samples

    @classmethod
    def layout(cls, shapes, attrs):
        return _labels_layout(cls.op, shapes)

    def forward(self, y: Any, t: Any) -> float:
        import numpy as np

        y, t = np.asarray(y), np.asarray(t)
        label = np.argmax(one_hot(self.op, t, y.shape[-1]) if self.indices else t, axis=-1)
        hit = (np.argmax(y, axis=-1) == label).astype(np.float64)
        if self.samples:
            hit = hit.sum(axis=-1) / y.shape[-2]
        self.out = out = 0.0 + hit
        return out

    def backward(self, dout: Any) -> tuple:
        return None, None

    def sides(self) -> tuple:
        return (self.out,)  # another share of hits: a jump

    @staticmethod
    def backward_ops(g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        return None, None
