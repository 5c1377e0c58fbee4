"""Every command through typer's CliRunner: exit code, stdout and stderr checked separately.

The book's numbers (Deep Learning from Scratch, 5.4) are derived by hand: apple = 100, apple_num = 2,
tax = 1.1 gives price = 100 * 2 * 1.1 = 220, d price/d apple = apple_num * tax = 2.2, d/d apple_num =
apple * tax = 110, d/d tax = apple * apple_num = 200, d/d apple_price = tax = 1.1. With three oranges at 150:
all_price = 200 + 450 = 650, price = 715, d/d orange = 3 * 1.1 = 3.3, d/d orange_num = 150 * 1.1 = 165,
d/d tax = 650.
"""

from __future__ import annotations

import csv
import io
import json
import re
from importlib.metadata import version
from pathlib import Path

import pytest
from cli_helpers import cli, write

ROOT = Path(__file__).resolve().parent.parent
GRAPHS = ROOT / "graphs"
APPLE = GRAPHS / "apple.yaml"
APPLE_ORANGE = GRAPHS / "apple_orange.yaml"
ALL_GRAPHS = sorted(GRAPHS.glob("*.yaml")) + sorted(GRAPHS.glob("*.json"))

# SPEC section 1, "Ops (all required)"
OPS = [
    "add",
    "sub",
    "mul",
    "div",
    "pow",
    "neg",
    "exp",
    "log",
    "relu",
    "sigmoid",
    "tanh",
    "matmul",
    "affine",
    "sum",
    "mean",
    "softmax_with_loss",
]
# SPEC section 3
COMMANDS = ["run", "check", "trace", "export", "batch", "validate", "ops"]


def ok(result) -> str:
    """stdout of a command that succeeded without a word on stderr."""
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    assert result.stderr == ""
    return result.stdout


def strict_json(text: str):
    """json.loads that refuses the non-standard constants NaN, Infinity and -Infinity (RFC 8259)."""

    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


def table_rows(stdout: str) -> dict[str, tuple[str, str, str, bool]]:
    """name -> (op, value, grad, marked as output) for each row of a `run` table of scalars."""
    rows = {}
    for line in stdout.splitlines():
        tokens = line.split()
        if len(tokens) < 4 or tokens[1] not in ("input", "const", *OPS):
            continue
        marked = tokens[-2:] == ["◀", "output"]
        if marked:
            tokens = tokens[:-2]
        rows[tokens[0]] = (tokens[1], tokens[-2], tokens[-1], marked)
    return rows


def row_names(stdout: str) -> list[str]:
    return list(table_rows(stdout))


# --- run: the table -------------------------------------------------------------------------------------


def test_run_apple_table():
    out = ok(cli("run", APPLE))
    rows = table_rows(out)
    assert rows == {
        "apple": ("input", "100", "2.2", False),
        "apple_num": ("input", "2", "110", False),
        "tax": ("input", "1.1", "200", False),
        "apple_price": ("mul", "200", "1.1", False),
        "price": ("mul", "220", "1", True),
    }
    assert list(rows) == ["apple", "apple_num", "tax", "apple_price", "price"]  # inputs, then nodes in order
    header = next(line for line in out.splitlines() if line.split()[:2] == ["name", "op"])
    assert "value" in header and "price" in header
    assert "Buying two apples with 10% tax" in out


def test_run_apple_orange_table():
    rows = table_rows(ok(cli("run", APPLE_ORANGE)))
    assert rows == {
        "apple": ("input", "100", "2.2", False),
        "apple_num": ("input", "2", "110", False),
        "orange": ("input", "150", "3.3", False),
        "orange_num": ("input", "3", "165", False),
        "tax": ("input", "1.1", "650", False),
        "apple_price": ("mul", "200", "1.1", False),
        "orange_price": ("mul", "450", "1.1", False),
        "all_price": ("add", "650", "1.1", False),
        "price": ("mul", "715", "1", True),
    }
    assert list(rows) == [
        "apple",
        "apple_num",
        "orange",
        "orange_num",
        "tax",
        "apple_price",
        "orange_price",
        "all_price",
        "price",
    ]


