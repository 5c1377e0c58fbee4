"""Random graph files for the property tests (tests/test_batch_props.py) and the differential tester
(tests/benchmarks/difftest_torch.py). Not a test module: nothing here is collected by pytest.

A graph is generated as plain data (`RGraph`: inputs with their domains and values, nodes as op + arguments +
attributes, outputs), then written as a YAML or JSON graph file in every form the README describes: `{op:, in:
[...]}` nodes, expressions (infix, calls, unary minus, nested sub-expressions, number literals), `{value: ...,
grad: false}` inputs, several outputs. The data keeps the names cgcalc gives the inner nodes of an expression
(`y.1`, `y.2`, ... in evaluation order, the last one `y`), so a reference can be computed from the data alone,
independently of cgcalc's parser.

Every op is used: add sub mul div pow neg exp log relu sigmoid tanh matmul affine sum mean softmax_with_loss
(OPS, the spec's, which the torch differential tester knows) and issue 13's (MATH_OPS): sin cos sqrt abs square
leaky_relu clip maximum minimum where max min logsumexp argmax mean_squared_error cross_entropy_error accuracy,
and its shape ops (SHAPE_OPS): getitem with random basic indices (`x[1:, -1]`, `x[..., ::-2]`, and in mapping
form), transpose (`x.T` or a permutation), concat and stack of one to three inputs (stack of scalars too), with
broadcasting, N-D matmul/affine operands of different ranks ((2,2,3) @ (3,2), (3,) @ (2,3,4), (4,) @ (4,)),
reductions over an axis, a list of axes, negative axes and keepdims, softmax_with_loss, cross_entropy_error and
accuracy with one-hot, soft, class-index-input and literal class-index targets, nodes fed only by constants or
`grad: false` inputs. The "nice values" inputs take now and then (exact zeros, ties, dyadic numbers) meet the
kinks and ties of abs, clip, maximum, max, argmax and where.

Values stay in safe domains (log of values >= 0.1, pow with a base >= 0.1 and a moderate exponent, division by
values at least 0.1 away from 0, exp of moderate values), tracked by interval arithmetic: every value a row can
take lies in its node's interval, so NaN and inf do not happen by construction (they may, rarely, when a per-row
input of a different shape makes a sum longer than the interval assumed).

The random choices come from `RandomSource`: a seed (the differential tester) or hypothesis' `st.randoms()`
(the property tests).
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np

OPS = (
    "add",
    "sub",
    "mul",
    "div",
    "pow",
    "neg",
    "exp",
    "log",
    "relu",
    "sigmoid",
    "tanh",
    "matmul",
    "affine",
    "sum",
    "mean",
    "softmax_with_loss",
)
MATH_OPS = (
    "sin",
    "cos",
    "sqrt",
    "abs",
    "square",
    "leaky_relu",
    "clip",
    "maximum",
    "minimum",
    "where",
    "max",
    "min",
    "logsumexp",
    "argmax",
    "mean_squared_error",
    "cross_entropy_error",
    "accuracy",
)
SHAPE_OPS = ("getitem", "concat", "stack", "transpose")  # issue 13's indexing and joining (x[...], x.T)
ALL_OPS = OPS + MATH_OPS + SHAPE_OPS
BINARY = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "**", "matmul": "@"}
UNARY = ("neg", "exp", "log", "relu", "sigmoid", "tanh")
# not in a graph of scalars (stack is: stack(a, b) of scalars makes a vector)
ARRAYS_ONLY = (
    "matmul",
    "affine",
    "softmax_with_loss",
    "cross_entropy_error",
    "accuracy",
    "getitem",
    "concat",
    "transpose",
)
CAP = 1e6  # no interval beyond +-CAP: values and gradients stay far from overflow
MAX_SIZE = 48  # elements per value


# --- random sources -----------------------------------------------------------------------------------


class RandomSource:
    """random.Random; or hypothesis' st.randoms() (its draws shrink, and are not printed one by one)."""

    def __init__(self, seed: int | random.Random) -> None:
        self.r = seed if isinstance(seed, random.Random) else random.Random(seed)

    def integer(self, lo: int, hi: int) -> int:
        return self.r.randint(lo, hi)

    def boolean(self, p: float = 0.5) -> bool:
        return self.r.random() < p

    def choice(self, seq):
        seq = list(seq)
        return seq[self.r.randrange(len(seq))]

    def seed(self) -> int:
        return self.r.getrandbits(32)


# --- the data of a graph --------------------------------------------------------------------------------


@dataclass
class Input:
    name: str
    shape: tuple[int, ...]  # the shape the graph is built for (and every per-row value has)
    grad: bool
    kind: str  # real | index (class indices 0..classes-1) | onehot (rows of the identity) | scale (see below)
    lo: float
    hi: float
    classes: int = 0
    exp10: int = 0  # kind scale: +-[1, 10) * 10**exp10, a random sign per element (extreme magnitudes)
    file_shape: tuple[int, ...] | None = None  # the file's value has this shape instead (a broadcastable one)
    value: Any = None  # the file's value (float or ndarray of file_shape or shape)

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...] | None = None):
        shape = self.shape if shape is None else shape
        if self.kind == "index":
            v = rng.integers(0, self.classes, shape).astype(np.float64)
        elif self.kind == "scale":
            v = rng.choice([-1.0, 1.0], shape) * rng.uniform(1.0, 10.0, shape) * 10.0**self.exp10
        elif self.kind == "onehot":
            idx = rng.integers(0, shape[-1], shape[:-1])
            v = np.eye(shape[-1])[idx]
        else:
            v = rng.uniform(self.lo, self.hi, shape)
            if rng.random() < 0.25:  # nice values: exact zeros, ties, small dyadic numbers
                v = np.clip(np.round(v * 4) / 4, self.lo, self.hi)
        return float(v) if v.ndim == 0 else v


