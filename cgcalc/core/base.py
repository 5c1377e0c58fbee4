"""What every layer stands on: the Layer base class, shapes, numpy's broadcasting rule and `sum_to`.

A layer sees plain values — Python floats, or numpy arrays of the shapes its `views` asked for — and returns
gradients of the shapes broadcasting gave them; the runtime reduces them (`sum_to`) to each input's shape.
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple, Protocol

from ..errors import GraphError, ShapeError

Shape = tuple[int, ...]
ONE = 1.0  # the seed of backward, d out / d out (for an array output, a float that stands for ones)


def sum_to(g: Any, shape: Shape) -> Any:
    """Sum g down to `shape`: over the leading axes broadcasting added and the axes broadcast from 1
    (DeZero's utils.sum_to)."""
    gshape = g.shape if hasattr(g, "shape") else ()
    if gshape == shape:
        return g
    lead = len(gshape) - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and gshape[lead + i] != 1)
    return g.sum(axis=axes, keepdims=True).reshape(shape)


def broadcast_shapes(*shapes: Shape) -> Shape:
    """numpy's broadcasting rule on shapes, without numpy."""
    if len(shapes) == 2 and shapes[0] == shapes[1]:
        return shapes[0]
    ndim = max(len(s) for s in shapes)
    out = []
    for i in range(-ndim, 0):
        dims = {s[i] for s in shapes if len(s) >= -i} - {1}
        if len(dims) > 1:
            raise ShapeError("cannot broadcast shapes " + " and ".join(fmt_shape(s) for s in shapes))
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def fmt_shape(shape: Shape) -> str:
    return "()" if not shape else "(" + ", ".join(map(str, shape)) + (",)" if len(shape) == 1 else ")")


class Layout(NamedTuple):
    """How a layer sees one node for given input shapes (the runtime's business, not the layer's): the shape
    each input is viewed as, the shape of what forward returns, and the attributes forward runs with. Shapes
    are per row: in a batch the runtime puts the row axis in front of each."""

    views: tuple[Shape, ...]
    out_view: Shape
    out: Shape  # the node's shape (out_view, reshaped)
    attrs: dict


class Ops(Protocol):
    """What a layer's `backward_ops(g, dout, out, ins, attrs)` writes its rule with (core.terms.Terms): every
    argument and result is a term of the derivative graph (an int), made by one of these. `limits`: write
    backward's special cases (pow's limits at x = 0) as ops too; false for the textbook formulas."""

    limits: bool

    def add(self, a: int, b: int) -> int: ...
    def sub(self, a: int, b: int) -> int: ...
    def mul(self, a: int, b: int) -> int: ...
    def div(self, a: int, b: int) -> int: ...
    def neg(self, a: int) -> int: ...
    def const(self, v: float) -> int: ...
    def op(self, op: str, *args: int, **attrs: Any) -> int: ...
    def sum_to(self, t: int, shape: Shape) -> int: ...
    def shape(self, t: int) -> Shape: ...
    def value(self, t: int) -> float | None: ...


class Layer:
    """One op, as in the book's common/layers.py: forward() caches what backward() needs; backward(dout)
    returns one gradient per input (broadcast shapes allowed: the runtime sums them back)."""

    op: ClassVar[str] = ""
    arity: ClassVar[int] = 1
    variadic: ClassVar[bool] = False  # True: any number of inputs, at least `arity` (concat, stack)
    symbol: ClassVar[str] = ""  # label of the op circle in exported figures
    forward_rule: ClassVar[str] = ""
    backward_rule: ClassVar[str] = ""
    doc: ClassVar[str] = ""  # more than the rules say (an attribute's form, examples): `cgcalc ops OP`
    attr_defaults: ClassVar[dict[str, Any]] = {}
    elementwise: ClassVar[bool] = True  # the output's shape is the inputs' broadcast: scalars in, scalar out
    takes_grad: ClassVar[bool] = True  # False: the output is an index or a count (argmax), with no gradient
    __slots__ = ()  # each layer names what it caches: smaller and faster than a __dict__ per node

    # An op with kinks (abs, clip, maximum, max, argmax...) also has sides(self) -> tuple: after forward, where
    # its inputs are against its kinks (sign(x), sign(a - b), the tied maxima...); `check` compares it at x + h
    # and x - h to tell a kink from a wrong gradient. relu's is found by its class.

    def backward_some(self, dout: Any, needs: tuple[bool, ...]) -> tuple:
        """backward(dout) when only the inputs marked in `needs` want a gradient (a run that differentiates some
        inputs only: a fit's parameters, not its data). A layer whose unwanted gradients cost work (affine's dx
        of the data, softmax_with_loss's dt of the labels) leaves them out (None); the wanted ones are
        backward's own, bit for bit. By default: all of them, as backward gives them."""
        return self.backward(dout)

    @classmethod
    def check_attrs(cls, attrs: dict[str, Any]) -> dict[str, Any]:
        """Validated attributes with defaults filled in (raises GraphError with a message only)."""
        if attrs:
            from ..errors import suggest

            bad = next(iter(attrs))
            raise GraphError(f"op '{cls.op}' takes no attribute '{bad}'" + suggest(bad, ["in", "op"]))
        return {}

    @classmethod
    def layout(cls, shapes: list[Shape], attrs: dict[str, Any]) -> Layout:
        """Elementwise: every input viewed at the common rank (so that in a batch, row broadcasts against
        row), the output the inputs' broadcast. Raises ShapeError (a message only) when they do not fit."""
        out = broadcast_shapes(*shapes)
        rank = len(out)
        views = tuple(s if len(s) == rank else (1,) * (rank - len(s)) + s for s in shapes)
        return Layout(views, out, out, attrs)
