"""The book's optimizers (Deep Learning from Scratch, common/optimizer.py), one plain class each, with the same
arithmetic in the same order, so that a trajectory is the book's bit for bit: SGD, Momentum, Nesterov, AdaGrad,
RMSprop (both with the book's 1e-7 in the denominator), Adam (its bias-corrected learning rate lr_t, and 1e-7).

`update(params, grads)` returns new values rather than writing into the old ones (the book writes in place:
`params[key] -= ...`; the result is the same float): the parameters before a step stay whole until the step is
done, so an interrupted run still has a consistent set to save. Values are Python floats or numpy arrays.
"""

from __future__ import annotations

import math
from typing import Any

Values = dict[str, Any]  # parameter name -> float or ndarray


def _sqrt(x):
    if type(x) is float:
        return math.sqrt(x)  # a graph of scalars needs no numpy (both are correctly rounded)
    import numpy as np

    return np.sqrt(x)


class SGD:
    """p <- p - lr * g"""

    def __init__(self, lr: float = 0.01) -> None:
        self.lr = lr

    def update(self, params: Values, grads: Values) -> Values:
        return {k: p - self.lr * grads[k] for k, p in params.items()}


class Momentum:
    """v <- momentum * v - lr * g;  p <- p + v"""

    def __init__(self, lr: float = 0.01, momentum: float = 0.9) -> None:
        self.lr, self.momentum = lr, momentum
        self.v: Values | None = None

    def update(self, params: Values, grads: Values) -> Values:
        if self.v is None:
            self.v = {k: _zeros_like(p) for k, p in params.items()}
        out = {}
        for k, p in params.items():
            self.v[k] = v = self.momentum * self.v[k] - self.lr * grads[k]
            out[k] = p + v
        return out


class Nesterov:
    """v <- momentum * v - lr * g;  p <- p + momentum² v - (1 + momentum) lr g  (arxiv.org/abs/1212.0901)"""

    def __init__(self, lr: float = 0.01, momentum: float = 0.9) -> None:
        self.lr, self.momentum = lr, momentum
        self.v: Values | None = None

    def update(self, params: Values, grads: Values) -> Values:
        if self.v is None:
            self.v = {k: _zeros_like(p) for k, p in params.items()}
        m, out = self.momentum, {}
        for k, p in params.items():
            g = grads[k]
            v = self.v[k] * m
            self.v[k] = v = v - self.lr * g
            out[k] = (p + m * m * v) - (1 + m) * self.lr * g
        return out


class AdaGrad:
    """h <- h + g²;  p <- p - lr g / (sqrt(h) + 1e-7)"""

    def __init__(self, lr: float = 0.01) -> None:
        self.lr = lr
        self.h: Values | None = None

    def update(self, params: Values, grads: Values) -> Values:
        if self.h is None:
            self.h = {k: _zeros_like(p) for k, p in params.items()}
        out = {}
        for k, p in params.items():
            g = grads[k]
            self.h[k] = h = self.h[k] + g * g
            out[k] = p - self.lr * g / (_sqrt(h) + 1e-7)
        return out


class RMSprop:
    """h <- decay h + (1 - decay) g²;  p <- p - lr g / (sqrt(h) + 1e-7)"""

    def __init__(self, lr: float = 0.01, decay_rate: float = 0.99) -> None:
        self.lr, self.decay_rate = lr, decay_rate
        self.h: Values | None = None

    def update(self, params: Values, grads: Values) -> Values:
        if self.h is None:
            self.h = {k: _zeros_like(p) for k, p in params.items()}
        out = {}
        for k, p in params.items():
            g = grads[k]
            h = self.h[k] * self.decay_rate
            self.h[k] = h = h + (1 - self.decay_rate) * g * g
            out[k] = p - self.lr * g / (_sqrt(h) + 1e-7)
        return out