@dataclass
class Node:
    name: str
    op: str
    args: list  # names (str) or constants (float)
    attrs: dict = field(default_factory=dict)
    shape: tuple[int, ...] = ()
    lo: float = 0.0
    hi: float = 0.0


@dataclass
class RGraph:
    inputs: list[Input]
    nodes: list[Node]  # in execution order, with the names cgcalc gives them
    outputs: list[str]
    text: str = ""  # the graph file
    json: bool = False
    tops: list = field(default_factory=list)  # (name, form, tree) of the nodes as written in the file

    def input(self, name: str) -> Input:
        return next(i for i in self.inputs if i.name == name)

    def is_scalar(self) -> bool:
        return all(np.ndim(i.value) == 0 for i in self.inputs)

    def ops(self) -> set[str]:
        return {n.op for n in self.nodes}

    def values(self) -> dict[str, Any]:
        return {i.name: i.value for i in self.inputs}


@dataclass
class Term:
    ref: Any  # a name or a float constant
    shape: tuple[int, ...]
    lo: float
    hi: float
    kind: str = "real"  # real | index | onehot | const


# --- interval arithmetic ----------------------------------------------------------------------------------


def _corners(f, a: Term, b: Term) -> tuple[float, float]:
    vals = [f(x, y) for x in (a.lo, a.hi) for y in (b.lo, b.hi)]
    return min(vals), max(vals)


def _sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


DOMAINS = {
    # name: (predicate on an interval, intervals for a new input, constants)
    "any": (
        lambda lo, hi: True,
        [(-2.0, 2.0), (-1.0, 1.0), (0.5, 2.0), (-3.0, -0.5), (-0.5, 0.5), (-4.0, 4.0)],
        [2.0, 0.5, -1.5, 3.0, 1.0, 0.25, -2.0, 0.0],
    ),
    "pos": (lambda lo, hi: lo >= 0.1 and hi <= 1e3, [(0.5, 2.0), (0.2, 3.0), (1.0, 1.5)], [2.0, 0.5, 3.0, 1.5]),
    "nonzero": (
        lambda lo, hi: (lo >= 0.1 or hi <= -0.1) and max(abs(lo), abs(hi)) <= 1e4,
        [(0.5, 2.0), (-2.0, -0.5), (0.25, 4.0)],
        [2.0, -4.0, 0.5, 1.5],
    ),
    "exponent": (
        lambda lo, hi: lo >= -3 and hi <= 3,
        [(-2.0, 2.0), (0.5, 3.0), (-1.0, 0.5)],
        [2.0, 3.0, 0.5, -1.0, 1.5, 0.0],
    ),
    "small": (lambda lo, hi: lo >= -30 and hi <= 30, [(-2.0, 2.0), (-3.0, 1.0)], [2.0, -1.0, 0.5]),
    "nonneg": (lambda lo, hi: lo >= 0 and hi <= 1e3, [(0.0, 1.0), (0.1, 2.0)], [1.0, 0.5]),
}


def _ok(t: Term, domain: str) -> bool:
    return t.kind in ("real", "const") and DOMAINS[domain][0](t.lo, t.hi)  # (index/onehot: softmax only)


def broadcast(*shapes):
    return tuple(np.broadcast_shapes(*shapes))


def matmul_shape(sa, sb):
    a2 = (1,) + sa if len(sa) == 1 else sa
    b2 = sb + (1,) if len(sb) == 1 else sb
    stack = broadcast(a2[:-2], b2[:-2])
    return stack + ((a2[-2],) if len(sa) > 1 else ()) + ((b2[-1],) if len(sb) > 1 else ())


def size(shape) -> int:
    return int(np.prod(shape, dtype=np.int64)) if shape else 1


# --- the generator --------------------------------------------------------------------------------------


class TooBig(Exception):
    pass


