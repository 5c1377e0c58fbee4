"""The rules a derivative graph's store simplifies with (`Rewrites`, the base of terms.Terms, whose `op`,
`const`, `full`, `expand` and `neg` they make their terms with): constants folded, x * 1 → x, x + 0 → x, x * 0 →
0, -(-x) → x, c1 a + c2 a → (c1 + c2) a when exact, minus signs moved outwards so that they cancel, shape ops
of a shape they already have dropped. Each returns the simpler term, or None when no rule applies."""

from __future__ import annotations

import math

from .base import Shape
from .registry import LAYERS

# A term is a plain tuple (op, args, attrs, shape, value, name), read by these indices: a tuple is made in a
# third of the time of a NamedTuple's instance, and derive of a large graph makes tens of thousands.
#   op: "input", "const", or an op of LAYERS;  args: the argument terms;  attrs: (key, value) pairs in the
#   file's form, lists as tuples (hashable);  shape;  value: of a constant;  name: of an input or a node
OP, ARGS, ATTRS, SHAPE, VALUE, NAME = range(6)
Term = tuple

COMMUTATIVE = frozenset(("add", "mul"))
# ops that give zeros when an input is zero (for getitem_grad, its only input)
_OF_ZERO = frozenset(
    ("matmul", "neg", "sum", "mean", "max", "min", "step", "sign", "identity", "getitem", "getitem_grad")
)


