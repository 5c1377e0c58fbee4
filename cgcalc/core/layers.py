"""One class per op, as in the book's common/layers.py: forward() caches what backward() needs.

Every layer works on Python floats (kernel FLOAT) and on numpy arrays (NUMPY/EXACT). Gradients for
broadcast inputs are reduced with `sum_to`. `needs[i]` is False for an input that takes no gradient
(a constant, a `grad: false` input): backward returns None there and does no work for it.
`lead` is the number of leading batch axes (0 for a single run, 1 in a batch): shapes in attributes
(`axis`) and rules (matmul's 1-D promotion, softmax's sample axis) refer to the per-row shape.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ..errors import GraphError, ShapeError
from .kernels import FLOAT, ONE

Shape = tuple[int, ...]


def sum_to(g, shape: Shape):
    """Sum g down to `shape`: over the leading axes broadcasting added and the axes broadcast from 1."""
    gshape = g.shape if hasattr(g, "shape") else ()
    if gshape == shape:
        return g
    lead = len(gshape) - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and gshape[lead + i] != 1
    )
    y = g.sum(axis=axes, keepdims=True)
    return y.reshape(shape)


def broadcast_shapes(*shapes: Shape) -> Shape:
    """numpy's broadcasting rule on shapes, without numpy."""
    if len(shapes) == 2 and shapes[0] == shapes[1]:
        return shapes[0]
    ndim = max(len(s) for s in shapes)
    out = []
    for i in range(-ndim, 0):
        dims = {s[i] for s in shapes if len(s) >= -i} - {1}
        if len(dims) > 1:
            raise ShapeError(
                "cannot broadcast shapes " + " and ".join(fmt_shape(s) for s in shapes)
            )
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def fmt_shape(shape: Shape) -> str:
    return "()" if not shape else "(" + ", ".join(map(str, shape)) + (",)" if len(shape) == 1 else ")")


def _align(xs, lead: int):
    """In a batch, pad per-row ranks so that numpy broadcasts row against row (not row against axis)."""
    rank = max(getattr(x, "ndim", 0) for x in xs)
    out = []
    for x in xs:
        nd = getattr(x, "ndim", None)
        if nd is not None and nd < rank:
            x = x.reshape(x.shape[:lead] + (1,) * (rank - nd) + x.shape[lead:])
        out.append(x)
    return out


class Layer:
    op: ClassVar[str] = ""
    cls_name: ClassVar[str] = ""
    arity: ClassVar[int] = 1
    symbol: ClassVar[str] = ""  # label of the op circle in exported figures
    forward_rule: ClassVar[str] = ""
    backward_rule: ClassVar[str] = ""
    attr_defaults: ClassVar[dict[str, Any]] = {}
    scalar_dout: ClassVar[bool] = True  # backward accepts a Python float standing for a full array
    elementwise: ClassVar[bool] = True  # the output's shape is the inputs' broadcast: scalars in, scalar out

    __slots__ = ("k", "needs", "lead", "attrs")

    def __init__(self, k=FLOAT, needs=None, lead: int = 0, attrs=None) -> None:
        self.k = k
        self.needs = needs if needs is not None else (True,) * self.arity
        self.lead = lead
        self.attrs = attrs if attrs is not None else self.attr_defaults

    @classmethod
    def check_attrs(cls, attrs: dict[str, Any]) -> dict[str, Any]:
        """Validated attributes with defaults filled in (raises GraphError with a message only)."""
        if attrs:
            from ..errors import suggest

            bad = next(iter(attrs))
            raise GraphError(f"op '{cls.op}' takes no attribute '{bad}'" + suggest(bad, ["in", "op"]))
        return {}

    @classmethod
    def infer(cls, shapes: list[Shape], attrs: dict[str, Any]) -> Shape:
        return shapes[0]

    def nondifferentiable(self) -> bool:
        """True when the last forward() touched a point where the op has no derivative."""
        return False


# --- elementwise, two inputs ---------------------------------------------------------------------


class _Binary(Layer):
    arity = 2
    keeps_inputs: ClassVar[bool] = True
    __slots__ = ("a", "b", "sa", "sb", "ta", "tb")

    @classmethod
    def infer(cls, shapes, attrs):
        return broadcast_shapes(*shapes)

    def forward(self, a, b):
        if self.k is not FLOAT:
            self.sa, self.sb = getattr(a, "shape", ()), getattr(b, "shape", ())
            if self.lead:
                a, b = _align((a, b), self.lead)
            self.ta, self.tb = getattr(a, "shape", ()), getattr(b, "shape", ())
        if self.keeps_inputs:  # add and sub do not need them: let big arrays go as soon as possible
            self.a, self.b = a, b
        return self.f(a, b)

    def backward(self, dout):
        if self.k is not FLOAT and type(dout) is float and (self.ta or self.tb):
            # a float dout stands for a full array: make it one where an input was broadcast
            out = broadcast_shapes(self.ta, self.tb)
            if self.ta != out or self.tb != out:
                dout = self.k.np.full(out, dout)
        da, db = self.df(dout)
        if self.k is FLOAT:
            return da, db
        if da is not None and type(da) is not float:
            da = sum_to(da, self.ta).reshape(self.sa) if self.sa or self.ta else _scalar(da)
        if db is not None and type(db) is not float:
            db = sum_to(db, self.tb).reshape(self.sb) if self.sb or self.tb else _scalar(db)
        return da, db


def _scalar(g):
    return g.sum() if getattr(g, "ndim", 0) else g


class AddLayer(_Binary):
    op, cls_name, symbol = "add", "AddLayer", "+"
    keeps_inputs = False
    forward_rule, backward_rule = "a + b", "da = dout;  db = dout"

    def f(self, a, b):
        return a + b

    def df(self, dout):
        return (dout if self.needs[0] else None, dout if self.needs[1] else None)


