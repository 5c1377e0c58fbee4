"""Readable arrays in the terminal: a matrix as a grid (rows on their own lines, columns aligned on the decimal
point) in `run --full`, `trace` and `check`; previews that never break inside a number; tables that stay legible
at 60 columns (the inputs column dropped, or each row stacked) rather than cutting values to `…`."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import cli, write
from rich.console import Console

import cgcalc
from cgcalc.numbers import _halves, fmt_num, grid
from cgcalc.views.check import check
from cgcalc.views.render import result_table
from cgcalc.views.render_trace import check_table, trace_view
from cgcalc.views.trace import trace

ROOT = Path(__file__).resolve().parent.parent
GRAPHS = ROOT / "graphs"


def render(renderable, width: int) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None, highlight=False, soft_wrap=False)
    console.print(renderable)
    return console.file.getvalue()


def columns_of(lines: list[str]) -> list[list[tuple[int, str]]]:
    """Each line's numbers with where their decimal point is (or would be)."""
    out = []
    for line in lines:
        row = []
        for m in re.finditer(r"[^\s\[\]]+", line):
            left, _ = _halves(m.group())
            row.append((m.start() + len(left), m.group()))
        out.append(row)
    return out


@pytest.mark.parametrize("seed", range(8))
def test_a_grid_has_a_row_a_line_and_its_columns_aligned_on_the_decimal_point(seed):
    rng = np.random.default_rng(seed)
    shape = tuple(int(n) for n in rng.integers(1, 7, size=2))
    scale = 10.0 ** rng.integers(-3, 4, size=shape)
    a = np.round(rng.normal(size=shape) * scale, int(rng.integers(0, 6)))
    a.flat[0] = -a.flat[0]
    text = grid(a, 6)
    lines = text.split("\n")
    assert len(lines) == shape[0]
    assert lines[0].startswith("[[") and lines[-1].endswith("]]")
    cols = columns_of(lines)
    for j in range(shape[1]):
        assert len({row[j][0] for row in cols}) == 1, text  # the decimal points of column j line up
    # and the numbers are the table's rounding of the values
    assert [[t for _, t in row] for row in cols] == [[fmt_num(float(x), 6) for x in r] for r in a.tolist()]


def test_a_3d_array_is_its_matrices_one_after_another():
    text = grid(np.arange(12.0).reshape(2, 2, 3), 6)
    assert text == "[[[0  1  2]\n  [3  4  5]]\n\n [[6  7  8]\n  [9 10 11]]]"


def test_a_row_too_long_for_the_width_goes_on_over_more_lines():
    a = np.arange(20.0).reshape(2, 10) / 7
    lines = grid(a, 6, width=40).split("\n")
    assert all(len(line) <= 40 for line in lines) and len(lines) > 2
    assert [float(x) for x in re.findall(r"[-0-9.e]+", "\n".join(lines))] == [float(fmt_num(x, 6)) for x in a.ravel()]


def ten_by_ten(tmp_path: Path) -> Path:
    rng = np.random.default_rng(1)
    x = np.round(rng.uniform(-1, 1, size=(10, 10)), 2).tolist()
    return write(tmp_path, "m10.yaml", f"name: m10\ninputs:\n  x: {json.dumps(x)}\nnodes:\n  y: sum(x)\n")


def test_run_full_shows_a_10_by_10_matrix_in_10_lines_at_100_columns(tmp_path):
    r = cgcalc.load(ten_by_ten(tmp_path)).run()
    text = render(result_table(r, full=True, width=100), 100)
    lines = text.splitlines()
    assert all(len(line) <= 100 for line in lines)
    x = np.asarray(r.value("x"))
    # the value's grid: 10 consecutive lines, a matrix row each, in the order of the rows
    rows = [i for i, line in enumerate(lines) if "[" in line and len(re.findall(r"-?\d+\.?\d*", line)) == 10]
    first_value = next(i for i in rows if fmt_num(float(x[0, 0]), 6) in lines[i])
    assert rows[rows.index(first_value) : rows.index(first_value) + 10] == list(range(first_value, first_value + 10))
    assert len(lines) <= 32  # (it was 247 wrapped lines): the value's 10, the gradient's 10, names and rules
    assert "…" not in text