def test_run_table_lists_nodes_in_execution_order_not_file_order(tmp_path):
    p = write(
        tmp_path,
        "g.yaml",
        """\
        inputs:
          x: 2
        nodes:
          c: {op: mul, in: [b, x]}
          b: {op: add, in: [a, x]}
          a: {op: neg, in: [x]}
        outputs: c
        """,
    )
    rows = table_rows(ok(cli("run", p)))
    assert list(rows) == ["x", "a", "b", "c"]
    # a = -2, b = 0, c = b * x = 0; dc/dx = b + x * (da/dx + 1) = 0 + 2 * 0 = 0, dc/db = x = 2
    assert rows["a"][1:3] == ("-2", "2")
    assert rows["b"][1:3] == ("0", "2")
    assert rows["c"][1:3] == ("0", "1")


# --- run: JSON ------------------------------------------------------------------------------------------


def test_run_json_has_the_spec_shape_at_full_precision():
    d = strict_json(ok(cli("run", APPLE, "--format", "json")))
    assert set(d) == {"graph", "output", "outputs", "nodes"}
    assert d["graph"] == "apple"
    assert d["output"] == "price"
    assert d["outputs"] == {"price": 220.00000000000003}  # 200 * 1.1 in float64, not rounded
    assert [n["name"] for n in d["nodes"]] == ["apple", "apple_num", "tax", "apple_price", "price"]
    for n in d["nodes"]:
        assert set(n) == {"name", "op", "inputs", "value", "grad"}
    nodes = {n["name"]: n for n in d["nodes"]}
    assert nodes["apple"] == {"name": "apple", "op": "input", "inputs": [], "value": 100.0, "grad": 2.2}
    assert nodes["apple_price"] == {
        "name": "apple_price",
        "op": "mul",
        "inputs": ["apple", "apple_num"],
        "value": 200.0,
        "grad": 1.1,
    }
    assert nodes["price"] == {
        "name": "price",
        "op": "mul",
        "inputs": ["apple_price", "tax"],
        "value": 220.00000000000003,
        "grad": 1.0,
    }
    # the chain rule in float64, by hand: each local derivative times the upstream 1.1
    assert nodes["apple_num"]["grad"] == 1.1 * 100.0 == 110.00000000000001
    assert nodes["tax"]["grad"] == 200.0
    assert nodes["apple_num"]["value"] == 2.0 and nodes["tax"]["value"] == 1.1


def test_run_json_apple_orange():
    d = strict_json(ok(cli("run", APPLE_ORANGE, "--format", "json")))
    assert d["graph"] == "apple-orange"
    nodes = {n["name"]: n for n in d["nodes"]}
    values = {k: n["value"] for k, n in nodes.items()}
    grads = {k: n["grad"] for k, n in nodes.items()}
    assert values == pytest.approx(
        {
            "apple": 100,
            "apple_num": 2,
            "orange": 150,
            "orange_num": 3,
            "tax": 1.1,
            "apple_price": 200,
            "orange_price": 450,
            "all_price": 650,
            "price": 715,
        },
        rel=1e-15,
    )
    assert grads == pytest.approx(
        {
            "apple": 2.2,
            "apple_num": 110,
            "orange": 3.3,
            "orange_num": 165,
            "tax": 650,
            "apple_price": 1.1,
            "orange_price": 1.1,
            "all_price": 1.1,
            "price": 1,
        },
        rel=1e-15,
    )


NONFINITE = """\
    inputs:
      x: -1
      y: 2
      z: 0
      big: 1000
    nodes:
      a: {op: mul, in: [x, y]}
      l: {op: log, in: [x]}
      m: {op: log, in: [z]}
      e: {op: exp, in: [big]}
      out: {op: add, in: [l, a]}
    outputs: out
    """