class Gen:
    def __init__(self, src, max_nodes: int = 8, ops=ALL_OPS, scalar: bool = False) -> None:
        self.src = src
        self.max_nodes = max_nodes
        self.ops = ops
        self.scalar = scalar  # a graph of scalars only: elementwise ops (and sum/mean of a scalar)
        self.inputs: list[Input] = []
        self.nodes: list[Node] = []
        self.terms: list[Term] = []  # inputs and nodes, by name

    # shapes

    def dim(self) -> int:
        return self.src.choice([1, 2, 3, 2, 3, 4])

    def rand_shape(self, ranks=(0, 1, 2, 3)) -> tuple[int, ...]:
        if self.scalar:
            return ()
        r = self.src.choice(ranks)
        return tuple(self.dim() for _ in range(r))

    def broadcast_partner(self, s: tuple[int, ...]) -> tuple[int, ...]:
        """A shape that broadcasts with s: the same, a scalar, a suffix, s with 1s, or a larger one."""
        if self.scalar:
            return ()
        k = self.src.integer(0, 5)
        if k <= 1 or not s and k <= 3:
            return s
        if k == 2:
            return ()
        if k == 3:
            return s[self.src.integer(1, len(s)) :]
        if k == 4 and s:
            return tuple(1 if self.src.boolean(0.5) else d for d in s)
        extra = tuple(self.dim() for _ in range(self.src.integer(1, 2)))
        return extra + tuple(1 if self.src.boolean(0.3) else d for d in s)

    def stack_partner(self, stack: tuple[int, ...], length: int) -> tuple[int, ...]:
        out = []
        for i in range(1, length + 1):
            if i <= len(stack):
                d = stack[-i]
                out.append(self.src.choice([d, d, 1]) if d != 1 else self.dim())
            else:
                out.append(self.dim())
        return tuple(reversed(out))

    def matmul_partner(self, s: tuple[int, ...], left: bool) -> tuple[int, ...]:
        """The other operand's shape for an operand of shape s (left: s is a, else s is b)."""
        r = self.src.choice([1, 2, 2, 3])
        if left:
            a2 = (1,) + s if len(s) == 1 else s
            k = a2[-1]
            if r == 1:
                return (k,)
            return self.stack_partner(a2[:-2], r - 2) + (k, self.dim())
        b2 = s + (1,) if len(s) == 1 else s
        k = b2[-2]
        if r == 1:
            return (k,)
        return self.stack_partner(b2[:-2], r - 2) + (self.dim(), k)

    # terms

    def new_input(self, shape, domain="any", kind="real", classes=0, grad=None) -> Term:
        name = f"x{len(self.inputs)}"
        if kind == "real":
            lo, hi = self.src.choice(DOMAINS[domain][1])
            if grad is None:
                grad = not self.src.boolean(0.15)
        else:
            lo, hi = (0.0, float(max(classes - 1, 0))) if kind == "index" else (0.0, 1.0)
            if grad is None:
                grad = False if kind == "index" else self.src.boolean(0.3)
        self.inputs.append(Input(name, tuple(shape), bool(grad), kind, lo, hi, classes))
        t = Term(name, tuple(shape), lo, hi, kind)
        self.terms.append(t)
        return t

    def const(self, domain="any") -> Term:
        c = self.src.choice(DOMAINS[domain][2])
        return Term(float(c), (), c, c, "const")

    def pick(self, shape, domain="any", allow_const=True) -> Term:
        """A term of exactly this shape in the domain: an existing one, a constant or a new input."""
        cands = [t for t in self.terms if t.shape == tuple(shape) and _ok(t, domain)]
        k = self.src.integer(0, 9)
        if cands and k < 6:
            return self.src.choice(cands)
        if shape == () and allow_const and k < 8:
            return self.const(domain)
        return self.new_input(shape, domain)

    def pick_any(self, domain="any", ranks=(0, 1, 2, 3), allow_const=False) -> Term:
        """An existing term in the domain (recent nodes first), or a new input of a random shape."""
        cands = [t for t in self.terms if len(t.shape) in ranks and _ok(t, domain)]
        nodes = [t for t in cands if not t.ref.startswith("x")]
        k = self.src.integer(0, 9)
        if nodes and k < 5:
            return nodes[-1 - self.src.integer(0, min(2, len(nodes) - 1))]
        if cands and k < 7:
            return self.src.choice(cands)
        if allow_const and 0 in ranks and k < 8:
            return self.const(domain)
        return self.new_input(self.rand_shape(ranks), domain)

    # nodes

    def add_node(self, op: str, args: list[Term], attrs: dict, shape, lo: float, hi: float) -> Term:
        if size(shape) > MAX_SIZE or any(size(a.shape) > MAX_SIZE for a in args):
            raise TooBig
        if not (math.isfinite(lo) and math.isfinite(hi)) or max(abs(lo), abs(hi)) > CAP:
            raise TooBig
        name = f"n{len(self.nodes)}"
        self.nodes.append(Node(name, op, [a.ref for a in args], attrs, tuple(shape), lo, hi))
        t = Term(name, tuple(shape), lo, hi)
        self.terms.append(t)
        return t

    def node(self, op: str) -> Term:
        src = self.src
        if op in ("add", "sub", "mul", "div", "pow"):
            doms = {"div": ("any", "nonzero"), "pow": ("pos", "exponent")}.get(op, ("any", "any"))
            if src.boolean(0.08):  # a node fed only by constants (`k: 2 * 4`)
                a, b = self.const(doms[0]), self.const(doms[1])
            else:
                first = src.integer(0, 1)
                t = self.pick_any(doms[first])
                other = self.pick(self.broadcast_partner(t.shape), doms[1 - first])
                a, b = (t, other) if first == 0 else (other, t)
            f = {
                "add": lambda x, y: x + y,
                "sub": lambda x, y: x - y,
                "mul": lambda x, y: x * y,
                "div": lambda x, y: x / y,
                "pow": lambda x, y: x**y,
            }[op]
            lo, hi = _corners(f, a, b)
            return self.add_node(op, [a, b], {}, broadcast(a.shape, b.shape), lo, hi)
        if op in UNARY:
            dom = {"exp": "small", "log": "pos"}.get(op, "any")
            x = self.const(dom) if src.boolean(0.06) else self.pick_any(dom)
            lo, hi = {
                "neg": lambda: (-x.hi, -x.lo),
                "exp": lambda: (math.exp(x.lo), math.exp(x.hi)),
                "log": lambda: (math.log(x.lo), math.log(x.hi)),
                "relu": lambda: (max(x.lo, 0.0), max(x.hi, 0.0)),
                "sigmoid": lambda: (_sig(x.lo), _sig(x.hi)),
                "tanh": lambda: (math.tanh(x.lo), math.tanh(x.hi)),
            }[op]()
            return self.add_node(op, [x], {}, x.shape, lo, hi)
        if op in ("matmul", "affine"):
            left = src.boolean(0.6)
            t = self.pick_any("any", ranks=(1, 2, 3))
            other = self.pick(self.matmul_partner(t.shape, left), "any", allow_const=False)
            a, b = (t, other) if left else (other, t)
            y = matmul_shape(a.shape, b.shape)
            k = a.shape[-1]
            plo, phi = _corners(lambda x, w: x * w, a, b)
            lo, hi = k * plo, k * phi
            if op == "matmul":
                return self.add_node(op, [a, b], {}, y, lo, hi)
            bias = self.pick(self.src.choice([y[-1:], y, ()]) if y else self.broadcast_partner(y), "any")
            return self.add_node(op, [a, b, bias], {}, broadcast(y, bias.shape), lo + bias.lo, hi + bias.hi)
        if op in ("sum", "mean", "max", "min", "logsumexp"):
            x = self.pick_any("any")
            attrs, shape, n = self.reduction(x)
            lo, hi = {
                "sum": (x.lo * n, x.hi * n),
                "logsumexp": (x.lo, x.hi + math.log(n)),  # between the max and the max + log n
            }.get(op, (x.lo, x.hi))
            return self.add_node(op, [x], attrs, shape, min(lo, hi), max(lo, hi))
        if op in MATH_OPS:
            return self.math_node(op)
        if op in SHAPE_OPS:
            return self.shape_node(op)
        if op == "softmax_with_loss":
            x = self.pick_any("any", ranks=(1, 2))
            c = x.shape[-1]
            mode = src.choice(
                ["literal", "index", "onehot", "soft"] if len(x.shape) == 1 else ["index", "onehot", "soft"]
            )
            if mode == "literal":
                t = Term(float(src.integer(0, c - 1)), (), 0.0, float(c - 1), "const")
            elif mode == "index":
                t = self.new_input(x.shape[:-1], kind="index", classes=c)
            elif mode == "onehot":
                t = self.new_input(x.shape, kind="onehot")
            else:
                t = self.pick(x.shape, "nonneg", allow_const=False)
            tsum = 1.0 if mode != "soft" else c * t.hi
            return self.add_node(op, [x, t], {}, (), 0.0, tsum * (x.hi - x.lo + math.log(c)))
        raise ValueError(op)

    def reduction(self, x: Term) -> tuple[dict, tuple[int, ...], int]:
        """Random axis/keepdims attributes for a reduction of x: (attrs, the result's shape, elements reduced)."""
        src = self.src
        r = len(x.shape)
        attrs: dict = {}
        axes = tuple(range(r))
        if r and src.boolean(0.6):
            if src.boolean(0.5):
                a = src.integer(-r, r - 1)
                attrs["axis"] = a
                axes = (a % r,)
            else:
                chosen = [i for i in range(r) if src.boolean(0.5)] or [r - 1]
                written = [i - r if src.boolean(0.3) else i for i in chosen]
                if src.boolean(0.3):
                    written.reverse()
                attrs["axis"] = written
                axes = tuple(chosen)
        if src.boolean(0.3):
            attrs["keepdims"] = True
        keep = attrs.get("keepdims", False)
        shape = (
            tuple(1 if i in axes else d for i, d in enumerate(x.shape))
            if keep
            else tuple(d for i, d in enumerate(x.shape) if i not in axes)
        )
        return attrs, shape, size(tuple(x.shape[i] for i in axes))

    def labels(self, x: Term, modes: list[str]) -> tuple[Term, float]:
        """A target for scores x of shape (C,) or (N, C): a literal class index (1-D x only), class indices,
        one-hot rows or a soft (nonnegative) one; and the most a row of it sums to."""
        c = x.shape[-1]
        mode = self.src.choice(modes if len(x.shape) == 1 else [m for m in modes if m != "literal"])
        if mode == "literal":
            return Term(float(self.src.integer(0, c - 1)), (), 0.0, float(c - 1), "const"), 1.0
        if mode == "index":
            return self.new_input(x.shape[:-1], kind="index", classes=c), 1.0
        if mode == "onehot":
            return self.new_input(x.shape, kind="onehot"), 1.0
        t = self.pick(x.shape, "nonneg", allow_const=False)
        return t, c * t.hi

    def math_node(self, op: str) -> Term:
        """A node of one of issue 13's ops, its interval bounding every value it can take."""
        src = self.src
        if op in ("sin", "cos", "sqrt", "abs", "square", "leaky_relu", "clip"):
            dom = "pos" if op == "sqrt" else "any"
            x = self.const(dom) if src.boolean(0.06) else self.pick_any(dom)
            attrs: dict = {}
            if op in ("sin", "cos"):
                lo, hi = -1.0, 1.0
            elif op == "sqrt":
                lo, hi = math.sqrt(x.lo), math.sqrt(x.hi)
            elif op in ("abs", "square"):
                f = abs if op == "abs" else (lambda v: v * v)
                lo = 0.0 if x.lo <= 0 <= x.hi else min(f(x.lo), f(x.hi))
                hi = max(f(x.lo), f(x.hi))
            elif op == "leaky_relu":
                alpha = src.choice([0.01, 0.2, 0.5, None])
                if alpha is not None:
                    attrs["alpha"] = alpha
                a = 0.01 if alpha is None else alpha
                lo, hi = (v if v > 0 else a * v for v in (x.lo, x.hi))
            else:
                # bounds where the values are, and sometimes one of the values a nice input takes (a tie)
                b1, b2 = sorted(src.choice([x.lo, x.hi, 0.0, 0.5, -0.5, (x.lo + x.hi) / 2]) for _ in range(2))
                kind = src.integer(0, 2)
                if kind != 1:
                    attrs["lo"] = b1
                if kind != 0:
                    attrs["hi"] = b2
                lo, hi = (min(max(v, attrs.get("lo", -math.inf)), attrs.get("hi", math.inf)) for v in (x.lo, x.hi))
            return self.add_node(op, [x], attrs, x.shape, lo, hi)
        if op in ("maximum", "minimum"):
            if src.boolean(0.08):
                a, b = self.const(), self.const()
            else:
                t = self.pick_any("any")
                other = self.pick(self.broadcast_partner(t.shape), "any")
                a, b = (t, other) if src.boolean(0.5) else (other, t)
            f = max if op == "maximum" else min
            return self.add_node(op, [a, b], {}, broadcast(a.shape, b.shape), f(a.lo, b.lo), f(a.hi, b.hi))
        if op == "where":
            a = self.pick_any("any")
            b = self.pick(self.broadcast_partner(a.shape), "any")
            ab = broadcast(a.shape, b.shape)
            if src.boolean(0.15):
                cond = self.const()  # 0.0 among the constants: a condition that is false everywhere
            else:
                cond = self.pick(self.broadcast_partner(ab), "any")
            shape = broadcast(cond.shape, ab)
            return self.add_node(op, [cond, a, b], {}, shape, min(a.lo, b.lo), max(a.hi, b.hi))
        if op == "argmax":
            x = self.pick_any("any", ranks=(0, 1, 2, 3))
            r = len(x.shape)
            if r and src.boolean(0.6):
                axis = src.integer(-r, r - 1)
                shape, n = x.shape[: axis % r] + x.shape[axis % r + 1 :], x.shape[axis]
                attrs = {"axis": axis}
            else:
                shape, n, attrs = (), size(x.shape), {}
            return self.add_node(op, [x], attrs, shape, 0.0, float(n - 1))
        if op == "mean_squared_error":
            y = self.pick_any("any")
            t = self.pick(self.broadcast_partner(y.shape), "any")
            n = size(broadcast(y.shape, t.shape))
            worst = max((y.hi - t.lo) ** 2, (t.hi - y.lo) ** 2)
            return self.add_node(op, [y, t], {}, (), 0.0, 0.5 * n * worst)
        if op == "cross_entropy_error":
            y = self.pick_any("pos", ranks=(1, 2))
            t, tsum = self.labels(y, ["literal", "index", "onehot", "soft"])
            logs = (math.log(y.lo + 1e-7), math.log(y.hi + 1e-7))
            lo, hi = min(-tsum * v for v in logs), max(-tsum * v for v in logs)
            return self.add_node(op, [y, t], {}, (), min(lo, 0.0), max(hi, 0.0))
        if op == "accuracy":
            y = self.pick_any("any", ranks=(1, 2))
            t, _ = self.labels(y, ["literal", "index", "onehot", "soft"])
            return self.add_node(op, [y, t], {}, (), 0.0, 1.0)
        raise ValueError(op)

    def shape_node(self, op: str) -> Term:
        """getitem (a random basic index), transpose (.T, or a permutation), concat and stack of 1 to 3 inputs;
        the result's shape from numpy, on an empty array of the input's shape."""
        src = self.src
        if op == "getitem":
            x = self.pick_any("any", ranks=(1, 2, 3))
            index = self.index_for(x.shape)
            shape = np.empty(x.shape)[python_index(index)].shape
            return self.add_node(op, [x], {"index": index}, shape, x.lo, x.hi)
        if op == "transpose":
            x = self.pick_any("any", ranks=(2, 3))
            r = len(x.shape)
            perm = list(range(r))[::-1]
            attrs: dict = {}
            if r == 3 or src.boolean(0.3):
                perm = sorted(range(r), key=lambda _: src.integer(0, 99))
                attrs["axes"] = [a - r if src.boolean(0.3) else a for a in perm]
            return self.add_node(op, [x], attrs, tuple(x.shape[a] for a in perm), x.lo, x.hi)
        if op == "concat":
            x = self.pick_any("any", ranks=(1, 2, 3))
            r = len(x.shape)
            axis = src.integer(-r, r - 1)
            a = axis % r
            parts = [x]
            for _ in range(src.integer(0, 2)):
                other = self.pick(x.shape[:a] + (self.dim(),) + x.shape[a + 1 :], "any", allow_const=False)
                parts.insert(src.integer(0, len(parts)), other)
            shape = x.shape[:a] + (sum(p.shape[a] for p in parts),) + x.shape[a + 1 :]
        else:
            x = self.pick_any("any", ranks=(0,) if self.scalar else (0, 1, 2), allow_const=True)  # scalar: inputs too
            parts = [x] + [self.pick(x.shape, "any") for _ in range(src.integer(0, 2))]
            r = len(x.shape) + 1
            axis = src.integer(-r, r - 1)
            shape = x.shape[: axis % r] + (len(parts),) + x.shape[axis % r :]
        attrs = {"axis": axis} if axis or src.boolean(0.3) else {}
        return self.add_node(op, parts, attrs, shape, min(p.lo for p in parts), max(p.hi for p in parts))

    def index_for(self, shape: tuple[int, ...]) -> list:
        """A random basic index of an array of `shape`, in getitem's form: whole numbers (negative too), slices
        {start:, stop:, step:} (negative steps too, never empty) and now and then a '...' between a leading and
        a trailing part."""
        src, r = self.src, len(shape)
        if src.boolean(0.25):
            head = src.integer(0, r)
            tail = src.integer(0, r - head)
            return (
                [self.index_item(d) for d in shape[:head]] + ["..."] + [self.index_item(d) for d in shape[r - tail :]]
            )
        return [self.index_item(d) for d in shape[: src.integer(1, r)]]

    def index_item(self, n: int):
        src = self.src
        if src.boolean(0.4):
            return src.integer(-n, n - 1)
        for _ in range(4):
            item = {}
            for key, values in (("start", range(-n, n)), ("stop", range(-n, n + 1)), ("step", (1, 2, -1, -2, 3))):
                if src.boolean(0.5):
                    item[key] = src.choice(values)
            if len(range(*slice(item.get("start"), item.get("stop"), item.get("step")).indices(n))):
                return item
        return {}

    def graph(self) -> tuple[list[Input], list[Node]]:
        n = self.src.integer(1, self.max_nodes)
        ops = list(self.ops)
        if self.scalar:
            ops = [o for o in ops if o not in ARRAYS_ONLY]
        for _ in range(n):
            for _attempt in range(6):
                op = self.src.choice(ops)
                mark = (len(self.inputs), len(self.terms))
                try:
                    self.node(op)
                    break
                except TooBig:
                    del self.inputs[mark[0] :]
                    del self.terms[mark[1] :]
        if not self.nodes or not self.inputs:  # at least one node, and one input (rows need a column)
            x = self.new_input(self.rand_shape((0, 1, 2)), "any", grad=True)  # at most 16 elements: never too big
            self.add_node("neg", [x], {}, x.shape, -x.hi, -x.lo)
        return self.inputs, self.nodes


