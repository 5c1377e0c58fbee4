"""`cgcalc fit` through the CLI: the report (table and JSON), the trained graph (-o), the log, divergence (exit 1),
Ctrl-C and SIGTERM (the last whole parameters saved, nothing partial), the progress bar (a terminal only), and
the errors, each one line with exit 2."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_error, cli, one_error_line, write
from proc_helpers import CGCALC, GRAPHS

import cgcalc

SQUARES = """\
name: function-2
description: the book's f(x0, x1) = x0² + x1²
inputs: {x0: -3.0, x1: 4.0}
nodes:
  f: x0**2 + x1**2
"""
IRIS = ["fit", GRAPHS / "iris_net.yaml", "--params", "W1,b1,W2,b2", "--rows", GRAPHS / "iris.jsonl"]
IRIS_OPTS = ["--optimizer", "adam", "--lr", "0.02", "--epochs", "100", "--batch-size", "15", "--seed", "0"]


def test_the_table_report(tmp_path):
    g = write(tmp_path, "f2.yaml", SQUARES)
    r = cli("fit", g, "--params", "x0,x1", "--lr", "0.1", "--steps", "20")
    assert r.exit_code == 0, r.stderr
    assert r.stderr == ""  # no progress bar: stderr is not a terminal
    assert r.stdout == (
        "function-2: sgd (lr 0.1), 20 steps, minimizing f\n"
        "     25 ┤█▆▃▁\n"
        "        ┤████▆▄▁\n"
        "        ┤███████▇▄▂\n"
        "        ┤██████████▇▅▂\n"
        "        ┤██████████████▅▃\n"
        "0.00519 ┤█████████████████▆▃▁\n"
        "         1                 20  (steps, log scale)\n"
        "f per step: 25 → 0.0051923\n"
        "at the trained parameters: f = 0.00332307\n"
        "param   before        after\n"
        "───────────────────────────\n"
        "x0          -3   -0.0345876\n"
        "x1           4    0.0461169\n"
    )


def test_the_json_report():
    r = cli(*IRIS, *IRIS_OPTS, "-f", "json")
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    assert list(d) == ["graph", "output", "optimizer", "steps", "loss", "params", "outputs"]
    assert (d["graph"], d["output"], d["optimizer"], d["steps"]) == ("iris-net", "loss", "adam", 1000)
    assert len(d["loss"]) == 100  # per epoch
    assert np.array(d["params"]["W1"]).shape == (4, 8) and len(d["params"]["b2"]) == 3
    assert d["outputs"]["accuracy"] >= 0.95
    api = cgcalc.load(GRAPHS / "iris_net.yaml").fit(
        ["W1", "b1", "W2", "b2"], GRAPHS / "iris.jsonl", optimizer="adam", lr=0.02, epochs=100, batch_size=15
    )
    assert d["loss"] == api.losses and d["params"]["W2"] == api.params["W2"].tolist()


def test_the_iris_table_shows_the_accuracy():
    r = cli(*IRIS, *IRIS_OPTS)
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == (
        "iris-net: adam (lr 0.02), 1,000 steps in 100 epochs over 150 rows (batch 15, seed 0), minimizing loss"
    )
    assert "at the trained parameters, the mean over all 150 rows: loss = 0.0528638, accuracy = 0.98" in lines
    assert [line.split()[0] for line in lines[-4:]] == ["W1", "b1", "W2", "b2"]


def test_o_writes_the_trained_graph_that_run_evaluates(tmp_path):
    out = tmp_path / "trained.yaml"
    r = cli(*IRIS, *IRIS_OPTS, "-o", out)
    assert r.exit_code == 0, r.stderr
    text = out.read_text()
    assert text.startswith(f"# cgcalc fit of {GRAPHS / 'iris_net.yaml'} (adam, 1,000 steps, loss ")
    trained = cgcalc.load(out)
    d = json.loads(cli(*IRIS, *IRIS_OPTS, "-f", "json").stdout)
    assert trained.run().value("W1").tolist() == d["params"]["W1"]
    rows = [json.loads(line) for line in (GRAPHS / "iris.jsonl").read_text().splitlines()]
    x, t = np.array([row["x"] for row in rows]), np.array([row["t"] for row in rows])
    assert trained.run(x=x, t=t).value("accuracy") == d["outputs"]["accuracy"]  # the whole set, at once
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trained.yaml"]
    js = tmp_path / "trained.json"
    assert cli(*IRIS, *IRIS_OPTS, "-o", js).exit_code == 0
    assert json.loads(js.read_text())["inputs"]["W1"] == d["params"]["W1"]


def test_o_dash_writes_the_trained_graph_to_stdout(tmp_path):
    g = write(tmp_path, "f2.yaml", SQUARES)
    r = cli("fit", g, "--params", "x0,x1", "--lr", "0.1", "--steps", "20", "-o", "-")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.startswith("# cgcalc fit of")
    d = json.loads(cli("fit", g, "--params", "x0,x1", "--lr", "0.1", "--steps", "20", "-f", "json").stdout)
    assert cgcalc.loads(r.stdout).run().value("x0") == d["params"]["x0"]
    assert "-o - writes the trained graph" in one_error_line(cli("fit", g, "--params", "x0", "-o", "-", "-f", "json"))


def test_o_never_overwrites_the_graph_or_the_rows_and_says_so_before_training(tmp_path):
    g = write(tmp_path, "f2.yaml", SQUARES)
    r = cli("fit", g, "--params", "x0", "--steps", "100000000", "-o", g)  # refused at once, not after the run
    assert_error(r, str(g), "the output is the graph file")
    assert g.read_text() == SQUARES


def test_log_per_step_and_per_epoch(tmp_path):
    g = write(tmp_path, "two.yaml", "inputs: {x: 3.0}\nnodes:\n  y: x * x\n  z: 2 * x\noutputs: [y, z]\n")
    log = tmp_path / "log.csv"
    assert cli("fit", g, "--params", "x", "--lr", "0.25", "--steps", "3", "--log", log).exit_code == 0
    assert log.read_text() == "step,y,z\n1,9.0,6.0\n2,2.25,3.0\n3,0.5625,1.5\n"
    log2 = tmp_path / "iris.csv"
    r = cli(*IRIS, "--optimizer", "adam", "--lr", "0.02", "--epochs", "4", "--log", log2)
    assert r.exit_code == 0, r.stderr
    rows = list(csv.reader(io.StringIO(log2.read_text())))
    assert rows[0] == ["epoch", "loss", "accuracy"] and [row[0] for row in rows[1:]] == ["1", "2", "3", "4"]
    assert all(0 <= float(row[2]) <= 1 for row in rows[1:])


def test_divergence_is_exit_1_naming_the_step_and_writes_no_trained_graph(tmp_path):
    g = write(tmp_path, "q.yaml", "inputs: {x: 3.0}\nnodes:\n  y: x ** 4\n")
    out, log = tmp_path / "t.yaml", tmp_path / "log.csv"
    r = cli("fit", g, "--params", "x", "--lr", "1", "--steps", "50", "-o", out, "--log", log)
    assert r.exit_code == 1
    assert r.stdout == ""
    assert r.stderr == (
        "error: the loss 'y' is infinite at step 6: the run diverged; the last finite loss was 3.9374e+249 "
        f"(try a smaller --lr than 1); nothing written to {out}\n"
    )
    assert not out.exists()
    assert log.read_text().splitlines()[0] == "step,y" and len(log.read_text().splitlines()) == 6  # 5 steps


def test_an_interrupt_saves_the_last_whole_parameters(tmp_path, monkeypatch):
    from cgcalc.fit import optimizers

    real, calls = optimizers.SGD.update, []

    def update(self, params, grads):
        calls.append(1)
        if len(calls) == 3:  # Ctrl-C in the middle of step 3
            raise KeyboardInterrupt
        return real(self, params, grads)

    monkeypatch.setattr(optimizers.SGD, "update", update)
    g = write(tmp_path, "f2.yaml", SQUARES)
    out, log = tmp_path / "t.yaml", tmp_path / "log.csv"
    r = cli("fit", g, "--params", "x0,x1", "--lr", "0.1", "--steps", "20", "-o", out, "--log", log)
    assert r.exit_code == 130
    assert r.stderr == f"saved the parameters after step 2 to {out}\nerror: interrupted\n"
    back = cgcalc.load(out).run()
    two = cgcalc.loads(SQUARES).fit(["x0", "x1"], lr=0.1, steps=2).params
    assert (back.value("x0"), back.value("x1")) == (two["x0"], two["x1"])
    assert "(sgd, 2 steps, interrupted, f 16.0 at the last step)" in out.read_text().splitlines()[0]
    assert log.read_text() == "step,f\n1,25.0\n2,16.0\n"


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_real_signal_leaves_a_complete_file_and_no_temporary_one(tmp_path, sig, code):
    g = GRAPHS / "rosenbrock.yaml"
    out = tmp_path / "t.yaml"
    proc = subprocess.Popen(
        [*CGCALC, "fit", g, "--params", "x0,x1", "--lr", "0.001", "--steps", "100000000", "-o", out],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    time.sleep(2.0)  # started, and well into its steps
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code, stderr
    assert stdout == b""
    assert b"saved the parameters after step" in stderr
    back = cgcalc.load(out).run()
    assert 0 < back.value("x0") < 1.0  # somewhere on the way to (1, 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.yaml"]


def test_the_progress_bar_is_drawn_on_a_terminal_only(tmp_path):
    g = GRAPHS / "rosenbrock.yaml"
    args = [*CGCALC, "fit", g, "--params", "x0,x1", "--lr", "0.001", "--steps", "200000"]
    plain = subprocess.run(args, capture_output=True, check=True)
    assert plain.stderr == b""
    master, slave = pty.openpty()
    seen = bytearray()

    def drain():
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:
                return
            if not data:
                return
            seen.extend(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        proc = subprocess.run(
            args,
            stdout=subprocess.PIPE,
            stderr=slave,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "TERM": "xterm", "COLUMNS": "100"},
            timeout=120,
        )
    finally:
        os.close(slave)
        reader.join(timeout=5)
        os.close(master)
    assert proc.returncode == 0
    assert proc.stdout == plain.stdout  # the report, the same with or without a terminal on stderr
    assert b"fit" in seen and b"loss" in seen
    quiet = subprocess.run([*args, "--quiet"], capture_output=True, check=True)
    assert quiet.stdout == plain.stdout


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--params", "x9"], "parameter 'x9' is not an input of the graph"),
        (["--params", "f"], "parameter 'f' is a node, not an input"),
        (["--params", "x0", "--steps", "2", "--epochs", "2"], "give --steps or --epochs, not both"),
        (["--params", "x0", "--epochs", "2"], "--epochs counts passes over the rows"),
        (["--params", "x0,"], "--params takes NAME,NAME,..."),
        (["--params", "x0", "--output", "g"], "no input or node named 'g'"),
    ],
)
def test_usage_errors_are_one_line(tmp_path, args, fragment):
    g = write(tmp_path, "f2.yaml", SQUARES)
    line = one_error_line(cli("fit", g, *args))
    assert fragment in line


def test_a_missing_params_option_and_a_bad_optimizer_are_usage_errors(tmp_path):
    g = write(tmp_path, "f2.yaml", SQUARES)
    assert "Missing option '--params'" in one_error_line(cli("fit", g))
    assert "'adamw' is not one of" in one_error_line(cli("fit", g, "--params", "x0", "--optimizer", "adamw"))


def test_a_bad_rows_file_is_named_with_its_line(tmp_path):
    g = write(
        tmp_path, "line.yaml", "inputs:\n  x: {value: 0.0, grad: false}\n  w: 1.0\nnodes:\n  y: (w * x - 1) ** 2\n"
    )
    rows = tmp_path / "rows.csv"
    rows.write_text("x\n1\n2\nzwei\n")
    assert_error(cli("fit", g, "--params", "w", "--rows", rows), f"{rows}:4:1", "column 'x': bad number 'zwei'")
    missing = tmp_path / "none.csv"
    assert "cannot read the file" in one_error_line(cli("fit", g, "--params", "w", "--rows", missing))
    rows.write_text("y\n1\n")
    assert_error(cli("fit", g, "--params", "w", "--rows", rows), f"{rows}:1:1", "unknown column 'y'")


def test_rows_of_one_sample_per_run_from_a_csv_file(tmp_path):
    line = "inputs:\n  x: {value: 0.0, grad: false}\n  t: {value: 0.0, grad: false}\n  w: 0.0\n  b: 0.0\n"
    g = write(tmp_path, "line.yaml", line + "nodes:\n  loss: (w * x + b - t) ** 2\n")
    rows = tmp_path / "rows.csv"
    rows.write_text("x,t\n" + "".join(f"{x},{2 * x + 1}\n" for x in range(-5, 6)))
    opts = ["--lr", "0.02", "--epochs", "300", "--batch-size", "4", "-f", "json"]
    r = cli("fit", g, "--params", "w,b", "--rows", rows, *opts)
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["params"]["w"] == pytest.approx(2, abs=1e-3) and d["params"]["b"] == pytest.approx(1, abs=1e-3)
    assert len(d["loss"]) == 300 and d["steps"] == 300 * 3


def test_o_and_log_cannot_be_one_file(tmp_path):
    g = write(tmp_path, "f2.yaml", SQUARES)
    both = tmp_path / "x.csv"
    assert "-o and --log name the same file" in one_error_line(
        cli("fit", g, "--params", "x0", "-o", both, "--log", both)
    )


def test_fit_is_listed_in_help():
    r = cli("--help")
    assert r.exit_code == 0
    names = re.findall(r"^│ (\w+) {2,}", r.stdout, re.M)
    # after the derivative commands and the what-if ones, before batch: the order of cli/app.py's ORDER
    assert names[names.index("hessian") :][:6] == ["hessian", "sweep", "tornado", "solve", "fit", "batch"]


def test_set_gives_a_start_value(tmp_path):
    g = write(tmp_path, "f2.yaml", SQUARES)
    r = cli("fit", g, "--params", "x0", "--set", "x1=0", "--set", "x0=1", "--lr", "0.5", "--steps", "1", "-f", "json")
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["params"] == {"x0": 0.0} and d["loss"] == [1.0] and d["outputs"] == {"f": 0.0}


def test_every_optimizer_runs_through_the_cli(tmp_path):
    g = write(tmp_path, "f2.yaml", SQUARES)
    for name in ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "newton"):
        r = cli("fit", g, "--params", "x0,x1", "--optimizer", name, "--lr", "0.1", "--steps", "30", "-f", "json")
        assert r.exit_code == 0, (name, r.stderr)
        d = json.loads(r.stdout)
        assert d["optimizer"] == name and d["outputs"]["f"] < d["loss"][0], name


def test_numerical_gradient_through_the_cli(tmp_path):
    g = write(tmp_path, "f2.yaml", SQUARES)
    r = cli("fit", g, "--params", "x0,x1", "--lr", "0.1", "--steps", "100", "--gradient", "numerical", "-f", "json")
    assert json.loads(r.stdout)["params"] == {"x0": -6.111107928998789e-10, "x1": 8.148143905314271e-10}


def test_the_readme_shows_the_fit_command():
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert "$ cgcalc fit graphs/iris_net.yaml" in text