def test_run_json_is_strict_with_nan_and_infinities(tmp_path):
    p = write(tmp_path, "g.yaml", NONFINITE)
    result = cli("run", p, "--format", "json")
    assert result.exit_code == 0
    text = result.stdout
    assert '"NaN"' in text and '"Infinity"' in text and '"-Infinity"' in text
    d = strict_json(text)  # would raise on a bare NaN or Infinity
    nodes = {n["name"]: n for n in d["nodes"]}
    assert nodes["l"]["value"] == "NaN"  # log(-1)
    assert nodes["m"]["value"] == "-Infinity"  # log(0)
    assert nodes["e"]["value"] == "Infinity"  # exp(1000) overflows float64
    assert nodes["a"]["value"] == -2.0
    assert d["outputs"] == {"out": "NaN"}
    assert "warning:" in result.stderr


# --- run: CSV -------------------------------------------------------------------------------------------


def test_run_csv():
    out = ok(cli("run", APPLE, "--format", "csv"))
    reader = csv.DictReader(io.StringIO(out))
    assert reader.fieldnames == ["name", "op", "inputs", "value", "grad"]
    rows = list(reader)
    assert [r["name"] for r in rows] == ["apple", "apple_num", "tax", "apple_price", "price"]
    by_name = {r["name"]: r for r in rows}
    assert by_name["price"]["op"] == "mul"
    assert by_name["price"]["inputs"].split() == ["apple_price", "tax"]
    assert by_name["apple"]["inputs"] == ""
    assert float(by_name["price"]["value"]) == 220.00000000000003  # full precision, as in JSON
    assert {r["name"]: float(r["grad"]) for r in rows} == {
        "apple": 2.2,
        "apple_num": 1.1 * 100.0,
        "tax": 200.0,
        "apple_price": 1.1,
        "price": 1.0,
    }


def test_run_csv_writes_arrays_as_json():
    reader = csv.DictReader(io.StringIO(ok(cli("run", GRAPHS / "relu.yaml", "--format", "csv"))))
    rows = {r["name"]: r for r in reader}
    assert json.loads(rows["x"]["value"]) == [-2.0, -0.5, 0.5, 2.0]
    # y = sum(relu(x) * w): dy/dx is w where x > 0, else 0
    assert json.loads(rows["x"]["grad"]) == [0.0, 0.0, 3.0, 4.0]
    assert json.loads(rows["w"]["grad"]) == [0.0, 0.0, 0.5, 2.0]  # relu(x)
    assert float(rows["y"]["value"]) == 0.5 * 3 + 2.0 * 4  # 9.5


# --- run: options ---------------------------------------------------------------------------------------


def test_set_a_number():
    d = strict_json(ok(cli("run", APPLE, "--set", "apple=120", "--format", "json")))
    nodes = {n["name"]: n for n in d["nodes"]}
    assert nodes["apple"]["value"] == 120.0
    assert d["outputs"]["price"] == pytest.approx(264.0, rel=1e-15)  # 120 * 2 * 1.1
    assert nodes["tax"]["grad"] == 240.0
    assert nodes["apple_num"]["grad"] == pytest.approx(132.0, rel=1e-15)
    assert nodes["apple"]["grad"] == 2.2  # does not depend on apple


def test_set_a_list_and_short_option():
    d = strict_json(ok(cli("run", APPLE, "-s", "tax=[1, 2]", "-s", "apple_num=3", "--format", "json")))
    nodes = {n["name"]: n for n in d["nodes"]}
    # price = 300 * tax = [300, 600]; the gradient is that of sum(price) = 300 * (1 + 2)
    assert d["outputs"]["price"] == [300.0, 600.0]
    assert nodes["tax"]["grad"] == [300.0, 300.0]
    assert nodes["apple"]["grad"] == 3 * (1 + 2)
    assert nodes["apple_num"]["grad"] == 100 * (1 + 2)
    assert nodes["apple_price"]["grad"] == 3.0
    assert nodes["price"]["grad"] == [1.0, 1.0]


