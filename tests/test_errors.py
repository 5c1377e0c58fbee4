"""Every error kind of SPEC section 6, through the CLI: exit code 2, nothing on stdout, and exactly one line on
stderr, `error: FILE:LINE:COL: message`, with the line and column of the mistake.

Each expected line and column is counted by hand from the YAML text written in the test (1-based, as editors
count); the comment beside each assertion shows the count.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from cli_helpers import CLEAN_ENV, assert_error, cli, one_error_line, write  # noqa: F401

from cgcalc.errors import ExitCode, GraphError

# --- YAML syntax ----------------------------------------------------------------------------------------


def test_yaml_syntax_error_points_at_the_bad_character(tmp_path):
    p = write(
        tmp_path,
        "g.yaml",
        """\
        inputs:
          a: 1
        nodes:
          b: a * a: c
        """,
    )
    # line 4 is "  b: a * a: c": the second ':' (a mapping inside a plain scalar) is column 11
    assert_error(cli("run", p), f"{p}:4:11", "YAML syntax", "mapping values are not allowed")


def test_yaml_tab_indentation_is_a_syntax_error(tmp_path):
    p = write(tmp_path, "g.yaml", "inputs:\n\ta: 1\nnodes:\n  b: a * a\n")
    assert_error(cli("run", p), f"{p}:2:1", "YAML syntax")  # the tab opens line 2


def test_unclosed_flow_mapping_says_where_it_was_opened(tmp_path):
    p = write(
        tmp_path,
        "g.yaml",
        """\
        inputs:
          a: 1
        nodes:
          b: {op: mul, in: [a, a]
        """,
    )
    line = one_error_line(cli("run", p))
    assert "YAML syntax" in line
    # the '{' opened on line 4, column 6: either point there or say so
    assert line.startswith(f"error: {p}:4:6: ") or "line 4" in line, line


# --- keys and ops ---------------------------------------------------------------------------------------


def test_unknown_top_level_key_suggests_the_nearest(tmp_path):
    p = write(
        tmp_path,
        "g.yaml",
        """\
        inputs:
          a: 1
        node:
          b: a * a
        """,
    )
    assert_error(cli("run", p), f"{p}:3:1", "unknown key 'node'", "did you mean 'nodes'")


def test_unknown_op_suggests_the_nearest(tmp_path):
    p = write(
        tmp_path,
        "g.yaml",
        """\
        inputs:
          a: 1
        nodes:
          b: {op: mull, in: [a, a]}
        """,
    )
    # "  b: {op: mull" -> 'mull' starts at column 11
    assert_error(cli("run", p), f"{p}:4:11", "unknown op 'mull'", "did you mean 'mul'", "'b'")


def test_unknown_op_in_an_expression(tmp_path):
    p = write(
        tmp_path,
        "g.yaml",
        """\
        inputs:
          a: 1
        nodes:
          b: 2 * sigmod(a)
        """,
    )
    # "  b: 2 * sigmod(a)" -> 'sigmod' starts at column 10
    assert_error(cli("run", p), f"{p}:4:10", "unknown op 'sigmod'", "did you mean 'sigmoid'")


def test_wrong_number_of_inputs(tmp_path):
    p = write(
        tmp_path,
        "g.yaml",
        """\
        inputs:
          a: 1
        nodes:
          b: {op: mul, in: [a]}
        """,
    )
    assert_error(cli("run", p), f"{p}:4:11", "'mul' takes 2 inputs", "gives 1")  # at the op, column 11


def test_wrong_number_of_inputs_in_an_expression(tmp_path):
    p = write(
        tmp_path,
        "g.yaml",
        """\
        inputs:
          apple: 1
        nodes:
          c: exp(apple, apple)
        """,
    )
    assert_error(cli("run", p), f"{p}:4:6", "'exp' takes 1 input", "gives 2")  # the call starts at column 6


# --- names ----------------------------------------------------------------------------------------------


def test_undefined_name_suggests_the_nearest(tmp_path):
    p = write(
        tmp_path,
        "g.yaml",
        """\
        inputs:
          apple: 1
        nodes:
          b: {op: mul, in: [apple, aple]}
        """,
    )
    # "  b: {op: mul, in: [apple, aple]}": '[' is column 20, 'apple' 21-25, ', ' 26-27, 'aple' 28
    assert_error(cli("run", p), f"{p}:4:28", "undefined name 'aple'", "did you mean 'apple'")


def test_undefined_name_in_an_expression(tmp_path):
    p = write(
        tmp_path,
        "g.yaml",
        """\
        inputs:
          apple: 1
        nodes:
          b: apple * aple
        """,
    )
    # "  b: apple * aple": 'apple' 6-10, ' * ' 11-13, 'aple' 14
    assert_error(cli("run", p), f"{p}:4:14", "undefined name 'aple'", "did you mean 'apple'")


def test_input_and_node_with_the_same_name(tmp_path):
    p = write(
        tmp_path,
        "g.yaml",
        """\
        inputs:
          a: 1
          b: 2
        nodes:
          b: {op: mul, in: [a, a]}
        """,
    )
    # the node 'b' (line 5, column 3) repeats the input 'b' of line 3
    assert_error(cli("run", p), f"{p}:5:3", "'b'", "twice", "line 3")


def test_duplicated_node_key(tmp_path):
    p = write(
        tmp_path,
        "g.yaml",
        """\
        inputs:
          a: 1
        nodes:
          b: {op: mul, in: [a, a]}
          b: {op: add, in: [a, a]}
        """,
    )
    assert_error(cli("run", p), f"{p}:5:3", "duplicate key 'b'", "line 4")


# --- cycles and shapes ----------------------------------------------------------------------------------


def test_cycle_names_its_members(tmp_path):
    p = write(
        tmp_path,
        "g.yaml",
        """\
        inputs:
          a: 1
        nodes:
          b: {op: neg, in: [a]}
          c: {op: add, in: [b, d]}
          d: {op: neg, in: [c]}
        """,
    )
    msg = assert_error(cli("run", p), f"{p}:5:3", "cycle")  # at 'c', the cycle's first node in the file
    assert "c -> d -> c" in msg
    assert "b ->" not in msg  # b feeds the cycle but is not part of it


def test_node_that_uses_itself_is_a_cycle(tmp_path):
    p = write(
        tmp_path,
        "g.yaml",
        """\
        inputs:
          a: 1
        nodes:
          b: a + b
        """,
    )
    assert_error(cli("run", p), f"{p}:4:3", "cycle", "b -> b")


def test_shape_mismatch_names_both_shapes_and_the_node(tmp_path):
    p = write(
        tmp_path,
        "g.yaml",
        """\
        inputs:
          x: [1, 2, 3]
          y: [4, 5]
        nodes:
          z: {op: add, in: [x, y]}
        """,
    )
    assert_error(cli("run", p), f"{p}:5:3", "(3,)", "(2,)", "'z'")


def test_shape_mismatch_is_caught_before_running(tmp_path):
    # a log of a negative number comes first: had anything run, it would warn about the NaN
    p = write(
        tmp_path,
        "g.yaml",
        """\
        inputs:
          n: -1
          x: [1, 2, 3]
          W: [[1, 2], [3, 4]]
        nodes:
          l: log(n)
          y: {op: matmul, in: [x, W]}
        """,
    )
    assert_error(cli("run", p), f"{p}:7:3", "(3,)", "(2, 2)", "'y'")
    # validate never runs a graph, and finds the same mistake
    assert_error(cli("validate", p), f"{p}:7:3", "(3,)", "(2, 2)", "'y'")


def test_shape_mismatch_from_set_is_caught_before_running(tmp_path):
    p = write(
        tmp_path,
        "g.yaml",
        """\
        inputs:
          x: 1
          y: 2
        nodes:
          z: x * y
        """,
    )
    assert_error(cli("run", p, "--set", "x=[1, 2, 3]", "--set", "y=[4, 5]"), f"{p}:5:3", "(3,)", "(2,)", "'z'")


# --- numbers and expressions ----------------------------------------------------------------------------


def test_bad_number(tmp_path):
    p = write(
        tmp_path,
        "g.yaml",
        """\
        inputs:
          a: 12abc
        nodes:
          b: a * a
        """,
    )
    assert_error(cli("run", p), f"{p}:2:6", "bad number '12abc'", "'a'")


def test_bad_number_inside_an_array(tmp_path):
    p = write(
        tmp_path,
        "g.yaml",
        """\
        inputs:
          a: [1, 2, x]
        nodes:
          b: {op: sum, in: [a]}
        """,
    )
    # "  a: [1, 2, x]": '[' 6, '1' 7, '2' 10, 'x' 13
    assert_error(cli("run", p), f"{p}:2:13", "bad number 'x'")


def test_quoted_number_is_not_a_number(tmp_path):
    p = write(
        tmp_path,
        "g.yaml",
        """\
        inputs:
          a: "12"
        nodes:
          b: a * a
        """,
    )
    assert_error(cli("run", p), f"{p}:2:6", "bad number", "12", "quoted")


@pytest.mark.parametrize(
    ("expr", "col", "fragment"),
    [
        ("a * * a", 10, "unexpected '*'"),  # "  b: a * * a": the second '*' is column 10
        ("(a + a * a", 16, "expected ')'"),  # unbalanced: the ')' is missing at the end, column 16
        ("(a + a))", 13, "unexpected ')'"),  # unbalanced the other way: the extra ')' is column 13
        ("a +", 9, "unexpected end of expression"),  # nothing after '+' (column 8)
        ("a $ a", 8, "unexpected character '$'"),
    ],
    ids=["unexpected-token", "missing-close-paren", "extra-close-paren", "dangling-operator", "bad-character"],
)
def test_bad_expression(tmp_path, expr, col, fragment):
    p = write(tmp_path, "g.yaml", f"inputs:\n  a: 1\nnodes:\n  b: {expr}\n")
    assert_error(cli("run", p), f"{p}:4:{col}", "bad expression", "'b'", fragment)


def test_bad_expression_in_a_quoted_string_counts_from_inside_the_quotes(tmp_path):
    p = write(tmp_path, "g.yaml", 'inputs:\n  a: 1\nnodes:\n  b: "a * * a"\n')
    # '"' is column 6, so the expression starts at 7 and its second '*' is column 11
    assert_error(cli("run", p), f"{p}:4:11", "bad expression", "unexpected '*'")


# --- inputs that were once internal errors (exit 3) -----------------------------------------------------

BIG = "1" * 5000  # over Python's 4,300-digit limit for int(str)


@pytest.mark.parametrize(
    ("name", "text", "where", "fragment"),
    [
        # "  y: {op: sum, in: [x], axis: 111...": the key "axis" is column 25
        (
            "g.yaml",
            f"inputs:\n  x: [1, 2]\nnodes:\n  y: {{op: sum, in: [x], axis: {BIG}}}\n",
            "4:25",
            "axis must be an integer",
        ),
        (
            "g.json",
            f'{{"inputs": {{"x": [1, 2]}}, "nodes": {{"y": {{"op": "sum", "in": ["x"], "axis": {BIG}}}}}}}',
            "1:69",
            "axis must be an integer",
        ),
        ("g.yaml", f"inputs:\n  x: [1, 2]\nnodes:\n  y: sum(x, axis={BIG})\n", "4:6", "axis must be an integer"),
        ("g.yaml", "inputs:\n  x: 1\nnodes:\n  y: x * 1__0\n", "4:10", "bad number '1__0'"),  # 'x' is column 6
        ("g.yaml", "inputs:\n  x: [1]\nnodes:\n  y: sum(x, axis=0__0)\n", "4:18", "bad number '0__0'"),
        (
            "g.yaml",
            "inputs:\n  x: []\n  t: []\nnodes:\n  y: softmax_with_loss(x, t)\n",
            "5:3",
            "at least one class and one sample, got x of shape (0,)",
        ),
        ("g.yaml", "inputs:\n  x: [[]]\n  t: [[]]\nnodes:\n  y: softmax_with_loss(x, t)\n", "5:3", "shape (1, 0)"),
    ],
    ids=[
        "int-attribute",
        "int-attribute-json",
        "int-keyword",
        "double-underscore",
        "double-underscore-keyword",
        "softmax-no-class",
        "softmax-no-class-2d",
    ],
)
def test_input_that_was_an_internal_error(tmp_path, name, text, where, fragment):
    p = tmp_path / name
    p.write_text(text)
    line = one_error_line(cli("run", p))
    assert line.startswith(f"error: {p}:{where}"), line
    assert fragment in line, line


def test_softmax_with_loss_of_no_sample_is_a_shape_error():
    import numpy as np

    import cgcalc
    from cgcalc.errors import ShapeError

    g = cgcalc.loads("inputs:\n  x: [[1, 2]]\n  t: [0]\nnodes:\n  y: softmax_with_loss(x, t)\n")
    with pytest.raises(ShapeError, match=r"at least one class and one sample, got x of shape \(0, 2\)"):
        g.run(x=np.zeros((0, 2)), t=np.zeros(0))


# --- empty, JSON, missing files -------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"], ids=["empty", "blank-lines", "comment-only"])
def test_empty_file(tmp_path, text):
    p = tmp_path / "g.yaml"
    p.write_text(text)
    assert_error(cli("run", p), f"{p}:1:1", "empty")


def test_json_graph_error_has_line_and_column(tmp_path):
    p = write(
        tmp_path,
        "g.json",
        """\
        {
          "inputs": {"a": 1},
          "nodes": {
            "b": {"op": "mull", "in": ["a", "a"]}
          }
        }
        """,
    )
    # line 4 is '    "b": {"op": "mull", ...': '{' is column 10, '"op"' 11-14, ':' 15, the string "mull" opens at 17
    assert_error(cli("run", p), f"{p}:4:17", "unknown op 'mull'", "did you mean 'mul'")


def test_json_duplicate_key_has_line_and_column(tmp_path):
    p = write(
        tmp_path,
        "g.json",
        """\
        {
          "inputs": {"a": 1, "a": 2},
          "nodes": {"b": "a * a"}
        }
        """,
    )
    # '  "inputs": {"a": 1, "a": 2}': '{' 13, first "a" 14, '1' 19, second "a" 22
    assert_error(cli("run", p), f"{p}:2:22", "duplicate key 'a'")


def test_json_bad_expression_has_line_and_column(tmp_path):
    p = write(
        tmp_path,
        "g.json",
        """\
        {
          "inputs": {"a": 1},
          "nodes": {"b": "a * * a"}
        }
        """,
    )
    # '  "nodes": {"b": "a * * a"}': '{' 12, "b" 13-15, ':' 16, '"' 18, so 'a' is 19 and the second '*' 23
    assert_error(cli("run", p), f"{p}:3:23", "bad expression", "unexpected '*'")


def test_json_on_one_line_unknown_key(tmp_path):
    text = '{"inputs": {"a": 1}, "nodes": {"b": "a * a"}, "nodez": 1}\n'
    p = tmp_path / "g.json"
    p.write_text(text)
    # '{"inputs": {"a": 1}, ' is 21 characters, '"nodes": {"b": "a * a"}, ' 25 more: "nodez" opens at column 47
    assert_error(cli("run", p), f"{p}:1:47", "unknown key 'nodez'", "did you mean 'nodes'")


def test_missing_file(tmp_path):
    p = tmp_path / "nope.yaml"
    assert_error(cli("run", p), str(p), "cannot read", "No such file")


def test_directory_instead_of_file(tmp_path):
    line = one_error_line(cli("run", tmp_path))
    assert str(tmp_path) in line


# --- --set ----------------------------------------------------------------------------------------------

APPLE = """\
    inputs:
      apple: 100
      apple_num: 2
      tax: 1.1
    nodes:
      apple_price: {op: mul, in: [apple, apple_num]}
      price: {op: mul, in: [apple_price, tax]}
    """


def test_set_of_an_unknown_input_suggests_the_nearest(tmp_path):
    p = write(tmp_path, "g.yaml", APPLE)
    line = one_error_line(cli("run", p, "--set", "aple=3"))
    assert "'aple'" in line and "not an input" in line and "did you mean 'apple'" in line


def test_set_of_a_node_is_refused(tmp_path):
    p = write(tmp_path, "g.yaml", APPLE)
    line = one_error_line(cli("run", p, "--set", "apple_price=3"))
    assert "'apple_price'" in line and "node" in line


@pytest.mark.parametrize(
    "item",
    ["apple=abc", "apple=[1, 2", "apple=yes", "apple=", "apple=[1, [2, 3]]", "apple=[1, x]"],
    ids=["word", "unclosed-list", "yaml-boolean", "empty", "ragged-list", "word-in-list"],
)
def test_bad_set_value(tmp_path, item):
    p = write(tmp_path, "g.yaml", APPLE)
    line = one_error_line(cli("run", p, "--set", item))
    assert "apple" in line


def test_set_without_equals_sign(tmp_path):
    p = write(tmp_path, "g.yaml", APPLE)
    line = one_error_line(cli("run", p, "--set", "apple"))
    assert "NAME=VALUE" in line


# --- the same message from every command ----------------------------------------------------------------


@pytest.mark.parametrize("command", ["run", "validate", "check", "trace", "export"])
def test_every_command_reports_a_graph_error_the_same_way(tmp_path, command):
    p = write(
        tmp_path,
        "g.yaml",
        """\
        inputs:
          a: 1
        nodes:
          b: {op: mull, in: [a, a]}
        """,
    )
    assert_error(cli(command, p), f"{p}:4:11", "unknown op 'mull'", "did you mean 'mul'")


# --- --debug --------------------------------------------------------------------------------------------


COMMANDS_WITH_A_GRAPH = {"run": [], "check": [], "trace": [], "export": [], "validate": [], "batch": ["rows.csv"]}


@pytest.mark.parametrize("where", ["before", "after"])
@pytest.mark.parametrize("command", list(COMMANDS_WITH_A_GRAPH))
def test_debug_before_or_after_the_command_lets_the_exception_through(tmp_path, command, where):
    p = write(
        tmp_path,
        "g.yaml",
        """\
        inputs:
          a: 1
        nodes:
          b: {op: mull, in: [a, a]}
        """,
    )
    write(tmp_path, "rows.csv", "a\n1\n")
    args = [command, p, *(tmp_path / f for f in COMMANDS_WITH_A_GRAPH[command])]
    result = cli(*(["--debug", *args] if where == "before" else [*args, "--debug"]))
    assert result.exit_code != 0
    assert isinstance(result.exception, GraphError)
    assert "unknown op 'mull'" in str(result.exception)
    assert result.exc_info is not None and result.exc_info[2] is not None  # with its traceback
    # and no "error:" line: the exception itself is the report
    assert "error:" not in result.stderr


def test_debug_env_shows_a_traceback_in_a_real_process(tmp_path):
    p = write(
        tmp_path,
        "g.yaml",
        """\
        inputs:
          a: 1
        nodes:
          b: {op: mull, in: [a, a]}
        """,
    )
    env = {"PATH": "/usr/bin:/bin", "NO_COLOR": "1", "CGCALC_DEBUG": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "cgcalc", "run", str(p)], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr
    assert "GraphError" in proc.stderr and "unknown op 'mull'" in proc.stderr
    # without the switch: one line, no traceback
    del env["CGCALC_DEBUG"]
    proc = subprocess.run(
        [sys.executable, "-m", "cgcalc", "run", str(p)], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith(f"error: {p}:4:11: unknown op 'mull'")
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


@pytest.mark.parametrize("where", ["before", "after"])
@pytest.mark.parametrize("command", list(COMMANDS_WITH_A_GRAPH))
def test_an_internal_error_is_one_line_exit_3_and_debug_shows_it(tmp_path, monkeypatch, command, where):
    import cgcalc.api

    def bug(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(cgcalc.api, "loads", bug)  # every command compiles the text it read through loads
    p = write(tmp_path, "g.yaml", "inputs:\n  a: 1\nnodes:\n  b: a * a\n")
    write(tmp_path, "rows.csv", "a\n1\n")
    args = [command, p, *(tmp_path / f for f in COMMANDS_WITH_A_GRAPH[command])]
    result = cli(*args)
    assert result.exit_code == ExitCode.INTERNAL == 3
    assert (
        result.stderr == "error: internal error: ZeroDivisionError: a bug (run with --debug for the traceback, "
        "and please report it)\n"
    )
    result = cli(*(["--debug", *args] if where == "before" else [*args, "--debug"]))  # as the message says
    assert isinstance(result.exception, ZeroDivisionError) and result.exc_info[2] is not None


def test_every_exit_code_is_in_the_readme_table_and_the_enum():
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    table = {int(m[1]) for m in re.finditer(r"^\| (\d+) \| ", readme, re.M)}
    assert table == {int(c) for c in ExitCode} == {0, 1, 2, 3, 129, 130, 141, 143}


def test_no_exit_code_is_a_bare_number_in_the_source():
    from pathlib import Path

    source = Path(__file__).resolve().parent.parent / "cgcalc"
    # (a worker process's os._exit is not the command's exit code: the command reports the worker's end itself)
    bare = re.compile(r"(sys\.exit|(?<!os\.)_exit|Exit)\((code=)?\s*\d|exit_code\s*=\s*\d")
    found = [
        f"{f.name}:{i}: {line.strip()}"
        for f in sorted(source.rglob("*.py"))
        for i, line in enumerate(f.read_text().splitlines(), 1)
        if bare.search(line)
    ]
    assert found == []  # each is an ExitCode
