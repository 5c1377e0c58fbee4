"""YAML 1.1's traps, handled deliberately (STYLE.md, "Traps seen in the anchors"): numbers that PyYAML reads as
strings or booleans, duplicated keys, object tags, alias bombs, absurd nesting; and JSON graphs."""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

import pytest
import yaml
from cli_helpers import CLEAN_ENV, Hang, assert_error, cli, one_error_line, time_limit, write  # noqa: F401

import cgcalc

ROOT = Path(__file__).resolve().parent.parent


def value_of(text: str, name: str):
    return cgcalc.loads(textwrap.dedent(text)).run().value(name)


# --- numbers --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1e-3", 0.001), ("2E2", 200.0), ("1.5e+2", 150.0), ("-4e1", -40.0), ("1.0e3", 1000.0), ("5", 5.0)],
)
def test_scientific_notation_is_a_number(text, expected):
    # PyYAML's YAML 1.1 resolver reads 1e-3 and 2E2 as strings (no dot, or no sign in the exponent)
    v = value_of(f"inputs:\n  a: {text}\nnodes:\n  y: a * 2\n", "a")
    assert type(v) is float
    assert v == expected


def test_scientific_notation_in_arrays_and_constants():
    r = cgcalc.loads("inputs:\n  w: [1e-3, 2E2]\nnodes:\n  y: {op: mul, in: [w, 1e-1]}\n").run()
    assert r.value("w").tolist() == [0.001, 200.0]
    assert r.value("y").tolist() == pytest.approx([0.0001, 20.0], rel=1e-15)


def test_scientific_notation_through_the_cli(tmp_path):
    p = write(
        tmp_path,
        "g.yaml",
        """\
        inputs:
          lr: 1e-3
          n: 2E2
        nodes:
          y: lr * n
        """,
    )
    result = cli("run", p, "--format", "json")
    assert result.exit_code == 0, result.stderr
    nodes = {n["name"]: n for n in json.loads(result.stdout)["nodes"]}
    assert nodes["lr"]["value"] == 0.001
    assert nodes["n"]["value"] == 200.0
    assert nodes["y"]["value"] == pytest.approx(0.2)
    assert nodes["lr"]["grad"] == 200.0  # d(lr * n)/dlr = n


def test_special_floats():
    r = cgcalc.loads("inputs:\n  a: .inf\n  b: -.inf\n  c: .nan\n  d: 1\nnodes:\n  y: d * 2\n").run()
    assert r.value("a") == math.inf
    assert r.value("b") == -math.inf
    assert math.isnan(r.value("c"))


def test_special_floats_through_the_cli(tmp_path):
    p = write(
        tmp_path,
        "g.yaml",
        """\
        inputs:
          a: .inf
          b: -.inf
          c: .nan
          d: 1
        nodes:
          y: d * 2
        """,
    )
    result = cli("run", p, "--format", "json")
    assert result.exit_code == 0, result.stderr
    nodes = {n["name"]: n for n in json.loads(result.stdout)["nodes"]}
    assert (nodes["a"]["value"], nodes["b"]["value"], nodes["c"]["value"]) == ("Infinity", "-Infinity", "NaN")
    assert nodes["y"]["value"] == 2.0


@pytest.mark.parametrize("word", ["yes", "no", "on", "off", "true", "False", "y"])
def test_yaml11_booleans_are_not_numbers(tmp_path, word):
    p = write(tmp_path, "g.yaml", f"inputs:\n  a: {word}\nnodes:\n  y: a * a\n")
    assert_error(cli("run", p), f"{p}:2:6", f"'{word}'", "bad number")  # "  a: yes": the value is column 6


def test_yaml11_boolean_inside_an_array(tmp_path):
    p = write(tmp_path, "g.yaml", "inputs:\n  a: [1, on]\nnodes:\n  y: {op: sum, in: [a]}\n")
    assert_error(cli("run", p), f"{p}:2:10", "'on'", "bad number")  # "  a: [1, on]": 'on' is column 10


def test_explicit_str_tag_is_not_a_number(tmp_path):
    p = write(tmp_path, "g.yaml", "inputs:\n  a: !!str 2\nnodes:\n  y: a * a\n")
    assert_error(cli("run", p), f"{p}:2:6")


