"""Every op by name: the one table that the compiler, the validator, `cgcalc ops` and the docs read."""

from __future__ import annotations

from .base import Layer
from .conv_grad_layers import Col2im, Im2col, MaxMask
from .conv_layers import AvgPool, Conv2d, MaxPool
from .index_layers import Concat, GetItem, GetItemGrad, Stack
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
from .math_layers import (
    AbsLayer,
    ClipLayer,
    CosLayer,
    LeakyRelu,
    Maximum,
    Minimum,
    SignLayer,
    SinLayer,
    SqrtLayer,
    SquareLayer,
    Where,
)
from .nn_layers import Affine, MatMul, MeanLayer, SoftmaxWithLoss, SumLayer
from .prob_layers import Accuracy, CrossEntropyError, LogSoftmax, MeanSquaredError, OneHot, Softmax
from .reduce_layers import ArgMax, LogSumExp, MaxLayer, MinLayer
from .shape_layers import BroadcastTo, Identity, Reshape, Step, SumTo, Transpose
from .train_layers import BatchNorm, Dropout

# fmt: off
LAYERS: dict[str, type[Layer]] = {
    cls.op: cls
    for cls in (
        AddLayer, SubLayer, MulLayer, DivLayer, PowLayer,    # elementwise, two inputs
        NegLayer, ExpLayer, LogLayer, Relu, Sigmoid, TanhLayer,  # elementwise, one input
        SinLayer, CosLayer, SqrtLayer, AbsLayer, SquareLayer,    # elementwise, one input: the formulas people write
        LeakyRelu, ClipLayer, Maximum, Minimum, Where,           # with attributes, two and three inputs
        MatMul, Affine, SumLayer, MeanLayer, SoftmaxWithLoss,    # arrays
        MaxLayer, MinLayer, LogSumExp, ArgMax,                   # reductions
        Softmax, LogSoftmax, OneHot,                             # probabilities
        BatchNorm, Dropout,                                      # chapter 6
        Conv2d, MaxPool, AvgPool,                                # chapter 7
        CrossEntropyError, MeanSquaredError, Accuracy,           # chapter 4's losses, and accuracy
        GetItem, Concat, Stack,                                  # indexing and joining: x[0], x[:, 1:3]
        Reshape, Transpose, SumTo, BroadcastTo, Identity, Step,  # what derivative graphs are made of
        SignLayer, Im2col, Col2im, MaxMask,                      # ... and those of abs, maximum, chapter 7
        GetItemGrad,                                             # ... and getitem's
    )
}
# fmt: on
