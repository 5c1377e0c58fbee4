"""The commands of issue 12 through the CLI: derive, hessian (--hvp), run/trace --formulas, check --order 2.

Expected numbers come from the book's and the anchors' published values (the apple graph's gradients 2.2, 110,
200; the Hessian [[0, 1.1, 2], [1.1, 0, 100], [2, 100, 0]]; jax.hessian's docstring), or from `run`'s numeric
backward, an implementation independent of the derivative graph's ops."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import cli, one_error_line, write

import cgcalc

ROOT = Path(__file__).resolve().parent.parent
GRAPHS = ROOT / "graphs"
APPLE = GRAPHS / "apple.yaml"
JAX_G = "inputs: {x0: 1.0, x1: 2.0}\nnodes:\n  g: x0**3 - 2*x0*x1 - x1**6\n"
APPLE_H = [[0.0, 1.1, 2.0], [1.1, 0.0, 100.0], [2.0, 100.0, 0.0]]


def run_json(*args, stdin: str | None = None) -> dict:
    from typer.testing import CliRunner

    from cgcalc.cli.app import app

    r = CliRunner(env={"CGCALC_DEBUG": None}).invoke(app, ["run", *map(str, args), "-f", "json"], input=stdin)
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)


# --- derive ---------------------------------------------------------------------------------------


def test_derive_writes_a_graph_whose_outputs_are_the_gradients():
    r = cli("derive", APPLE)
    assert r.exit_code == 0, r.stderr
    assert r.stderr == ""
    d = run_json("-", stdin=r.stdout)
    assert d["outputs"] == {"d_price_d_apple": 2.2, "d_price_d_apple_num": 110.00000000000001, "d_price_d_tax": 200.0}
    original = run_json(APPLE)
    grads = {n["name"]: n["grad"] for n in original["nodes"]}
    assert [d["outputs"][f"d_price_d_{x}"] for x in ("apple", "apple_num", "tax")] == [
        grads["apple"],
        grads["apple_num"],
        grads["tax"],
    ]


@pytest.mark.parametrize("graph", sorted(p.name for p in GRAPHS.glob("*.yaml")))
def test_every_example_graph_derives_to_its_gradient_column(graph):
    """derive | run prints the numbers of the gradient column of run, for every input with a gradient."""
    r = cli("derive", GRAPHS / graph)
    assert r.exit_code == 0, r.stderr
    derived = cgcalc.loads(r.stdout).run()
    original = cgcalc.load(GRAPHS / graph).run()
    for inp in original.plan.inputs:
        if inp.grad:
            np.testing.assert_allclose(
                derived.value(f"d_{original.output}_d_{inp.name}"), original.grad(inp.name), rtol=1e-14, atol=0
            )


def test_derive_json_by_extension_and_format(tmp_path):
    out = tmp_path / "d.json"
    r = cli("derive", APPLE, "-o", out)
    assert r.exit_code == 0 and r.stdout == ""
    doc = json.loads(out.read_text())
    assert doc["outputs"] == ["d_price_d_apple", "d_price_d_apple_num", "d_price_d_tax"]
    assert json.loads(cli("derive", APPLE, "--format", "json").stdout) == doc
    assert cli("derive", APPLE, "-o", "-").stdout == cli("derive", APPLE).stdout


def test_derive_wrt_order_and_names():
    r = cli("derive", APPLE, "--wrt", "tax,apple")
    assert cgcalc.loads(r.stdout).outputs == ("d_price_d_tax", "d_price_d_apple")
    g = cgcalc.loads(_derive_text(JAX_G, 2))
    assert g.outputs == ("d2_g_d_x0_d_x0", "d2_g_d_x0_d_x1", "d2_g_d_x1_d_x0", "d2_g_d_x1_d_x1")
    assert list(g.run().outputs.values()) == [6.0, -2.0, -2.0, -480.0]  # jax.hessian's docstring


def _derive_text(text: str, order: int) -> str:
    from typer.testing import CliRunner

    from cgcalc.cli.app import app

    r = CliRunner(env={"CGCALC_DEBUG": None}).invoke(app, ["derive", "-", "--order", str(order)], input=text)
    assert r.exit_code == 0, r.stderr
    return r.stdout


def test_derive_of_a_derivative_is_the_second_derivative():
    """f = x^4 - 2x^2 at 2: f' = 24, f'' = 44 (DeZero step 33, with cleargrad)."""
    f = "inputs: {x: 2.0}\nnodes:\n  y: x**4 - 2*x**2\n"
    once = _derive_text(f, 1)
    assert cgcalc.loads(once).run().outputs == {"d_y_d_x": 24.0}
    twice = _derive_text(once, 1)
    assert cgcalc.loads(twice).run().outputs == {"d_d_y_d_x_d_x": 44.0}
    assert cgcalc.loads(_derive_text(f, 2)).run().outputs == {"d2_y_d_x_d_x": 44.0}


