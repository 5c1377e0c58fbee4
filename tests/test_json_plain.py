"""The straight path (compiler.compile_plain) against the general one (read.parse + compile_spec).

For random graphs, written as JSON and as YAML in fastyaml's plain subset, `cgcalc.loads` must give the
plan compile_spec gives — the same
names, slots, ops, arguments, constants, shapes and gradient needs — and the same results bit for bit; a
file it does not take (an expression, a node used before it is written, an error) must go the general
way and give the general path's error, with its line and column.
"""

from __future__ import annotations

import json
import math
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cgcalc
from cgcalc.errors import GraphError

PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
UNARY = ["neg", "exp", "relu", "sigmoid", "tanh", "sum", "mean"]
BINARY = ["add", "sub", "mul", "div", "matmul"]


@st.composite
def json_graphs(draw) -> dict:
    n_in = draw(st.integers(1, 4))
    inputs: dict = {}
    for i in range(n_in):
        value = draw(st.one_of(st.floats(-3, 3), st.lists(st.floats(-3, 3), min_size=2, max_size=2)))
        inputs[f"x{i}"] = {"value": value, "grad": False} if draw(st.integers(0, 5)) == 0 else value
    names = list(inputs)
    nodes: dict = {}
    for j in range(draw(st.integers(1, 12))):
        name = f"n{j}"
        kind = draw(st.integers(0, 30))
        if kind == 0:
            nodes[name] = f"{names[-1]} * 2"  # the expression form: the general path
        else:
            op = draw(st.sampled_from(UNARY + BINARY))
            arity = 1 if op in UNARY else 2

            refs = []
            for _ in range(arity):
                k = draw(st.integers(0, 9))
                if k == 0:
                    refs.append(draw(st.one_of(st.integers(-3, 3), st.floats(-2, 2))))  # a constant
                elif k == 1 and kind == 1:
                    refs.append(f"n{j + 1}")  # used before it is written (or never): the general path
                else:
                    refs.append(draw(st.sampled_from(names)))
            nodes[name] = {"op": op, "in": refs}
            if kind == 2:
                nodes[name]["in"].append(names[0])  # wrong arity: an error, found by the general path
        names.append(name)
    graph = {"inputs": inputs, "nodes": nodes}
    if draw(st.booleans()):
        graph["outputs"] = [draw(st.sampled_from(names[n_in:] + ["nope"]))]
    return graph


def general(text: str, fmt: str = "json") -> cgcalc.Graph:
    """cgcalc.loads the way it was before the straight path: parse + compile_spec (errors located)."""
    with mock.patch("cgcalc.api.json_head", return_value=None), mock.patch("cgcalc.api.yaml_head", return_value=None):
        return load(text, fmt)


def load(text: str, fmt: str) -> cgcalc.Graph:
    return cgcalc.loads(text, file=f"g.{fmt}", json=fmt == "json")


def to_yaml(graph: dict) -> str:
    """The graph in the plain YAML that fastyaml reads: `name: {op: mul, in: [a, b]}` lines."""

    def scalar(v) -> str:
        return v if isinstance(v, str) else repr(float(v)) if isinstance(v, float) else str(v)

    def flow(v) -> str:
        if isinstance(v, list):
            return "[" + ", ".join(flow(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k}: {flow(x)}" for k, x in v.items()) + "}"
        if isinstance(v, bool):
            return "true" if v else "false"
        return scalar(v)

    lines = ["inputs:"] + [f"  {k}: {flow(v)}" for k, v in graph["inputs"].items()]
    lines += ["nodes:"] + [f"  {k}: {flow(v)}" for k, v in graph["nodes"].items()]
    if "outputs" in graph:
        lines.append(f"outputs: {flow(graph['outputs'])}")
    return "\n".join(lines) + "\n"


def same_value(a, b) -> bool:
    import numpy as np

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and np.array_equal(a, b, equal_nan=True)