# --- duplicated keys ------------------------------------------------------------------------------------


def test_duplicated_input(tmp_path):
    p = write(
        tmp_path,
        "g.yaml",
        """\
        inputs:
          a: 1
          a: 2
        nodes:
          y: a * a
        """,
    )
    assert_error(cli("run", p), f"{p}:3:3", "duplicate key 'a'", "line 2")


def test_duplicated_node(tmp_path):
    p = write(
        tmp_path,
        "g.yaml",
        """\
        inputs:
          a: 1
        nodes:
          y: a * a
          y: a + a
        """,
    )
    assert_error(cli("run", p), f"{p}:5:3", "duplicate key 'y'", "line 4")


def test_duplicated_top_level_key(tmp_path):
    p = write(
        tmp_path,
        "g.yaml",
        """\
        inputs:
          a: 1
        nodes:
          y: a * a
        inputs:
          b: 2
        """,
    )
    assert_error(cli("run", p), f"{p}:5:1", "duplicate key 'inputs'", "line 1")


def test_duplicated_key_inside_a_node(tmp_path):
    p = write(
        tmp_path,
        "g.yaml",
        """\
        inputs:
          a: 1
        nodes:
          y: {op: mul, op: add, in: [a, a]}
        """,
    )
    # "  y: {op: mul, op: add": '{' 6, first 'op' 7, second 'op' 16
    assert_error(cli("run", p), f"{p}:4:16", "duplicate key 'op'")


# --- tags: data, never objects --------------------------------------------------------------------------


def _payload(marker: Path) -> str:
    return f'!!python/object/apply:os.system ["touch {marker}"]'


def test_the_payload_would_run_under_an_unsafe_loader(tmp_path):
    # the control for the tests below: this text really does run a command when constructed unsafely
    marker = tmp_path / "pwned"
    yaml.unsafe_load(_payload(marker))
    assert marker.exists()


@pytest.mark.parametrize(
    ("template", "where", "tag"),
    [
        ("inputs:\n  a: {payload}\nnodes:\n  y: a * a\n", "2:6", "!!python/object/apply:os.system"),
        ("inputs:\n  a: !!python/name:os.system\nnodes:\n  y: a * a\n", "2:6", "!!python/name:os.system"),
        (
            "inputs:\n  a: !!python/object/new:os.system [x]\nnodes:\n  y: a * a\n",
            "2:6",
            "!!python/object/new:os.system",
        ),
        ("inputs:\n  a: !!python/module:os\nnodes:\n  y: a * a\n", "2:6", "!!python/module:os"),
        ("inputs:\n  a: 1\nnodes:\n  y: !!python/name:os.system\n", "4:6", "!!python/name:os.system"),
        (
            "inputs:\n  a: {{value: {payload}, grad: false}}\nnodes:\n  y: a * a\n",
            "2:14",
            "!!python/object/apply:os.system",
        ),
        ("inputs:\n  a: !custom 1\nnodes:\n  y: a * a\n", "2:6", "!custom"),
    ],
    ids=["apply-input", "name-input", "new-input", "module-input", "name-node", "apply-in-value", "unknown-tag"],
)
def test_object_tags_are_refused(tmp_path, template, where, tag):
    marker = tmp_path / "pwned"
    p = write(tmp_path, "g.yaml", template.format(payload=_payload(marker)))
    assert_error(cli("run", p), f"{p}:{where}", f"tag '{tag}'", "not allowed")
    assert not marker.exists()


@pytest.mark.parametrize(
    "template",
    [
        "{payload}\n",
        "inputs:\n  a: 1\nnodes:\n  y: {payload}\n",
        "inputs:\n  a: [1, {payload}]\nnodes:\n  y: {{op: sum, in: [a]}}\n",
    ],
    ids=["whole-document", "node", "array-element"],
)
def test_object_tags_elsewhere_are_refused_and_nothing_runs(tmp_path, template):
    marker = tmp_path / "pwned"
    p = write(tmp_path, "g.yaml", template.format(payload=_payload(marker)))
    for command in ("run", "validate"):
        one_error_line(cli(command, p))
    assert not marker.exists()