def test_derived_graph_works_with_every_command(tmp_path):
    d = tmp_path / "d.yaml"
    assert cli("derive", APPLE, "-o", d).exit_code == 0
    assert cli("validate", d).exit_code == 0
    assert cli("check", d).exit_code == 0
    trace = cli("trace", d)
    assert trace.exit_code == 0 and "d_price_d_apple" in trace.stdout
    assert "digraph" in cli("export", d).stdout
    rows = write(tmp_path, "rows.csv", "apple,tax\n100,1.1\n120,1.2\n")
    batch = cli("batch", d, rows)
    assert batch.exit_code == 0, batch.stderr
    lines = batch.stdout.splitlines()
    assert lines[0].startswith("apple,tax,d_price_d_apple,d_price_d_apple_num,d_price_d_tax")
    # row 2: d price / d apple = apple_num * tax = 2 * 1.2; d / d apple_num = apple * tax = 120 * 1.2
    assert lines[2].split(",")[2:5] == [repr(2 * 1.2), repr(120 * 1.2), repr(120 * 2.0)]


def test_a_name_the_graph_has_is_never_reused(tmp_path):
    g = write(
        tmp_path,
        "g.yaml",
        """\
        inputs: {x: 3.0, y: 2.0}
        nodes:
          d_f_d_x: x * y
          f: d_f_d_x * x
        outputs: [f]
        """,
    )
    d = cgcalc.loads(cli("derive", g).stdout)
    assert d.outputs == ("d_f_d_x_2", "d_f_d_y")
    r = d.run()
    assert (r.value("d_f_d_x_2"), r.value("d_f_d_y")) == (12.0, 9.0)  # f = x^2 y: 2xy, x^2


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--wrt", "appel"], ["'appel'", "not an input", "did you mean 'apple'"]),
        (["--wrt", "apple_price"], ["'apple_price'", "a node, not an input"]),
        (["--wrt", "apple,apple"], ["twice"]),
        (["--output", "prise"], ["'prise'", "did you mean 'price'"]),
        (["--wrt", ""], ["--wrt takes NAME"]),
    ],
)
def test_derive_bad_options_are_one_line_errors(args, fragments):
    line = one_error_line(cli("derive", APPLE, *args))
    for f in fragments:
        assert f in line, line


def test_derive_order_2_of_an_array_output_is_refused(tmp_path):
    g = write(tmp_path, "g.yaml", "inputs: {x: [1.0, 2.0]}\nnodes:\n  y: x * x\n")
    line = one_error_line(cli("derive", g, "--order", "2"))
    assert "--order 2 needs a scalar output" in line and "(2,)" in line


def test_derive_grad_false_input_is_refused():
    line = one_error_line(cli("derive", GRAPHS / "two_layer_net.yaml", "--wrt", "t"))
    assert "`grad: false`" in line


def test_derive_to_an_existing_file_replaces_it_whole(tmp_path):
    out = tmp_path / "d.yaml"
    out.write_text("old\n")
    assert cli("derive", APPLE, "-o", out).exit_code == 0
    assert out.read_text().startswith("# cgcalc derive")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.yaml"]  # no temporary file left


# --- hessian --------------------------------------------------------------------------------------


def test_hessian_json_of_the_apple_graph():
    r = cli("hessian", APPLE, "--format", "json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout) == {
        "graph": "apple",
        "output": "price",
        "wrt": ["apple", "apple_num", "tax"],
        "hessian": APPLE_H,
    }


def test_hessian_table_golden():
    r = cli("hessian", APPLE, "--wrt", "apple,tax")
    assert r.exit_code == 0
    assert [line.rstrip() for line in r.stdout.splitlines()] == [
        "apple: ∂²price / ∂row ∂column",
        "        apple   tax",
        "───────────────────",
        "apple       0     2",
        "tax         2     0",
    ]


