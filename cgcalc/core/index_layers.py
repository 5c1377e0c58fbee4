"""Indexing and joining: getitem (`x[0]`, `x[:, 1]`, `x[1:3]`, `x[..., 0]` in expressions), concat and stack —
and getitem_grad, getitem's backward as an op (zeros with dout placed at the index), for derivative graphs.

getitem is numpy's basic indexing: whole numbers, slices and one `...`, so that no element is taken twice and
its backward places dout (dx[index] = dout) without adding. Its `index` is written as a file writes it: a list
with one item per indexed axis, each a whole number, a slice mapping {start:, stop:, step:} (any key left out
or null) or "...". Indices, axes and shapes are per row, as every layout's: in a batch the row axis stays in
front of each value and the layer indexes behind it.
"""

from __future__ import annotations

from typing import Any

from ..errors import GraphError, ShapeError
from .base import Layer, Layout, Ops, Shape, fmt_shape
from .kernels import Number
from .prob_layers import _axis_attrs
from .shape_layers import _is_int, _only, _shape_attr

ELLIPSIS = "..."
_SLICE_KEYS = ("start", "stop", "step")
_ITEM = "a whole number, a slice {start:, stop:, step:} or '...'"


def _slice_item(v: dict) -> dict:
    for key, n in v.items():
        if key not in _SLICE_KEYS:
            raise GraphError(f"getitem: a slice has the keys start, stop and step, not {key!r}")
        if n is not None and not _is_int(n):
            raise GraphError(f"getitem: a slice's {key} must be a whole number or null, got {n!r}")
    if v.get("step") == 0:
        raise GraphError("getitem: a slice's step must not be 0")
    return {k: v[k] for k in _SLICE_KEYS if v.get(k) is not None}  # null and missing are one: left out


def check_index(v: Any) -> tuple:
    """An `index` attribute as a file writes it, checked: a tuple of whole numbers, slice mappings (their null
    keys left out) and at most one '...' (raises GraphError with a message only)."""
    if v is None:
        raise GraphError("getitem needs its index: x[...] in an expression, or index: [...] (see: cgcalc ops getitem)")
    items = v if isinstance(v, (list, tuple)) else [v]
    if len(items) > 32:
        raise GraphError(f"getitem: {len(items)} indices; an array has at most 32 axes")
    out = []
    for item in items:
        if _is_int(item) or item == ELLIPSIS:
            out.append(item)
        elif isinstance(item, dict):
            out.append(_slice_item(item))
        else:
            raise GraphError(f"getitem: each index is {_ITEM}, got {item!r}")
    if out.count(ELLIPSIS) > 1:
        raise GraphError("getitem: an index can have only one '...'")
    return tuple(out)


def index_text(index: Any) -> str:
    """An index as Python writes it between the brackets: `0, 1:3, ...` (slices as mappings or as pairs)."""
    parts = []
    for item in index:
        if _is_int(item) or item == ELLIPSIS:
            parts.append(str(item))
            continue
        s = dict(item)
        text = ":".join("" if s.get(k) is None else str(s[k]) for k in _SLICE_KEYS)
        parts.append(text[:-1] if text.endswith(":") else text)  # 1:3, not 1:3:
    return ", ".join(parts)


def resolve(index: tuple, shape: Shape) -> tuple[tuple, Shape]:
    """numpy's index of `index` on an array of `shape` (ints made >= 0, '...' spelled out as full slices) and
    the shape it gives; raises ShapeError naming the shape when an index does not fit."""
    n_axes = len(index) - index.count(ELLIPSIS)
    if n_axes > len(shape):
        axes = f"{n_axes} ax{'is' if n_axes == 1 else 'es'}"
        raise ShapeError(f"getitem: [{index_text(index)}] indexes {axes}, but {fmt_shape(shape)} has {len(shape)}")
    full: list = []
    out: list[int] = []
    axis = 0
    for item in index:
        if item == ELLIPSIS:
            k = len(shape) - n_axes
            full += [slice(None)] * k
            out += shape[axis : axis + k]
            axis += k
        elif _is_int(item):
            n = shape[axis]
            if not -n <= item < n:
                raise ShapeError(f"getitem: index {item} is out of range for axis {axis} of {fmt_shape(shape)}")
            full.append(item % n)
            axis += 1
        else:
            s = slice(item.get("start"), item.get("stop"), item.get("step"))
            full.append(s)
            out.append(len(range(*s.indices(shape[axis]))))
            axis += 1
    return tuple(full), tuple(out) + shape[axis:]


def _behind(lead: int, index: tuple) -> tuple:
    return (slice(None),) * lead + index if lead else index