class Rewrites:
    """The rules, as methods of the store (terms.Terms) they read and add to: its terms and values, and its
    op, const, full, expand and neg to make the simpler terms."""

    terms: list
    values: list

    def _order(self, t: int) -> tuple[bool, int]:
        return (self.terms[t][OP] != "const", t)

    def _scaled(self, t: int) -> tuple[float, int]:
        """(c, a) when t is c * a for a scalar constant c that is a power of two (or t is a: (1, t))."""
        term = self.terms[t]
        if term[OP] == "mul":
            c = self.value(term[ARGS][0])
            if c is not None and not self.shape(term[ARGS][0]) and _power_of_two(c):
                return c, term[ARGS][1]
        return 1.0, t

    def _combined(self, a: int, b: int, sign: float) -> int | None:
        """c1 a + c2 a (sign 1) or c1 a - c2 a (sign -1) as (c1 +- c2) a: exact when c1, c2 are powers of
        two (both products are exact, and both sides round the same real number once)."""
        (c1, x), (c2, y) = self._scaled(a), self._scaled(b)
        if x != y:
            return None
        c = c1 + sign * c2
        if c - c1 != sign * c2:  # the coefficients' sum itself rounded: leave it
            return None
        return self.op("mul", self.const(c), x)

    def _simplified(self, op: str, args: tuple[int, ...], attrs: dict, shape: Shape, vals: list) -> int | None:
        if vals.count(None) == len(vals):  # the common case: no constant among the arguments
            if op in ("reshape", "sum_to", "broadcast_to", "identity") and self.terms[args[0]][SHAPE] == shape:
                return args[0]
            if op == "reshape" and self.terms[args[0]][OP] == "reshape":
                return self.op("reshape", self.terms[args[0]][ARGS][0], **attrs)
            if op == "neg" and self.terms[args[0]][OP] == "neg":
                return self.terms[args[0]][ARGS][0]
            return self._algebra(op, args, vals, shape)
        cls = LAYERS[op]
        if cls.elementwise and None not in vals:
            try:
                layer = cls(**cls.check_attrs(attrs)) if attrs else cls()  # (clip's bounds, leaky_relu's alpha)
                x = layer.forward(*vals)  # constant folding, with the layer's own float math
            except (ArithmeticError, ValueError):
                x = None
            if type(x) is float and math.isfinite(x):
                return self.full(x, shape)
        if op == "where" and vals[0] is not None:  # a constant condition picks one side
            return self.expand(args[1] if vals[0] != 0 else args[2], shape)
        if op in ("reshape", "sum_to", "broadcast_to", "identity") and self.shape(args[0]) == shape:
            return args[0]
        if op in ("reshape", "sum_to", "broadcast_to") and vals[0] is not None and self.terms[args[0]][OP] != "const":
            return self.full(vals[0] * (1.0 if op != "sum_to" else _ratio(self.shape(args[0]), shape)), shape)
        if op == "reshape" and self.terms[args[0]][OP] == "reshape":
            return self.op("reshape", self.terms[args[0]][ARGS][0], **attrs)
        if op == "neg" and self.terms[args[0]][OP] == "neg":
            return self.terms[args[0]][ARGS][0]
        if op in ("transpose", "getitem") and vals[0] is not None:
            return self.full(vals[0], shape)
        if op in ("concat", "stack") and len({repr(v) for v in vals}) == 1:  # every input one constant (not None)
            return self.full(vals[0], shape)
        return self._algebra(op, args, vals, shape)

    def _algebra(self, op: str, args: tuple[int, ...], vals: list, shape: Shape) -> int | None:
        """x + 0, x - 0, 0 - x, x * 1, x * 0, x * -1, x / 1, 0 / x, x ** 1, x ** 0, 0 @ x (IEEE aside: a 0
        that meets an inf or NaN would give NaN; a derivative graph treats 0 as the absence of a term); and
        minus signs moved outwards, so that they cancel and equal terms meet (exact: negation is)."""
        if op in ("add", "sub", "mul"):
            simple = getattr(self, "_" + op)(args[0], args[1], vals, shape)
            if simple is not None:
                return simple
        elif op == "div":
            if vals[1] == 1:
                return self.expand(args[0], shape)
            if vals[0] == 0:
                return self.full(0.0, shape)
        elif op == "pow":
            if vals[1] == 1:
                return self.expand(args[0], shape)
            if vals[1] == 0:
                return self.full(1.0, shape)
        elif op == "neg":
            inner = self.terms[args[0]]
            if inner[OP] == "sub":
                return self.op("sub", inner[ARGS][1], inner[ARGS][0])
            if inner[OP] == "mul" and self.value(inner[ARGS][0]) is not None:
                return self.op("mul", self.const(-self.value(inner[ARGS][0])), inner[ARGS][1])
        if op in _OF_ZERO and 0 in vals:
            return self.full(0.0, shape)  # (a zero's step and sign are 0 too; sum, mean...: 0 of the reduced shape)
        return None

    def _negated(self, t: int) -> int | None:
        """a when t is -a."""
        term = self.terms[t]
        return term[ARGS][0] if term[OP] == "neg" else None

    def _add(self, a: int, b: int, vals: list, shape: Shape) -> int | None:
        for y, vx in ((b, vals[0]), (a, vals[1])):
            if vx == 0:
                return self.expand(y, shape)
        na, nb = self._negated(a), self._negated(b)
        if na is not None and nb is not None:
            return self.neg(self.op("add", na, nb))  # -a + -b = -(a + b)
        if nb is not None:
            return self.op("sub", a, nb)
        if na is not None:
            return self.op("sub", b, na)
        return self._combined(a, b, 1.0)

    def _sub(self, a: int, b: int, vals: list, shape: Shape) -> int | None:
        if vals[1] == 0:
            return self.expand(a, shape)
        if vals[0] == 0:
            return self.expand(self.neg(b), shape)
        if a == b:
            return self.full(0.0, shape)
        combined = self._combined(a, b, -1.0)
        if combined is not None:
            return combined
        nb = self._negated(b)
        if nb is not None:
            return self.op("add", a, nb)  # a - -b = a + b
        na = self._negated(a)
        if na is not None:
            return self.neg(self.op("add", na, b))  # -a - b = -(a + b)
        return None

    def _mul(self, a: int, b: int, vals: list, shape: Shape) -> int | None:
        for y, vx in ((b, vals[0]), (a, vals[1])):
            if vx == 0:
                return self.full(0.0, shape)
            if vx == 1:
                return self.expand(y, shape)
            if vx == -1:
                return self.expand(self.neg(y), shape)
        na, nb = self._negated(a), self._negated(b)
        if na is not None or nb is not None:
            m = self.op("mul", a if na is None else na, b if nb is None else nb)
            return m if (na is None) == (nb is None) else self.neg(m)
        for x, y, vx in ((a, b, vals[0]), (b, a, vals[1])):
            inner = self.terms[y]
            if vx is not None and not self.shape(x) and inner[OP] == "mul":
                c = self.value(inner[ARGS][0])
                if c is not None and not self.shape(inner[ARGS][0]) and (_power_of_two(c) or _power_of_two(vx)):
                    return self.op("mul", self.const(vx * c), inner[ARGS][1])  # c (d a) = (c d) a, exactly
        for x, y in ((a, b), (b, a)):
            c, inner = self._scaled(y)
            if inner != y and self.value(x) is None:
                return self.op("mul", self.const(c), self.op("mul", x, inner))  # x (2 a) = 2 (x a), exactly
        return None


def _power_of_two(x: float) -> bool:
    m, _ = math.frexp(x)
    return abs(m) == 0.5


def _ratio(have: Shape, shape: Shape) -> float:
    """How many elements of `have` sum into each of `shape`'s (sum_to of a constant)."""
    n = 1
    for d in have:
        n *= d
    for d in shape:
        n //= d if d else 1
    return float(n)
