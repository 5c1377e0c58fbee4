"""The elementwise layers, one class per op, as in the book's common/layers.py: forward() caches what
backward() needs, backward(dout) returns one gradient per input.

Each works on Python floats and on numpy arrays alike (the math functions of `kernels` take either).
Broadcasting, the batch's row axis and which inputs need a gradient are the runtime's business.
"""

from __future__ import annotations

from .base import ONE, Layer, Ops
from .kernels import Number, div, exp, log, positive_mask, relu, sigmoid, tanh, where
from .kernels import pow as power

# --- two inputs ----------------------------------------------------------------------------------


class AddLayer(Layer):
    op, symbol, arity = "add", "+", 2
    forward_rule, backward_rule = "x + y", "dx = dout;  dy = dout"
    __slots__ = ()

    def forward(self, x: Number, y: Number) -> Number:
        return x + y

    def backward(self, dout: Number) -> tuple:
        return dout, dout

    @staticmethod
    def backward_ops(g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        return dout, dout


class SubLayer(Layer):
    op, symbol, arity = "sub", "-", 2
    forward_rule, backward_rule = "x - y", "dx = dout;  dy = -dout"
    __slots__ = ()

    def forward(self, x: Number, y: Number) -> Number:
        return x - y

    def backward(self, dout: Number) -> tuple:
        return dout, -dout

    @staticmethod
    def backward_ops(g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        return dout, g.neg(dout)


class MulLayer(Layer):
    op, symbol, arity = "mul", "×", 2
    forward_rule, backward_rule = "x * y", "dx = dout * y;  dy = dout * x"
    __slots__ = ("x", "y")

    def forward(self, x: Number, y: Number) -> Number:
        self.x, self.y = x, y
        return x * y

    def backward(self, dout: Number) -> tuple:
        if dout is ONE:  # the seed: 1 * y is y, bit for bit; a batch's output need not be copied twice for it
            return self.y, self.x
        return dout * self.y, dout * self.x

    @staticmethod
    def backward_ops(g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        x, y = ins
        return g.mul(dout, y), g.mul(dout, x)


class DivLayer(Layer):
    op, symbol, arity = "div", "÷", 2
    forward_rule, backward_rule = "x / y", "dx = dout / y;  dy = -(dout * out) / y  (never y * y)"
    __slots__ = ("y", "out")

    def forward(self, x: Number, y: Number) -> Number:
        self.y = y
        self.out = out = div(x, y)
        return out

    def backward(self, dout: Number) -> tuple:
        # d(x/y)/dy = -x / y**2, taken as -(dout * (x / y)) / y: y * y under/overflows for |y| < 1e-154 or
        # > 1e154, and dout first: an upstream gradient of exactly 0 stays 0 where (x / y) / y would overflow
        return div(dout, self.y), -div(dout * self.out, self.y)

    @staticmethod
    def backward_ops(g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        _, y = ins
        return g.div(dout, y), g.neg(g.div(g.mul(dout, out), y))


class PowLayer(Layer):
    op, symbol, arity = "pow", "**", 2
    forward_rule = "x ** y"
    backward_rule = "dx = dout * y * x ** (y - 1)  (0 where y = 0);  dy = dout * out * log(x)  (0 where x = 0, y >= 0)"
    __slots__ = ("x", "y", "out")

    def forward(self, x: Number, y: Number) -> Number:
        self.x, self.y = x, y
        self.out = out = power(x, y)
        return out

    def backward(self, dout: Number) -> tuple:
        x, y = self.x, self.y
        dx = where(y == 0, 0.0, dout * y * power(x, y - 1.0))
        # d/dy x**y = x**y log x; at x = 0 the limit is 0 for y >= 0 (as torch has it), not 0 * -inf
        dy = where((x == 0) & (y >= 0), 0.0, dout * self.out * log(x))
        return dx, dy

    @staticmethod
    def backward_ops(g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        """As backward, its special cases included. Where a variable makes one (y = 0 for dx, where x is 0 or
        NaN; x = 0 and y >= 0 for dy), `where(keep, formula, 0)` with the formula's own input made safe where it
        is not kept (JAX's double where): the untaken side then has finite derivatives too, so that a second
        derivative is not 0 * inf = NaN there. keep is made of steps (step: 1 where its input > 0 or is NaN):
        nonzero exactly where the special case does not apply. (Without `g.limits`, for --formulas: the textbook
        formulas, dx = dout y x ** (y - 1), dy = dout out log x.)"""
        x, y = ins
        step, neg = (lambda t: g.op("step", t)), g.neg
        vy = g.value(y)
        vx = g.value(x)
        if vy is not None or not g.limits or (vx is not None and vx != 0 and vx == vx):
            # a constant exponent (x ** 2), a constant base that is neither 0 nor NaN (2 ** y), or the textbook
            # formulas: no special case to write
            dx = None if vy == 0 else g.mul(g.mul(dout, y), g.op("pow", x, g.sub(y, g.const(1.0))))
            return dx, None if vy is not None else g.mul(g.mul(dout, out), g.op("log", x))
        # backward's dx = 0 where y = 0 matters only where y x ** (y - 1) is not finite there: x = 0 or NaN (x ** -1
        # is inf, NaN); elsewhere the formula, which is 0 at y = 0 by itself and keeps its derivative in y
        sx, snx = step(x), step(neg(x))
        keep = g.add(g.add(step(y), step(neg(y))), g.op("abs", g.sub(sx, snx)))  # y != 0, or x neither 0 nor NaN
        ys = g.op("where", keep, y, g.const(1.0))
        dx = g.mul(g.mul(dout, ys), g.op("pow", x, g.sub(ys, g.const(1.0))))
        dx = g.op("where", keep, dx, g.const(0.0))
        keep = g.add(g.add(sx, snx), step(neg(y)))  # x != 0 or y < 0 (NaN counts as != 0, as in backward)
        xs = g.op("where", keep, x, g.const(1.0))
        dy = g.op("where", keep, g.mul(g.mul(dout, out), g.op("log", xs)), g.const(0.0))
        return dx, dy


# --- one input -----------------------------------------------------------------------------------


class NegLayer(Layer):
    op, symbol = "neg", "−"
    forward_rule, backward_rule = "-x", "dx = -dout"
    __slots__ = ()

    def forward(self, x: Number) -> Number:
        return -x

    def backward(self, dout: Number) -> tuple:
        return (-dout,)

    @staticmethod
    def backward_ops(g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        return (g.neg(dout),)


class ExpLayer(Layer):
    op, symbol = "exp", "exp"
    forward_rule, backward_rule = "exp(x)", "dx = dout * out"
    __slots__ = ("out",)

    def forward(self, x: Number) -> Number:
        self.out = out = exp(x)
        return out

    def backward(self, dout: Number) -> tuple:
        return (dout * self.out,)

    @staticmethod
    def backward_ops(g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        return (g.mul(dout, out),)


class LogLayer(Layer):
    op, symbol = "log", "log"
    forward_rule, backward_rule = "log(x)  (natural log)", "dx = dout / x"
    __slots__ = ("x",)

    def forward(self, x: Number) -> Number:
        self.x = x
        return log(x)

    def backward(self, dout: Number) -> tuple:
        return (div(dout, self.x),)

    @staticmethod
    def backward_ops(g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        (x,) = ins
        return (g.div(dout, x),)


class Relu(Layer):
    op, symbol = "relu", "relu"
    forward_rule, backward_rule = "max(0, x)", "dx = dout where x > 0, else 0  (no derivative at x = 0)"
    __slots__ = ("x",)

    def forward(self, x: Number) -> Number:
        self.x = x
        return relu(x)

    def backward(self, dout: Number) -> tuple:
        return (positive_mask(self.x, dout),)  # never dout[mask] = 0: dout is the caller's

    @staticmethod
    def backward_ops(g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        (x,) = ins
        return (g.mul(dout, g.op("step", x)),)


class Sigmoid(Layer):
    op, symbol = "sigmoid", "σ"
    forward_rule, backward_rule = "1 / (1 + exp(-x))", "dx = dout * (1 - out) * out"
    __slots__ = ("out",)

    def forward(self, x: Number) -> Number:
        self.out = out = sigmoid(x)
        return out

    def backward(self, dout: Number) -> tuple:
        return (dout * (1.0 - self.out) * self.out,)

    @staticmethod
    def backward_ops(g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        return (g.mul(g.mul(dout, g.sub(g.const(1.0), out)), out),)


class TanhLayer(Layer):
    op, symbol = "tanh", "tanh"
    forward_rule, backward_rule = "tanh(x)", "dx = dout * (1 - out * out)"
    __slots__ = ("out",)

    def forward(self, x: Number) -> Number:
        self.out = out = tanh(x)
        return out

    def backward(self, dout: Number) -> tuple:
        return (dout * (1.0 - self.out * self.out),)

    @staticmethod
    def backward_ops(g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        return (g.mul(dout, g.sub(g.const(1.0), g.mul(out, out))),)