# --- writing the file -----------------------------------------------------------------------------------


def _num(x: float) -> str:
    x = float(x)
    return (
        str(int(x))
        if x == int(x) and abs(x) < 1e15 and math.copysign(1, x) > 0 or x == int(x) and x < 0 and abs(x) < 1e15
        else repr(x)
    )


def _attr_text(attrs: dict, expr: bool) -> list[str]:
    out = []
    for k, v in attrs.items():
        if expr:
            out.append(f"{k}={'true' if v is True else json.dumps(v)}")
        else:
            out.append(f"{k}: {'true' if v is True else json.dumps(v)}")
    return out


def python_index(index: list) -> tuple:
    """getitem's index as Python's: ints, slice objects, Ellipsis."""
    return tuple(
        Ellipsis if i == "..." else i if isinstance(i, int) else slice(i.get("start"), i.get("stop"), i.get("step"))
        for i in index
    )


def index_text(index: list) -> str:
    """getitem's index as written between the brackets: 0, 1:3, ::-1, ..."""
    parts = []
    for i in index:
        if i == "..." or isinstance(i, int):
            parts.append(str(i))
        else:
            bounds = ["" if i.get(k) is None else str(i[k]) for k in ("start", "stop")]
            parts.append(":".join(bounds) + (f":{i['step']}" if "step" in i else ""))
    return ", ".join(parts)


