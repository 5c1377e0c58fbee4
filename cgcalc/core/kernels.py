"""Elementwise math in three flavours, chosen once per run.

FLOAT works on Python floats with the C library's math (no numpy import: a graph of scalars starts fast).
NUMPY works on arrays with numpy's own (SIMD) ufuncs. EXACT works on arrays but applies the FLOAT
functions element by element, so that a batch of a scalar graph gives bit-for-bit what single runs give
(numpy's exp/log/tanh/pow differ from the C library in the last bit for some inputs).
"""

from __future__ import annotations

import math

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


def f_relu(x: float) -> float:
    return 0.0 if x <= 0 else x  # NaN passes through, as in torch


def f_relu_grad(x: float, dout: float) -> float:
    return 0.0 if x <= 0 else dout


class FloatKernel:
    name = "float"
    exp = staticmethod(f_exp)
    log = staticmethod(f_log)
    tanh = staticmethod(f_tanh)
    sigmoid = staticmethod(f_sigmoid)
    pow = staticmethod(f_pow)
    div = staticmethod(f_div)
    relu = staticmethod(f_relu)
    relu_grad = staticmethod(f_relu_grad)


class NumpyKernel:
    """Array math; callers run it under np.errstate(all='ignore') and report non-finite values themselves."""

    name = "numpy"

    def __init__(self) -> None:
        import numpy as np

        self.np = np
        self.exp = np.exp
        self.log = np.log
        self.tanh = np.tanh
        self.pow = np.power
        self.div = np.true_divide

    def sigmoid(self, x):
        np = self.np
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))

    def relu(self, x):
        return self.np.where(x <= 0, 0.0, x)

    def relu_grad(self, x, dout):
        return self.np.where(x <= 0, 0.0, dout)


def _elementwise(f):
    def apply(*xs):
        import numpy as np

        arrays = np.broadcast_arrays(*(np.asarray(x, dtype=np.float64) for x in xs))
        shape = arrays[0].shape
        flat = [a.ravel().tolist() for a in arrays]
        out = np.fromiter(map(f, *flat), dtype=np.float64, count=arrays[0].size)
        return out.reshape(shape)

    return apply


class ExactKernel(NumpyKernel):
    """Arrays, but exp/log/tanh/sigmoid/pow element by element with the C library: equal to FLOAT."""

    name = "exact"

    def __init__(self) -> None:
        super().__init__()
        self.exp = _elementwise(f_exp)
        self.log = _elementwise(f_log)
        self.tanh = _elementwise(f_tanh)
        self.pow = _elementwise(f_pow)
        self.sigmoid = _elementwise(f_sigmoid)


FLOAT = FloatKernel()

# The seed of backward, d out/d out. Layers may test `dout is ONE` to skip multiplying by it (x * 1.0 == x
# exactly, so no bit changes); in array runs it stands for an array of ones of the output's shape.
ONE = 1.0
_cache: dict[str, object] = {}


def array_kernel(exact: bool = False):
    """The NUMPY or EXACT kernel (imports numpy on first use)."""
    key = "exact" if exact else "numpy"
    if key not in _cache:
        _cache[key] = ExactKernel() if exact else NumpyKernel()
    return _cache[key]
