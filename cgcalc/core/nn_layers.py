"""The layers that need arrays: MatMul, Affine, Sum, Mean, SoftmaxWithLoss.

As in the book, each works on the arrays it is given. Their `layout` says how the runtime hands them a node's
inputs: matmul's 1-D operands promoted to matrices (as np.matmul does), a reduction's axes and softmax's sample
axis counted from the end — so that the same layer runs one graph or a batch with a row axis in front.
"""

from __future__ import annotations

from typing import Any

from ..errors import GraphError, ShapeError
from .base import Layer, Layout, Ops, Shape, broadcast_shapes, fmt_shape, sum_to
from .kernels import Number

Array = Any  # a numpy array


def _T(a: Array) -> Array:
    return a.swapaxes(-1, -2)


def _swap(rank: int) -> list[int]:
    return [*range(rank - 2), rank - 1, rank - 2]


def _matmul_ops(g, d, x, W, xv: Shape, wv: Shape):
    """matmul's backward as ops, on the views its layout gave (1-D operands promoted, ranks aligned):
    dx = d @ W.T, dW = x.T @ d, each summed to its operand's view and reshaped to the operand's shape."""
    xm, wm = g.op("reshape", x, shape=xv), g.op("reshape", W, shape=wv)
    dx = g.op("matmul", d, g.op("transpose", wm, axes=_swap(len(wv))))
    dw = g.op("matmul", g.op("transpose", xm, axes=_swap(len(xv))), d)
    return (
        g.op("reshape", g.sum_to(dx, xv), shape=g.shape(x)),
        g.op("reshape", g.sum_to(dw, wv), shape=g.shape(W)),
    )


def matmul_layout(sa: Shape, sb: Shape, op: str = "matmul") -> Layout:
    """a @ b with numpy's rules: a 1-D a is a row (1, n), a 1-D b a column (n, 1), dropped again from the
    product; stacks broadcast, viewed at the same rank."""
    if not sa or not sb:
        raise ShapeError(f"{op} needs arrays of at least 1 dimension, got shapes {fmt_shape(sa)} and {fmt_shape(sb)}")
    a2 = (1,) + sa if len(sa) == 1 else sa
    b2 = sb + (1,) if len(sb) == 1 else sb
    if a2[-1] != b2[-2]:
        raise ShapeError(
            f"{op}: shapes {fmt_shape(sa)} and {fmt_shape(sb)} do not fit ({a2[-1]} columns against {b2[-2]} rows)"
        )
    stack = broadcast_shapes(a2[:-2], b2[:-2])
    a2 = (1,) * (len(stack) + 2 - len(a2)) + a2
    b2 = (1,) * (len(stack) + 2 - len(b2)) + b2
    out2 = stack + (a2[-2], b2[-1])
    out = stack + ((a2[-2],) if len(sa) > 1 else ()) + ((b2[-1],) if len(sb) > 1 else ())
    return Layout((a2, b2), out2, out, {})


