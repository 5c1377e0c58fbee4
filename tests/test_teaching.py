"""The teaching tools: `check` (backprop vs central differences), `trace` (backprop step by step),
`export` (the book's figures as dot and mermaid) and `--output all` (a gradient per output).

Golden files live in tests/golden/; rewrite them with CGCALC_UPDATE_GOLDEN=1 and read the diff by hand.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

import cgcalc
from cgcalc.cli.app import app
from cgcalc.core.layers import MulLayer, Sigmoid
from cgcalc.views.check import FAIL, KINK, PASS
from cgcalc.views.check import check as gradcheck
from cgcalc.views.export import to_dot, to_mermaid
from cgcalc.views.render_trace import check_table, trace_view
from cgcalc.views.trace import trace as make_trace

ROOT = Path(__file__).resolve().parent.parent
GRAPHS = ROOT / "graphs"
GOLDEN = Path(__file__).resolve().parent / "golden"
GRAPH_FILES = sorted(GRAPHS.glob("*.yaml")) + sorted(GRAPHS.glob("*.json"))
MULTI_OUTPUT = [p for p in GRAPH_FILES if len(cgcalc.load(p).outputs) > 1]
HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="Graphviz's dot is not installed")
posix_only = pytest.mark.skipif(os.name != "posix", reason="needs a POSIX pty / shell script")

# sigmoid'(1) by hand, independent of cgcalc: s(1) (1 - s(1))
S1 = 1.0 / (1.0 + math.exp(-1.0))
DSIGMOID_AT_1 = S1 * (1.0 - S1)

# two outputs of different shapes on the numpy path, with broadcasting, a shared node and a constant input
TWO_OUTPUTS = """\
name: two-out
description: two outputs of different shapes
inputs:
  x: [[1.0, -2.0, 0.5], [0.3, 0.7, -1.2]]
  w: [0.5, -1.5, 2.0]
  b: 0.25
  k: {value: 3.0, grad: false}
nodes:
  h: x * w
  z: tanh(h + b)
  p: sum(z)
  q: {op: mean, in: [h], axis: 0}
  r: p * k + sum(q * q)
outputs: [r, q]
"""

# a relu input exactly on its kink (x[0] = 0): no derivative there
KINK_ARRAY = """\
name: kink
inputs:
  x: [0.0, 1.0]
nodes:
  y: sum(relu(x))
"""
KINK_SCALAR = """\
name: kink-scalar
inputs:
  x: 0.0
nodes:
  y: relu(x) * 3
"""

# quotes, backslashes, HTML and a newline in the texts a figure shows
AWKWARD_TEXT = r"""name: 'we"ird\ <b>&amp; name'
description: "line one\nline \"two\" with \\ backslash, <tag> & ampersand, ends with \\"
inputs:
  x: [1.0, 2.0]
  k: {value: 3.0, grad: false}
nodes:
  y: sum(x ** 2 * k)
