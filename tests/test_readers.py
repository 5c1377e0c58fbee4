"""One read path and one compile path: every reader feeds the one compiler, and a file is read once.

For random graphs written as JSON and as YAML in fastyaml's plain subset, the four ways a graph's text can
be read — json.loads, fastyaml, PyYAML alone (fastyaml declining), and the marked reading of JSON (values
that know where they stand, the reading an error in a JSON file gets) — must give the same plan and the same
results bit for bit, or the same error; YAML read by fastyaml and by PyYAML the same error at the same line
and column. A valid file is read once (never by PyYAML if fastyaml takes it); an invalid JSON or fast-subset
file is read once more, by cgcalc's own readers with positions, never by PyYAML.
"""

from __future__ import annotations

import copy
import json
import math
import re
from unittest import mock

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cgcalc
from cgcalc.core.compiler import compile_graph
from cgcalc.core.spec import NodeSpec
from cgcalc.errors import GraphError
from cgcalc.io import fastyaml, marks, read

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
UNARY = ["neg", "exp", "relu", "sigmoid", "tanh", "sum", "mean"]
BINARY = ["add", "sub", "mul", "div", "matmul"]


@st.composite
def graphs(draw) -> dict:
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
            nodes[name] = f"{names[-1]} * 2"  # the expression form
        elif kind == 3:
            nodes[name] = f"sum({names[-1]} + 1)"
        else:
            op = draw(st.sampled_from(UNARY + BINARY + (["mull"] if kind == 4 else [])))
            arity = 1 if op in UNARY else 2
            refs = []
            for _ in range(arity):
                k = draw(st.integers(0, 9))
                if k == 0:
                    refs.append(draw(st.one_of(st.integers(-3, 3), st.floats(-2, 2))))  # a constant
                elif k == 1 and kind == 1:
                    refs.append(f"n{j + draw(st.integers(0, 2))}")  # itself, further down, or nowhere
                else:
                    refs.append(draw(st.sampled_from(names)))
            nodes[name] = {"op": op, "in": refs}
            if kind == 2:
                nodes[name]["in"].append(names[0])  # wrong arity
            if kind == 5 and op in ("sum", "mean"):
                nodes[name]["keepdims"] = True
        names.append(name)
    graph = {"inputs": inputs, "nodes": nodes}
    if draw(st.booleans()):
        graph["outputs"] = [draw(st.sampled_from(names[n_in:] + ["nope"]))]
    return graph


def to_yaml(graph: dict) -> str:
    """The graph in the plain YAML that fastyaml reads: `name: {op: mul, in: [a, b]}` lines."""

    def flow(v) -> str:
        if isinstance(v, list):
            return "[" + ", ".join(flow(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k}: {flow(x)}" for k, x in v.items()) + "}"
        if isinstance(v, bool):
            return "true" if v else "false"
        return v if isinstance(v, str) else repr(float(v)) if isinstance(v, float) else str(v)

    lines = ["inputs:"] + [f"  {k}: {flow(v)}" for k, v in graph["inputs"].items()]
    lines += ["nodes:"] + [f"  {k}: {flow(v)}" for k, v in graph["nodes"].items()]
    if "outputs" in graph:
        lines.append(f"outputs: {flow(graph['outputs'])}")
    return "\n".join(lines) + "\n"


def pyyaml_only(text: str) -> cgcalc.Graph:
    with mock.patch.object(fastyaml, "read", return_value=None):
        return cgcalc.loads(text, file="g.yaml")


def marked_json(text: str) -> cgcalc.Graph:
    """JSON as an error in it gets it read: every value marked with where it stands (marks.json_marked)."""
    return cgcalc.Graph(compile_graph(read.read_graph(text, "g.json", again="json")))


def outcome(f, text: str):
    try:
        return f(text)
    except GraphError as e:
        return e


def same_value(a, b) -> bool:
    import numpy as np

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and np.array_equal(a, b, equal_nan=True)


