"""Graph.fit, the library side of `cgcalc fit` (issue 14): the anchors' numbers, every optimizer's first steps
against the book's update rules written out here, rows (one sample per run, and a graph written for a whole
batch), the trained graph, and the errors.

The oracles: the book's chapter 4 `gradient_descent` (x0² + x1² from (-3, 4), lr 0.1, 100 steps), DeZero step 28
(Rosenbrock from (0, 2), lr 0.001) and step 29 (Newton on x⁴ - 2x² from 2), each to the digits published."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import cgcalc
from cgcalc.errors import CgcalcError, RowsError, UsageError
from cgcalc.fit import Diverged

ROOT = Path(__file__).resolve().parent.parent
GRAPHS = ROOT / "graphs"

SQUARES = "inputs: {x0: -3.0, x1: 4.0}\nnodes:\n  f: x0**2 + x1**2\n"  # the book's function_2
ROSENBROCK = "inputs: {x0: 0.0, x1: 2.0}\nnodes:\n  y: 100 * (x1 - x0 ** 2) ** 2 + (x0 - 1) ** 2\n"
NEWTON = "inputs: {x: 2.0}\nnodes:\n  y: x**4 - 2*x**2\n"
# a gradient that is exact in floats, so that the trajectories below can be compared bit for bit:
# d/dw sum(k w w) = k w + w k = 2 k w exactly, d/db b*b = 2 b exactly
QUADRATIC = """\
inputs:
  w: [1.5, -2.0, 0.25]
  k: {value: [1.0, 2.0, 3.0], grad: false}
  b: -0.75
nodes:
  loss: sum(k * w * w) + b * b
"""


def test_book_chapter_4_gradient_descent():
    """gradient_descent(function_2, init_x=[-3, 4], lr=0.1, step_num=100) prints (-6.111107928998789e-10,
    8.148143905314271e-10). The book's gradient there is numerical (central differences, h = 1e-4): with
    gradient="numerical" fit computes it the same way, and gives those floats exactly. Backprop's exact 2x does
    not share that rounding: 8e-13 and 3e-12 relative away, and equal bit for bit to the book's loop run on 2x."""
    g = cgcalc.loads(SQUARES)
    book = (-6.111107928998789e-10, 8.148143905314271e-10)
    numerical = g.fit(["x0", "x1"], lr=0.1, steps=100, gradient="numerical")
    assert (numerical.params["x0"], numerical.params["x1"]) == book
    r = g.fit(["x0", "x1"], lr=0.1, steps=100)
    for got, want in zip((r.params["x0"], r.params["x1"]), book):
        assert math.isclose(got, want, rel_tol=5e-12, abs_tol=0)
    x = np.array([-3.0, 4.0])
    for _ in range(100):
        x -= 0.1 * (2 * x)
    assert (r.params["x0"], r.params["x1"]) == (x[0], x[1])
    assert r.steps == 100 and len(r.losses) == 100
    assert r.losses[:3] == [25.0, 16.0, 10.24]  # 25 (0.8^k)^2, each before its step


def test_the_numerical_gradient_of_arrays_and_rows_is_close_to_backprop():
    g = cgcalc.loads(QUADRATIC)
    a = g.fit(["w", "b"], steps=5, lr=0.05, gradient="numerical")
    b = g.fit(["w", "b"], steps=5, lr=0.05)
    np.testing.assert_allclose(a.params["w"], b.params["w"], rtol=1e-7)
    rows = line_rows(20)
    a = cgcalc.loads(LINE).fit(["w", "b"], rows, epochs=2, batch_size=6, gradient="numerical")
    b = cgcalc.loads(LINE).fit(["w", "b"], rows, epochs=2, batch_size=6)
    assert a.params["w"] == pytest.approx(b.params["w"], rel=1e-7)


def test_dezero_step_28_rosenbrock():
    g = cgcalc.loads(ROSENBROCK)
    run = g.run()
    assert (run.grad("x0"), run.grad("x1")) == (-2.0, 400.0)
    one = g.fit(["x0", "x1"], lr=0.001, steps=1).params
    assert (round(one["x0"], 10), round(one["x1"], 10)) == (0.002, 1.6)
    two = g.fit(["x0", "x1"], lr=0.001, steps=2).params
    assert (round(two["x0"], 10), round(two["x1"], 10)) == (0.0052759968, 1.2800008)
    # the book's loop prints x before each update: its last line, after 9,999 of its 10,000 iterations
    last = g.fit(["x0", "x1"], lr=0.001, steps=9999).params
    assert (round(last["x0"], 8), round(last["x1"], 8)) == (0.99449622, 0.98900063)