@pytest.mark.parametrize(
    "template", ["{payload}\n", "inputs:\n  a: 1\nnodes:\n  y: {payload}\n"], ids=["whole-document", "node"]
)
def test_object_tag_on_a_sequence_is_named_in_the_message(tmp_path, template):
    marker = tmp_path / "pwned"
    p = write(tmp_path, "g.yaml", template.format(payload=_payload(marker)))
    line = one_error_line(cli("run", p))
    assert "tag '!!python/object/apply:os.system'" in line


TAG_BASE = """\
name: g
description: d
inputs:
  x: [1, 2]
  t: {value: 1, grad: false}
nodes:
  y: {op: sum, in: [x], axis: 0}
  z: y * t
outputs: [z]
"""
# Every place a tag can stand: (the text it replaces, the text with TAG in it). § marks where the error points:
# the start of the tagged node (its anchor, when it has one).
TAG_PLACES = {
    "document": ("name: g\n", "--- §TAG\nname: g\n"),
    "top-key": ("name: g", "§TAG name: g"),
    "name": ("name: g", "name: §TAG g"),
    "description": ("description: d", "description: §TAG d"),
    "inputs": ("inputs:\n", "inputs: §TAG\n"),
    "input-name": ("  x: [1, 2]", "  §TAG x: [1, 2]"),
    "input-array": ("  x: [1, 2]", "  x: §TAG [1, 2]"),
    "array-element": ("  x: [1, 2]", "  x: [1, §TAG 2]"),
    "nested-array": ("  x: [1, 2]", "  x: [[1, 2], §TAG [3, 4]]"),
    "input-number": ("  t: {value: 1, grad: false}", "  t: §TAG 1"),
    "anchored-number": ("  t: {value: 1, grad: false}", "  t: §&a TAG 1"),
    "input-mapping": ("  t: {value: 1, grad: false}", "  t: §TAG {value: 1, grad: false}"),
    "value-key": ("  t: {value: 1, grad: false}", "  t: {§TAG value: 1, grad: false}"),
    "value": ("  t: {value: 1, grad: false}", "  t: {value: §TAG 1, grad: false}"),
    "grad": ("  t: {value: 1, grad: false}", "  t: {value: 1, grad: §TAG false}"),
    "nodes": ("nodes:\n", "nodes: §TAG\n"),
    "node-name": ("  z: y * t", "  §TAG z: y * t"),
    "expression": ("  z: y * t", "  z: §TAG y * t"),
    "node-mapping": ("  y: {op: sum", "  y: §TAG {op: sum"),
    "op-key": ("  y: {op: sum", "  y: {§TAG op: sum"),
    "op": ("  y: {op: sum", "  y: {op: §TAG sum"),
    "in": ("in: [x]", "in: §TAG [x]"),
    "in-element": ("in: [x]", "in: [§TAG x]"),
    "in-scalar": ("in: [x]", "in: §TAG x"),
    "attribute-key": ("axis: 0", "§TAG axis: 0"),
    "axis": ("axis: 0", "axis: §TAG 0"),
    "axis-list": ("axis: 0", "axis: §TAG [0]"),
    "axis-element": ("axis: 0", "axis: [§TAG 0]"),
    "outputs": ("outputs: [z]", "outputs: §TAG [z]"),
    "outputs-element": ("outputs: [z]", "outputs: [§TAG z]"),
    "outputs-scalar": ("outputs: [z]", "outputs: §TAG z"),
    "outputs-block": ("outputs: [z]", "outputs:\n  - §TAG z"),
}
TAGS = {
    "!!python/tuple": "!!python/tuple",
    "!!python/name:os.system": "!!python/name:os.system",
    "!custom": "!custom",
    "!!timestamp": "!!timestamp",
    "!": "!",
    "!<tag:example.com,2000:x>": "tag:example.com,2000:x",
}