def test_hessian_csv_and_set(tmp_path):
    g = write(tmp_path, "g.yaml", JAX_G)
    r = cli("hessian", g, "-f", "csv", "--set", "x0=2", "--set", "x1=1")
    assert r.exit_code == 0, r.stderr
    # g = x0^3 - 2 x0 x1 - x1^6: [[6 x0, -2], [-2, -30 x1^4]]
    assert r.stdout.splitlines() == [",x0,x1", "x0,12.0,-2.0", "x1,-2.0,-30.0"]


def test_hessian_of_array_inputs_has_element_labels_and_matches_central_differences():
    g = cgcalc.load(GRAPHS / "two_layer_net.yaml")
    r = cli("hessian", GRAPHS / "two_layer_net.yaml", "--wrt", "b2,b1", "-f", "json")
    d = json.loads(r.stdout)
    assert d["wrt"] == ["b2[0]", "b2[1]", "b1[0]", "b1[1]", "b1[2]", "b1[3]"]
    h = np.array(d["hessian"])
    assert (h == h.T).all()
    # each column: central differences of the gradient (float64), independent of the derivative graph
    base = g.run()
    cols = []
    for name in ("b2", "b1"):
        x0 = np.array(base.value(name))
        for i in range(x0.size):
            step = 1e-5
            grads = []
            for sign in (1, -1):
                x = x0.copy()
                x.flat[i] += sign * step
                rr = g.run({name: x})
                grads.append(np.concatenate([np.ravel(rr.grad("b2")), np.ravel(rr.grad("b1"))]))
            cols.append((grads[0] - grads[1]) / (2 * step))
    np.testing.assert_allclose(h, np.array(cols).T, rtol=1e-6, atol=1e-8)


def test_hessian_over_the_element_limit_points_to_hvp():
    line = one_error_line(cli("hessian", GRAPHS / "two_layer_net.yaml", "--max-elements", "10"))
    assert "over the limit of 10 elements" in line and "--hvp" in line


def test_hessian_of_an_array_output_is_refused(tmp_path):
    g = write(tmp_path, "g.yaml", "inputs: {x: [1.0, 2.0]}\nnodes:\n  y: x * x\n")
    assert "a Hessian needs a scalar output" in one_error_line(cli("hessian", g))


def test_hvp_json_and_lists():
    r = cli("hessian", APPLE, "--hvp", "apple=1,tax=2", "-f", "json")
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    h = np.array(APPLE_H)
    assert d == {"graph": "apple", "output": "price", "hvp": dict(zip(["apple", "apple_num", "tax"], h @ [1, 0, 2]))}
    r = cli("hessian", GRAPHS / "two_layer_net.yaml", "--hvp", "b2=[1, 0]", "-f", "json")
    hv = json.loads(r.stdout)["hvp"]
    full = json.loads(cli("hessian", GRAPHS / "two_layer_net.yaml", "--wrt", "b2", "-f", "json").stdout)["hessian"]
    assert hv["b2"] == pytest.approx(np.array(full) @ [1, 0], rel=1e-12)


def test_hvp_of_a_name_not_differentiated_is_an_error():
    line = one_error_line(cli("hessian", APPLE, "--hvp", "appel=1"))
    assert "'appel'" in line and "did you mean 'apple'" in line


def test_hessian_at_a_kink_says_it_is_not_symmetric(tmp_path):
    """relu(x) * y at x = 0: d/dy d/dx uses relu's step at 0 (0), d/dx d/dy = relu'(0) from the other side...
    cgcalc's step(0) = 0 on both paths, so this graph is symmetric: the warning must not appear."""
    g = write(tmp_path, "g.yaml", "inputs: {x: 0.0, y: 2.0}\nnodes:\n  f: relu(x) * y\n")
    r = cli("hessian", g, "-f", "json")
    assert r.exit_code == 0 and r.stderr == ""
    assert json.loads(r.stdout)["hessian"] == [[0.0, 0.0], [0.0, 0.0]]


# --- formulas -------------------------------------------------------------------------------------