def test_set_in_the_table():
    rows = table_rows(ok(cli("run", APPLE, "--set", "apple=150")))
    assert rows["price"][1] == "330"  # 150 * 2 * 1.1
    assert rows["apple"][1:3] == ("150", "2.2")


def test_output_selects_the_gradient():
    d = strict_json(ok(cli("run", APPLE, "--output", "apple_price", "--format", "json")))
    assert d["output"] == "apple_price"
    grads = {n["name"]: n["grad"] for n in d["nodes"]}
    # d apple_price = apple * apple_num: d/d apple = 2, d/d apple_num = 100; price and tax are not upstream of it
    assert grads == {"apple": 2.0, "apple_num": 100.0, "tax": 0.0, "apple_price": 1.0, "price": 0.0}
    out = ok(cli("run", APPLE, "-O", "apple_price"))
    assert "grad of apple_price" in out
    assert table_rows(out)["apple_num"][1:3] == ("2", "100")


def test_output_unknown_is_an_error():
    result = cli("run", APPLE, "--output", "prize")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: ") and "'prize'" in result.stderr


def test_precision():
    # graphs/expressions.yaml, f = x**2 y + exp(-x)/y - log(y) at x = 1.5, y = 2, by hand:
    # df/dx = 2xy - exp(-x)/y = 6 - 0.2231301601/2 = 5.88843492;  df/dy = x**2 - exp(-x)/y**2 - 1/y = 1.69421746
    path = GRAPHS / "expressions.yaml"
    rows = table_rows(ok(cli("run", path, "--precision", "3")))
    assert rows["x"][2] == "5.89" and rows["y"][2] == "1.69"
    rows = table_rows(ok(cli("run", path, "-p", "10")))
    # 5.888434920 and 1.694217460 to 10 digits, written as %g writes them: without trailing zeros
    assert rows["x"][2] == "5.88843492" and rows["y"][2] == "1.69421746"
    rows = table_rows(ok(cli("run", path)))  # default: 6 significant digits
    assert rows["x"][2] == "5.88843" and rows["y"][2] == "1.69422"
    # JSON ignores --precision
    d = strict_json(ok(cli("run", path, "--precision", "2", "--format", "json")))
    assert next(n for n in d["nodes"] if n["name"] == "x")["grad"] == pytest.approx(5.888434919925, abs=1e-11)


@pytest.mark.parametrize("value", ["0", "18", "two"])
def test_bad_precision_is_a_usage_error(value):
    result = cli("run", APPLE, "--precision", value)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "--precision" in result.stderr


def test_unknown_format_is_a_usage_error():
    result = cli("run", APPLE, "--format", "xml")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "--format" in result.stderr


def test_nan_warns_naming_the_first_node_and_strict_exits_1(tmp_path):
    p = write(
        tmp_path,
        "g.yaml",
        """\
        inputs:
          x: -1
          y: 2
        nodes:
          a: {op: mul, in: [x, y]}
          l: {op: log, in: [x]}
          out: {op: add, in: [l, a]}
        """,
    )
    for extra, code in (([], 0), (["--strict"], 1)):
        result = cli("run", p, *extra)
        assert result.exit_code == code
        rows = table_rows(result.stdout)  # the table is still printed
        assert rows["l"][1] == "NaN" and rows["a"][1] == "-2"
        lines = result.stderr.splitlines()
        assert len(lines) == 1
        assert lines[0].startswith("warning: ")
        assert "NaN" in lines[0] and "'l'" in lines[0]  # l = log(-1) first; out only inherits it
        assert "'out'" not in lines[0]
    for fmt in ("json", "csv"):
        result = cli("run", p, "--strict", "--format", fmt)
        assert result.exit_code == 1
        assert "'l'" in result.stderr


