"""Elementwise math for the layers: exp, log, tanh, sigmoid, pow, div, relu and its mask, each taking a
Python float or a numpy array.

On a float, the C library's math (no numpy import: a graph of scalars starts fast), with IEEE results where
Python would raise (x / 0, exp(1000)). On an array, numpy's own (SIMD) ufuncs — or, inside `exact_arrays()`, the
float functions element by element, so that a batch of a scalar graph gives bit for bit what single runs give
(numpy's exp/log/tanh/pow differ from the C library in the last bit for some inputs). The runtime chooses.
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
    """Arrays, but exp/log/tanh/sigmoid/pow element by element with the C library: equal to the float path."""

    def __init__(self) -> None:
        super().__init__()
        self.exp, self.log, self.tanh = _elementwise(f_exp), _elementwise(f_log), _elementwise(f_tanh)
        self.pow, self.sigmoid = _elementwise(f_pow), _elementwise(f_sigmoid)


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
    """Within: array exp/log/tanh/sigmoid/pow element by element with the C library (per thread and task)."""
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


def zeros_like(x: Number) -> Number:
    """0 in x's shape: 0.0 for a float."""
    if type(x) is float:
        return 0.0
    import numpy as np

    return np.zeros(np.shape(x))