def test_dezero_step_29_newton():
    """x <- x - f'(x) / f''(x), f''(x) from the Hessian (the cached order-2 derivative graph)."""
    g = cgcalc.loads(NEWTON)
    xs = [g.fit(["x"], optimizer="newton", steps=n).params["x"] if n else 2.0 for n in range(6)]
    assert xs == [
        2.0,
        1.4545454545454546,
        1.1510467893775467,
        1.0253259289766978,
        1.0009084519430513,
        1.0000012353089454,
    ]


def test_newton_on_several_parameters_solves_the_hessian():
    """On a quadratic, one full Newton step lands on the minimum: H⁻¹ g over all parameter elements at once."""
    g = cgcalc.loads(
        "inputs:\n  x: 3.0\n  w: [1.0, -1.0]\n  e: {value: [1.0, 0.0], grad: false}\n"
        "nodes:\n  q: (x - 1)**2 + 10 * (x + sum(w * e))**2 + sum(w * w)\n"
    )
    r = g.fit(["x", "w"], optimizer="newton", steps=1)
    # the minimum: 2(x - 1) + 20(x + w0) = 0, 20(x + w0) + 2 w0 = 0, w1 = 0
    a = np.array([[22.0, 20.0], [20.0, 22.0]])
    x, w0 = np.linalg.solve(a, [2.0, 0.0])
    assert r.params["x"] == pytest.approx(x, abs=1e-12)
    np.testing.assert_allclose(r.params["w"], [w0, 0.0], atol=1e-12)
    assert g.fit(["x", "w"], optimizer="newton", steps=2).losses[1] == pytest.approx(r.outputs["q"], abs=1e-12)


# --- the book's optimizers, written out as common/optimizer.py has them ----------------------------


class BookSGD:
    def __init__(self, lr):
        self.lr = lr

    def update(self, params, grads):
        for key in params:
            params[key] -= self.lr * grads[key]


class BookMomentum:
    def __init__(self, lr, momentum=0.9):
        self.lr, self.momentum, self.v = lr, momentum, None

    def update(self, params, grads):
        if self.v is None:
            self.v = {k: np.zeros_like(v) for k, v in params.items()}
        for key in params:
            self.v[key] = self.momentum * self.v[key] - self.lr * grads[key]
            params[key] += self.v[key]


class BookNesterov:
    def __init__(self, lr, momentum=0.9):
        self.lr, self.momentum, self.v = lr, momentum, None

    def update(self, params, grads):
        if self.v is None:
            self.v = {k: np.zeros_like(v) for k, v in params.items()}
        for key in params:
            self.v[key] *= self.momentum
            self.v[key] -= self.lr * grads[key]
            params[key] += self.momentum * self.momentum * self.v[key]
            params[key] -= (1 + self.momentum) * self.lr * grads[key]


class BookAdaGrad:
    def __init__(self, lr):
        self.lr, self.h = lr, None

    def update(self, params, grads):
        if self.h is None:
            self.h = {k: np.zeros_like(v) for k, v in params.items()}
        for key in params:
            self.h[key] += grads[key] * grads[key]
            params[key] -= self.lr * grads[key] / (np.sqrt(self.h[key]) + 1e-7)


class BookRMSprop:
    def __init__(self, lr, decay_rate=0.99):
        self.lr, self.decay_rate, self.h = lr, decay_rate, None

    def update(self, params, grads):
        if self.h is None:
            self.h = {k: np.zeros_like(v) for k, v in params.items()}
        for key in params:
            self.h[key] *= self.decay_rate
            self.h[key] += (1 - self.decay_rate) * grads[key] * grads[key]
            params[key] -= self.lr * grads[key] / (np.sqrt(self.h[key]) + 1e-7)