@pytest.mark.parametrize(
    ("command", "rows"),
    [
        (["run"], None),
        (["run", "--format", "json"], None),
        (["check"], None),
        (["check", "--format", "json"], None),
        (["trace"], None),
        (["export"], None),
        (["export", "--format", "mermaid"], None),
        (["batch"], '{"x": []}\n{"x": [1, 2]}\n'),
    ],
)
def test_mean_of_an_empty_array_is_our_nan_warning_not_numpys(tmp_path, command, rows):
    import warnings

    p = write(tmp_path, "g.yaml", "inputs:\n  x: []\nnodes:\n  y: mean(x)\n")
    args = [*command, p]
    if rows:
        args.append(write(tmp_path, "r.jsonl", rows))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning of numpy's would be an exception: exit 3
        result = cli(*args)
    assert result.exit_code == 0, result.stderr
    assert "RuntimeWarning" not in result.stderr and "Mean of empty slice" not in result.stderr
    if rows:
        assert "1 row with NaN or inf" in result.stderr and "r.jsonl:1" in result.stderr
    else:
        assert result.stderr == "warning: NaN first produced by node 'y' = mean(x (array of shape (0,))) (line 4)\n"


def test_numpy_warnings_never_reach_stderr_in_a_real_process(tmp_path):
    import subprocess
    import sys

    p = write(tmp_path, "g.yaml", "inputs:\n  x: []\nnodes:\n  y: mean(x)\n")
    env = {"PATH": "/usr/bin:/bin", "NO_COLOR": "1", "PYTHONWARNINGS": "default"}  # every warning shown once
    for command in ("run", "check", "trace", "export"):
        proc = subprocess.run(
            [sys.executable, "-m", "cgcalc", command, str(p)],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        assert [line.split(":")[0] for line in proc.stderr.splitlines()] == ["warning"], proc.stderr


def test_strict_without_nan_exits_0():
    assert table_rows(ok(cli("run", APPLE, "--strict")))["price"][1] == "220"


# --- validate -------------------------------------------------------------------------------------------


def test_validate_every_example_graph():
    out = ok(cli("validate", *ALL_GRAPHS))
    lines = out.splitlines()
    assert len(lines) == len(ALL_GRAPHS)
    for line, path in zip(lines, ALL_GRAPHS):
        assert line.startswith(f"ok: {path}")


def test_validate_one_bad_file_among_good(tmp_path):
    bad = write(tmp_path, "bad.yaml", "inputs:\n  a: 1\nnodes:\n  b: {op: mull, in: [a, a]}\n")
    result = cli("validate", APPLE, bad, APPLE_ORANGE)
    assert result.exit_code == 2
    assert [line.split()[:2] for line in result.stdout.splitlines()] == [
        ["ok:", str(APPLE)],
        ["ok:", str(APPLE_ORANGE)],
    ]
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(f"error: {bad}:4:11: unknown op 'mull'")


def test_validate_without_files_is_a_usage_error():
    result = cli("validate")
    assert result.exit_code == 2
    assert result.stdout == ""


# --- ops, --version, --help -----------------------------------------------------------------------------


def test_ops_lists_all_16():
    out = ok(cli("ops"))
    first_words = [line.split()[0] for line in out.splitlines() if line.split()]
    for op in OPS:
        assert first_words.count(op) == 1, op
    assert len(OPS) == 16


def test_ops_shows_layer_classes_and_rules():
    out = ok(cli("ops"))
    line = next(line for line in out.splitlines() if line.split() and line.split()[0] == "mul")
    assert "MulLayer" in line and "dout" in line
    line = next(line for line in out.splitlines() if line.split() and line.split()[0] == "softmax_with_loss")
    assert "SoftmaxWithLoss" in line


def test_version():
    out = ok(cli("--version"))
    assert out == f"cgcalc {version('cgcalc')}\n"
    assert re.fullmatch(r"cgcalc \d+\.\d+\.\d+\S*\n", out)


def test_app_help_lists_every_command():
    out = ok(cli("--help"))
    assert "Usage" in out
    for command in COMMANDS:
        assert re.search(rf"^\W*{command}\b", out, re.MULTILINE), command


def test_no_arguments_shows_help():
    result = cli()
    assert "Usage" in result.stdout
    assert result.exit_code in (0, 2)  # click exits 2 for no_args_is_help in newer versions


@pytest.mark.parametrize("command", COMMANDS)
def test_command_help(command):
    out = ok(cli(command, "--help"))
    assert "Usage" in out and command in out


# --- the other commands, once each, on the book's graph -------------------------------------------------


def test_check_apple_passes():
    out = ok(cli("check", APPLE))
    for name in ("apple", "apple_num", "tax"):
        assert re.search(rf"^{name}\s", out, re.MULTILINE), name
    assert "FAIL" not in out


def test_trace_apple_shows_forward_then_backward():
    out = ok(cli("trace", APPLE))
    assert "forward" in out and "backward" in out
    assert out.index("forward") < out.index("backward")
    assert "= 220" in out and "= 200" in out
    tail = out[out.index("backward") :]
    for number in ("2.2", "110", "200", "1.1"):
        assert number in tail, number


@pytest.mark.parametrize("fmt", ["dot", "mermaid"])
def test_export_apple(fmt):
    out = ok(cli("export", APPLE, "--format", fmt))
    assert out.startswith("digraph" if fmt == "dot" else "flowchart")
    for number in ("100", "2.2", "110", "200", "1.1", "220"):
        assert number in out, number


def test_batch_rows_match_run(tmp_path):
    rows = tmp_path / "rows.csv"
    rows.write_text("apple,tax\n100,1.1\n120,1.1\n")
    out = ok(cli("batch", APPLE, rows))
    table = list(csv.DictReader(io.StringIO(out)))
    assert [r["apple"] for r in table] == ["100", "120"]
    assert float(table[0]["price"]) == 220.00000000000003
    assert float(table[1]["price"]) == pytest.approx(264.0, rel=1e-15)
    assert any(v == "200.0" for v in table[0].values())  # dprice/dtax of row 1: apple * apple_num
    assert any(v == "240.0" for v in table[1].values())  # ... of row 2


# --- every example graph --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ALL_GRAPHS, ids=[p.name for p in ALL_GRAPHS])
def test_example_graph_validates(path):
    assert ok(cli("validate", path)).startswith(f"ok: {path}")


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
@pytest.mark.parametrize("path", ALL_GRAPHS, ids=[p.name for p in ALL_GRAPHS])
def test_example_graph_runs(path, fmt):
    out = ok(cli("run", path, "--format", fmt))
    if fmt == "json":
        d = strict_json(out)
        assert d["nodes"] and d["output"] in d["outputs"]
    elif fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(out)))
        assert rows and list(rows[0])[:5] == ["name", "op", "inputs", "value", "grad"]
    else:
        assert "◀ output" in out