def _expr(tree, src, top: bool) -> str:
    """tree: (op, [args], attrs); an arg is a name, a float or a tree."""
    op, args, attrs = tree

    def arg(a, wrap=True):
        if isinstance(a, tuple):
            s = _expr(a, src, False)
            return f"({s})" if wrap else s
        if isinstance(a, str):
            return a
        return f"({_num(a)})" if a < 0 or (wrap and math.copysign(1, a) < 0) else _num(a)

    if op in BINARY and not attrs and src.boolean(0.8):
        return f"{arg(args[0])} {BINARY[op]} {arg(args[1])}"
    if op == "neg" and not isinstance(args[0], float) and src.boolean(0.7):
        return f"-{arg(args[0])}"  # a unary minus; -(number) would be a literal, so neg(number) is a call
    if op == "getitem":
        return f"{arg(args[0])}[{index_text(attrs['index'])}]"
    if op == "transpose" and not attrs and src.boolean(0.7):
        return f"{arg(args[0])}.T"
    parts = [arg(a, wrap=False) for a in args] + _attr_text(attrs, expr=True)
    return f"{op}({', '.join(parts)})"


def finish(
    src, inputs: list[Input], nodes: list[Node], want_json: bool | None = None, file_shapes: bool = True
) -> RGraph:
    """Choose outputs, inline some nodes into expressions (renaming them as cgcalc will), write the file."""
    rng = np.random.default_rng(src.seed())
    names = [n.name for n in nodes]
    # outputs: the last node, and maybe other nodes or an input (a grad: false one too)
    outputs = [names[-1]]
    for _ in range(src.integer(0, 2)):
        pool = names + [i.name for i in inputs] if src.boolean(0.2) else names
        o = src.choice(pool)
        if o not in outputs:
            outputs.append(o)
    if len(outputs) > 1 and src.boolean(0.3):
        outputs.append(outputs.pop(0))  # the selected output is not always the last node
    # inline: a node used once (as an argument of one later node), not an output
    uses: dict[str, list[int]] = {}
    for j, n in enumerate(nodes):
        for a in n.args:
            if isinstance(a, str):
                uses.setdefault(a, []).append(j)
    inline_into: dict[str, int] = {}
    for n in nodes:
        u = uses.get(n.name, [])
        if len(u) == 1 and n.name not in outputs and src.boolean(0.35):
            inline_into[n.name] = u[0]
    by_name = {n.name: n for n in nodes}

    def tree(n: Node):
        return (n.op, [tree(by_name[a]) if isinstance(a, str) and a in inline_into else a for a in n.args], n.attrs)

    rename: dict[str, str] = {}
    tops = []

    def walk(name: str, inner: list[str]) -> list[str]:
        """The nodes of an expression in evaluation order: post-order, left to right."""
        for a in by_name[name].args:
            if isinstance(a, str) and a in inline_into:
                walk(a, inner)
        inner.append(name)
        return inner

    for n in nodes:
        if n.name in inline_into:
            continue
        inner = walk(n.name, [])  # the inner nodes are named n.1, n.2, ...; the root keeps the name
        for k, old in enumerate(inner[:-1]):
            rename[old] = f"{n.name}.{k + 1}"
        t = tree(n)
        has_inner = len(inner) > 1
        form = "expr" if has_inner or src.boolean(0.5) else "dict"
        tops.append((n.name, form, t))
    for n in nodes:
        n.name = rename.get(n.name, n.name)
        n.args = [rename.get(a, a) if isinstance(a, str) else a for a in n.args]
    # execution order: cgcalc sorts the nodes; inner nodes come right before their root, which is a valid
    # topological order too; the reference evaluates in this list's order, sorted topologically
    nodes = _toposort(inputs, nodes)
    # the file's values (some inputs with a smaller shape that broadcasts the same way)
    for inp in inputs:
        inp.value = inp.sample(rng)
    g = RGraph(inputs, nodes, outputs, json=src.boolean(0.25) if want_json is None else want_json, tops=tops)
    g.text = write(g, src)
    if file_shapes and not all(len(i.shape) == 0 for i in inputs) and src.boolean(0.3):
        _try_file_shape(g, src, rng)
    return g


