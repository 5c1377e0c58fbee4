"""The pieces that make a fit's step cheap, each against what it must equal.

- core.program.Program: forward and backward bit for bit those of core.runtime (random graphs with every op,
  broadcasting, N-D operands, several outputs: tests/randgraphs.py).
- core.subplan.toward: the gradients of the inputs asked for are a full run's, bit for bit; no other input or node
  gets one, and a node of the data alone passes none on (its layer is not asked to).
- Layer.backward_some: the wanted gradients are backward's, bit for bit; the unwanted ones are not computed.
- softmax_with_loss: a zero label where the logit is -inf adds 0 (0 * log 0 is 0), a loss of 0 is +0.0; the
  expected values are numpy formulas written here.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import randgraphs as rg
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import cgcalc
from cgcalc.core.nn_layers import Affine, MatMul, SoftmaxWithLoss
from cgcalc.core.program import Program
from cgcalc.core.runtime import Session, backward
from cgcalc.core.subplan import toward

PHASES = tuple(Phase) if os.environ.get("CGCALC_PROPS_SHRINK") == "1" else (Phase.explicit, Phase.reuse, Phase.generate)
PROPERTY = settings(
    max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), phases=PHASES, report_multiple_bugs=False
)


def same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return rg.same_bits(a, b)


def run_both(graph: cgcalc.Graph, output: str):
    """The runtime's forward and backward, and the Program's, on the file's values: (values, grads) each."""
    plan = graph.plan
    s = Session(plan)
    with s.errstate():
        layers = s.forward()
        ref = backward(plan, s.values, layers, s.layouts, plan.index[output])
        program = Program(plan, list(plan.shapes) + [()] * len(plan.constants), s.layouts)
        values = list(Session(plan).values)
        got = program.backward(values, program.forward(values), plan.index[output])
    return (s.values, ref), (values, got)


@PROPERTY
@given(r=st.randoms(use_true_random=False))
def test_a_program_computes_what_forward_and_backward_compute_bit_for_bit(r):
    g = rg.random_graph(rg.RandomSource(r))
    graph = cgcalc.loads(g.text, json=g.json)
    for out in g.outputs:
        (v1, g1), (v2, g2) = run_both(graph, out)
        n = graph.plan.n_named
        bad = [graph.plan.names[i] for i in range(n) if not same(v1[i], v2[i])]
        assert not bad, f"values differ at {bad}\n{g.text}"
        bad = [graph.plan.names[i] for i in range(n) if not same(g1[i], g2[i])]
        assert not bad, f"gradients of {out} differ at {bad}\n{g.text}"


def test_a_program_locates_a_layers_error_at_its_node():
    g = cgcalc.loads("inputs:\n  x: [1.0, 2.0]\n  t: {value: 7, grad: false}\nnodes:\n  y: softmax_with_loss(x, t)\n")
    plan = g.plan
    s = Session(plan)
    program = Program(plan, list(plan.shapes) + [()] * len(plan.constants), s.layouts)
    with pytest.raises(
        cgcalc.GraphError, match=r"node 'y' \(softmax_with_loss\): softmax_with_loss: class index 7.0 is not"
    ) as e:
        program.forward(list(s.values))
    assert e.value.line == 5


@PROPERTY
@given(r=st.randoms(use_true_random=False))
def test_toward_some_inputs_gives_their_gradients_and_no_others(r):
    src = rg.RandomSource(r)
    g = rg.random_graph(src)
    graph = cgcalc.loads(g.text, json=g.json)
    plan = graph.plan
    takes = [i.name for i in plan.inputs if i.grad]
    if not takes:
        return
    wrt = [n for n in takes if src.boolean(0.5)] or [src.choice(takes)]
    out = g.outputs[0]
    full = graph.run(output=out)
    part = toward(plan, out, wrt)
    s = Session(part)
    with s.errstate():
        layers = s.forward()
        grads = s.backward(layers, out)
    for i, inp in enumerate(plan.inputs):
        if inp.name in wrt:
            assert same(grads[i], full.grad(inp.name)), (inp.name, g.text)
        else:
            assert grads[i] is None, (inp.name, g.text)
    assert same(s.values[part.index[out]], full.value(out)) and part.outputs == (out,)