def test_run_formulas_of_the_apple_graph():
    r = cli("run", APPLE, "--formulas", "-f", "json")
    formulas = {n["name"]: n["formula"] for n in json.loads(r.stdout)["nodes"]}
    assert formulas == {
        "apple": "apple_num × tax",
        "apple_num": "apple × tax",
        "tax": "apple × apple_num",
        "apple_price": "tax",
        "price": "1",
    }
    assert "formula" not in json.loads(cli("run", APPLE, "-f", "json").stdout)["nodes"][0]


@pytest.mark.parametrize("graph", sorted(p.name for p in GRAPHS.glob("*.yaml")))
def test_formulas_evaluate_to_the_gradients(graph, tmp_path):
    """Each formula, read back as a cgcalc expression (× as *), computes the node's gradient."""
    g = cgcalc.load(GRAPHS / graph)
    r = g.run()
    data = json.loads(cli("run", GRAPHS / graph, "--formulas", "-f", "json").stdout)
    names = {n["name"] for n in data["nodes"]}
    for n in data["nodes"]:
        f = n["formula"]
        if f is None or f.startswith("too long") or any("." in x for x in names if x in f):
            continue  # (an expression's inner node, y.2, cannot be written in an expression)
        # × is *, W.T is transpose(W), and a bare name or number is wrapped (an expression needs an op)
        text = "identity(" + re.sub(r"(\w+)\.T\b", r"transpose(\1)", f.replace("×", "*")) + ")"
        inputs = {i.name: r.value(i.name) for i in g.plan.inputs}
        nodes = {"formula_": text}
        doc = {"inputs": {k: np.asarray(v).tolist() for k, v in inputs.items()}, "nodes": nodes}
        other = {x: r.value(x) for x in names if x not in inputs and x in f and "." not in x}
        for x, v in other.items():
            doc["inputs"][x] = np.asarray(v).tolist()
        value = cgcalc.loads(json.dumps(doc), json=True).run().value("formula_")
        grad = r.grad(n["name"])
        if np.ndim(value) == 0:  # a formula `0` stands for a gradient of zeros of any shape (off the path)
            value = np.broadcast_to(value, np.shape(grad))
        np.testing.assert_allclose(value, np.broadcast_to(grad, np.shape(value)), rtol=1e-12)


def test_formulas_too_long_show_the_derive_command():
    r = cli("run", GRAPHS / "two_layer_net.yaml", "--formulas", "-f", "json")
    x = next(n for n in json.loads(r.stdout)["nodes"] if n["name"] == "x")
    assert x["formula"] == f"too long to show: cgcalc derive {GRAPHS / 'two_layer_net.yaml'} --wrt x --output loss"


def test_trace_formulas():
    r = cli("trace", APPLE, "--formulas")
    assert "  ∂apple = apple_num × tax = 2.2" in r.stdout.splitlines()


# --- check --order 2 ------------------------------------------------------------------------------


def test_check_order_2_passes_on_the_examples_and_reports_entries():
    r = cli("check", APPLE, "--order", "2", "-f", "json")
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["ok"] and d["order"] == 2
    analytic = {(c["output"], c["name"]): c["elements"][0]["analytic"] for c in d["inputs"]}
    assert analytic[("∂price/∂apple", "apple_num")] == 1.1
    assert analytic[("∂price/∂tax", "apple_num")] == 100.0
    for graph in ("neuron.yaml", "two_layer_net.yaml", "sigmoid.yaml", "expressions.yaml"):
        assert cli("check", GRAPHS / graph, "--order", "2").exit_code == 0, graph


def test_check_order_2_fails_when_the_hessian_is_wrong(monkeypatch):
    """A deliberately wrong second-order rule (sigmoid's backward_ops off by a factor) is caught: exit 1."""
    from cgcalc.core.layers import Sigmoid

    def wrong(g, dout, out, ins, attrs):
        return (g.mul(g.mul(g.mul(dout, g.sub(g.const(1.0), out)), out), g.const(1.5)),)

    monkeypatch.setattr(Sigmoid, "backward_ops", staticmethod(wrong))
    r = cli("check", GRAPHS / "sigmoid.yaml", "--order", "2")
    assert r.exit_code == 1
    assert "FAIL" in r.stdout


def test_check_order_2_takes_one_output():
    line = one_error_line(cli("check", APPLE, "--order", "2", "--output", "all"))
    assert "one output at a time" in line