def _scalar(d: Any) -> Any:
    """A gradient of no axes as a float, as a scalar input's: the runtime would sum a 0-d array to its shape,
    and numpy's sum of -0.0 is 0.0 (in a batch it keeps its row axis, and its sign)."""
    return float(d) if getattr(d, "ndim", 1) == 0 else d


class GetItem(Layer):
    op, symbol = "getitem", "[ ]"
    elementwise = False
    forward_rule = (
        "x[index], numpy's basic indexing: whole numbers (the axis dropped), slices and one `...` (x[0], x[:, 1], "
        "x[1:3], x[::-1], x[..., 0]; `index` in mapping form: see cgcalc ops getitem)"
    )
    backward_rule = "dx = zeros of x's shape with dout at x[index] (dx[index] = dout: no element is taken twice)"
    attr_defaults = {"index": None}
    doc = (
        "`index` is a list with one item per indexed axis, as in Python's x[i, j, ...]: the axes past the last\n"
        "item are kept whole, and a single item may be written without the list. Each item is one of:\n"
        "  2                             a whole number: that element of the axis, which is dropped (-1: the last)\n"
        "  {start: 1, stop: 3, step: 1}  a slice, start:stop:step; any key left out or null ({} is a whole axis)\n"
        '  "..."                         as many whole axes as it takes (at most one)\n'
        "\n"
        "expression    mapping form\n"
        "x[0]          {op: getitem, in: [x], index: [0]}\n"
        "x[:, 1]       {op: getitem, in: [x], index: [{}, 1]}\n"
        "x[1:3]        {op: getitem, in: [x], index: [{start: 1, stop: 3}]}\n"
        "x[::-1]       {op: getitem, in: [x], index: [{step: -1}]}\n"
        'x[..., 0]     {op: getitem, in: [x], index: ["...", 0]}\n'
        "\n"
        "An index out of range, or more items than x has axes, is an error before anything runs."
    )
    __slots__ = ("index", "rank", "x_shape")

    def __init__(self, index: tuple = (), rank: int = 0) -> None:
        self.index, self.rank = index, rank  # numpy's index, per row (see resolve)

    @classmethod
    def check_attrs(cls, attrs):
        _only(cls.op, attrs, cls.attr_defaults)
        return {"index": check_index(attrs.get("index"))}

    @classmethod
    def layout(cls, shapes, attrs):
        (sa,) = shapes
        index, out = resolve(attrs["index"], sa)
        return Layout((sa,), out, out, {"index": index, "rank": len(sa)})

    def forward(self, x: Number) -> Number:
        import numpy as np

        x = np.asarray(x)
        self.x_shape = x.shape
        return x[_behind(x.ndim - self.rank, self.index)]

    def backward(self, dout: Number) -> tuple[Number]:
        import numpy as np

        dx = np.zeros(self.x_shape)
        dx[_behind(len(self.x_shape) - self.rank, self.index)] = dout
        return (_scalar(dx),)

    @staticmethod
    def backward_ops(g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        (x,) = ins
        return (g.op("getitem_grad", dout, index=list(attrs["index"]), shape=g.shape(x)),)


class GetItemGrad(Layer):
    op, symbol = "getitem_grad", "[ ]ᵀ"
    elementwise = False
    forward_rule = "zeros of `shape` with d placed at [index]: getitem's backward, in derivative graphs"
    backward_rule = "dd = dout[index]  (a getitem)"
    attr_defaults = {"index": None, "shape": None}
    __slots__ = ("index", "shape", "rank", "lead")

    def __init__(self, index: tuple = (), shape: Shape = (), rank: int = 0) -> None:
        self.index, self.shape, self.rank = index, shape, rank

    @classmethod
    def check_attrs(cls, attrs):
        _only(cls.op, attrs, cls.attr_defaults)
        if attrs.get("shape") is None:
            raise GraphError("getitem_grad needs the shape of getitem's x: getitem_grad(d, index=[...], shape=[...])")
        return {"index": check_index(attrs.get("index")), "shape": _shape_attr(cls.op, attrs["shape"])}

    @classmethod
    def layout(cls, shapes, attrs):
        (sd,) = shapes
        index, want = resolve(attrs["index"], attrs["shape"])
        if sd != want:
            where = f"x[{index_text(attrs['index'])}] of {fmt_shape(attrs['shape'])}"
            raise ShapeError(f"getitem_grad: d must have the shape of {where}, {fmt_shape(want)}; got {fmt_shape(sd)}")
        shape = attrs["shape"]
        return Layout((sd,), shape, shape, {"index": index, "shape": shape, "rank": len(sd)})

    def forward(self, d: Number) -> Number:
        import numpy as np

        lead = np.shape(d)[: np.ndim(d) - self.rank]
        self.lead = len(lead)
        z = np.zeros(lead + self.shape)
        z[_behind(self.lead, self.index)] = d
        return z

    def backward(self, dout: Number) -> tuple[Number]:
        import numpy as np

        return (_scalar(np.asarray(dout)[_behind(self.lead, self.index)]),)  # (a scalar output's seed is a float)

    @staticmethod
    def backward_ops(g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        return (g.op("getitem", dout, index=list(attrs["index"])),)


def _piece(axis: int, item: Any) -> list:
    """The index of `item` on `axis`, every axis before it whole."""
    return [{}] * axis + [item]


class _Joined(Layer):
    """An op that joins any number of inputs along one `axis` (default 0): concat, stack."""

    arity = 1
    variadic = True
    elementwise = False
    attr_defaults = {"axis": 0}
    __slots__ = ()

    @classmethod
    def check_attrs(cls, attrs):
        return _axis_attrs(cls, attrs)


class Concat(_Joined):
    op, symbol = "concat", "concat"
    forward_rule = (
        "the inputs joined along `axis` (default 0), numpy's concatenate: of one shape but on that axis; "
        "concat(a, b, ..., axis=0)"
    )
    backward_rule = "each input's own piece of dout: dout split along `axis` at the inputs' sizes (getitem of slices)"
    __slots__ = ("axis", "sizes")

    def __init__(self, axis: int = -1, sizes: tuple[int, ...] = ()) -> None:
        self.axis, self.sizes = axis, sizes  # the axis from the end: per row, in a batch

    @classmethod
    def layout(cls, shapes, attrs):
        first, axis = shapes[0], attrs["axis"]
        r = len(first)
        if not r:
            raise ShapeError("concat: a scalar has no axis to join along (stack makes a new one)")
        if not -r <= axis < r:
            raise ShapeError(f"concat: axis {axis} is out of range for {fmt_shape(first)}")
        a = axis % r
        for s in shapes[1:]:
            if len(s) != r or s[:a] != first[:a] or s[a + 1 :] != first[a + 1 :]:
                raise ShapeError(
                    f"concat along axis {axis}: {fmt_shape(first)} and {fmt_shape(s)} differ on another axis"
                    if len(s) == r
                    else f"concat: {fmt_shape(first)} and {fmt_shape(s)} have different numbers of axes"
                )
        out = first[:a] + (sum(s[a] for s in shapes),) + first[a + 1 :]
        return Layout(tuple(shapes), out, out, {"axis": a - r, "sizes": tuple(s[a] for s in shapes)})

    def forward(self, *xs: Number) -> Number:
        import numpy as np

        return np.concatenate(xs, axis=self.axis)

    def backward(self, dout: Number) -> tuple:
        import numpy as np

        cuts, at = [], 0
        for n in self.sizes[:-1]:
            at += n
            cuts.append(at)
        return tuple(np.split(dout, cuts, axis=self.axis))

    @staticmethod
    def backward_ops(g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        r = len(g.shape(ins[0]))
        a = attrs["axis"] % r
        pieces, at = [], 0
        for x in ins:
            n = g.shape(x)[a]
            item = {"start": at, "stop": at + n} if at else {"stop": n}
            pieces.append(g.op("getitem", dout, index=_piece(a, item)))
            at += n
        return tuple(pieces)


class Stack(_Joined):
    op, symbol = "stack", "stack"
    forward_rule = "the inputs, all of one shape, along a new axis `axis` (default 0), numpy's stack: stack(a, b, ...)"
    backward_rule = "dx_i = dout at index i of `axis` (a getitem)"
    __slots__ = ("axis",)

    def __init__(self, axis: int = -1) -> None:
        self.axis = axis  # the new axis from the end: per row, in a batch

    @classmethod
    def layout(cls, shapes, attrs):
        first, axis = shapes[0], attrs["axis"]
        for s in shapes[1:]:
            if s != first:
                raise ShapeError(f"stack: every input must have one shape, not {fmt_shape(first)} and {fmt_shape(s)}")
        r = len(first) + 1
        if not -r <= axis < r:
            raise ShapeError(f"stack: axis {axis} is out of range for a new axis of {fmt_shape(first)}")
        a = axis % r
        out = first[:a] + (len(shapes),) + first[a:]
        return Layout(tuple(shapes), out, out, {"axis": a - r})

    def forward(self, *xs: Number) -> Number:
        import numpy as np

        return np.stack(xs, axis=self.axis)

    def backward(self, dout: Number) -> tuple:
        import numpy as np

        return tuple(map(_scalar, np.moveaxis(dout, self.axis, 0)))

    @staticmethod
    def backward_ops(g: Ops, dout: int, out: int, ins: tuple[int, ...], attrs: dict) -> tuple:
        a = attrs["axis"] % (len(g.shape(ins[0])) + 1)
        return tuple(g.op("getitem", dout, index=_piece(a, i)) for i in range(len(ins)))
