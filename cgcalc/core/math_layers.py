"""The elementwise layers beyond the book's: sin, cos, sqrt, abs, sign, square, leaky_relu, clip, maximum,
minimum, where — the formulas people write (caps, floors and tiers of a price list), one class per op as in
layers.py: forward() caches what backward() needs, backward(dout) returns one gradient per input.

Each works on Python floats and on numpy arrays alike (the math functions of `kernels` take either), and
broadcasts as numpy does (the runtime sums each gradient back to its input's shape). At a tie of maximum or
minimum the gradient is split evenly between the two inputs (as jax and torch do); clip passes it at a bound.
"""

from __future__ import annotations

from typing import Any

from ..errors import GraphError, suggest
from .base import ONE, Layer, Ops
from .kernels import Number, clip, cos, div, indicator, maximum, minimum, select, sign, sin, sqrt, zeros_like


def _number_attr(op: str, key: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v:
        raise GraphError(f"{op}: {key} must be a number, got {v!r}")
    return float(v)


def _only(cls: type[Layer], attrs: dict[str, Any]) -> None:
    for key in attrs:
        if key not in cls.attr_defaults:
            raise GraphError(f"op '{cls.op}' has no attribute '{key}'" + suggest(key, cls.attr_defaults))


# --- one input -----------------------------------------------------------------------------------


class SinLayer(Layer):
    op, symbol = "sin", "sin"
    forward_rule, backward_rule = "sin(x)  (radians)", "dx = dout * cos(x)"
    __slots__ = ("x",)

    def forward(self, x: Number) -> Number:
        self.x = x
        return sin(x)

    def backward(self, dout: Number) -> tuple:
        return (cos(self.x) if dout is ONE else dout * cos(self.x),)

    @staticmethod
    def backward_ops(g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        (x,) = ins
        return (g.mul(dout, g.op("cos", x)),)


class CosLayer(Layer):
    op, symbol = "cos", "cos"
    forward_rule, backward_rule = "cos(x)  (radians)", "dx = -(dout * sin(x))"
    __slots__ = ("x",)

    def forward(self, x: Number) -> Number:
        self.x = x
        return cos(x)

    def backward(self, dout: Number) -> tuple:
        return (-sin(self.x) if dout is ONE else -(dout * sin(self.x)),)

    @staticmethod
    def backward_ops(g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        (x,) = ins
        return (g.neg(g.mul(dout, g.op("sin", x))),)


class SqrtLayer(Layer):
    op, symbol = "sqrt", "√"
    forward_rule = "sqrt(x)  (NaN for x < 0)"
    backward_rule = "dx = dout / (2 * out)  (inf at x = 0)"
    __slots__ = ("out",)

    def forward(self, x: Number) -> Number:
        self.out = out = sqrt(x)
        return out

    def backward(self, dout: Number) -> tuple:
        if dout is ONE:  # 0.5 / out is 1 / (2 * out) bit for bit (2 * out is exact: out <= sqrt(max float))
            return (div(0.5, self.out),)
        return (div(dout, 2.0 * self.out),)

    @staticmethod
    def backward_ops(g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        return (g.div(dout, g.mul(g.const(2.0), out)),)


class AbsLayer(Layer):
    op, symbol = "abs", "|x|"
    forward_rule, backward_rule = "|x|", "dx = dout * sign(x)  (0 at x = 0)"
    __slots__ = ("x",)

    def forward(self, x: Number) -> Number:
        self.x = x
        return abs(x)  # a float's abs is fabs, an array's np.abs: both clear the sign bit

    def backward(self, dout: Number) -> tuple:
        return (sign(self.x) if dout is ONE else dout * sign(self.x),)

    def sides(self) -> tuple:
        return (sign(self.x),)

    @staticmethod
    def backward_ops(g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        (x,) = ins
        return (g.mul(dout, g.op("sign", x)),)


class SignLayer(Layer):
    op, symbol = "sign", "sign"
    forward_rule = "-1 where x < 0, 0 where x = 0, 1 where x > 0 (abs's and maximum's derivatives, as ops)"
    backward_rule = "dx = 0 (flat on both sides; no derivative at x = 0)"
    __slots__ = ("x",)

    def forward(self, x: Number) -> Number:
        self.x = x
        return sign(x)

    def backward(self, dout: Number) -> tuple:
        return (zeros_like(self.x),)

    def sides(self) -> tuple:
        return (sign(self.x),)

    @staticmethod
    def backward_ops(g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        return (None,)


class SquareLayer(Layer):
    op, symbol = "square", "x²"
    forward_rule, backward_rule = "x * x", "dx = dout * (2 * x)"
    __slots__ = ("x",)

    def forward(self, x: Number) -> Number:
        self.x = x
        return x * x

    def backward(self, dout: Number) -> tuple:
        return (2.0 * self.x if dout is ONE else dout * (2.0 * self.x),)

    @staticmethod
    def backward_ops(g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        (x,) = ins
        return (g.mul(dout, g.mul(g.const(2.0), x)),)


class LeakyRelu(Layer):
    op, symbol = "leaky_relu", "leaky\nrelu"
    forward_rule = "x where x > 0, else alpha * x  (`alpha`, default 0.01)"
    backward_rule = "dx = dout where x > 0, else alpha * dout  (alpha * dout at x = 0)"
    attr_defaults = {"alpha": 0.01}
    __slots__ = ("alpha", "x")

    def __init__(self, alpha: float = 0.01) -> None:
        self.alpha = alpha

    @classmethod
    def check_attrs(cls, attrs):
        _only(cls, attrs)
        return {"alpha": _number_attr(cls.op, "alpha", attrs.get("alpha", 0.01))}

    def forward(self, x: Number) -> Number:
        self.x = x
        return select(x <= 0, self.alpha * x, x)  # x <= 0 is false for NaN: it passes, as relu's does

    def backward(self, dout: Number) -> tuple:
        return (select(self.x <= 0, self.alpha * dout, dout),)

    def sides(self) -> tuple:
        return (sign(self.x),)

    @staticmethod
    def backward_ops(g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        (x,) = ins
        return (g.op("where", g.op("step", x), dout, g.mul(g.const(attrs["alpha"]), dout)),)


class ClipLayer(Layer):
    op, symbol = "clip", "clip"
    forward_rule = "x limited to [lo, hi]: lo where x < lo, hi where x > hi (`lo=`, `hi=`: one or both)"
    backward_rule = "dx = dout where lo <= x <= hi (at a bound too), else 0"
    attr_defaults = {"lo": None, "hi": None}
    __slots__ = ("lo", "hi", "x", "out")

    def __init__(self, lo: float | None = None, hi: float | None = None) -> None:
        self.lo, self.hi = lo, hi

    @classmethod
    def check_attrs(cls, attrs):
        _only(cls, attrs)
        lo, hi = (None if attrs.get(k) is None else _number_attr(cls.op, k, attrs[k]) for k in ("lo", "hi"))
        if lo is None and hi is None:
            raise GraphError("clip needs a bound: clip(x, lo=...), clip(x, hi=...) or both")
        if lo is not None and hi is not None and lo > hi:
            raise GraphError(f"clip: lo {lo!r} is above hi {hi!r}")
        return {"lo": lo, "hi": hi}

    def forward(self, x: Number) -> Number:
        self.x = x
        self.out = out = clip(x, self.lo, self.hi)
        return out

    def backward(self, dout: Number) -> tuple:
        # out == x exactly where lo <= x <= hi (never for NaN): one comparison instead of two
        inside = self.out == self.x
        return (indicator(inside) if dout is ONE else select(inside, dout, 0.0),)

    def sides(self) -> tuple:
        return tuple(sign(self.x - b) for b in (self.lo, self.hi) if b is not None)

    @staticmethod
    def backward_ops(g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        # 1 - step(lo - x) is 1 where x >= lo, 1 - step(x - hi) where x <= hi: both 0 for NaN, as above
        (x,) = ins
        d = dout
        if attrs["lo"] is not None:
            d = g.mul(d, g.sub(g.const(1.0), g.op("step", g.sub(g.const(attrs["lo"]), x))))
        if attrs["hi"] is not None:
            d = g.mul(d, g.sub(g.const(1.0), g.op("step", g.sub(x, g.const(attrs["hi"])))))
        return (d,)


# --- two and three inputs ------------------------------------------------------------------------


class _Extremum(Layer):
    """maximum and minimum: the gradient goes to the input that wins; at a tie, half to each."""

    arity = 2
    __slots__ = ("a", "b")

    def forward(self, a: Number, b: Number) -> Number:
        self.a, self.b = a, b
        return self.pick(a, b)

    def backward(self, dout: Number) -> tuple:
        # w = 1 where a wins, 0.5 at a tie, 0 where b wins (NaN where either is NaN): exact, and w + (1 - w) = 1
        w = sign(self.a - self.b)
        w *= self.side * 0.5  # in place on an array made here (a float is rebound): the same arithmetic
        w += 0.5
        other = 1.0 - w
        if dout is ONE:
            return w, other
        return dout * w, dout * other

    def sides(self) -> tuple:
        return (sign(self.a - self.b),)

    @classmethod
    def backward_ops(cls, g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        a, b = ins
        half = g.const(0.5)
        s = g.mul(g.const(0.5 * cls.side), g.op("sign", g.sub(a, b)))
        return g.mul(dout, g.add(half, s)), g.mul(dout, g.sub(half, s))


class Maximum(_Extremum):
    op, symbol = "maximum", "max"
    forward_rule = "the larger of a and b, elementwise (NaN if either is)"
    backward_rule = "da = dout where a > b, db = dout where b > a; at a tie (a = b) da = db = dout / 2"
    side = 1.0
    __slots__ = ()

    @staticmethod
    def pick(a: Number, b: Number) -> Number:
        return maximum(a, b)


class Minimum(_Extremum):
    op, symbol = "minimum", "min"
    forward_rule = "the smaller of a and b, elementwise (NaN if either is)"
    backward_rule = "da = dout where a < b, db = dout where b < a; at a tie (a = b) da = db = dout / 2"
    side = -1.0
    __slots__ = ()

    @staticmethod
    def pick(a: Number, b: Number) -> Number:
        return minimum(a, b)


class Where(Layer):
    op, symbol, arity = "where", "where", 3
    forward_rule = "a where cond is not 0, else b (elementwise; a NaN cond counts as true)"
    backward_rule = "da = dout where cond, else 0;  db = dout where not cond, else 0;  cond takes none"
    __slots__ = ("cond",)

    def forward(self, cond: Number, a: Number, b: Number) -> Number:
        self.cond = cond = cond != 0  # once, as booleans (NaN != 0: true, as numpy's where has it)
        return select(cond, a, b)

    def backward(self, dout: Number) -> tuple:
        c = self.cond
        if dout is ONE:
            return None, indicator(c), indicator(c, False)
        return None, select(c, dout, 0.0), select(c, 0.0, dout)

    def sides(self) -> tuple:
        return (self.cond,)  # a condition computed from x that turns: a jump from a to b

    @staticmethod
    def backward_ops(g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        cond = ins[0]
        zero = g.const(0.0)
        return None, g.op("where", cond, dout, zero), g.op("where", cond, zero, dout)
