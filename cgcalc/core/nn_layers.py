"""The layers that need arrays: MatMul, Affine, Sum, Mean, SoftmaxWithLoss (registered in layers.LAYERS)."""

from __future__ import annotations

from ..errors import GraphError, ShapeError
from .layers import Layer, _align, broadcast_shapes, fmt_shape, sum_to


def matmul_shape(sa, sb, op: str = "matmul"):
    if not sa or not sb:
        raise ShapeError(
            f"{op} needs arrays of at least 1 dimension, got shapes {fmt_shape(sa)} and {fmt_shape(sb)}"
        )
    a2 = (1,) + sa if len(sa) == 1 else sa
    b2 = sb + (1,) if len(sb) == 1 else sb
    if a2[-1] != b2[-2]:
        raise ShapeError(
            f"{op}: shapes {fmt_shape(sa)} and {fmt_shape(sb)} do not fit "
            f"({a2[-1]} columns against {b2[-2]} rows)"
        )
    stack = broadcast_shapes(a2[:-2], b2[:-2])
    return stack + ((a2[-2],) if len(sa) > 1 else ()) + ((b2[-1],) if len(sb) > 1 else ())


class MatMul(Layer):
    elementwise = False
    scalar_dout = False
    op, cls_name, symbol, arity = "matmul", "MatMul", "@", 2
    forward_rule, backward_rule = "a @ b", "da = dout @ b.T;  db = a.T @ dout"
    __slots__ = ("a2", "b2", "sa", "sb", "sy")

    @classmethod
    def infer(cls, shapes, attrs):
        return matmul_shape(*shapes)

    def forward(self, a, b):
        # promote 1-D operands (per row) to matrices, as np.matmul does, so that batch rows stay apart
        lead = self.lead
        self.sa, self.sb = a.shape, b.shape
        a2 = a[..., None, :] if a.ndim - lead == 1 else a
        b2 = b[..., :, None] if b.ndim - lead == 1 else b
        if lead and a2.ndim != b2.ndim:
            # per-row stacks of different rank, e.g. (2, 2, 3) @ (3, 2): pad the shorter one's stack after the
            # row axis, or numpy would broadcast one operand's row axis against the other's stack axis
            a2, b2 = _align((a2, b2), lead)
        self.a2, self.b2 = a2, b2
        y2 = a2 @ b2
        self.sy = y2.shape
        keep_rows = a.ndim - lead > 1
        keep_cols = b.ndim - lead > 1
        return y2.reshape(y2.shape[:-2] + y2.shape[-2:-1] * keep_rows + y2.shape[-1:] * keep_cols)

    def backward(self, dout):
        dy2 = dout.reshape(self.sy)
        da = db = None
        if self.needs[0]:
            da = sum_to(dy2 @ self.b2.swapaxes(-1, -2), self.a2.shape).reshape(self.sa)
        if self.needs[1]:
            db = sum_to(self.a2.swapaxes(-1, -2) @ dy2, self.b2.shape).reshape(self.sb)
        return da, db


class Affine(Layer):
    elementwise = False
    scalar_dout = False
    op, cls_name, symbol, arity = "affine", "Affine", "affine", 3
    forward_rule, backward_rule = "x @ W + b", "dx = dout @ W.T;  dW = x.T @ dout;  db = dout summed to b's shape"
    __slots__ = ("mm", "sb", "tb", "sy", "ty")

    @classmethod
    def infer(cls, shapes, attrs):
        return broadcast_shapes(matmul_shape(shapes[0], shapes[1], "affine"), shapes[2])

    def forward(self, x, W, b):
        self.mm = MatMul(self.k, self.needs[:2], self.lead)
        y = self.mm.forward(x, W)
        self.sy, self.sb = y.shape, getattr(b, "shape", ())
        if self.lead:
            y, b = _align((y, b), self.lead)
        self.ty, self.tb = y.shape, getattr(b, "shape", ())
        return y + b

    def backward(self, dout):
        # b may have broadcast x @ W to a larger shape: the product's share of dout is summed back first
        dmm = sum_to(dout, self.ty).reshape(self.sy) if any(self.needs[:2]) else None
        dx, dW = self.mm.backward(dmm) if dmm is not None else (None, None)
        db = sum_to(dout, self.tb).reshape(self.sb) if self.needs[2] else None
        return dx, dW, db