@pytest.mark.parametrize("graph", ["apple_orange", "two_layer_net", "neuron", "expressions"])
def test_at_60_columns_no_value_is_cut(graph):
    r = cgcalc.load(GRAPHS / f"{graph}.yaml").run()
    text = render(result_table(r, width=60), 60)
    assert all(len(line) <= 60 for line in text.splitlines()), text
    assert "…]" in text or "…" not in text  # an ellipsis only as a preview's own "…]"
    d = r.to_dict()
    for n in d["nodes"]:
        assert re.search(rf"^{re.escape(n['name'])}\b", text, re.MULTILINE), n["name"]  # every name, whole
        if isinstance(n["value"], float):
            assert fmt_num(n["value"], 6) in text
    for word in re.findall(r"\S+", text):  # no number broken: every numeric word reads back as a number
        bare = word.strip("[],")
        if bare and bare[0].isdigit() and "×" not in bare:
            float(bare.rstrip("…"))


def test_check_at_60_columns_names_every_input():
    plan = cgcalc.load(GRAPHS / "two_layer_net.yaml").plan
    text = render(check_table(check(plan), width=60), 60)
    assert all(len(line) <= 60 for line in text.splitlines()), text
    for name in ("x", "W1", "b1", "W2", "b2"):
        assert re.search(rf"^{name}\s+\[", text, re.MULTILINE), text
    assert "…" not in text and "-0.02473750965" in text


def test_check_aligns_its_numbers_on_the_decimal_point():
    plan = cgcalc.load(GRAPHS / "two_layer_net.yaml").plan
    lines = render(check_table(check(plan)), 200).splitlines()[3:]
    points = {line.index(".", line.index("(worst")) for line in lines}  # backprop's decimal point, every row
    assert len(points) == 1, lines


def test_trace_shows_a_matrix_as_a_grid_under_its_line():
    t = trace(cgcalc.load(GRAPHS / "two_layer_net.yaml").plan)
    text = render(trace_view(t), 100)
    assert "  a1   = affine(x=2×3 [1, 0.5, -1, …], W1=3×4 [0.1, -0.2, 0.3, …], b1=[0.01, -0.02, 0.03, 0]) =\n" in text
    assert "      [[ 0.61 -0.37 -0.02  0.25]\n       [-0.33  0.07  0.32 -0.13]]\n" in text
    assert "      ∂W2 =\n          [[-0.140478   0.140478 ]\n" in text
    lines = text.splitlines()
    at = lines.index("  ∂W1 =")
    cols = columns_of(lines[at + 1 : at + 4])
    assert all(len({row[j][0] for row in cols}) == 1 for j in range(4))


def run_in_a_terminal(args: list[str], columns: int) -> str:
    """cgcalc with a pseudo-terminal as stdout, `columns` wide: what the user sees."""
    import pty

    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": str(columns), "NO_COLOR": "1", "TERM": "xterm"}
    env.pop("CGCALC_DEBUG", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "cgcalc", *args], stdout=follower, stderr=follower, stdin=subprocess.DEVNULL, env=env
    )
    os.close(follower)
    out = b""
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:
            break
        if not data:
            break
        out += data
    os.close(leader)
    assert proc.wait(timeout=60) == 0
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.decode().replace("\r\n", "\n"))


@pytest.mark.skipif(os.name != "posix", reason="needs a pseudo-terminal")
def test_the_cli_at_60_columns(tmp_path):
    text = run_in_a_terminal(["run", str(GRAPHS / "two_layer_net.yaml")], 60)
    assert all(len(line) <= 60 for line in text.splitlines()), text
    assert "0.649983" in text and "0.649…" not in text
    assert re.search(r"^loss\s+softmax_with_loss\(a2, t\)\s+◀ output$", text, re.MULTILINE), text
    text = run_in_a_terminal(["check", str(GRAPHS / "two_layer_net.yaml")], 60)
    assert re.search(r"^W1\s+\[2, 1\]", text, re.MULTILINE) and "…" not in text, text
    # piped, the table is as wide as it needs (the golden files), whatever COLUMNS says
    piped = cli("run", GRAPHS / "apple_orange.yaml", env={"COLUMNS": "60"})
    assert piped.stdout == (ROOT / "tests" / "golden" / "run_apple_orange.txt").read_text()