def assert_same_plan(g: cgcalc.Graph, h: cgcalc.Graph) -> None:
    p, q = g.plan, h.plan
    assert (p.names, p.index, p.outputs, p.shapes, p.has_grad) == (q.names, q.index, q.outputs, q.shapes, q.has_grad)
    assert len(p.constants) == len(q.constants)
    assert all(a == b or (math.isnan(a) and math.isnan(b)) for a, b in zip(p.constants, q.constants))
    assert list(p.steps) == list(q.steps)
    assert p.layouts == q.layouts
    assert (p.spec.name, p.spec.description, p.spec.outputs) == (q.spec.name, q.spec.description, q.spec.outputs)


def assert_same_run(g: cgcalc.Graph, h: cgcalc.Graph, lines: bool = True) -> None:
    """The same values, gradients and warnings (without the line they name, unless `lines`)."""
    try:
        r = g.run()
    except GraphError as e:
        with pytest.raises(GraphError) as got:
            h.run()
        assert got.value.message == e.message
        return
    s = h.run()
    for name in g.plan.names:
        assert same_value(r.value(name), s.value(name)), name
        assert (r.grad(name) is None) == (s.grad(name) is None), name
        if r.grad(name) is not None:
            assert same_value(r.grad(name), s.grad(name)), name
    unlined = [re.sub(r" \(line \d+\)", "", w) for w in s.warnings]
    assert list(r.warnings) == (list(s.warnings) if lines else unlined)


@PROPERTY
@given(graph=graphs())
def test_every_reader_gives_the_same_plan_or_the_same_error(graph):
    js, ym = json.dumps(graph), to_yaml(graph)
    by_json = outcome(lambda t: cgcalc.loads(t, file="g.json", json=True), js)
    by_marks = outcome(marked_json, js)
    by_fastyaml = outcome(lambda t: cgcalc.loads(t, file="g.yaml"), ym)
    by_pyyaml = outcome(pyyaml_only, ym)
    if isinstance(by_pyyaml, GraphError):
        assert isinstance(by_fastyaml, GraphError) and str(by_fastyaml) == str(by_pyyaml)  # line and column too
        assert isinstance(by_json, GraphError) and str(by_json) == str(by_marks)
        assert by_json.message == by_pyyaml.message
        return
    for g in (by_json, by_marks, by_fastyaml):
        assert isinstance(g, cgcalc.Graph), g
        assert_same_plan(g, by_pyyaml)
    # where each node is written (warnings show its line); an expression's inner nodes: only PyYAML knows
    top = [st for st in by_pyyaml.plan.steps if "." not in st.name]
    assert [by_fastyaml.plan.pos_of(st) for st in top] == [by_pyyaml.plan.pos_of(st) for st in top]
    assert all(by_json.plan.pos_of(st) is None for st in by_json.plan.steps)  # json.loads keeps no positions
    assert_same_run(by_json, by_pyyaml, lines=False)
    assert_same_run(by_fastyaml, by_pyyaml)


# --- a file is read once ---------------------------------------------------------------------------


def reads(text: str, json_first: bool) -> tuple[str, dict[str, int]]:
    """The outcome of cgcalc.loads, and how often each reader read the text."""
    readers = {
        "json": (read, "_json_values"),
        "fastyaml": (fastyaml, "read"),
        "pyyaml": (yaml, "compose"),
        "marked json": (marks, "json_marked"),
        "marked fastyaml": (fastyaml, "read_marked"),
    }
    patches = {k: mock.patch.object(m, f, wraps=getattr(m, f)) for k, (m, f) in readers.items()}
    spies = {k: p.start() for k, p in patches.items()}
    try:
        cgcalc.loads(text, file="g.json" if json_first else "g.yaml", json=json_first)
        result = "ok"
    except GraphError as e:
        result = str(e)
    finally:
        for p in patches.values():
            p.stop()
    return result, {k: s.call_count for k, s in spies.items() if s.call_count}


APPLE_JSON = json.dumps(
    {
        "name": "apple: two of them",  # a ':' in a string: json.loads is not called twice
        "description": "chapter 5: apples",
        "inputs": {"apple": 100, "n": 2, "tax": {"value": 1.1, "grad": False}},
        "nodes": {"a": {"op": "mul", "in": ["apple", "n"]}, "price": "a * tax", "s": {"op": "sum", "in": ["a"]}},
        "outputs": ["price"],
    }
)
APPLE_YAML = "inputs:\n  apple: 100\n  n: 2\nnodes:\n  a: {op: mul, in: [apple, n]}\n  price: a * 1.1\n"