class BookAdam:
    def __init__(self, lr, beta1=0.9, beta2=0.999):
        self.lr, self.beta1, self.beta2, self.iter, self.m, self.v = lr, beta1, beta2, 0, None, None

    def update(self, params, grads):
        if self.m is None:
            self.m = {k: np.zeros_like(v) for k, v in params.items()}
            self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.iter += 1
        lr_t = self.lr * np.sqrt(1.0 - self.beta2**self.iter) / (1.0 - self.beta1**self.iter)
        for key in params:
            self.m[key] += (1 - self.beta1) * (grads[key] - self.m[key])
            self.v[key] += (1 - self.beta2) * (grads[key] ** 2 - self.v[key])
            params[key] -= lr_t * self.m[key] / (np.sqrt(self.v[key]) + 1e-7)


BOOK = {
    "sgd": lambda: BookSGD(0.1),
    "momentum": lambda: BookMomentum(0.1, 0.8),
    "nesterov": lambda: BookNesterov(0.1, 0.8),
    "adagrad": lambda: BookAdaGrad(0.5),
    "rmsprop": lambda: BookRMSprop(0.05, 0.9),
    "adam": lambda: BookAdam(0.3, 0.8, 0.99),
}
OPTIONS = {
    "sgd": {"lr": 0.1},
    "momentum": {"lr": 0.1, "momentum": 0.8},
    "nesterov": {"lr": 0.1, "momentum": 0.8},
    "adagrad": {"lr": 0.5},
    "rmsprop": {"lr": 0.05, "decay_rate": 0.9},
    "adam": {"lr": 0.3, "beta1": 0.8, "beta2": 0.99},
}


@pytest.mark.parametrize("name", list(BOOK))
def test_each_optimizers_first_steps_are_the_books_bit_for_bit(name):
    g = cgcalc.loads(QUADRATIC)
    k = np.array([1.0, 2.0, 3.0])
    book = BOOK[name]()
    params = {"w": np.array([1.5, -2.0, 0.25]), "b": np.array(-0.75)}
    for steps in range(1, 6):
        grads = {"w": 2 * k * params["w"], "b": 2 * params["b"]}
        book.update(params, grads)
        r = g.fit(["w", "b"], optimizer=name, steps=steps, **OPTIONS[name])
        assert r.params["w"].tolist() == params["w"].tolist(), (name, steps)
        assert r.params["b"] == float(params["b"]), (name, steps)
        assert type(r.params["b"]) is float  # a scalar stays a Python float


# two array parameters and a float one: the update runs on the arrays packed into one vector (optimizers.Packed);
# again exact gradients (k, j and the values dyadic): 2 k w, 2 j v, 2 b
PACKED = """\
inputs:
  w: [1.5, -2.0, 0.25]
  v: [[0.5, -1.0], [2.0, 0.125]]
  k: {value: [1.0, 2.0, 3.0], grad: false}
  j: {value: [[1.0, 0.5], [2.0, 4.0]], grad: false}
  b: -0.75
nodes:
  loss: sum(k * w * w) + sum(j * v * v) + b * b
"""


@pytest.mark.parametrize("name", list(BOOK))
def test_the_packed_update_of_several_arrays_is_the_books_parameter_by_parameter_bit_for_bit(name, monkeypatch):
    from cgcalc.fit import optimizers

    packed = []
    monkeypatch.setattr(optimizers.Packed, "update", _counted(optimizers.Packed.update, packed))
    g = cgcalc.loads(PACKED)
    k, j = np.array([1.0, 2.0, 3.0]), np.array([[1.0, 0.5], [2.0, 4.0]])
    book = BOOK[name]()
    params = {"w": np.array([1.5, -2.0, 0.25]), "v": np.array([[0.5, -1.0], [2.0, 0.125]]), "b": np.array(-0.75)}
    for steps in range(1, 8):
        book.update(params, {"w": 2 * k * params["w"], "v": 2 * j * params["v"], "b": 2 * params["b"]})
        r = g.fit(["w", "v", "b"], optimizer=name, steps=steps, **OPTIONS[name])
        assert r.params["w"].tolist() == params["w"].tolist(), (name, steps)
        assert r.params["v"].tolist() == params["v"].tolist(), (name, steps)
        assert r.params["v"].shape == (2, 2) and type(r.params["b"]) is float
        assert r.params["b"] == float(params["b"]), (name, steps)
    assert packed  # the packed path ran