outputs: y
"""


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def render(renderable) -> str:
    console = Console(record=True, width=100, color_system=None, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def assert_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("CGCALC_UPDATE_GOLDEN", "") not in ("", "0"):
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(text)
    assert path.exists(), f"{path} is missing: run with CGCALC_UPDATE_GOLDEN=1, then read it by hand"
    with open(path, encoding="utf-8", newline="") as f:
        expected = f.read()
    assert text == expected


def trace_text(path: Path, output: str | None = None) -> str:
    return render(trace_view(make_trace(cgcalc.load(path).plan, output=output)))


def run_json(runner: CliRunner, path: Path, *args: str) -> dict:
    r = runner.invoke(app, ["run", str(path), "--format", "json", *args])
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)


def exact(v) -> str:
    """Bit-for-bit comparable text of a JSON value (-0.0 and 0.0 differ; repr round-trips)."""
    return json.dumps(v)


def doubled_mul_backward(orig):
    def backward(self, dout):
        dx, dy = orig(self, dout)
        return 2 * dx, 2 * dy

    return backward


# --- trace: golden text --------------------------------------------------------------------------


def test_trace_apple_golden() -> None:
    text = trace_text(GRAPHS / "apple.yaml")
    assert_golden("trace_apple.txt", text)
    # the book's numbers, also asserted here so a regenerated golden cannot silently drift
    assert "  price       = mul(apple_price=200, tax=1.1) = 220\n" in text
    assert "      ∂apple = 1.1 × apple_num(2) = 2.2\n" in text
    assert "      ∂apple_num = 1.1 × apple(100) = 110\n" in text
    assert "      ∂tax = 1 × apple_price(200) = 200\n" in text


def test_trace_reuse_golden() -> None:
    text = trace_text(GRAPHS / "reuse.yaml")
    assert_golden("trace_reuse.txt", text)
    assert "  out = add(c=12, d=9) = 21\n" in text
    assert "      ∂a += 2 × 1 = 2   (total ∂a = 10)\n" in text
    assert text.rstrip().endswith("∂a = 10")
    assert text.count("∂a += ") == 3  # a feeds d twice and b twice: one "=", then three "+="


@pytest.mark.parametrize("name", ["apple", "reuse"])
def test_trace_command_prints_the_golden_text(runner: CliRunner, name: str) -> None:
    r = runner.invoke(app, ["trace", str(GRAPHS / f"{name}.yaml")])
    assert r.exit_code == 0, r.stderr
    assert r.stdout == (GOLDEN / f"trace_{name}.txt").read_text(encoding="utf-8")


def test_trace_shows_the_attributes_the_file_gives(runner: CliRunner, tmp_path: Path) -> None:
    # an index and an axis change what a node computes: the forward line shows them (defaults left out)
    f = tmp_path / "g.yaml"
    f.write_text("inputs:\n  x: [[1, 2], [3, 4]]\nnodes:\n  y: sum(x, axis=0)\n  z: sum(y[1:] * 2)\n")
    r = runner.invoke(app, ["trace", str(f)])
    assert r.exit_code == 0, r.stderr
    assert "  y   = sum(x=2×2 [1, 2, 3, …], axis=0) = [4, 6]\n" in r.stdout
    assert "  z.1 = getitem(y=[4, 6], [1:]) = [6]\n" in r.stdout
    assert "  z   = sum(z.2=[12]) = 12\n" in r.stdout  # sum's default axis (all) is not shown


def test_trace_data_reuse_accumulates() -> None:
    t = make_trace(cgcalc.load(GRAPHS / "reuse.yaml").plan)
    to_a = [p for s in t.backward for p in s.passes if p.to == "a"]
    assert [p.accumulated for p in to_a] == [False, True, True, True]
    assert [p.grad for p in to_a] == [3.0, 3.0, 2.0, 2.0]
    assert [p.total for p in to_a] == [3.0, 6.0, 8.0, 10.0]
    assert dict(t.grads) == {"a": 10.0}  # d(4a + a^2)/da = 4 + 2a at a = 3


@pytest.mark.parametrize("path", GRAPH_FILES, ids=lambda p: p.name)
def test_trace_grads_equal_run_grads(path: Path) -> None:
    g = cgcalc.load(path)
    for out in g.outputs:
        t = make_trace(g.plan, output=out)
        r = g.run(output=out)
        assert t.output == out
        for name, grad in t.grads:
            expected = r.grad(name)
            if expected is None:
                assert grad is None, name
            else:
                assert np.array_equal(np.asarray(grad), np.asarray(expected)), (out, name)


@pytest.mark.parametrize("path", GRAPH_FILES, ids=lambda p: p.name)
def test_trace_scalar_lines_are_true(path: Path) -> None:
    """Every '∂x = upstream × local = grad' line the trace prints: the local derivative equals a central
    difference of the op's own forward at the node's inputs (independent of any backward), and what is passed
    on is upstream × local."""
    from cgcalc.core.registry import LAYERS

    g = cgcalc.load(path)
    checked = 0
    for out in g.outputs:
        t = make_trace(g.plan, output=out)
        forward = {f.name: f for f in t.forward}
        for s in t.backward:
            f = forward[s.name]
            step = next(st for st in g.plan.steps if st.name == s.name)
            passes = list(s.passes)
            for j, (name, _) in enumerate(f.args):
                if not passes or passes[0].to != name:
                    continue  # a constant, or an input without a gradient: nothing passed to it
                p = passes.pop(0)
                if p.local is None:
                    continue  # arrays: a Jacobian, not a number
                xs = [float(v) for _, v in f.args]
                h = 1e-6 * max(1.0, abs(xs[j]))
                up, down = list(xs), list(xs)
                up[j] += h
                down[j] -= h
                # the layer made as the runtime makes it: with the node's attributes (clip's bounds)
                attrs = LAYERS[f.op].layout([()] * len(xs), step.attrs).attrs
                numeric = (LAYERS[f.op](**attrs).forward(*up) - LAYERS[f.op](**attrs).forward(*down)) / (
                    up[j] - down[j]
                )
                assert math.isclose(p.local, numeric, rel_tol=1e-6, abs_tol=1e-9), (s.name, p.to, p.local, numeric)
                assert math.isclose(p.grad, s.upstream * p.local, rel_tol=1e-12), (s.name, p.to)
                checked += 1
    if all(type(v) is float for v in g.run().values[: len(g.plan.inputs)]):
        assert checked, "a graph of scalars has local derivatives to check"


# --- export: golden text and Graphviz ------------------------------------------------------------


# (value, gradient) on each edge of apple-orange, by hand (the book, 5.4): apple 100 x 2 -> 200, x 1.1 tax
APPLE_ORANGE_EDGES = [("100", "2.2"), ("2", "110"), ("150", "3.3"), ("3", "165"), ("200", "1.1"), ("450", "1.1"),
                      ("650", "1.1"), ("1.1", "650"), ("715", "1")]  # fmt: skip


def test_export_apple_orange_dot_golden() -> None:
    text = to_dot(cgcalc.load(GRAPHS / "apple_orange.yaml").run())
    assert_golden("export_apple_orange.dot", text)
    edges = re.findall(r'-> \w+ \[label=<([^<]*)<br/><font color="red">([^<]*)</font>>\]', text)
    assert edges == APPLE_ORANGE_EDGES


def test_export_apple_orange_mermaid_golden() -> None:
    text = to_mermaid(cgcalc.load(GRAPHS / "apple_orange.yaml").run())
    assert_golden("export_apple_orange.mmd", text)
    edges = re.findall(r'-->\|"(\S+) / ∂ (\S+)"\|', text)
    assert edges == APPLE_ORANGE_EDGES


def _figure_graphs(tmp_path: Path) -> list[Path]:
    return GRAPH_FILES + [write(tmp_path, "awkward.yaml", AWKWARD_TEXT), write(tmp_path, "two.yaml", TWO_OUTPUTS)]


@needs_dot
def test_dot_output_parses_with_graphviz(tmp_path: Path) -> None:
    for path in _figure_graphs(tmp_path):
        text = to_dot(cgcalc.load(path).run())
        proc = subprocess.run(["dot", "-Tsvg"], input=text.encode(), capture_output=True, timeout=60, check=False)
        assert proc.returncode == 0, (path.name, proc.stderr.decode())
        assert b"<svg" in proc.stdout, path.name


def test_figures_declare_every_node_they_connect(tmp_path: Path) -> None:
    for path in _figure_graphs(tmp_path):
        g = cgcalc.load(path)
        r = g.run()
        n_edges = sum(len(st.args) for st in g.plan.steps) + len(g.outputs)
        dot = to_dot(r)
        declared = set(re.findall(r"^  (\w+) \[shape=", dot, re.M))
        edges = re.findall(r"^  (\w+) -> (\w+) \[", dot, re.M)
        assert len(edges) == n_edges, path.name
        assert {n for e in edges for n in e} <= declared, path.name
        mmd = to_mermaid(r)
        assert mmd.startswith("flowchart LR\n")
        declared = set(re.findall(r"^  (\w+)[\[(>]", mmd, re.M))
        edges = re.findall(r'^  (\w+) -->\|"[^"]*"\| (\w+)$', mmd, re.M)
        assert len(edges) == n_edges, path.name
        assert {n for e in edges for n in e} <= declared, path.name


@needs_dot
def test_export_draws_svg(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "tmp" / "x.svg"
    out.parent.mkdir()
    r = runner.invoke(app, ["export", str(GRAPHS / "apple_orange.yaml"), "-o", str(out)])
    assert r.exit_code == 0, r.stderr
    assert r.stdout == ""
    svg = out.read_text(encoding="utf-8")
    assert "<svg" in svg and svg.rstrip().endswith("</svg>")
    assert ">715<" in svg and ">650<" in svg  # the figure's numbers are on it
    assert sorted(os.listdir(out.parent)) == ["x.svg"]  # no temporary file left beside it


@needs_dot
def test_export_svg_is_readable_by_others(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "x.svg"
    old = os.umask(0o022)
    try:
        r = runner.invoke(app, ["export", str(GRAPHS / "apple_orange.yaml"), "-o", str(out)])
    finally:
        os.umask(old)
    assert r.exit_code == 0, r.stderr
    assert out.stat().st_mode & 0o777 == 0o644


def test_export_text_files_by_extension(runner: CliRunner, tmp_path: Path) -> None:
    result = cgcalc.load(GRAPHS / "apple_orange.yaml").run()
    for name, expected in (("fig.dot", to_dot(result)), ("fig.mmd", to_mermaid(result))):
        r = runner.invoke(app, ["export", str(GRAPHS / "apple_orange.yaml"), "-o", str(tmp_path / name)])
        assert r.exit_code == 0, r.stderr
        assert (tmp_path / name).read_text(encoding="utf-8") == expected


def _cgcalc(args: list[str], cwd: Path, path_env: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("CGCALC_DEBUG",)}
    env["PATH"] = path_env
    return subprocess.run(
        [sys.executable, "-m", "cgcalc", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_export_png_without_graphviz_fails_cleanly(tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    proc = _cgcalc(["export", str(GRAPHS / "apple_orange.yaml"), "-o", "x.png"], work, str(empty))
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    assert "Graphviz" in lines[0] and "install graphviz" in lines[0]
    assert "Traceback" not in proc.stderr
    assert os.listdir(work) == []  # neither x.png nor a temporary file


@posix_only
def test_export_when_graphviz_fails(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "dot"
    fake.write_text("#!/bin/sh\ncat >/dev/null\necho 'Error: syntax error in line 1' >&2\nexit 1\n")
    fake.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    proc = _cgcalc(["export", str(GRAPHS / "apple.yaml"), "-o", "x.svg"], work, f"{bin_dir}{os.pathsep}/usr/bin:/bin")
    assert proc.returncode == 2
    assert proc.stderr == "error: x.svg: Graphviz failed (exit 1): Error: syntax error in line 1\n"
    assert os.listdir(work) == []


# --- check ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", GRAPH_FILES, ids=lambda p: p.name)
def test_check_passes_on_every_graph(runner: CliRunner, path: Path) -> None:
    r = runner.invoke(app, ["check", str(path)])
    assert r.exit_code == 0, r.stdout + r.stderr
    assert r.stderr == ""
    assert "FAIL" not in r.stdout
    g = cgcalc.load(path)
    with_grad = [i.name for i in g.plan.inputs if i.grad]
    rows = [line.split()[0] for line in r.stdout.splitlines() if line.rstrip().endswith(" ok")]
    assert rows == with_grad  # one row per input that takes a gradient, each ok

    r = runner.invoke(app, ["check", str(path), "--output", "all"])
    assert r.exit_code == 0, r.stdout + r.stderr
    assert "FAIL" not in r.stdout

    r = runner.invoke(app, ["check", str(path), "--format", "json", "--output", "all"])
    assert r.exit_code == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["ok"] is True
    assert [(c["output"], c["name"]) for c in report["inputs"]] == [(o, n) for o in g.outputs for n in with_grad]
    for c in report["inputs"]:
        assert c["status"] == PASS
        n_elements = math.prod(c["shape"])
        assert len(c["elements"]) == n_elements
        for e in c["elements"]:
            assert e["status"] == PASS
            assert abs(e["analytic"] - e["numeric"]) <= 1e-6 + 1e-5 * abs(e["numeric"])


def test_check_fails_on_a_wrong_layer(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(MulLayer, "backward", doubled_mul_backward(MulLayer.backward))
    r = runner.invoke(app, ["check", str(GRAPHS / "apple.yaml")])
    assert r.exit_code == 1
    rows = [line for line in r.stdout.splitlines() if line.startswith(("apple ", "apple_num ", "tax "))]
    assert len(rows) == 3 and all(row.rstrip().endswith("FAIL") for row in rows), r.stdout
    lines = r.stderr.splitlines()
    assert lines == ["error: 3 gradient elements disagree with central differences"]

    r = runner.invoke(app, ["check", str(GRAPHS / "apple.yaml"), "--format", "json"])
    assert r.exit_code == 1
    assert json.loads(r.stdout)["ok"] is False


def test_gradcheck_api_reports_a_wrong_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    plan = cgcalc.load(GRAPHS / "apple.yaml").plan
    assert gradcheck(plan).ok is True
    monkeypatch.setattr(MulLayer, "backward", doubled_mul_backward(MulLayer.backward))
    report = gradcheck(plan)
    assert report.ok is False
    by_name = {c.name: c.elements[0] for c in report.inputs}
    assert {n: e.status for n, e in by_name.items()} == {"apple": FAIL, "apple_num": FAIL, "tax": FAIL}
    # backprop is wrong (each mul doubles: 2.2 -> 8.8 through two muls), central differences are not
    assert by_name["apple"].analytic == pytest.approx(8.8)
    assert by_name["apple"].numeric == pytest.approx(2.2, rel=1e-6)
    assert by_name["tax"].analytic == pytest.approx(400.0)
    assert by_name["tax"].numeric == pytest.approx(200.0, rel=1e-6)
    assert "FAIL" in render(check_table(report))


def test_check_pinpoints_the_wrong_output(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    """A broken Sigmoid layer breaks dy/dx but not the exp/add/div chain of y_chain."""
    orig = Sigmoid.backward
    monkeypatch.setattr(Sigmoid, "backward", lambda self, dout: tuple(2 * d for d in orig(self, dout)))
    r = runner.invoke(app, ["check", str(GRAPHS / "sigmoid.yaml"), "--output", "all", "--format", "json"])
    assert r.exit_code == 1
    report = json.loads(r.stdout)
    assert {c["output"]: c["status"] for c in report["inputs"]} == {"y": FAIL, "y_chain": PASS}
    r = runner.invoke(app, ["check", str(GRAPHS / "sigmoid.yaml"), "--output", "y_chain"])
    assert r.exit_code == 0, r.stdout + r.stderr


@pytest.mark.parametrize("text", [KINK_ARRAY, KINK_SCALAR], ids=["array", "scalar"])
def test_relu_at_its_kink_is_reported_as_kink(runner: CliRunner, tmp_path: Path, text: str) -> None:
    path = write(tmp_path, "kink.yaml", text)
    r = runner.invoke(app, ["check", str(path)])
    assert r.exit_code == 0, r.stdout + r.stderr
    assert "kink" in r.stdout and "FAIL" not in r.stdout
    assert r.stderr == ""
    report = gradcheck(cgcalc.load(path).plan)
    assert report.ok is True
    (c,) = report.inputs
    assert c.status == KINK
    statuses = [e.status for e in c.elements]
    assert statuses == ([KINK, PASS] if c.shape else [KINK])


def test_a_kink_does_not_hide_a_wrong_gradient(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(MulLayer, "backward", doubled_mul_backward(MulLayer.backward))
    r = runner.invoke(app, ["check", str(GRAPHS / "relu.yaml"), "--set", "x=[0.0, -0.5, 0.5, 2.0]"])
    # y = sum(relu(x) * w): perturbing w never moves relu's input, so w's wrong gradient is a plain FAIL
    assert r.exit_code == 1, r.stdout
    report = gradcheck(cgcalc.load(GRAPHS / "relu.yaml").plan, {"x": [0.0, -0.5, 0.5, 2.0]})
    w = next(c for c in report.inputs if c.name == "w")
    assert [e.status for e in w.elements][2:] == [FAIL, FAIL]


def test_check_rejects_csv(runner: CliRunner) -> None:
    r = runner.invoke(app, ["check", str(GRAPHS / "apple.yaml"), "--format", "csv"])
    assert r.exit_code == 2
    assert r.stderr.startswith("error: ") and r.stdout == ""


# --- --output all --------------------------------------------------------------------------------


def _multi_output_graphs(tmp_path: Path) -> list[Path]:
    return MULTI_OUTPUT + [write(tmp_path, "two.yaml", TWO_OUTPUTS)]


def test_multi_output_graphs_are_found() -> None:
    assert {"sigmoid.yaml", "expressions.yaml"} <= {p.name for p in MULTI_OUTPUT}


def test_output_all_equals_each_output_alone(runner: CliRunner, tmp_path: Path) -> None:
    for path in _multi_output_graphs(tmp_path):
        outputs = list(cgcalc.load(path).outputs)
        assert len(outputs) >= 2
        both = run_json(runner, path, "--output", "all")
        assert both["output"] == outputs[0]
        for row in both["nodes"]:
            assert list(row["grads"]) == outputs, path.name
            assert exact(row["grad"]) == exact(row["grads"][outputs[0]]), (path.name, row["name"])
        for o in outputs:
            alone = run_json(runner, path, "--output", o)
            assert alone["output"] == o
            assert [n["name"] for n in alone["nodes"]] == [n["name"] for n in both["nodes"]]
            for a, b in zip(alone["nodes"], both["nodes"]):
                assert "grads" not in a
                assert exact(a["value"]) == exact(b["value"]), (path.name, a["name"])
                assert exact(b["grads"][o]) == exact(a["grad"]), (path.name, o, a["name"])


def test_output_all_csv_and_api_agree(runner: CliRunner, tmp_path: Path) -> None:
    path = write(tmp_path, "two.yaml", TWO_OUTPUTS)
    g = cgcalc.load(path)
    r = g.run(output=["r", "q"])
    assert r.output == "r"
    for name in g.plan.names:
        for o in ("r", "q"):
            alone = g.run(output=o).grad(name)
            got = r.grad(name, o)
            if alone is None:
                assert got is None and name == "k"
            else:
                assert np.array_equal(np.asarray(got), np.asarray(alone)), (name, o)
    res = runner.invoke(app, ["run", str(path), "--output", "all", "--format", "csv"])
    assert res.exit_code == 0, res.stderr
    header, *rows = res.stdout.splitlines()
    assert header == "name,op,inputs,value,grad,dr,dq"
    assert rows[0].startswith("x,input,,")
    assert rows[3] == "k,input,,3.0,,,"  # a grad: false input has no gradient for any output


def test_sigmoid_by_hand(runner: CliRunner) -> None:
    both = run_json(runner, GRAPHS / "sigmoid.yaml", "--output", "all")
    x = next(n for n in both["nodes"] if n["name"] == "x")
    assert x["value"] == 1.0
    assert DSIGMOID_AT_1 == pytest.approx(0.19661193324148185, rel=1e-15)
    for o in ("y", "y_chain"):
        assert math.isclose(x["grads"][o], DSIGMOID_AT_1, rel_tol=1e-12), o
        assert math.isclose(both["outputs"][o], S1, rel_tol=1e-12), o
    assert x["grad"] == x["grads"]["y"]


def test_a_node_named_all_is_not_every_output(runner: CliRunner, tmp_path: Path) -> None:
    path = write(tmp_path, "all.yaml", "inputs: {x: 2.0}\nnodes:\n  all: x * x\n  z: 3 * x\noutputs: [z, all]\n")
    d = run_json(runner, path, "--output", "all")
    assert d["output"] == "all"
    x = d["nodes"][0]
    assert x["name"] == "x" and x["grad"] == 4.0 and "grads" not in x


# --- trace: arrays, --output, --step -------------------------------------------------------------


def test_trace_array_graph_shows_rules(runner: CliRunner) -> None:
    r = runner.invoke(app, ["trace", str(GRAPHS / "relu.yaml")])
    assert r.exit_code == 0, r.stderr
    assert r.stderr == ""
    out = r.stdout
    assert "  h  = relu(x=[-2, -0.5, 0.5, 2]) = [0, 0, 0.5, 2]\n" in out
    assert "      rule: dx = dout where x > 0, else 0  (no derivative at x = 0)\n" in out
    assert out.count("      rule: ") == 3  # sum, mul, relu: arrays have Jacobians, not numbers, as locals
    assert "      ∂x = [0, 0, 3, 4]\n" in out
    assert "  ∂w = [0, 0, 0.5, 2]\n" in out


@pytest.mark.parametrize("path", GRAPH_FILES, ids=lambda p: p.name)
def test_trace_every_graph(runner: CliRunner, path: Path) -> None:
    r = runner.invoke(app, ["trace", str(path)])
    assert r.exit_code == 0, r.stderr
    assert r.stderr == ""
    g = cgcalc.load(path)
    assert f"seeded with ∂{g.outputs[0]} = " in r.stdout
    for name in g.inputs:  # a number on the line, or a matrix's grid under it
        assert f"\n  ∂{name} = " in r.stdout or f"\n  ∂{name} =\n      [[" in r.stdout


def test_trace_output_option(runner: CliRunner) -> None:
    r = runner.invoke(app, ["trace", str(GRAPHS / "sigmoid.yaml"), "--output", "y_chain"])
    assert r.exit_code == 0, r.stderr
    assert "seeded with ∂y_chain = 1\n" in r.stdout
    assert "  y_chain.1 (neg)   upstream ∂y_chain.1 = -0.196612\n" in r.stdout
    assert r.stdout.endswith("  ∂x = 0.196612\n")
    assert "  y (sigmoid)" not in r.stdout  # y does not lead to y_chain: no backward step for it
    assert trace_text(GRAPHS / "sigmoid.yaml", "y_chain") != trace_text(GRAPHS / "sigmoid.yaml")

    r = runner.invoke(app, ["trace", str(GRAPHS / "sigmoid.yaml"), "--output", "nope"])
    assert r.exit_code == 2
    assert r.stderr.startswith("error: ") and "nope" in r.stderr and r.stdout == ""


def test_trace_output_all(runner: CliRunner) -> None:
    r = runner.invoke(app, ["trace", str(GRAPHS / "sigmoid.yaml"), "--output", "all"])
    if r.exit_code == 0:  # a trace per output
        assert "seeded with ∂y = 1" in r.stdout and "seeded with ∂y_chain = 1" in r.stdout
    else:  # or a message that says trace follows one output, and which ones there are
        assert r.exit_code == 2
        assert "no input or node named" not in r.stderr and "y_chain" in r.stderr


def test_trace_step_without_a_terminal_is_trace(runner: CliRunner) -> None:
    for path in (GRAPHS / "apple.yaml", GRAPHS / "relu.yaml"):
        plain = runner.invoke(app, ["trace", str(path)])
        stepped = runner.invoke(app, ["trace", str(path), "--step"], input="")
        assert stepped.exit_code == 0, stepped.stderr
        assert stepped.stdout == plain.stdout
        assert stepped.stderr == ""


@posix_only
def test_trace_step_subprocess_with_stdin_closed() -> None:
    args = [sys.executable, "-m", "cgcalc", "trace", str(GRAPHS / "apple.yaml")]
    env = {**os.environ, "NO_COLOR": "1"}
    plain = subprocess.run(args, capture_output=True, text=True, env=env, timeout=60, check=False)
    stepped = subprocess.run(
        [*args, "--step"], stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert stepped.returncode == 0, stepped.stderr
    assert stepped.stdout == plain.stdout
    assert "∂apple = 2.2" in stepped.stdout


class Terminal:
    """cgcalc run with a pseudo-terminal on stdin and stdout, as a user at a terminal would run it."""

    def __init__(self, args: list[str]) -> None:
        import pty

        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child
            try:
                os.environ["NO_COLOR"] = "1"
                os.environ.pop("CGCALC_DEBUG", None)
                os.chdir(ROOT)
                os.execv(sys.executable, [sys.executable, "-m", "cgcalc", *args])
            finally:
                os._exit(127)
        self.raw = b""
        self.closed = False

    @property
    def text(self) -> str:
        """What the terminal shows, without ANSI codes and blank lines (the echoed Enters)."""
        text = re.sub(r"\x1b\[[0-9;]*m", "", self.raw.decode(errors="replace").replace("\r\n", "\n"))
        return "\n".join(line for line in text.splitlines() if line.strip())

    def type(self, keys: bytes) -> None:
        os.write(self.fd, keys)

    def read(self, until: str | None = None, quiet: float = 0.0, timeout: float = 30.0) -> str:
        """Read until `until` is shown and then for `quiet` seconds more; with no `until`, to the end."""
        deadline = time.monotonic() + timeout
        quiet_end = None
        while not self.closed and time.monotonic() < deadline:
            if quiet_end is None and until is not None and until in self.text:
                quiet_end = time.monotonic() + quiet
            if quiet_end is not None and time.monotonic() >= quiet_end:
                break
            if not select.select([self.fd], [], [], 0.05)[0]:
                continue
            try:
                data = os.read(self.fd, 4096)
            except OSError:  # EIO: the child has gone and closed the terminal
                data = b""
            self.raw += data
            self.closed = not data
        return self.text

    def wait(self) -> int:
        """Read to the end; the exit code."""
        self.read()
        if not self.closed:
            os.kill(self.pid, 9)
        os.close(self.fd)
        return os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])


@posix_only
def test_trace_step_in_a_terminal_pauses_then_shows_everything() -> None:
    from cgcalc.cli.stepper import PROMPT

    def screen() -> list[str]:
        """The lines left on the screen: each prompt was erased (\\r, clear line) before the next step."""
        text = re.sub(r"\x1b\[[0-9;]*m", "", term.raw.decode(errors="replace").replace("\r\n", "\n"))
        return text.replace(PROMPT + "\r\x1b[2K", "").split("\n")

    lines = [line for line in trace_text(GRAPHS / "apple.yaml").splitlines() if line.strip()]
    numbered = [lines[0], "  1. " + lines[1][2:], "  2. " + lines[2][2:], "", lines[3], "  3. " + lines[4][2:]]
    term = Terminal(["trace", "graphs/apple.yaml", "--step"])
    try:
        # one numbered step, then the prompt (which says how to go on), waiting for a key
        term.read(until="quit", quiet=0.5)
        assert screen() == numbered[:2] + [PROMPT]
        term.type(b"\n")
        term.read(until="price       = mul", quiet=0.5)
        assert screen() == numbered[:3] + [PROMPT]  # single-spaced: no blank line, no prompt left behind
    finally:
        term.type(b"\n" * 20)
        code = term.wait()
    assert code == 0, term.text
    assert screen()[:6] == numbered
    assert screen()[-2:] == ["  ∂tax = 200", ""]


@posix_only
def test_trace_step_end_of_input_stops_quietly() -> None:
    term = Terminal(["trace", "graphs/apple.yaml", "--step"])
    term.read(until="quit", quiet=0.3)
    term.type(b"\x04")  # Ctrl-D: the rest at once
    code = term.wait()
    assert "apple: forward, in execution order" in term.text
    assert "internal error" not in term.text
    assert code in (0, 130)
