"""Every op by name: the one table that the compiler, the validator, `cgcalc ops` and the docs read."""

from __future__ import annotations

from .base import Layer
from .conv_layers import AvgPool, Col2im, Conv2d, Im2col, MaxMask, MaxPool
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
from .train_layers import BatchNorm, Dropout

# fmt: off
LAYERS: dict[str, type[Layer]] = {
    cls.op: cls
    for cls in (
        AddLayer, SubLayer, MulLayer, DivLayer, PowLayer,    # elementwise, two inputs
        NegLayer, ExpLayer, LogLayer, Relu, Sigmoid, TanhLayer,  # elementwise, one input
        MatMul, Affine, SumLayer, MeanLayer, SoftmaxWithLoss,    # arrays
        Softmax, LogSoftmax, OneHot,                             # probabilities
        BatchNorm, Dropout,                                      # chapter 6
        Conv2d, MaxPool, AvgPool,                                # chapter 7
        Reshape, Transpose, SumTo, BroadcastTo, Identity, Step,  # what derivative graphs are made of
        Im2col, Col2im, MaxMask,                                 # ... and those of chapter 7
    )
}
# fmt: on