class _Reduce(Layer):
    elementwise = False
    scalar_dout = False
    arity = 1
    attr_defaults = {"axis": None, "keepdims": False}
    __slots__ = ("axes", "shape")

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
    def axes_of(cls, shape, axis):
        if axis is None:
            return tuple(range(len(shape)))
        axes = (axis,) if isinstance(axis, int) else axis
        norm = []
        for a in axes:
            if not -len(shape) <= a < len(shape):
                raise ShapeError(f"{cls.op}: axis {a} is out of range for shape {fmt_shape(shape)}")
            norm.append(a % len(shape))
        if len(set(norm)) != len(norm):
            raise ShapeError(f"{cls.op}: axis {axis} repeats an axis")
        return tuple(sorted(norm))

    @classmethod
    def infer(cls, shapes, attrs):
        (shape,) = shapes
        axes = cls.axes_of(shape, attrs["axis"])
        if attrs["keepdims"]:
            return tuple(1 if i in axes else n for i, n in enumerate(shape))
        return tuple(n for i, n in enumerate(shape) if i not in axes)

    def _axes(self, x):
        ndim = getattr(x, "ndim", 0) - self.lead
        per_row = self.axes_of((0,) * ndim, self.attrs["axis"])
        return tuple(a + self.lead for a in per_row)

    def forward(self, x):
        self.axes = axes = self._axes(x)
        self.shape = getattr(x, "shape", ())
        if not axes:  # a reduction over no axis (a scalar) is the identity
            return x
        return self.reduce(x, axes)

    def backward(self, dout):
        if not self.axes:
            return (dout,)
        np = self.k.np
        g = dout if self.attrs["keepdims"] else np.expand_dims(dout, self.axes)
        return (np.broadcast_to(self.scale(g), self.shape).copy(),)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


class SumLayer(_Reduce):
    op, cls_name, symbol = "sum", "SumLayer", "Σ"
    forward_rule = "sum of x over `axis` (default: all), `keepdims` (default false)"
    backward_rule = "dx = dout broadcast back to x's shape"

    def reduce(self, x, axes):
        return x.sum(axis=axes, keepdims=self.attrs["keepdims"])

    def scale(self, g):
        return g


class MeanLayer(_Reduce):
    op, cls_name, symbol = "mean", "MeanLayer", "mean"
    forward_rule = "mean of x over `axis` (default: all), `keepdims` (default false)"
    backward_rule = "dx = dout / n broadcast back to x's shape (n: elements averaged)"

    def reduce(self, x, axes):
        return x.mean(axis=axes, keepdims=self.attrs["keepdims"])

    def scale(self, g):
        n = 1
        for a in self.axes:
            n *= self.shape[a]
        return g / n


class SoftmaxWithLoss(Layer):
    elementwise = False
    scalar_dout = False
    op, cls_name, symbol, arity = "softmax_with_loss", "SoftmaxWithLoss", "softmax\nloss", 2
    forward_rule = "mean over samples of -sum(t * log softmax(x)); x (C,) or (N, C); t one-hot or class indices"
    backward_rule = "dx = (softmax(x) * sum(t) - t) / N;  dt = -log softmax(x) / N  (none for class indices)"
    __slots__ = ("p", "logp", "T", "n", "indices")

    @classmethod
    def infer(cls, shapes, attrs):
        sx, st = shapes
        if len(sx) not in (1, 2):
            raise ShapeError(f"softmax_with_loss needs x of shape (C,) or (N, C), got {fmt_shape(sx)}")
        if st != sx and st != sx[:-1]:
            raise ShapeError(
                f"softmax_with_loss: t must have x's shape {fmt_shape(sx)} (one-hot) "
                f"or {fmt_shape(sx[:-1])} (class indices), got {fmt_shape(st)}"
            )
        return ()

    def forward(self, x, t):
        np, lead = self.k.np, self.lead
        x, t = np.asarray(x), np.asarray(t)  # a class index may come as a plain float
        rank = x.ndim - lead
        z = x - x.max(axis=-1, keepdims=True)
        self.logp = logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
        self.p = np.exp(logp)
        self.indices = t.ndim - lead == rank - 1
        if self.indices:
            classes = x.shape[-1]
            bad = (t != np.floor(t)) | (t < 0) | (t >= classes)
            if bad.any():
                raise GraphError(
                    f"softmax_with_loss: class index {t[bad].flat[0]!r} is not an integer in 0..{classes - 1}"
                )
            t = (np.arange(classes) == t[..., None]).astype(np.float64)
        self.T = t
        self.n = x.shape[-2] if rank == 2 else 1
        prod = np.where(t == 0, 0.0, t * logp)
        return 0.0 - prod.sum(axis=tuple(range(lead, x.ndim))) / self.n  # 0.0 - 0.0 is +0.0; -(0.0) is not

    def backward(self, dout):
        np = self.k.np
        d = np.reshape(dout, np.shape(dout) + (1,) * (self.p.ndim - np.ndim(dout)))
        dx = d * (self.p * self.T.sum(axis=-1, keepdims=True) - self.T) / self.n if self.needs[0] else None
        dt = None
        if self.needs[1] and not self.indices:
            dt = d * -self.logp / self.n
        return dx, dt