def _toposort(inputs: list[Input], nodes: list[Node]) -> list[Node]:
    known = {i.name for i in inputs}
    out, left = [], list(nodes)
    while left:
        for k, n in enumerate(left):
            if all(not isinstance(a, str) or a in known for a in n.args):
                out.append(n)
                known.add(n.name)
                del left[k]
                break
        else:
            raise AssertionError("cycle in a generated graph")
    return out


def _value_text(v) -> str:
    return json.dumps(v.tolist() if isinstance(v, np.ndarray) else float(v))


def write(g: RGraph, src) -> str:
    if g.json:
        doc: dict = {"name": "random", "inputs": {}, "nodes": {}, "outputs": g.outputs}
        for i in g.inputs:
            v = i.value.tolist() if isinstance(i.value, np.ndarray) else float(i.value)
            doc["inputs"][i.name] = v if i.grad else {"value": v, "grad": False}
        for name, form, t in g.tops:
            if form == "dict":
                op, args, attrs = t
                doc["nodes"][name] = {"op": op, "in": list(args), **attrs}
            else:
                doc["nodes"][name] = _expr(t, src, True)
        return json.dumps(doc, indent=1)
    lines = ["name: random", "inputs:"]
    for i in g.inputs:
        v = _value_text(i.value)
        lines.append(f"  {i.name}: {v}" if i.grad else f"  {i.name}: {{value: {v}, grad: false}}")
    lines.append("nodes:")
    order = list(g.tops)
    if src.boolean(0.3):
        order.reverse()  # nodes in any order: cgcalc sorts them
    for name, form, t in order:
        if form == "dict":
            op, args, attrs = t
            ins = ", ".join(a if isinstance(a, str) else _num(a) for a in args)
            extra = "".join(", " + s for s in _attr_text(attrs, expr=False))
            lines.append(f"  {name}: {{op: {op}, in: [{ins}]{extra}}}")
        else:
            lines.append(f"  {name}: {_expr(t, src, True)}")
    lines.append(f"outputs: [{', '.join(g.outputs)}]")
    return "\n".join(lines) + "\n"