def test_toward_passes_no_gradient_along_a_path_of_the_data_alone():
    g = cgcalc.loads(
        "inputs:\n  x: [1.0, 2.0, 3.0]\n  w: [0.5, -1.0, 2.0]\nnodes:\n"
        "  xn: (x - 2) * 0.5\n  loss: sum(xn * w)\n  other: sum(x)\n"
    )
    part = toward(g.plan, "loss", ["w"])
    assert [st.name for st in part.steps if not st.name.startswith("xn.")] == ["xn", "loss.1", "loss"]
    needs = {st.name: st.needs for st in part.steps}
    assert needs["loss.1"] == (False, True)  # xn * w: only w's side
    assert not any(True in needs[n] for n in needs if n.startswith("xn"))  # the data's nodes: none
    s = Session(part)
    layers = s.forward()
    grads = s.backward(layers, "loss")
    np.testing.assert_array_equal(grads[part.index["w"]], [-0.5, 0.0, 0.5])  # d/dw sum(xn * w) = xn
    assert grads[part.index["x"]] is None and grads[part.index["xn"]] is None


@pytest.mark.parametrize(
    "layer, shapes",
    [
        (Affine, [(5, 4), (4, 3), (3,)]),
        (Affine, [(4,), (4, 3), (3,)]),
        (Affine, [(2, 5, 4), (4, 3), (5, 1)]),
        (MatMul, [(5, 4), (4, 3)]),
        (MatMul, [(2, 5, 4), (4, 3)]),
    ],
)
def test_backward_some_gives_the_wanted_gradients_of_backward_and_skips_the_others(layer, shapes):
    rng = np.random.default_rng(4)
    xs = [rng.normal(size=s) for s in layer.layout(shapes, {}).views]  # as the runtime hands them over
    full = layer()
    y = full.forward(*xs)
    dout = rng.normal(size=np.shape(y))
    ref = full.backward(dout)
    for mask in range(1, 2 ** len(shapes)):
        needs = tuple(bool(mask >> j & 1) for j in range(len(shapes)))
        some = layer()
        some.forward(*xs)
        got = some.backward_some(dout, needs)
        for j, need in enumerate(needs):
            if need:
                assert rg.same_bits(got[j], ref[j]), (needs, j)
            elif j < 2:  # x and W: not computed (b's is dout itself, free)
                assert got[j] is None, (needs, j)


def test_softmax_with_loss_backward_some_and_a_float_seed():
    rng = np.random.default_rng(5)
    x, t = rng.normal(size=(4, 3)), np.eye(3)[[0, 2, 1, 1]]
    ref = SoftmaxWithLoss(samples=True)
    ref.forward(x, t)
    dx, dt = ref.backward(np.float64(1.0))  # an array seed: the reshaped path
    some = SoftmaxWithLoss(samples=True)
    some.forward(x, t)
    dx2, dt2 = some.backward_some(1.0, (True, False))
    assert rg.same_bits(dx2, dx) and dt2 is None
    # the formulas, written here: dx = (softmax(x) - t) / N, dt = -log softmax(x) / N
    e = np.exp(x - x.max(axis=1, keepdims=True))
    y = e / e.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(dx, (y - t) / 4, rtol=1e-14, atol=1e-17)
    np.testing.assert_allclose(dt, -np.log(y) / 4, rtol=1e-14)


def test_softmax_with_loss_a_zero_label_at_a_minus_infinite_logit_adds_nothing():
    x = np.array([[2.0, -np.inf, 0.5], [-np.inf, 1.0, 1.0]])
    t = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    with np.errstate(all="ignore"):  # (as the runtime runs a layer: 0 * -inf is NaN, silently)
        loss = SoftmaxWithLoss(samples=True).forward(x, t)
    # -log softmax at the label, by hand: row 0 over {2, 0.5}, row 1 over {1, 1}
    expected = (np.log1p(np.exp(-1.5)) + np.log(2.0)) / 2
    assert loss == pytest.approx(expected, rel=1e-15) and np.isfinite(loss)
    g = cgcalc.loads(
        "inputs:\n  x: [-.inf, 0.0]\n  t: {value: [0, 1], grad: false}\nnodes:\n  y: softmax_with_loss(x, t)\n"
    )
    assert g.run().value("y") == 0.0  # exp(-inf) = 0: softmax is [0, 1], the label's log is log 1 = 0


def test_softmax_with_loss_of_exactly_zero_is_plus_zero():
    # no label at all (t all zeros): the loss is 0, and +0.0 (a -0.0 makes 1/loss -inf)
    for x, t in [(np.array([1.0, 2.0]), np.zeros(2)), (np.array([[1.0, 2.0], [0.0, 3.0]]), np.zeros((2, 2)))]:
        loss = SoftmaxWithLoss(samples=x.ndim == 2).forward(x, t)
        assert loss == 0.0 and not np.signbit(loss)