def _counted(f, calls: list):
    def wrapper(*a, **kw):
        calls.append(1)
        return f(*a, **kw)

    return wrapper


def test_the_default_learning_rates_are_the_books():
    g = cgcalc.loads(QUADRATIC)
    for name, lr in [("sgd", 0.01), ("momentum", 0.01), ("nesterov", 0.01), ("adagrad", 0.01), ("rmsprop", 0.01)]:
        assert g.fit(["w"], optimizer=name, steps=1).lr == lr
    assert g.fit(["w"], optimizer="adam", steps=1).lr == 0.001
    assert g.fit(["b"], optimizer="newton", steps=1).lr == 1.0


def test_a_graph_of_scalars_fits_without_numpy():
    import subprocess
    import sys

    code = (
        "import sys, cgcalc\n"
        f"g = cgcalc.loads({ROSENBROCK!r})\n"
        "r = g.fit(['x0', 'x1'], lr=0.001, steps=50, optimizer='adam')\n"
        "print('numpy' in sys.modules, type(r.params['x0']).__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "float"]


# --- rows -----------------------------------------------------------------------------------------

LINE = """\
inputs:
  x: {value: 0.0, grad: false}
  t: {value: 0.0, grad: false}
  w: 0.5
  b: 0.0
nodes:
  loss: (w * x + b - t) ** 2
"""
# the same model written for a whole batch: x and t are N numbers, the loss averages
LINE_BATCH = """\
inputs:
  x: {value: [0.0, 1.0], grad: false}
  t: {value: [0.0, 1.0], grad: false}
  w: 0.5
  b: 0.0
nodes:
  loss: mean((w * x + b - t) ** 2)
"""


def line_rows(n: int = 37, seed: int = 3) -> dict:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, n)
    return {"x": x, "t": 3 * x - 1 + rng.normal(0, 0.1, n)}


def test_rows_a_step_is_the_mean_of_the_rows_losses_and_gradients():
    rows = line_rows(8)
    g = cgcalc.loads(LINE)
    r = g.fit(["w", "b"], rows, lr=0.1, steps=1, batch_size=8)
    x, t = rows["x"], rows["t"]
    e = 0.5 * x + 0.0 - t
    assert r.mode == "rows"
    assert r.losses[0] == pytest.approx(np.mean(e**2), rel=1e-15)
    assert r.params["w"] == pytest.approx(0.5 - 0.1 * np.mean(2 * e * x), rel=1e-15)
    assert r.params["b"] == pytest.approx(0.0 - 0.1 * np.mean(2 * e), rel=1e-15)


def test_rows_one_run_batch_per_minibatch(monkeypatch):
    import cgcalc.core.vectorized as vectorized

    calls = []
    real = vectorized.run_batch

    def counting(plan, columns, *a, **kw):
        calls.append(len(next(iter(columns.values()))))
        return real(plan, columns, *a, **kw)

    monkeypatch.setattr(vectorized, "run_batch", counting)
    r = cgcalc.loads(LINE).fit(["w", "b"], line_rows(37), epochs=2, batch_size=10)
    # 4 minibatches an epoch (10, 10, 10, 7), then one run of every row for the trained outputs
    assert calls == [10, 10, 10, 7] * 2 + [37]
    assert r.steps == 8 and r.epochs == 2 and len(r.losses) == 2


def test_rows_a_graph_written_for_a_whole_batch_stacks_the_minibatch():
    """The same data through the one-sample graph (run_batch, means) and the batch graph (x becomes B numbers):
    the same trajectory, to rounding."""
    rows = line_rows(37)
    one = cgcalc.loads(LINE).fit(["w", "b"], rows, lr=0.05, epochs=20, batch_size=8, seed=5)
    batch = cgcalc.loads(LINE_BATCH).fit(["w", "b"], rows, lr=0.05, epochs=20, batch_size=8, seed=5)
    assert (one.mode, batch.mode) == ("rows", "batch")
    np.testing.assert_allclose(one.losses, batch.losses, rtol=1e-12)
    assert batch.params["w"] == pytest.approx(one.params["w"], rel=1e-12)
    assert batch.params["w"] == pytest.approx(3.0, abs=0.05) and batch.params["b"] == pytest.approx(-1, abs=0.05)