@pytest.mark.parametrize(
    ("text", "json_first", "result", "expected"),
    [
        (APPLE_JSON, True, "ok", {"json": 1}),
        (APPLE_YAML, False, "ok", {"fastyaml": 1}),
        ("inputs: {x: 1}\nnodes: {y: 'x * 2'}\n", False, "ok", {"fastyaml": 1, "pyyaml": 1}),  # not the subset
        (
            APPLE_JSON.replace('"mul"', '"mull"'),
            True,
            "g.json:1:162: unknown op 'mull' (did you mean 'mul'?) in node 'a' (see: cgcalc ops)",
            {"json": 1, "marked json": 1},
        ),
        (
            '{"inputs": {"x": 1, "x": 2}, "nodes": {"y": "x * 2"}}',
            True,
            "g.json:1:21: duplicate key 'x' in 'inputs' (first at line 1)",
            {"json": 1, "marked json": 1},
        ),
        (
            APPLE_YAML.replace("a * 1.1", "a * * 1.1"),
            False,
            "g.yaml:6:14: bad expression for node 'price': unexpected '*'",
            {"fastyaml": 1, "marked fastyaml": 1},
        ),
        (
            APPLE_YAML + "  a: 3\n",
            False,  # fastyaml declines a key written twice: PyYAML reads and reports it
            "g.yaml:7:3: duplicate key 'a' in 'nodes' (first at line 5)",
            {"fastyaml": 1, "pyyaml": 1},
        ),
    ],
    ids=["json", "fast-yaml", "other-yaml", "json-error", "json-duplicate", "fast-yaml-error", "other-yaml-error"],
)
def test_a_file_is_read_once_and_an_error_located_without_pyyaml(text, json_first, result, expected):
    got, counts = reads(text, json_first)
    assert got == result
    assert counts == expected


def test_constants_take_the_slots_after_every_node_also_after_an_expression():
    # the compiler gives a constant its slot at once when the reading counts the nodes, until an expression
    # makes more nodes than it counted (then at the end): either way, after every node
    graph = {
        "inputs": {"x": 2.0},
        "nodes": {"a": {"op": "mul", "in": ["x", 2]}, "b": "a * 3 + 1", "c": {"op": "add", "in": ["b", 2]}},
    }
    g = cgcalc.loads(json.dumps(graph), file="g.json", json=True)
    assert g.plan.names == ("x", "a", "b.1", "b", "c") and g.plan.constants == (2.0, 3.0, 1.0)
    assert [st.args for st in g.plan.steps] == [(0, 5), (1, 6), (2, 7), (3, 5)]
    assert_same_plan(g, pyyaml_only(to_yaml(graph)))
    assert g.run().value("c") == 15.0