def _tagged(place: str, tag: str) -> tuple[str, int, int]:
    """The graph text with the tag in that place, and the line and column the error must name."""
    old, new = TAG_PLACES[place]
    assert TAG_BASE.count(old) == 1
    text = TAG_BASE.replace(old, new.replace("TAG ", f"{tag} " if tag else "").replace("TAG", tag))
    at = text.index("§")
    line, col = text.count("\n", 0, at) + 1, at - (text.rfind("\n", 0, at) + 1) + 1
    return text.replace("§", ""), line, col


@pytest.mark.parametrize("place", list(TAG_PLACES))
def test_each_text_of_the_tag_table_runs_without_its_tag(tmp_path, place):
    p = tmp_path / "g.yaml"
    p.write_text(_tagged(place, "")[0])  # so the errors below are the tags', and nothing else's
    result = cli("run", p)
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize("tag", list(TAGS))
@pytest.mark.parametrize("place", list(TAG_PLACES))
def test_a_tag_is_refused_wherever_it_stands(tmp_path, place, tag):
    from cgcalc.io import fastyaml

    text, line, col = _tagged(place, tag)
    assert fastyaml.read(text) is None  # the fast reader declines, so PyYAML's path reads and reports it
    p = tmp_path / "g.yaml"
    p.write_text(text)
    for command in ("run", "validate"):
        assert_error(cli(command, p), f"{p}:{line}:{col}", f"tag '{TAGS[tag]}' is not allowed")