# --- main(): only the command run is turned into click parameters (start-up), the same command line ------


def _main(*args: str):
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "cgcalc", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "100"},
    )


def test_main_with_one_command_reads_the_command_line_as_the_full_app_does():
    r = _main("run", str(GRAPHS / "apple.yaml"), "--format", "json")
    assert r.returncode == 0 and json.loads(r.stdout)["outputs"]["price"] == 220.00000000000003
    r = _main("run", "--help")
    assert r.returncode == 0 and "Usage: python -m cgcalc run [OPTIONS]" in r.stdout
    r = _main("--help")
    for command in ("run", "check", "trace", "export", "batch", "validate", "ops"):
        assert re.search(rf"│ {command} ", r.stdout), command
    r = _main("rn", "x")
    assert r.returncode == 2 and "No such command 'rn'. Did you mean 'run'?" in r.stderr
    r = _main("run", str(GRAPHS / "apple.yaml"), "--nope")
    assert r.returncode == 2 and r.stderr.startswith("error: No such option: --nope")


# --- a file's text never takes over the terminal ----------------------------------------------------------

# clipboard write, window title, CSI as one C1 byte, NUL, a bidi override, and markup Rich would read
PAYLOAD = "\x1b]52;c;cHduZWQ=\x07 \x1b]0;title\x07 \x9b2J \x00 \u202e [/bold] [red]"
RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e]")  # all but newline
GRAPH = {"inputs": {"x": 3}, "nodes": {"y": "x * 2"}}