def test_a_node_written_before_its_input_still_runs():
    text = json.dumps(
        {
            "inputs": {"x": 2.0},
            "nodes": {"b": {"op": "mul", "in": ["a", "x"]}, "a": {"op": "add", "in": ["x", 1]}},
            "outputs": ["b"],
        }
    )
    g = cgcalc.loads(text, json=True)
    assert g.plan.names == ("x", "a", "b")
    r = g.run()
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
            '{"inputs": {"x": {"value": 1, "value": 2}},\n "nodes": {"a": {"op": "mul", "in": ["x", 2]}}}',
            "g.json:1:31: duplicate key 'value' in input 'x' (first at line 1)",
        ),
        (
            '{"nodes": {"a": {"op": "neg", "in": [1]}},\n "nodes": {"b": {"op": "neg", "in": [2]}}}',
            "g.json:2:2: duplicate key 'nodes' in the graph (first at line 1)",
        ),
        (
            '{"description": "a:\\u003a", "inputs": {"x": 1},\n "nodes": {"a": {"op": "neg", "in": ["x"]}, "a": 2}}',
            "g.json:2:45: duplicate key 'a' in 'nodes' (first at line 2)",  # an escaped ':' cannot hide it
        ),
        (
            '{\n  "inputs": {"x": 1},\n  "nodes": {\n    "a": {"op": "mul", "in": ["x", 2]},\n'
            '    "b": {"op": "mull", "in": ["a", "x"]}\n  }\n}\n',
            "g.json:5:17: unknown op 'mull' (did you mean 'mul'?) in node 'b' (see: cgcalc ops)",
        ),
        (
            '{"inputs": {"x": 1}, "nodes": {"b": {"op": "neg", "in": ["a"]}, "a": {"op": "neg", "in": ["b"]}}}',
            "g.json:1:32: cycle: b -> a -> b",
        ),
        (
            '{"inputs": {"x": 1}, "nodes": {"b": {"op": "neg", "in": ["x"]}, "c": {"op": "neg", "in": ["d"]}}}',
            "g.json:1:91: undefined name 'd' in node 'c'",
        ),
    ],
)
def test_an_error_in_a_json_graph_has_its_line_and_column(text, error):
    with pytest.raises(GraphError) as e:
        cgcalc.loads(text, file="g.json", json=True)
    assert str(e.value) == error


@pytest.mark.parametrize(
    "text, error",
    [
        # of two errors, the one that comes first in the order of the checks (see compiler.py), as PyYAML's
        # reading of the whole file would find them
        ("inputs:\n  x: 1\nnodes:\n  a: {op: mull, in: [x]}\n  b: x * * 2\n", "g.yaml:5:10: bad expression"),
        ("inputs:\n  x: 1\nnodes:\n  a: {op: mull, in: [x]}\n  x: {op: neg, in: [x]}\n", "g.yaml:5:3: name 'x'"),
        ("inputs:\n  x: 1\nnodes:\n  a: {op: neg, in: [y]}\n  b: {op: mull, in: [x]}\n", "g.yaml:4:21: undefined"),
        ("inputs:\n  x: 1\nnodes:\n  a: {op: mull, in: [x]}\n  b: {in: [x]}\n", "g.yaml:5:6: node 'b' has no"),
        ("inputs:\n  x: 1\nnodes:\n  a: {op: mull, in: [x]}\noutputs: [a b]\n", "g.yaml:5:11: bad output name"),
    ],
)
def test_of_several_errors_the_first_kind_is_reported(text, error):
    with pytest.raises(GraphError) as e:
        cgcalc.loads(text, file="g.yaml")
    assert str(e.value).startswith(error)
    with pytest.raises(GraphError) as again:
        pyyaml_only(text)
    assert str(again.value) == str(e.value)


class _Reading:
    """A reading made by hand, for the compiler alone."""

    file, name, description, fast, positions, numbers_as_text = None, "g", "", False, True, False

    def __init__(self, inputs, nodes):
        self.inputs, self.node_list, self.count = inputs, nodes, len(nodes)

    def nodes(self):
        return iter(self.node_list)

    def outputs(self):
        return (self.node_list[-1].name,), (None,)


def test_the_compiler_changes_nothing_it_is_given():
    from cgcalc.core.spec import InputSpec

    inputs = (InputSpec("x", (1.0, 2.0), (2,), True, (1, 1)),)
    nodes = [
        NodeSpec("b", "mul", ["a", 2], {}, (2, 1)),  # a list, as a fast reading gives it
        NodeSpec("a", "sum", ("x",), {"keepdims": True}, (3, 1)),
        NodeSpec("c", None, pos=(4, 1), expr="b * a", expr_pos=(4, 4)),
    ]
    before = copy.deepcopy(nodes)
    plan = compile_graph(_Reading(inputs, nodes))
    assert nodes == before and plan.names == ("x", "a", "b", "c")
    assert [plan.pos_of(st) for st in plan.steps] == [(3, 1), (2, 1), (4, 1)]


def test_loading_twice_gives_the_same_plan():
    for text, json_first in ((APPLE_JSON, True), (APPLE_YAML, False), (APPLE_JSON.encode(), True)):
        assert_same_plan(cgcalc.loads(text, json=json_first), cgcalc.loads(text, json=json_first))
