"""Chapter 6: batch_norm (training mode: the batch's own mean and variance) and dropout (a mask drawn from a
seed, so that a run is reproducible), each as the book's BatchNormalization and Dropout.

Axes count from the end, as a reduction's do (nn_layers): in a batch the runtime puts a row axis in front of every
value, and each row is normalized, or masked, as it is alone.
"""

from __future__ import annotations

from typing import Any

from ..errors import GraphError, ShapeError, suggest
from .base import Layer, Layout, Ops, broadcast_shapes, fmt_shape
from .kernels import Number
from .nn_layers import _axes, _count, _is_int

Array = Any  # a numpy array


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class BatchNorm(Layer):
    op, symbol, arity = "batch_norm", "batch norm", 3
    elementwise = False
    forward_rule = (
        "gamma * (x - mu) / sqrt(var + eps) + beta, mu and var x's mean and variance over `axis` (default 0, the "
        "batch; a list for several: [0, 2, 3] per channel of (N, C, H, W)), in training mode; `eps` default 1e-7 "
        "(the book's code adds 10e-7, i.e. 1e-6: set eps: 1e-6 for its numbers)"
    )
    backward_rule = (
        "the book's: dbeta = dout;  dgamma = dout * xn;  dxn = gamma * dout;  dxc = dxn / std + (2 / N) xc dvar, "
        "dvar = -sum(dxn xc / std^2) / (2 std);  dx = dxc - sum(dxc) / N  (sums over `axis`, N its size)"
    )
    attr_defaults = {"eps": 1e-7, "axis": 0}
    __slots__ = ("axes", "eps", "n", "gamma", "xc", "xn", "std")

    def __init__(self, axes: tuple[int, ...] = (-1,), eps: float = 1e-7) -> None:
        self.axes, self.eps = axes, eps  # axes counted from the end: per row, in a batch

    @classmethod
    def check_attrs(cls, attrs):
        out = dict(cls.attr_defaults)
        for key, v in attrs.items():
            if key == "eps":
                if not _number(v) or not v >= 0 or v == float("inf"):
                    raise GraphError(f"batch_norm: eps must be a number >= 0, got {v!r}")
                out["eps"] = float(v)
            elif key == "axis":
                ok = _is_int(v) or (isinstance(v, (list, tuple)) and v and all(map(_is_int, v)))
                if not ok:
                    raise GraphError(f"batch_norm: axis must be an integer or a list of integers, got {v!r}")
                out["axis"] = int(v) if _is_int(v) else tuple(int(a) for a in v)
            else:
                raise GraphError(f"op 'batch_norm' has no attribute '{key}'" + suggest(key, out))
        return out

    @classmethod
    def layout(cls, shapes, attrs):
        sx, sg, sb = shapes
        if not sx:
            raise ShapeError("batch_norm needs x of at least 1 dimension (the batch), got a scalar")
        axes = _axes("batch_norm", sx, attrs["axis"])
        if not _count(sx, axes):
            raise ShapeError(f"batch_norm: x {fmt_shape(sx)} has no element along axis {attrs['axis']}: an empty batch")
        try:
            fits = broadcast_shapes(sx, sg, sb) == sx
        except ShapeError:
            fits = False
        if not fits:
            raise ShapeError(
                f"batch_norm: gamma {fmt_shape(sg)} and beta {fmt_shape(sb)} must broadcast against x {fmt_shape(sx)} "
                "without enlarging it (the book's: (D,) for x (N, D))"
            )
        rank = len(sx)
        views = (sx,) + tuple((1,) * (rank - len(s)) + s for s in (sg, sb))  # at x's rank: row against row
        return Layout(views, sx, sx, {"axes": tuple(a - rank for a in axes), "eps": attrs["eps"]})

    def forward(self, x: Array, gamma: Number, beta: Number) -> Array:
        import numpy as np

        axes = self.axes
        self.n = _count(x.shape, axes)
        mu = x.mean(axis=axes, keepdims=True)
        self.xc = xc = x - mu
        var = np.mean(xc**2, axis=axes, keepdims=True)
        self.std = std = np.sqrt(var + self.eps)
        self.xn = xn = xc / std
        self.gamma = gamma
        return gamma * xn + beta

    def backward(self, dout: Array) -> tuple:
        import numpy as np

        axes, n, xc, std = self.axes, self.n, self.xc, self.std
        dgamma = self.xn * dout  # the book's sums over the batch: the runtime sums to gamma's shape
        dxn = self.gamma * dout
        dxc = dxn / std
        dstd = -np.sum((dxn * xc) / (std * std), axis=axes, keepdims=True)
        dvar = 0.5 * dstd / std
        dxc = dxc + (2.0 / n) * xc * dvar
        dmu = np.sum(dxc, axis=axes, keepdims=True)
        return dxc - dmu / n, dgamma, dout

    @staticmethod
    def backward_ops(g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        x, gamma, _ = ins
        shape = g.shape(x)
        axes = list(_axes("batch_norm", shape, attrs["axis"]))
        n = g.const(float(_count(shape, tuple(axes))))

        def total(t: int) -> int:
            return g.op("sum", t, axis=axes, keepdims=True)

        xc = g.sub(x, g.op("mean", x, axis=axes, keepdims=True))
        var = g.op("mean", g.mul(xc, xc), axis=axes, keepdims=True)
        std = g.op("pow", g.add(var, g.const(attrs["eps"])), g.const(0.5))
        dxn = g.mul(gamma, dout)
        dstd = g.neg(total(g.div(g.mul(dxn, xc), g.mul(std, std))))
        dvar = g.div(g.mul(g.const(0.5), dstd), std)
        dxc = g.add(g.div(dxn, std), g.mul(g.div(g.mul(g.const(2.0), xc), n), dvar))
        dx = g.sub(dxc, g.div(total(dxc), n))
        return dx, g.mul(g.div(xc, std), dout), dout


class Dropout(Layer):
    op, symbol = "dropout", "dropout"
    elementwise = False
    forward_rule = (
        "x * mask, mask = rand(*x.shape) > ratio drawn from `seed` (the book's, after np.random.seed(seed)): the same "
        "mask on every run and every row; `train: false`: x * (1 - ratio)  (ratio 0.5, seed 0)"
    )
    backward_rule = "dx = dout * mask;  train: false: dout * (1 - ratio)"
    attr_defaults = {"ratio": 0.5, "seed": 0, "train": True}
    __slots__ = ("ratio", "seed", "train", "rank", "mask")

    def __init__(self, ratio: float = 0.5, seed: int = 0, train: bool = True, rank: int = 0) -> None:
        self.ratio, self.seed, self.train, self.rank = ratio, seed, train, rank

    @classmethod
    def check_attrs(cls, attrs):
        out = dict(cls.attr_defaults)
        for key, v in attrs.items():
            if key == "ratio":
                if not _number(v) or not 0 <= v <= 1:
                    raise GraphError(f"dropout: ratio must be a number from 0 to 1, got {v!r}")
                out["ratio"] = float(v)
            elif key == "seed":
                if not _is_int(v) or not 0 <= v < 2**32:
                    raise GraphError(f"dropout: seed must be a whole number from 0 to 2**32 - 1, got {v!r}")
                out["seed"] = v
            elif key == "train":
                if not isinstance(v, bool):
                    raise GraphError(f"dropout: train must be true or false, got {v!r}")
                out["train"] = v
            else:
                raise GraphError(f"op 'dropout' has no attribute '{key}'" + suggest(key, out))
        return out

    @classmethod
    def layout(cls, shapes, attrs):
        (sx,) = shapes
        return Layout((sx,), sx, sx, {**attrs, "rank": len(sx)})

    def forward(self, x: Number) -> Number:
        if not self.train:
            return x * (1.0 - self.ratio)
        import numpy as np

        shape = np.shape(x)
        # the mask of one row (a batch's row axes in front get the same), from a generator of its own
        keep = np.asarray(np.random.RandomState(self.seed).rand(*shape[len(shape) - self.rank :]) > self.ratio)
        self.mask = mask = float(keep) if type(x) is float else keep.astype(np.float64)
        return x * mask

    def backward(self, dout: Number) -> tuple:
        return (dout * self.mask if self.train else dout * (1.0 - self.ratio),)

    @staticmethod
    def backward_ops(g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        return (g.op("dropout", dout, **attrs),)  # linear in x: its own rule, applied to dout