def test_rows_the_shuffle_is_seeded():
    rows = line_rows(37)
    g = cgcalc.loads(LINE)
    a = g.fit(["w", "b"], rows, epochs=3, batch_size=5, seed=1)
    b = g.fit(["w", "b"], rows, epochs=3, batch_size=5, seed=1)
    c = g.fit(["w", "b"], rows, epochs=3, batch_size=5, seed=2)
    assert a.losses == b.losses and a.params == b.params
    assert a.losses != c.losses
    # the order is numpy's default_rng(seed).permutation, one per epoch
    rng = np.random.default_rng(1)
    first = rng.permutation(37)[:5]
    x, t = rows["x"][first], rows["t"][first]
    assert a.log[0][1] == pytest.approx(np.mean((0.5 * x - t) ** 2), rel=1e-15) or a.per == "epoch"


def test_rows_steps_go_on_into_the_next_epoch():
    r = cgcalc.loads(LINE).fit(["w", "b"], line_rows(37), steps=10, batch_size=10)
    assert (r.steps, r.epochs, r.per, len(r.losses)) == (10, 3, "step", 10)


def test_the_two_layer_net_trains_on_rows_of_x_and_t(tmp_path):
    """The book's graph written for a batch (x 2×3, t 2×2 one-hot) takes rows of x (3 numbers) and t (2)."""
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (64, 3))
    label = (x[:, 0] + x[:, 1] > 0).astype(int)
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps({"x": a.tolist(), "t": np.eye(2)[c].tolist()}) + "\n" for a, c in zip(x, label)))
    g = cgcalc.load(GRAPHS / "two_layer_net.yaml")
    r = g.fit(["W1", "b1", "W2", "b2"], path, optimizer="adam", lr=0.05, epochs=30, batch_size=16)
    assert r.mode == "batch" and r.rows == 64
    assert r.losses[-1] < 0.3 * r.losses[0]


def test_the_shipped_iris_example_learns():
    g = cgcalc.load(GRAPHS / "iris_net.yaml")
    r = g.fit(
        ["W1", "b1", "W2", "b2"], GRAPHS / "iris.jsonl", optimizer="adam", lr=0.02, epochs=100, batch_size=15, seed=0
    )
    assert r.rows == 150 and r.steps == 1000
    assert r.outputs["accuracy"] >= 0.95
    assert r.outputs["loss"] < 0.1


def test_rows_files_csv_jsonl_and_parquet_give_the_same_fit(tmp_path):
    rows = line_rows(20)
    csv = tmp_path / "r.csv"
    pairs = list(zip(rows["x"].tolist(), rows["t"].tolist()))
    csv.write_text("x,t\n" + "".join(f"{a!r},{b!r}\n" for a, b in pairs))
    jsonl = tmp_path / "r.jsonl"
    jsonl.write_text("".join(json.dumps({"x": a, "t": b}) + "\n" for a, b in pairs))
    g = cgcalc.loads(LINE)
    want = g.fit(["w", "b"], rows, epochs=2, batch_size=6).params
    assert g.fit(["w", "b"], csv, epochs=2, batch_size=6).params == want
    assert g.fit(["w", "b"], str(jsonl), epochs=2, batch_size=6).params == want
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.table(rows), tmp_path / "r.parquet")
    assert g.fit(["w", "b"], tmp_path / "r.parquet", epochs=2, batch_size=6).params == want


