"""Elementwise math for the layers: exp, log, tanh, sigmoid, pow, div, sin, cos, sqrt, relu and its mask,
maximum, minimum, clip, sign, select, each taking a Python float or a numpy array.

On a float, the C library's math (no numpy import: a graph of scalars starts fast), with IEEE results where
Python would raise (x / 0, exp(1000), sqrt(-1), sin(inf)). On an array, numpy's own (SIMD) ufuncs — or, inside
`exact_arrays()`, the float functions element by element, so that a batch of a scalar graph gives bit for bit
what single runs give (numpy's exp/log/tanh/pow/sin/cos may differ from the C library in the last bit for some
inputs; sqrt needs no such care: IEEE 754 rounds it correctly everywhere). The runtime chooses.

maximum, minimum and clip give +0.0 for a zero result, never -0.0: which zero numpy's SIMD maximum picks for
max(-0.0, 0.0) depends on the machine (x86's maxpd takes the second operand, ARM's fmax +0.0), and a batch must
give what a single run gives.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

Number = Any  # a Python float, or a numpy array

INF = math.inf
NAN = math.nan


def _odd_integer(b: float) -> bool:
    return b == b and abs(b) != INF and b == int(b) and int(b) % 2 == 1


def f_exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return INF


def f_log(x: float) -> float:
    if x > 0:
        return math.log(x)
    if x == 0:
        return -INF
    return NAN  # negative, or NaN


def f_tanh(x: float) -> float:
    return math.tanh(x)


def f_sigmoid(x: float) -> float:
    # exp of a non-positive number never overflows: stable at +-1000
    e = math.exp(-abs(x))
    return 1.0 / (1.0 + e) if x >= 0 else e / (1.0 + e)


def f_pow(a: float, b: float) -> float:
    """C99 pow() semantics, without Python's exceptions or complex results."""
    try:
        return math.pow(a, b)
    except OverflowError:
        return -INF if a < 0 and _odd_integer(b) else INF
    except ValueError:
        if a == 0:  # 0 ** negative: a pole
            return -INF if math.copysign(1.0, a) < 0 and _odd_integer(b) else INF
        return NAN  # negative base, fractional exponent


def f_sin(x: float) -> float:
    try:
        return math.sin(x)
    except ValueError:  # sin(+-inf)
        return NAN


def f_cos(x: float) -> float:
    try:
        return math.cos(x)
    except ValueError:
        return NAN


def f_sqrt(x: float) -> float:
    return math.sqrt(x) if x >= 0 else NAN  # -0.0 >= 0: sqrt(-0.0) is -0.0, as IEEE (and numpy) has it


def f_div(a: float, b: float) -> float:
    """IEEE 754 division: x/0 is +-inf, 0/0 is NaN."""
    try:
        return a / b
    except ZeroDivisionError:
        if a != a or a == 0:
            return NAN
        return math.copysign(INF, a) * math.copysign(1.0, b)


class _Numpy:
    """Array math; callers run it under np.errstate(all='ignore') and report non-finite values themselves."""

    def __init__(self) -> None:
        import numpy as np

        self.np = np
        self.exp, self.log, self.tanh, self.pow, self.div = np.exp, np.log, np.tanh, np.power, np.true_divide
        self.sin, self.cos = np.sin, np.cos

    def sigmoid(self, x):
        np = self.np
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _elementwise(f):
    def apply(*xs):
        import numpy as np

        arrays = np.broadcast_arrays(*(np.asarray(x, dtype=np.float64) for x in xs))
        flat = [a.ravel().tolist() for a in arrays]
        out = np.fromiter(map(f, *flat), dtype=np.float64, count=arrays[0].size)
        return out.reshape(arrays[0].shape)

    return apply


class _Exact(_Numpy):
    """Arrays, but exp/log/tanh/sigmoid/pow/sin/cos element by element with the C library: equal to the float
    path."""

    def __init__(self) -> None:
        super().__init__()
        self.exp, self.log, self.tanh = _elementwise(f_exp), _elementwise(f_log), _elementwise(f_tanh)
        self.pow, self.sigmoid = _elementwise(f_pow), _elementwise(f_sigmoid)
        self.sin, self.cos = _elementwise(f_sin), _elementwise(f_cos)


_kernels: dict[bool, _Numpy] = {}
_exact: ContextVar[bool] = ContextVar("exact", default=False)


def _arrays() -> _Numpy:
    exact = _exact.get()
    k = _kernels.get(exact)
    if k is None:
        k = _kernels[exact] = _Exact() if exact else _Numpy()
    return k


@contextmanager
def exact_arrays(on: bool = True) -> Iterator[None]:
    """Within: array exp/log/tanh/sigmoid/pow/sin/cos element by element with the C library (per thread and task)."""
    token = _exact.set(on)
    try:
        yield
    finally:
        _exact.reset(token)