class SubLayer(_Binary):
    op, cls_name, symbol = "sub", "SubLayer", "-"
    keeps_inputs = False
    forward_rule, backward_rule = "a - b", "da = dout;  db = -dout"

    def f(self, a, b):
        return a - b

    def df(self, dout):
        return (dout if self.needs[0] else None, -dout if self.needs[1] else None)


class MulLayer(_Binary):
    op, cls_name, symbol = "mul", "MulLayer", "×"
    forward_rule, backward_rule = "a * b", "da = dout * b;  db = dout * a"

    def f(self, a, b):
        return a * b

    def df(self, dout):
        if dout is ONE:  # the seed: x * 1.0 is x, bit for bit; skip the work
            return (self.b if self.needs[0] else None, self.a if self.needs[1] else None)
        return (dout * self.b if self.needs[0] else None, dout * self.a if self.needs[1] else None)


class DivLayer(_Binary):
    op, cls_name, symbol = "div", "DivLayer", "÷"
    forward_rule, backward_rule = "a / b", "da = dout / b;  db = -dout * (y / b)  (y = a / b; never b * b)"
    __slots__ = ("y",)

    def f(self, a, b):
        self.y = y = self.k.div(a, b)
        return y

    def df(self, dout):
        # d(a/b)/db = -a / b**2, taken as -(a / b) / b: b * b under/overflows for |b| < 1e-154 or > 1e154
        b, div = self.b, self.k.div
        return (
            div(dout, b) if self.needs[0] else None,
            -dout * div(self.y, b) if self.needs[1] else None,
        )


class PowLayer(_Binary):
    op, cls_name, symbol = "pow", "PowLayer", "**"
    forward_rule = "a ** b"
    backward_rule = "da = dout * b * a ** (b - 1);  db = dout * a ** b * log(a)  (0 where a = 0, b >= 0)"
    __slots__ = ("y",)

    def f(self, a, b):
        self.y = y = self.k.pow(a, b)
        return y

    def df(self, dout):
        a, b, k = self.a, self.b, self.k
        da = db = None
        if self.needs[0]:
            if k is FLOAT:
                da = 0.0 if b == 0 else dout * b * k.pow(a, b - 1.0)
            else:
                da = k.np.where(b == 0, 0.0, dout * b * k.pow(a, b - 1.0))
        if self.needs[1]:
            # d/db a**b = a**b log a; at a = 0 the limit is 0 for b >= 0 (as torch does), not 0 * -inf
            if k is FLOAT:
                db = 0.0 if a == 0 and b >= 0 else dout * self.y * k.log(a)
            else:
                db = k.np.where((a == 0) & (b >= 0), 0.0, dout * self.y * k.log(a))
        return da, db


# --- elementwise, one input ----------------------------------------------------------------------


class _Unary(Layer):
    arity = 1
    __slots__ = ("x", "y")


class NegLayer(_Unary):
    op, cls_name, symbol = "neg", "NegLayer", "−"
    forward_rule, backward_rule = "-x", "dx = -dout"

    def forward(self, x):
        return -x

    def backward(self, dout):
        return (-dout,)


class ExpLayer(_Unary):
    op, cls_name, symbol = "exp", "ExpLayer", "exp"
    forward_rule, backward_rule = "exp(x)", "dx = dout * exp(x)"

    def forward(self, x):
        self.y = y = self.k.exp(x)
        return y

    def backward(self, dout):
        return (dout * self.y,)


class LogLayer(_Unary):
    op, cls_name, symbol = "log", "LogLayer", "log"
    forward_rule, backward_rule = "log(x)  (natural log)", "dx = dout / x"

    def forward(self, x):
        self.x = x
        return self.k.log(x)

    def backward(self, dout):
        return (self.k.div(dout, self.x),)


class Relu(_Unary):
    op, cls_name, symbol = "relu", "Relu", "relu"
    forward_rule, backward_rule = "max(0, x)", "dx = dout where x > 0, else 0  (no derivative at x = 0)"

    def forward(self, x):
        self.x = x
        return self.k.relu(x)

    def backward(self, dout):
        return (self.k.relu_grad(self.x, dout),)

    def nondifferentiable(self) -> bool:
        x = self.x
        return bool((x == 0).any()) if hasattr(x, "any") else x == 0


class Sigmoid(_Unary):
    op, cls_name, symbol = "sigmoid", "Sigmoid", "σ"
    forward_rule, backward_rule = "1 / (1 + exp(-x))", "dx = dout * (1 - y) * y"

    def forward(self, x):
        self.y = y = self.k.sigmoid(x)
        return y

    def backward(self, dout):
        y = self.y
        return (dout * (1.0 - y) * y,)


class TanhLayer(_Unary):
    op, cls_name, symbol = "tanh", "TanhLayer", "tanh"
    forward_rule, backward_rule = "tanh(x)", "dx = dout * (1 - y * y)"

    def forward(self, x):
        self.y = y = self.k.tanh(x)
        return y

    def backward(self, dout):
        y = self.y
        return (dout * (1.0 - y * y),)


from .nn_layers import Affine, MatMul, MeanLayer, SoftmaxWithLoss, SumLayer  # noqa: E402

LAYERS: dict[str, type[Layer]] = {
    cls.op: cls
    for cls in (
        AddLayer, SubLayer, MulLayer, DivLayer, PowLayer,
        NegLayer, ExpLayer, LogLayer, Relu, Sigmoid, TanhLayer,
        MatMul, Affine, SumLayer, MeanLayer, SoftmaxWithLoss,
    )
}