def hostile_graph(tmp_path: Path, field: str) -> Path:
    """A JSON graph with the payload in one field: the graph's name, its description, the file's own name
    (the default name), or an op and a node name (errors, which quote them)."""
    g = json.loads(json.dumps(GRAPH))
    name = "g.json"
    if field in ("name", "description"):
        g[field] = PAYLOAD
    elif field == "file-name":  # (a file name holds no NUL or /)
        name = f"g{PAYLOAD.replace('/', '|').replace(chr(0), '')}.json"
    elif field == "op":
        g["nodes"]["y"] = {"op": f"mul{PAYLOAD}", "in": ["x", "x"]}
    elif field == "node-name":
        g["nodes"] = {f"y{PAYLOAD}": "x * 2"}
    path = tmp_path / name
    path.write_text(json.dumps(g))
    return path


TERMINAL_COMMANDS = {
    "run": ["run"],
    "run-json": ["run", "--format", "json"],
    "run-csv": ["run", "--format", "csv"],
    "trace": ["trace"],
    "check": ["check"],
    "check-json": ["check", "--format", "json"],
    "export-dot": ["export"],
    "export-mermaid": ["export", "--format", "mermaid"],
    "validate": ["validate"],
    "batch": ["batch"],
}
SHOWN = {"name": {"run", "trace", "check", "export-dot"}, "description": {"run", "export-dot"}}  # escaped, but there


@pytest.mark.parametrize("field", ["name", "description", "file-name", "op", "node-name"])
@pytest.mark.parametrize("command", list(TERMINAL_COMMANDS))
def test_no_control_character_of_a_file_reaches_the_terminal(tmp_path, command, field):
    path = hostile_graph(tmp_path, field)
    args = [*TERMINAL_COMMANDS[command], path]
    if command == "batch":
        args.append(write(tmp_path, "rows.csv", "x\n1\n2\n"))
    result = cli(*args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == (2 if field in ("op", "node-name") else 0), result.stderr
    for stream in (result.stdout, result.stderr):
        assert not RAW_CONTROL.search(stream), stream[:300]
    if result.exit_code == 2:
        assert "\\x1b]52;c;" in result.stderr  # quoted in the message, escaped
    elif command in SHOWN.get(field, ()):
        assert "x1b]52;c;" in result.stdout and "[/bold] [red]" in result.stdout


def test_an_array_value_is_not_read_as_rich_markup(tmp_path):
    p = write(tmp_path, "g.yaml", "inputs:\n  x: [.inf, 1]\nnodes:\n  y: x * 2\n")
    lines = cli("run", p).stdout.splitlines()
    assert "[inf, 1]" in lines[3] and "[inf, 2]" in lines[5]  # the rows of x and y


@pytest.mark.skipif(__import__("shutil").which("dot") is None, reason="needs Graphviz's dot")
def test_a_nul_in_a_json_description_gives_dot_that_graphviz_reads(tmp_path):
    import subprocess

    path = hostile_graph(tmp_path, "description")
    dot = ok(cli("export", path))
    proc = subprocess.run(["dot", "-Tsvg"], input=dot.encode(), capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"x00" in proc.stdout  # the NUL, shown as an escape