def _try_file_shape(g: RGraph, src, rng) -> None:
    """Give one real input a smaller file value that broadcasts where the full one went (a scalar, a suffix,
    1s): rows then set it with the full shape, a row shape different from the file's. Kept only when cgcalc
    compiles the file with it (shape inference then agrees the graph works both ways)."""
    import cgcalc

    cands = [i for i in g.inputs if i.kind == "real" and i.shape]
    if not cands:
        return
    inp = src.choice(cands)
    s = inp.shape
    k = src.integer(0, 2)
    fs = () if k == 0 else s[1:] if k == 1 else tuple(1 if src.boolean(0.5) else d for d in s)
    if fs == s:
        return
    old_value, old_text = inp.value, g.text
    inp.file_shape, inp.value = fs, inp.sample(rng, fs)
    g.text = write(g, src)
    try:
        plan = cgcalc.loads(g.text, json=g.json).plan
        # softmax_with_loss keeps its classes (a literal class index must stay in range)
        shapes = {**{i.name: i.shape for i in g.inputs}, **{n.name: n.shape for n in g.nodes}}
        for n in g.nodes:
            if n.op in ("softmax_with_loss", "cross_entropy_error", "accuracy"):
                for a in n.args:
                    if isinstance(a, str) and plan.shapes[plan.index[a]] != shapes[a]:
                        raise ValueError(a)
    except Exception:
        inp.file_shape, inp.value, g.text = None, old_value, old_text


def random_graph(src, max_nodes: int = 8, ops=ALL_OPS, scalar: bool | None = None, **kw) -> RGraph:
    if scalar is None:
        scalar = src.boolean(0.2)
    inputs, nodes = Gen(src, max_nodes, ops, scalar).graph()
    return finish(src, inputs, nodes, **kw)


def scale_graph(src, max_nodes: int = 6, spread: int = 150, **kw) -> RGraph:
    """A graph of mul, div and neg (scalars or arrays, broadcasting, constants) whose inputs have magnitudes
    anywhere from 1e-spread to 1e+spread (default 150): values and gradients far from 1, where an intermediate such as b * b
    under- or overflows although the result is an ordinary float."""
    inputs, nodes = Gen(src, max_nodes, ("mul", "div", "neg", "mul", "div"), src.boolean(0.4)).graph()
    for inp in inputs:
        inp.kind, inp.exp10 = "scale", src.integer(-spread, spread)
    return finish(src, inputs, nodes, file_shapes=False, **kw)


def random_rows(g: RGraph, src, max_rows: int = 4) -> dict[str, np.ndarray]:
    """Per-row values (rows, *shape) for a random non-empty subset of the inputs, in their domains."""
    rng = np.random.default_rng(src.seed())
    n = src.integer(1, max_rows)
    chosen = [i for i in g.inputs if src.boolean(0.5)] or [src.choice(g.inputs)]
    return {
        i.name: np.array([i.sample(rng) for _ in range(n)], dtype=np.float64).reshape((n, *i.shape)) for i in chosen
    }