class Adam:
    """m <- m + (1 - beta1)(g - m);  v <- v + (1 - beta2)(g² - v);  p <- p - lr_t m / (sqrt(v) + 1e-7), with
    lr_t = lr sqrt(1 - beta2^t) / (1 - beta1^t) at step t (arxiv.org/abs/1412.6980v8)"""

    def __init__(self, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999) -> None:
        self.lr, self.beta1, self.beta2 = lr, beta1, beta2
        self.iter = 0
        self.m: Values | None = None
        self.v: Values | None = None

    def update(self, params: Values, grads: Values) -> Values:
        if self.m is None:
            self.m = {k: _zeros_like(p) for k, p in params.items()}
            self.v = {k: _zeros_like(p) for k, p in params.items()}
        self.iter += 1
        lr_t = self.lr * math.sqrt(1.0 - self.beta2**self.iter) / (1.0 - self.beta1**self.iter)
        out = {}
        for k, p in params.items():
            g = grads[k]
            self.m[k] = m = self.m[k] + (1 - self.beta1) * (g - self.m[k])
            self.v[k] = v = self.v[k] + (1 - self.beta2) * (g**2 - self.v[k])
            out[k] = p - lr_t * m / (_sqrt(v) + 1e-7)
        return out


class Packed:
    """An optimizer run on the array parameters packed end to end into one vector: the same arithmetic, element
    by element (every operation of the rules above is elementwise), so the same floats as parameter by
    parameter, in one numpy call per operation instead of one per parameter (on a small net, a step's update
    is mostly those calls). The parameters handed out are views of the vector; a float parameter (a graph of
    scalars) is updated as it is."""

    def __init__(self, opt: Any, params: Values) -> None:
        import numpy as np

        self.opt, self.order = opt, list(params)
        self.arrays = [k for k, v in params.items() if type(v) is not float]
        self.floats = [k for k, v in params.items() if type(v) is float]
        self.parts: list[tuple[str, int, int, tuple]] = []
        start = 0
        for k in self.arrays:
            size = int(np.size(params[k]))
            self.parts.append((k, start, start + size, np.shape(params[k])))
            start += size
        self.flat = None  # the vector the last update handed out views of, and those views
        self.views: Values = {}

    def update(self, params: Values, grads: Values) -> Values:
        import numpy as np

        arrays, floats = self.arrays, self.floats
        flat, views = self.flat, self.views
        if flat is None or not all(params[k] is views[k] for k in arrays):  # not the views the last update gave
            flat = np.concatenate([params[k].ravel() for k in arrays])
        g = np.concatenate([grads[k].ravel() for k in arrays])
        # one update of the vector (named "": no input is) and of the float parameters
        new = self.opt.update({"": flat, **{k: params[k] for k in floats}}, {"": g, **{k: grads[k] for k in floats}})
        self.flat = flat = new[""]
        self.views = views = {k: flat[a:b].reshape(shape) for k, a, b, shape in self.parts}
        return {k: views[k] if k in views else new[k] for k in self.order} if floats else views


def packed(opt: Any, params: Values) -> Any:
    """`opt` packed (see Packed) when there are two array parameters or more; else `opt` itself."""
    return Packed(opt, params) if sum(type(v) is not float for v in params.values()) > 1 else opt


def _zeros_like(p):
    if type(p) is float:
        return 0.0
    import numpy as np

    return np.zeros_like(p)


OPTIMIZERS = {
    "sgd": SGD,
    "momentum": Momentum,
    "nesterov": Nesterov,
    "adagrad": AdaGrad,
    "rmsprop": RMSprop,
    "adam": Adam,
}
DEFAULT_LR = {"sgd": 0.01, "momentum": 0.01, "nesterov": 0.01, "adagrad": 0.01, "rmsprop": 0.01, "adam": 0.001}
DEFAULT_LR["newton"] = 1.0  # DeZero's step 29: x <- x - f'(x) / f''(x), a full step
NAMES = (*OPTIMIZERS, "newton")


def make(name: str, lr: float, momentum: float = 0.9, beta1: float = 0.9, beta2: float = 0.999, decay_rate=0.99):
    """The optimizer called `name`, with the hyperparameters it takes."""
    cls = OPTIMIZERS[name]
    if cls in (Momentum, Nesterov):
        return cls(lr, momentum)
    if cls is Adam:
        return cls(lr, beta1, beta2)
    if cls is RMSprop:
        return cls(lr, decay_rate)
    return cls(lr)