class MatMul(Layer):
    op, symbol, arity = "matmul", "@", 2
    elementwise = False
    forward_rule, backward_rule = "x @ W", "dx = dout @ W.T;  dW = x.T @ dout"
    __slots__ = ("x", "W")

    @classmethod
    def layout(cls, shapes, attrs):
        return matmul_layout(*shapes)

    def forward(self, x: Array, W: Array) -> Array:
        self.x, self.W = x, W
        return x @ W

    def backward(self, dout: Number) -> tuple:
        return dout @ _T(self.W), _T(self.x) @ dout

    def backward_some(self, dout: Number, needs: tuple[bool, ...]) -> tuple:
        return dout @ _T(self.W) if needs[0] else None, _T(self.x) @ dout if needs[1] else None

    @staticmethod
    def backward_ops(g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        x, W = ins
        sx, sw = g.shape(x), g.shape(W)
        if len(sx) == len(sw) == 1:  # a dot product
            return g.mul(dout, W), g.mul(dout, x)
        if len(sx) == len(sw) == 2:  # the book's case
            return g.op("matmul", dout, g.op("transpose", W)), g.op("matmul", g.op("transpose", x), dout)
        lay = matmul_layout(sx, sw)
        return _matmul_ops(g, g.op("reshape", dout, shape=lay.out_view), x, W, *lay.views)


class Affine(Layer):
    op, symbol, arity = "affine", "affine", 3
    elementwise = False
    forward_rule = "x @ W + b"
    backward_rule = "dx = dout @ W.T;  dW = x.T @ dout;  db = dout  (dout summed to x @ W's shape first)"
    __slots__ = ("x", "W", "xw_shape")

    @classmethod
    def layout(cls, shapes, attrs):
        sx, sw, sb = shapes
        mm = matmul_layout(sx, sw, "affine")
        b = _promoted(sb, len(sx) == 1, len(sw) == 1)
        out_view = broadcast_shapes(mm.out_view, b)
        # all three at the rank of the result (b may enlarge x @ W): in a batch, row against row
        x2, w2, b = ((1,) * (len(out_view) - len(v)) + v for v in (*mm.views, b))
        return Layout((x2, w2, b), out_view, broadcast_shapes(mm.out, sb), {})

    def forward(self, x: Array, W: Array, b: Number) -> Array:
        self.x, self.W = x, W
        xw = x @ W
        self.xw_shape = xw.shape
        return xw + b

    def backward(self, dout: Number) -> tuple:
        dxw = sum_to(dout, self.xw_shape)  # b may have enlarged x @ W
        return dxw @ _T(self.W), _T(self.x) @ dxw, dout

    def backward_some(self, dout: Number, needs: tuple[bool, ...]) -> tuple:
        dxw = sum_to(dout, self.xw_shape)
        return dxw @ _T(self.W) if needs[0] else None, _T(self.x) @ dxw if needs[1] else None, dout

    @staticmethod
    def backward_ops(g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        x, W, b = ins
        lay = Affine.layout([g.shape(x), g.shape(W), g.shape(b)], {})
        xv, wv, bv = lay.views
        d = g.op("reshape", dout, shape=lay.out_view)
        dxw = g.sum_to(d, broadcast_shapes(xv[:-2], wv[:-2]) + (xv[-2], wv[-1]))  # b may have enlarged x @ W
        dx, dw = _matmul_ops(g, dxw, x, W, xv, wv)
        return dx, dw, g.op("reshape", g.sum_to(d, bv), shape=g.shape(b))


def _promoted(b: Shape, x_1d: bool, w_1d: bool) -> Shape:
    """b's shape against x @ W with matmul's dropped axes put back as 1s (the last: W's column, when W is 1-D;
    the one before: x's row, when x is 1-D), so that b broadcasts as it does against the product."""
    dims = list(b)
    out: list[int] = []
    for dropped in (w_1d, x_1d):
        if not dims:
            break
        out.insert(0, 1 if dropped else dims.pop())
    return tuple(dims) + tuple(out)


class _Reduce(Layer):
    arity = 1
    elementwise = False
    attr_defaults = {"axis": None, "keepdims": False}
    __slots__ = ("axes", "keepdims", "shape")

    def __init__(self, axes: tuple[int, ...] = (), keepdims: bool = False) -> None:
        self.axes, self.keepdims = axes, keepdims  # axes counted from the end (-1 the last): per row, in a batch

    @classmethod
    def check_attrs(cls, attrs):
        out = dict(cls.attr_defaults)
        for key, v in attrs.items():
            if key == "axis":
                ok = v is None or _is_int(v) or (isinstance(v, list) and v and all(map(_is_int, v)))
                if not ok:
                    raise GraphError(f"{cls.op}: axis must be an integer or a list of integers, got {v!r}")
                out["axis"] = None if v is None else (int(v) if _is_int(v) else tuple(int(a) for a in v))
            elif key == "keepdims":
                if not isinstance(v, bool):
                    raise GraphError(f"{cls.op}: keepdims must be true or false, got {v!r}")
                out["keepdims"] = v
            else:
                from ..errors import suggest

                raise GraphError(f"op '{cls.op}' has no attribute '{key}'" + suggest(key, out))
        return out

    @classmethod
    def layout(cls, shapes, attrs):
        (shape,) = shapes
        axes = _axes(cls.op, shape, attrs["axis"])
        keep = attrs["keepdims"]
        out = (
            tuple(1 if i in axes else n for i, n in enumerate(shape))
            if keep
            else tuple(n for i, n in enumerate(shape) if i not in axes)
        )
        return Layout((shape,), out, out, {"axes": tuple(a - len(shape) for a in axes), "keepdims": keep})

    def forward(self, x: Number) -> Number:
        self.shape = getattr(x, "shape", ())
        if not self.axes:  # a reduction over no axis (of a scalar) is the identity
            return x
        return self.reduce(x)

    def backward(self, dout: Number) -> tuple:
        if not self.axes:
            return (dout,)
        import numpy as np

        g = dout if self.keepdims else np.expand_dims(dout, self.axes)
        return (np.broadcast_to(self.scale(g), self.shape),)

    @classmethod
    def backward_ops(cls, g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        (x,) = ins
        shape = g.shape(x)
        axes = _axes(cls.op, shape, attrs["axis"])
        if not axes:
            return (dout,)
        d = g.op("reshape", dout, shape=tuple(1 if i in axes else n for i, n in enumerate(shape)))
        if cls.op == "mean":
            d = g.div(d, g.const(float(_count(shape, axes))))
        return (g.op("broadcast_to", d, shape=shape),)


def _axes(op: str, shape: Shape, axis) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(len(shape)))
    axes = (axis,) if isinstance(axis, int) else axis
    norm = []
    for a in axes:
        if not -len(shape) <= a < len(shape):
            raise ShapeError(f"{op}: axis {a} is out of range for shape {fmt_shape(shape)}")
        norm.append(a % len(shape))
    if len(set(norm)) != len(norm):
        raise ShapeError(f"{op}: axis {axis} repeats an axis")
    return tuple(sorted(norm))


def _count(shape: Shape, axes: tuple[int, ...]) -> int:
    n = 1
    for a in axes:
        n *= shape[a]
    return n


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


class SumLayer(_Reduce):
    op, symbol = "sum", "Σ"
    forward_rule = "sum of x over `axis` (default: all), `keepdims` (default false)"
    backward_rule = "dx = dout broadcast back to x's shape"
    __slots__ = ()

    def reduce(self, x: Array) -> Array:
        return x.sum(axis=self.axes, keepdims=self.keepdims)

    def scale(self, g: Array) -> Array:
        return g


class MeanLayer(_Reduce):
    op, symbol = "mean", "mean"
    forward_rule = "mean of x over `axis` (default: all), `keepdims` (default false)"
    backward_rule = "dx = dout / n broadcast back to x's shape (n: elements averaged)"
    __slots__ = ()

    def reduce(self, x: Array) -> Array:
        # the sum over n, as np.mean computes it; but an empty slice is then 0 / 0, a NaN that the run's
        # errstate keeps quiet and the run reports, where np.mean warns "Mean of empty slice" itself
        return x.sum(axis=self.axes, keepdims=self.keepdims) / self.count()

    def count(self) -> int:
        n = 1
        for a in self.axes:
            n *= self.shape[a]
        return n

    def scale(self, g: Array) -> Array:
        return g / self.count()


class SoftmaxWithLoss(Layer):
    op, symbol, arity = "softmax_with_loss", "softmax\nloss", 2
    elementwise = False
    forward_rule = "mean over samples of -sum(t * log softmax(x)); x (C,) or (N, C); t one-hot or class indices"
    backward_rule = "dx = (y * sum(t) - t) / N;  dt = -log y / N  (y = softmax(x); none for class indices)"
    __slots__ = ("indices", "samples", "y", "logy", "t", "n")

    def __init__(self, indices: bool = False, samples: bool = False) -> None:
        self.indices = indices  # t holds class indices rather than one-hot rows
        self.samples = samples  # x is (N, C): the loss is the mean over the N samples (axis -2)

    @classmethod
    def layout(cls, shapes, attrs):
        sx, st = shapes
        if len(sx) not in (1, 2):
            raise ShapeError(f"softmax_with_loss needs x of shape (C,) or (N, C), got {fmt_shape(sx)}")
        if st != sx and st != sx[:-1]:
            raise ShapeError(
                f"softmax_with_loss: t must have x's shape {fmt_shape(sx)} (one-hot) "
                f"or {fmt_shape(sx[:-1])} (class indices), got {fmt_shape(st)}"
            )
        if 0 in sx:  # no class to choose from, or no sample to average over
            raise ShapeError(
                f"softmax_with_loss needs at least one class and one sample, got x of shape {fmt_shape(sx)}"
            )
        return Layout((sx, st), (), (), {"indices": st != sx, "samples": len(sx) == 2})

    def forward(self, x: Array, t: Array) -> float:
        import numpy as np

        x, t = np.asarray(x), np.asarray(t)  # a class index may come as a plain float
        z = x - x.max(axis=-1, keepdims=True)
        e = np.exp(z)
        s = e.sum(axis=-1, keepdims=True)
        self.logy = logy = z - np.log(s)  # log_softmax's bits
        self.y = e / s  # the book's softmax: the softmax op's bits (its backward as ops is written with that op)
        if self.indices:
            classes = x.shape[-1]
            bad = (t != np.floor(t)) | (t < 0) | (t >= classes)
            if bad.any():
                raise GraphError(
                    f"softmax_with_loss: class index {float(t[bad].flat[0])!r} is not an integer in 0..{classes - 1}"
                )
            t = (np.arange(classes) == t[..., None]).astype(np.float64)
        self.t = t
        self.n = x.shape[-2] if self.samples else 1
        loss = self._loss(t * logy)
        if np.isnan(loss).any() if loss.ndim else loss != loss:
            # 0 * log 0 is 0 here (a one-hot row's zeros where x is -inf): t * logy has NaN there. Where logy
            # is finite, 0 * logy is a signed zero, and the sums are those of where's +0.0 but for the sign of
            # a zero, which the + 0.0 at the end drops: the same loss, one compare and one select less.
            loss = self._loss(np.where(t == 0, 0.0, t * logy))
        return 0.0 + loss  # +0.0 for a loss of exactly 0 (-0.0 makes 1/loss = -inf)

    def _loss(self, tlogy: Array) -> Array:
        loss = -tlogy.sum(axis=-1)
        return loss.sum(axis=-1) / self.n if self.samples else loss

    def backward(self, dout: Number) -> tuple:
        return self.backward_some(dout, (True, True))

    def backward_some(self, dout: Number, needs: tuple[bool, ...]) -> tuple:
        if type(dout) is float:  # the seed of a loss (one, most often: 1 * r is r): it broadcasts as it is
            d = dout
        else:
            import numpy as np

            d = np.reshape(dout, np.shape(dout) + (1,) * (self.y.ndim - np.ndim(dout)))
        dx = None
        if needs[0]:
            r = self.y * self.t.sum(axis=-1, keepdims=True) - self.t
            dx = r / self.n if type(d) is float and d == 1.0 else d * r / self.n
        dt = None if self.indices or not needs[1] else d * -self.logy / self.n
        return dx, dt

    @staticmethod
    def backward_ops(g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        x, t = ins
        sx = g.shape(x)
        indices = g.shape(t) != sx
        n = g.const(float(sx[-2] if len(sx) == 2 else 1))
        if indices:
            t = g.op("one_hot", t, classes=sx[-1])
        y = g.op("softmax", x, axis=-1)
        dx = g.div(g.mul(dout, g.sub(g.mul(y, g.op("sum", t, axis=-1, keepdims=True)), t)), n)
        dt = None if indices else g.div(g.mul(dout, g.neg(g.op("log_softmax", x, axis=-1))), n)
        return dx, dt