@pytest.mark.parametrize("fmt", ["json", "yaml"])
@PROPERTY
@given(graph=json_graphs())
def test_the_straight_path_makes_the_general_paths_plan(fmt, graph):
    text = json.dumps(graph) if fmt == "json" else to_yaml(graph)
    try:
        expected = general(text, fmt).plan
    except GraphError as e:
        with pytest.raises(GraphError) as got:
            load(text, fmt)
        assert str(got.value) == str(e)
        return
    g = load(text, fmt)
    plan = g.plan
    plain_form = all(type(v) is dict for v in graph["nodes"].values())
    backward_only = all(
        type(r) is not str or r in graph["inputs"] or list(graph["nodes"]).index(r) < list(graph["nodes"]).index(n)
        for n, v in graph["nodes"].items()
        if type(v) is dict
        for r in v["in"]
    )
    if plain_form and backward_only:
        assert all(st.spec is None for st in plan.steps), "this graph should take the straight path"
    assert plan.names == expected.names and plan.index == expected.index
    assert plan.outputs == expected.outputs and plan.shapes == expected.shapes
    assert plan.has_grad == expected.has_grad
    assert len(plan.constants) == len(expected.constants)
    assert all(a == b or (math.isnan(a) and math.isnan(b)) for a, b in zip(plan.constants, expected.constants))
    assert [st[:7] for st in plan.steps] == [st[:7] for st in expected.steps]
    assert [plan.pos_of(st) for st in plan.steps] == [expected.pos_of(st) for st in expected.steps]
    try:
        r_exp = cgcalc.Graph(expected).run()
    except GraphError as e:
        with pytest.raises(GraphError) as got:
            g.run()
        assert got.value.message == e.message
        return
    r = g.run()
    for name in plan.names:
        assert same_value(r.value(name), r_exp.value(name)), name
        if r_exp.grad(name) is None:
            assert r.grad(name) is None
        else:
            assert same_value(r.grad(name), r_exp.grad(name)), name
    assert r.warnings == r_exp.warnings


def test_an_error_in_a_plain_json_graph_has_its_line_and_column(tmp_path):
    text = (
        '{\n  "inputs": {"x": 1},\n  "nodes": {\n    "a": {"op": "mul", "in": ["x", 2]},\n'
        '    "b": {"op": "mull", "in": ["a", "x"]}\n  }\n}\n'
    )
    with pytest.raises(GraphError) as e:
        cgcalc.loads(text, file="g.json", json=True)
    assert str(e.value) == "g.json:5:17: unknown op 'mull' (did you mean 'mul'?) in node 'b' (see: cgcalc ops)"


def test_a_node_written_before_its_input_still_runs():
    text = json.dumps(
        {
            "inputs": {"x": 2.0},
            "nodes": {"b": {"op": "mul", "in": ["a", "x"]}, "a": {"op": "add", "in": ["x", 1]}},
            "outputs": ["b"],
        }
    )
    r = cgcalc.loads(text, json=True).run()
    assert r.value("b") == 6.0 and r.grad("x") == 5.0  # d(x*(x+1))/dx = 2x + 1, at x = 2


@pytest.mark.parametrize(
    "text, error",
    [
        (
            '{"inputs": {"x": 1},\n "nodes": {"a": {"op": "mul", "in": ["x", 2]},\n  "a": {"op": "add", "in": ["x", 2]}}}',
            "g.json:3:3: duplicate key 'a' in 'nodes' (first at line 2)",
        ),
        (
            '{"inputs": {"x": 1},\n "nodes": {"a": {"op": "mul", "op": "add", "in": ["x", 2]}}}',
            "g.json:2:31: duplicate key 'op' in node 'a' (first at line 2)",
        ),
        (
            '{"inputs": {"x": 1, "x": 2},\n "nodes": {"a": {"op": "mul", "in": ["x", 2]}}}',
            "g.json:1:21: duplicate key 'x' in 'inputs' (first at line 1)",
        ),
        (
            '{"inputs": {"x": {"value": 1, "value": 2}},\n "nodes": {"a": {"op": "mul", "in": ["x", 2]}}}',
            "g.json:1:31: duplicate key 'value' in input 'x' (first at line 1)",
        ),  # the second \"value\"
        (
            '{"nodes": {"a": {"op": "neg", "in": [1]}},\n "nodes": {"b": {"op": "neg", "in": [2]}}}',
            "g.json:2:2: duplicate key 'nodes' in the graph (first at line 1)",
        ),
    ],
)
def test_a_key_written_twice_is_still_an_error(text, error):
    # the straight path reads JSON without the duplicate-refusing hook and counts ':' instead
    with pytest.raises(GraphError) as e:
        cgcalc.loads(text, file="g.json", json=True)
    assert str(e.value) == error


def test_a_colon_inside_a_string_reads_the_file_again_and_still_takes_the_straight_path():
    text = json.dumps(
        {
            "name": "a:b",
            "description": "chapter 5: apples",
            "inputs": {"x": 2.0},
            "nodes": {"a": {"op": "mul", "in": ["x", 3]}},
        }
    )
    g = cgcalc.loads(text, json=True)
    assert g.plan.steps[0].spec is None and g.name == "a:b"
    assert g.run().grad("x") == 3.0