def test_a_bad_cell_in_the_rows_is_named_as_batch_names_it(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("x,t\n1,2\n3,oops\n")
    with pytest.raises(RowsError) as e:
        cgcalc.loads(LINE).fit(["w"], p)
    assert str(e.value) == f"{p}:3:3: column 't': bad number 'oops'"


def test_rows_must_all_set_the_same_inputs(tmp_path):
    p = tmp_path / "r.jsonl"
    p.write_text('{"x": 1.0, "t": 2.0}\n{"x": 2.0}\n')
    with pytest.raises(RowsError) as e:
        cgcalc.loads(LINE).fit(["w"], p)
    assert str(e.value) == (
        f"{p}:2: this row sets x number, the first row x number, t number: fit needs every row to set the same "
        "inputs with the same shapes"
    )
    empty = tmp_path / "e.csv"
    empty.write_text("x,t\n")
    with pytest.raises(RowsError, match="no rows to fit to"):
        cgcalc.loads(LINE).fit(["w"], empty)


def test_the_log_per_epoch_has_the_other_outputs_over_every_row():
    g = cgcalc.load(GRAPHS / "iris_net.yaml")
    r = g.fit(["W1", "b1", "W2", "b2"], GRAPHS / "iris.jsonl", optimizer="adam", lr=0.02, epochs=3, log_outputs=True)
    assert r.log_names == ["epoch", "loss", "accuracy"]
    assert [row[0] for row in r.log] == [1, 2, 3]
    assert all(0 <= row[2] <= 1 for row in r.log)
    assert [row[1] for row in r.log] == r.losses
    assert r.log[-1][2] == r.outputs["accuracy"]  # after the last epoch: the trained parameters
    plain = g.fit(["W1", "b1", "W2", "b2"], GRAPHS / "iris.jsonl", optimizer="adam", lr=0.02, epochs=3)
    assert plain.log_names == ["epoch", "loss"] and plain.losses == r.losses


def test_the_log_per_step_has_the_other_outputs_at_each_step():
    g = cgcalc.loads("inputs: {x: 3.0}\nnodes:\n  y: x * x\n  z: 2 * x\noutputs: [y, z]\n")
    r = g.fit(["x"], lr=0.25, steps=3, log_outputs=True)
    assert r.log_names == ["step", "y", "z"]
    assert r.log == [(1, 9.0, 6.0), (2, 2.25, 3.0), (3, 0.5625, 1.5)]
    assert r.outputs == {"y": 0.140625, "z": 0.75}


# --- the trained graph ----------------------------------------------------------------------------


def test_the_trained_graph_reads_back_to_the_same_floats(tmp_path):
    g = cgcalc.load(GRAPHS / "iris_net.yaml")
    r = g.fit(["W1", "b1", "W2", "b2"], GRAPHS / "iris.jsonl", optimizer="adam", lr=0.02, epochs=5)
    for fmt in ("yaml", "json"):
        back = cgcalc.loads(r.to_text(fmt), json=fmt == "json")
        run = back.run()
        for p in ("W1", "b1", "W2", "b2"):
            assert np.asarray(run.value(p)).tolist() == r.params[p].tolist()
        assert run.value("t").tolist() == g.run().value("t").tolist()
        assert run.grad("t") is None  # still grad: false
    assert r.graph.run().value("W1").tolist() == r.params["W1"].tolist()
    doc = r.document()
    assert list(doc) == ["name", "description", "inputs", "nodes", "outputs"]
    assert doc["nodes"]["accuracy"] == "accuracy(a2, t)"  # an expression stays one
    assert doc["outputs"] == ["loss", "accuracy"]


def test_the_trained_graph_keeps_the_start_values_it_was_given():
    g = cgcalc.loads(ROSENBROCK)
    r = g.fit(["x0"], lr=0.001, steps=3, overrides={"x1": 1.0})
    back = cgcalc.loads(r.to_text()).run()
    assert back.value("x1") == 1.0 and back.value("x0") == r.params["x0"]
    assert r.before == {"x0": 0.0}


def test_the_input_values_are_never_written_into():
    w = np.array([1.5, -2.0, 0.25])
    g = cgcalc.loads(QUADRATIC)
    r = g.fit(["w"], steps=3, overrides={"w": w}, optimizer="adam")
    assert w.tolist() == [1.5, -2.0, 0.25]
    assert g.run().value("w").tolist() == [1.5, -2.0, 0.25]
    assert r.before["w"].tolist() == [1.5, -2.0, 0.25]


# --- stopping: divergence, Ctrl-C -----------------------------------------------------------------


def test_divergence_names_the_step():
    g = cgcalc.loads("inputs: {x: 3.0}\nnodes:\n  y: x ** 4\n")
    with pytest.raises(Diverged) as e:
        g.fit(["x"], lr=1.0, steps=50)
    # x: 3, -105, 4.6e6, -3.9e20, 2.4e62 (each minus 4x^3): x^4 overflows at step 6
    assert e.value.step == 6
    assert str(e.value) == (
        "the loss 'y' is infinite at step 6: the run diverged; the last finite loss was 3.9374e+249 "
        "(try a smaller --lr than 1)"
    )
    assert e.value.result.steps == 5 and len(e.value.result.losses) == 5


def test_a_keyboard_interrupt_carries_the_last_whole_parameters(monkeypatch):
    g = cgcalc.loads(ROSENBROCK)
    calls = []

    def stop(step, total, loss):
        calls.append(step)
        if step == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as e:
        g.fit(["x0", "x1"], lr=0.001, steps=100, callback=stop)
    partial = e.value.fit_result
    assert partial.interrupted and partial.steps == 5
    assert partial.params == g.fit(["x0", "x1"], lr=0.001, steps=5).params


# --- what fit refuses -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, kwargs, message",
    [
        (["w", "q"], {}, "parameter 'q' is not an input of the graph"),
        (["loss"], {}, "parameter 'loss' is a node, not an input"),
        (["k"], {}, "parameter 'k' is written with grad: false"),
        ([], {}, "fit needs at least one parameter"),
        (["w", "w"], {}, "parameter 'w' is named twice"),
        (["w"], {"epochs": 3}, "--epochs counts passes over the rows"),
        (["w"], {"batch_size": 3}, "--batch-size needs --rows"),
        (["w"], {"optimizer": "adamw"}, "unknown optimizer 'adamw' (did you mean 'adam'?)"),
        (["w"], {"output": "nope"}, "no input or node named 'nope'"),
        (["w"], {"steps": 0}, "the number of steps must be at least 1"),
        (["w"], {"gradient": "exact"}, "the gradient is 'backprop' or 'numerical', not 'exact'"),
    ],
)
def test_fit_refuses(args, kwargs, message):
    with pytest.raises(UsageError) as e:
        cgcalc.loads(QUADRATIC).fit(args, **kwargs)
    assert message in str(e.value)