def row(columns: dict[str, np.ndarray], i: int) -> dict[str, Any]:
    """Row i of the columns as overrides for Graph.run: floats for scalars, arrays otherwise."""
    out = {}
    for k, v in columns.items():
        x = np.asarray(v)[i]
        out[k] = float(x) if x.ndim == 0 else x.copy()
    return out


# --- comparing ------------------------------------------------------------------------------------------


def same_bits(a, b) -> bool:
    """Same shape and float64 values; NaN equals NaN; 0.0 and -0.0 told apart."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or not np.array_equal(a, b, equal_nan=True):
        return False
    zero = (a == 0) & (b == 0)
    return bool((np.signbit(a[zero]) == np.signbit(b[zero])).all())


def close(got, expected, rtol: float, atol: float) -> bool:
    """Same shape; |got - expected| <= atol + rtol |expected| elementwise; NaN equals NaN; inf equals inf."""
    a, b = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if a.shape != b.shape:
        return False
    both_nan = np.isnan(a) & np.isnan(b)
    same_inf = np.isinf(a) & (a == b)
    with np.errstate(all="ignore"):
        ok = np.abs(a - b) <= atol + rtol * np.abs(b)
    return bool((ok | both_nan | same_inf).all())


def magnitude(*vs) -> float:
    m = 0.0
    for v in vs:
        if v is None:
            continue
        a = np.abs(np.asarray(v, dtype=np.float64))
        a = a[np.isfinite(a)]
        if a.size:
            m = max(m, float(a.max()))
    return m


def batch_vs_single(graph, columns: dict, outputs: list[str], exact: bool, rtol: float = 1e-12) -> list[str]:
    """Row i of graph.run_batch(columns) against graph.run(row i), every output and every gradient.

    exact: bit for bit (a graph of scalars); otherwise within rtol of the single run, with an absolute
    allowance of rtol times the magnitude of the values involved (the largest value of the node and of
    everything it is computed from, or the largest gradient of that output anywhere in the graph): BLAS and
    numpy's pairwise sums may add in another order in a batch. Returns the mismatches as text (empty: equal).
    """
    plan = graph.plan
    n = len(next(iter(columns.values())))
    problems: list[str] = []
    try:
        res = graph.run_batch(columns, output=outputs)
    except Exception as e:  # single runs of every row work (checked below): so must the batch
        for i in range(n):
            graph.run(row(columns, i), output=outputs)
        return [f"run_batch raised {type(e).__name__}: {e}"]
    if res.rows != n:
        problems.append(f"BatchResult.rows = {res.rows}, expected {n}")
    grad_inputs = [i.name for i in plan.inputs if i.grad]
    if list(res.grads) != list(outputs):
        problems.append(f"BatchResult.grads has outputs {list(res.grads)}, expected {outputs}")
    for i in range(n):
        over = row(columns, i)
        single = graph.run(over, output=outputs)
        anc = _ancestral_magnitudes(plan, single)
        for o in res.outputs:
            got = res.outputs[o]
            want = single.value(o)
            if np.shape(got)[:1] != (n,) or np.shape(got)[1:] != np.shape(want):
                problems.append(
                    f"output {o}: batch shape {np.shape(got)}, expected ({n}, *{np.shape(want)}) (a leading row axis)"
                )
                continue
            if not (same_bits(got[i], want) if exact else close(got[i], want, rtol, rtol * anc[o])):
                problems.append(
                    f"row {i} output {o}: batch {_show(got[i])} != single run {_show(want)}  [row {_show_row(over)}]"
                )
        for o in outputs:
            per_input = res.grads.get(o, {})
            if list(per_input) != grad_inputs:
                problems.append(f"d{o}/d*: batch has {list(per_input)}, expected {grad_inputs}")
            gmag = magnitude(*[single.grad(nm, o) for nm in plan.names])
            for x in grad_inputs:
                if x not in per_input:
                    continue
                got, want = per_input[x], single.grad(x, o)
                if np.shape(got)[:1] != (n,) or np.shape(got)[1:] != np.shape(want):
                    problems.append(f"d{o}/d{x}: batch shape {np.shape(got)}, expected ({n}, *{np.shape(want)})")
                    continue
                if not (same_bits(got[i], want) if exact else close(got[i], want, rtol, rtol * gmag)):
                    problems.append(
                        f"row {i} d{o}/d{x}: batch {_show(got[i])} != single run {_show(want)}  [row {_show_row(over)}]"
                    )
    return list(dict.fromkeys(problems))  # a shape problem once, not once per row


def _ancestral_magnitudes(plan, result) -> dict[str, float]:
    """For each named slot: the largest |value| of it and of everything it is computed from."""
    mags: dict[int, float] = {}
    n_in = len(plan.inputs)
    for s in range(n_in):
        mags[s] = magnitude(result.values[s])
    for st in plan.steps:
        m = magnitude(result.values[st.slot])
        for a in st.args:
            m = max(m, mags.get(a, abs(plan.constants[a - plan.n_named]) if a >= plan.n_named else 0.0))
        mags[st.slot] = m
    return {plan.names[s]: m for s, m in mags.items()}


def _show(v) -> str:
    if isinstance(v, np.ndarray) and v.ndim:
        return np.array2string(v, precision=17, separator=", ").replace("\n", "")
    return repr(float(v))


def _show_row(over: dict) -> str:
    return ", ".join(f"{k}={_show(v)}" for k, v in over.items())