def test_core_schema_tags_are_data(tmp_path):
    p = write(
        tmp_path,
        "g.yaml",
        """\
        name: !!str g2
        description: !<tag:yaml.org,2002:str> d
        inputs: !!map
          x: !!float 3
          n: !!int 2
          t: {value: !!float 1, grad: !!bool false}
        nodes: !!map
          y: {op: mul, in: !!seq [x, n]}
        outputs: !!seq [y]
        """,
    )
    result = cli("run", p, "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["outputs"] == {"y": 6.0}


@pytest.mark.parametrize("text", ["name: 2001-12-14", "description: 2001-12-14", "description: <<"])
def test_a_plain_scalar_that_yaml_11_resolves_to_another_type_is_text(tmp_path, text):
    from cgcalc.io import fastyaml

    # (a block sequence: outside the fast reader's subset, so PyYAML reads it and resolves the scalar to
    # !!timestamp or !!merge, a tag nobody wrote)
    p = write(tmp_path, "g.yaml", f"{text}\ninputs:\n  x: 1\nnodes:\n  y: x * 2\noutputs:\n  - y\n")
    assert fastyaml.read(p.read_text()) is None
    result = cli("run", p)
    assert result.exit_code == 0, result.stderr


def test_a_tag_directive_cannot_make_a_tag_look_core(tmp_path):
    p = write(tmp_path, "g.yaml", "%TAG !! tag:example.com,2000:\n---\ninputs:\n  x: !!float 1\nnodes:\n  y: x * 2\n")
    assert_error(cli("run", p), f"{p}:4:6", "tag 'tag:example.com,2000:float' is not allowed")


@pytest.mark.parametrize("value", ["!!python/tuple [1, 2]", "[1, !custom 2]", "!!binary aGVsbG8="])
def test_a_tag_in_a_set_value_is_refused(tmp_path, value):
    p = write(tmp_path, "g.yaml", "inputs:\n  x: [1, 2]\nnodes:\n  y: x * 2\n")
    assert "is not allowed" in one_error_line(cli("run", p, "--set", f"x={value}"))


def test_python_in_an_expression_is_a_bad_expression(tmp_path):
    marker = tmp_path / "pwned"
    p = write(tmp_path, "g.yaml", f'inputs:\n  a: 1\nnodes:\n  y: __import__("os").system("touch {marker}")\n')
    # '  y: __import__("os")': '__import__' is columns 6-15, '(' 16, and the '"' that no expression has is 17
    assert_error(cli("run", p), f"{p}:4:17", "bad expression", "'y'")
    assert not marker.exists()


@pytest.mark.parametrize("expr", ["a.__class__", "[a for a in a]", "lambda: a", "a if a else a", "a; a"])
def test_other_python_is_not_an_expression(tmp_path, expr):
    p = write(tmp_path, "g.yaml", f'inputs:\n  a: 1\nnodes:\n  y: "{expr}"\n')
    line = one_error_line(cli("run", p))
    assert "'y'" in line


# --- alias bombs and limits -----------------------------------------------------------------------------


def billion_laughs() -> str:
    """The classic: a: 10 ones, b: 10 a's, ... i: 10 h's, 10**9 numbers in all, each level an input."""
    lines = ["inputs:", "  a: &a [" + ", ".join(["1"] * 10) + "]"]
    names = "abcdefghi"
    for prev, name in zip(names, names[1:]):
        lines.append(f"  {name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    lines += ["nodes:", "  y: {op: sum, in: [i]}", ""]
    return "\n".join(lines)


def nested_laughs(levels: int) -> str:
    """One input holding 10**levels numbers: each level's first element defines the anchor the rest repeat."""
    text = "&l1 [" + ", ".join(["1"] * 10) + "]"
    for k in range(2, levels + 1):
        text = f"&l{k} [{text}, " + ", ".join([f"*l{k - 1}"] * 9) + "]"
    return f"inputs:\n  x: {text}\nnodes:\n  y: {{op: sum, in: [x]}}\n"


def refused_without_expanding(path):
    """Run `cgcalc run path` and return its result, checking that the alias bomb was not expanded: Python's
    allocations peak far below what its numbers would take (10**9 floats: 8 GB). The time limit only keeps a
    regression from hanging the suite; it asserts nothing about speed."""
    import tracemalloc

    tracemalloc.start()
    try:
        with time_limit(120):
            result = cli("run", path)
        peak = tracemalloc.get_traced_memory()[1]
    except Hang:
        pytest.fail("the alias bomb was not refused")
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20, f"{peak:,} bytes allocated: the aliases were expanded"
    return result


def test_billion_laughs_is_refused_before_it_is_expanded(tmp_path):
    result = refused_without_expanding(write(tmp_path, "bomb.yaml", billion_laughs()))
    line = one_error_line(result)
    assert "limit" in line and "CGCALC_MAX_ELEMENTS" in line


def test_nested_billion_laughs_is_refused_before_it_is_expanded(tmp_path):
    p = write(tmp_path, "bomb.yaml", nested_laughs(9))
    result = refused_without_expanding(p)
    # 10**9 numbers against the default limit of 10**7; the input's value starts at column 6
    assert_error(result, f"{p}:2:6", "'x'", "1,000,000,000", "limit", "10,000,000", "CGCALC_MAX_ELEMENTS")


def test_max_elements_can_be_lowered_and_raised(tmp_path):
    # 10**5 numbers through aliases: refused under a limit of 10**4, read in full under 10**6
    p = write(tmp_path, "laughs.yaml", nested_laughs(5))
    assert_error(
        cli("run", p, env={"CGCALC_MAX_ELEMENTS": "10000"}), f"{p}:2:6", "100,000", "10,000", "CGCALC_MAX_ELEMENTS"
    )
    result = cli("run", p, "--format", "json", env={"CGCALC_MAX_ELEMENTS": "1000000"})
    assert result.exit_code == 0, result.stderr
    nodes = {n["name"]: n for n in json.loads(result.stdout)["nodes"]}
    assert nodes["y"]["value"] == 100000.0  # the sum of 10**5 ones
    assert len(nodes["x"]["value"]) == 10


def test_max_elements_must_be_a_number(tmp_path):
    p = write(tmp_path, "g.yaml", "inputs:\n  a: 1\nnodes:\n  y: a * a\n")
    line = one_error_line(cli("run", p, env={"CGCALC_MAX_ELEMENTS": "lots"}))
    assert "CGCALC_MAX_ELEMENTS" in line


@pytest.mark.parametrize(
    "expr",
    ["(" * 100_000 + "a" + ")" * 100_000 + " + 1", "-" * 100_000 + "a", " ** ".join(["a"] * 100_000)],
    ids=["parentheses", "unary-minus", "right-associative-power"],
)
def test_expression_nested_100000_deep_is_an_error(tmp_path, expr):
    p = write(tmp_path, "g.yaml", f"inputs:\n  a: 1\nnodes:\n  y: {expr}\n")
    line = one_error_line(cli("run", p))
    assert line.startswith(f"error: {p}:4:")
    assert "bad expression" in line and "CGCALC_MAX_DEPTH" in line
    assert "RecursionError" not in line


def test_max_depth_can_be_raised(tmp_path):
    p = write(tmp_path, "g.yaml", "inputs:\n  a: 1\nnodes:\n  y: " + "(" * 300 + "a" + ")" * 300 + " + 1\n")
    one_error_line(cli("run", p))  # 300 deep: over the default
    result = cli("run", p, "--format", "json", env={"CGCALC_MAX_DEPTH": "500"})
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["outputs"] == {"y": 2.0}


def test_array_nested_too_deep_names_the_limit(tmp_path):
    p = write(
        tmp_path, "g.yaml", "inputs:\n  x: " + "[" * 300 + "1" + "]" * 300 + "\nnodes:\n  y: {op: sum, in: [x]}\n"
    )
    assert_error(cli("run", p), f"{p}:2:6", "200", "CGCALC_MAX_DEPTH")


def test_array_nested_100000_deep_is_an_error(tmp_path):
    p = write(
        tmp_path,
        "g.yaml",
        "inputs:\n  x: " + "[" * 100_000 + "1" + "]" * 100_000 + "\nnodes:\n  y: {op: sum, in: [x]}\n",
    )
    line = one_error_line(cli("run", p))
    assert line.startswith(f"error: {p}:2:")
    assert "RecursionError" not in line and "nest" in line


# --- JSON graphs ----------------------------------------------------------------------------------------

APPLE_JSON = """\
{
  "name": "apple",
  "description": "Buying two apples with 10% tax",
  "inputs": {"apple": 100, "apple_num": 2, "tax": 1.1},
  "nodes": {
    "apple_price": {"op": "mul", "in": ["apple", "apple_num"]},
    "price": {"op": "mul", "in": ["apple_price", "tax"]}
  },
  "outputs": ["price"]
}
"""


def test_json_graph_gives_the_same_results_as_the_yaml_one(tmp_path):
    p = tmp_path / "apple.json"
    p.write_text(APPLE_JSON)
    from_json = cli("run", p, "--format", "json")
    from_yaml = cli("run", ROOT / "graphs" / "apple.yaml", "--format", "json")
    assert from_json.exit_code == 0 and from_yaml.exit_code == 0, (from_json.stderr, from_yaml.stderr)
    assert from_json.stderr == ""
    assert json.loads(from_json.stdout) == json.loads(from_yaml.stdout)
    d = json.loads(from_json.stdout)
    assert d["outputs"] == {"price": 220.00000000000003}  # 100 * 2 * 1.1 in float64
    grads = {n["name"]: n["grad"] for n in d["nodes"]}
    assert grads == {"apple": 2 * 1.1, "apple_num": 1.1 * 100, "tax": 200.0, "apple_price": 1.1, "price": 1.0}
    # and the table and CSV are the same too (the file's name shows nowhere: the graph names itself)
    for fmt in ("table", "csv"):
        assert (
            cli("run", p, "--format", fmt).stdout == cli("run", ROOT / "graphs" / "apple.yaml", "--format", fmt).stdout
        )


def test_json_graph_through_the_api(tmp_path):
    p = tmp_path / "apple.json"
    p.write_text(APPLE_JSON)
    assert cgcalc.load(p).run().to_dict() == cgcalc.load(ROOT / "graphs" / "apple.yaml").run().to_dict()


@pytest.mark.parametrize(
    ("text", "expected"),
    [("NaN", math.nan), ("Infinity", math.inf), ("-Infinity", -math.inf)],
)
def test_json_graph_reads_back_its_own_non_finite_strings(tmp_path, text, expected):
    # what `run --format json` writes for a non-finite value can be given back as an input
    p = tmp_path / "g.json"
    p.write_text(f'{{"inputs": {{"a": "{text}", "d": 1e-3}}, "nodes": {{"y": "d * 2"}}}}')
    r = cgcalc.load(p).run()
    assert r.value("a") == expected or (math.isnan(expected) and math.isnan(r.value("a")))
    assert r.value("d") == 0.001