# Each takes floats or arrays. `type(x) is float` first: a graph of scalars pays one test per call.
def exp(x: Number) -> Number:
    return f_exp(x) if type(x) is float else _arrays().exp(x)


def log(x: Number) -> Number:
    return f_log(x) if type(x) is float else _arrays().log(x)


def tanh(x: Number) -> Number:
    return f_tanh(x) if type(x) is float else _arrays().tanh(x)


def sigmoid(x: Number) -> Number:
    return f_sigmoid(x) if type(x) is float else _arrays().sigmoid(x)


def pow(a: Number, b: Number) -> Number:  # noqa: A001 - the op's name
    return f_pow(a, b) if type(a) is float and type(b) is float else _arrays().pow(a, b)


def div(a: Number, b: Number) -> Number:
    return f_div(a, b) if type(a) is float and type(b) is float else _arrays().div(a, b)


def sin(x: Number) -> Number:
    return f_sin(x) if type(x) is float else _arrays().sin(x)


def cos(x: Number) -> Number:
    return f_cos(x) if type(x) is float else _arrays().cos(x)


def sqrt(x: Number) -> Number:
    if type(x) is float:
        return f_sqrt(x)
    import numpy as np

    return np.sqrt(x)


def sign(x: Number) -> Number:
    """-1, 0 or 1; NaN stays NaN; the sign of either zero is +0.0 (as numpy's sign gives it)."""
    if type(x) is float:
        return 1.0 if x > 0 else -1.0 if x < 0 else 0.0 if x == 0 else x
    import numpy as np

    return np.sign(x)


def maximum(a: Number, b: Number) -> Number:
    """The larger of a and b, elementwise; NaN if either is (numpy's maximum); a zero is +0.0."""
    if type(a) is float and type(b) is float:
        return (a if a > b or a != a else b) + 0.0
    import numpy as np

    return _plus_zero(np.maximum(a, b))


def minimum(a: Number, b: Number) -> Number:
    """The smaller of a and b, elementwise; NaN if either is (numpy's minimum); a zero is +0.0."""
    if type(a) is float and type(b) is float:
        return (a if a < b or a != a else b) + 0.0
    import numpy as np

    return _plus_zero(np.minimum(a, b))


def clip(x: Number, lo: float | None, hi: float | None) -> Number:
    """x limited to [lo, hi] (None: no limit on that side; lo <= hi); NaN stays NaN; a zero is +0.0."""
    if type(x) is float:
        if lo is not None and x < lo:
            x = lo
        if hi is not None and x > hi:
            x = hi
        return x + 0.0
    import numpy as np

    return _plus_zero(np.clip(x, lo, hi))


def _plus_zero(y: Any) -> Any:
    """y with -0.0 made +0.0 (in place when y is an array numpy just made): x + 0.0 is x for every other x."""
    if type(y) is float or not hasattr(y, "ndim") or y.ndim == 0:
        return y + 0.0
    import numpy as np

    return np.add(y, 0.0, out=y)


def select(cond: Number, a: Number, b: Number) -> Number:
    """a where cond is true (a bool, or a number that is not 0: NaN counts as true, as in numpy's where), else b."""
    if (type(cond) is bool or type(cond) is float) and type(a) is float and type(b) is float:
        return a if cond != 0 else b
    import numpy as np

    out = np.where(cond, a, b)
    return float(out) if out.ndim == 0 else out  # (numpy scalars in: a float out, as for floats)


def relu(x: Number) -> Number:
    if type(x) is float:
        return 0.0 if x <= 0 else x  # NaN passes through, as in torch
    import numpy as np

    return np.where(x <= 0, 0.0, x)


def positive_mask(x: Number, dout: Number) -> Number:
    """dout where x > 0, else 0: relu's backward (the book's dout[mask] = 0, without writing into dout)."""
    if type(x) is float:
        return 0.0 if x <= 0 else dout
    import numpy as np

    return np.where(x <= 0, 0.0, dout)


def where(cond: Any, a: Number, b: Number) -> Number:
    if type(cond) is bool:
        return a if cond else b
    import numpy as np

    return np.where(cond, a, b)


def indicator(mask: Any, value: bool = True) -> Number:
    """1.0 where mask is `value`, else 0.0 (a bool, or a boolean array): select(mask, 1.0, 0.0) without numpy's
    where, which is slow on a mask of no pattern (a branch per element)."""
    if type(mask) is bool:
        return 1.0 if mask is value else 0.0
    import numpy as np

    return (mask if value else ~mask).astype(np.float64)


def zeros_like(x: Number) -> Number:
    """0 in x's shape: 0.0 for a float."""
    if type(x) is float:
        return 0.0
    import numpy as np

    return np.zeros(np.shape(x))
