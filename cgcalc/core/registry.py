"""Every op by name: the one table that the compiler, the validator, `cgcalc ops` and the docs read."""

from __future__ import annotations

from .base import Layer
from .layers import (
    AddLayer,
    DivLayer,
    ExpLayer,
    LogLayer,
    MulLayer,
    NegLayer,
    PowLayer,
    Relu,
    Sigmoid,
    SubLayer,
    TanhLayer,
)
from .nn_layers import Affine, MatMul, MeanLayer, SoftmaxWithLoss, SumLayer
from .prob_layers import LogSoftmax, OneHot, Softmax
from .shape_layers import BroadcastTo, Identity, Reshape, Step, SumTo, Transpose

# fmt: off
LAYERS: dict[str, type[Layer]] = {
    cls.op: cls
    for cls in (
        AddLayer, SubLayer, MulLayer, DivLayer, PowLayer,    # elementwise, two inputs
        NegLayer, ExpLayer, LogLayer, Relu, Sigmoid, TanhLayer,  # elementwise, one input
        MatMul, Affine, SumLayer, MeanLayer, SoftmaxWithLoss,    # arrays
        Softmax, LogSoftmax, OneHot,                             # probabilities
        Reshape, Transpose, SumTo, BroadcastTo, Identity, Step,  # what derivative graphs are made of
    )
}
# fmt: on