def test_fit_refuses_a_loss_that_is_not_a_number():
    g = cgcalc.loads("inputs: {w: [1.0, 2.0]}\nnodes:\n  y: w * w\n")
    with pytest.raises(UsageError, match=r"fit minimizes a number, and 'y' has shape 2: choose a scalar"):
        g.fit(["w"])


def test_fit_refuses_a_parameter_given_by_the_rows_and_steps_with_epochs():
    g = cgcalc.loads(LINE)
    with pytest.raises(UsageError, match="'x' is written with grad: false"):
        g.fit(["x"], line_rows())
    g2 = cgcalc.loads(LINE.replace("x: {value: 0.0, grad: false}", "x: 0.0"))
    with pytest.raises(UsageError, match="'x' is a parameter and a column of the rows"):
        g2.fit(["x"], line_rows())
    with pytest.raises(UsageError, match="give --steps or --epochs, not both"):
        g.fit(["w"], line_rows(), steps=2, epochs=2)


def test_fit_refuses_rows_that_fit_the_graph_neither_way():
    g = cgcalc.load(GRAPHS / "two_layer_net.yaml")
    rows = {"x": np.ones((5, 4)), "t": np.eye(2)[[0, 1, 0, 1, 0]]}
    with pytest.raises(UsageError) as e:
        g.fit(["W1"], rows)
    assert "a row gives x 4, t 2, and the graph has x 2×3, t 2×2: neither one row per run nor rows stacked" in str(
        e.value
    )


def test_newton_refuses_rows():
    for graph in (LINE, LINE_BATCH):
        with pytest.raises(UsageError, match="newton works on the graph's own inputs"):
            cgcalc.loads(graph).fit(["w"], line_rows(), optimizer="newton")


def test_a_singular_hessian_is_said_so():
    g = cgcalc.loads("inputs: {a: 1.0, b: 1.0}\nnodes:\n  y: (a + b) ** 2\n")
    with pytest.raises(CgcalcError, match="the Hessian is singular"):
        g.fit(["a", "b"], optimizer="newton", steps=1)


def test_fit_result_json_shape():
    r = cgcalc.loads(ROSENBROCK).fit(["x0", "x1"], lr=0.001, steps=2)
    d = r.to_dict()
    assert list(d) == ["graph", "output", "optimizer", "steps", "loss", "params", "outputs"]
    assert d["loss"] == [401.0, 256.9947240016001] and d["params"]["x0"] == pytest.approx(0.0052759968)
