"""Pictures must not mislead (issue 10, item 18) and a graph that asks for more memory than there is is refused
before it runs (item 11): each edge of an exported figure carries the gradient flowing along it, and shape
inference knows every node's size."""

from __future__ import annotations

import re

import pytest
from cli_helpers import assert_error, cli, one_error_line, write
from conftest import GRAPHS

import cgcalc
from cgcalc.views.export import to_dot, to_mermaid

EDGE = re.compile(r"^  (\w+) -> (\w+) \[label=(.*)\];$", re.M)


def dot_edges(text: str) -> list[tuple[str, str, str, str | None, bool]]:
    """(src, dst, value, gradient or None, grey) of every edge of a dot text."""
    out = []
    for src, dst, label in EDGE.findall(text):
        m = re.match(r'<(.*?)<br/><font color="red">(.*?)</font>>', label)
        if m:
            out.append((src, dst, m.group(1), m.group(2), False))
        else:
            value = re.match(r'"(.*?)"', label).group(1)
            out.append((src, dst, value, None, 'color="gray"' in label))
    return out


def node_totals(text: str) -> dict[str, str]:
    return dict(re.findall(r'^  (\w+) \[.*tooltip="(?:\w+)", xlabel=<<font [^>]*>∂ (.*?)</font>>\];$', text, re.M))


def test_fan_out_edges_carry_their_own_share():
    # reuse: b = a + a, c = b + b, d = a * a, out = c + d at a = 3. Each edge a -> b carries dout/db * 1 = 2,
    # each edge a -> d carries dout/dd * a = 3; a's total is 2 + 2 + 3 + 3 = 10 (= 4 + 2a).
    text = to_dot(cgcalc.load(GRAPHS / "reuse.yaml").run())
    edges = dot_edges(text)
    ids = {m[1]: m[0] for m in re.findall(r'^  (n\d+) \[.*tooltip="(\w+)"', text, re.M)}
    from_a = sorted((ids_inv(ids, dst), grad) for src, dst, _, grad, _ in edges if src == ids["a"])
    assert from_a == [("b", "2"), ("b", "2"), ("d", "3"), ("d", "3")]
    totals = node_totals(text)
    assert totals[ids["a"]] == "10"
    assert totals[ids["b"]] == "2" and totals[ids["d"]] == "1"


def ids_inv(ids: dict, nid: str) -> str:
    return next(name for name, i in ids.items() if i == nid)


def test_edges_off_the_path_to_the_selected_output_are_grey_and_carry_no_gradient():
    r = cgcalc.load(GRAPHS / "sigmoid.yaml").run(output="y_chain")
    text = to_dot(r)
    ids = {m[1]: m[0] for m in re.findall(r'^  (n\d+) \[.*tooltip="([\w.]+)"', text, re.M)}
    edges = {(s, d): (v, g, grey) for s, d, v, g, grey in dot_edges(text)}
    # x -> sigmoid (y) and y -> its output box are not on the path to y_chain
    assert edges[ids["x"], ids["y"]] == ("1", None, True)
    assert edges[ids["y"], "out" + ids["y"][1:]] == ("0.731059", None, True)
    # the chain's edges carry dy/dx = y (1 - y) = 0.196612 at x = 1, and its output box the seed 1
    assert edges[ids["x"], ids["y_chain.1"]][1] == "0.196612"
    assert edges[ids["y_chain"], "out" + ids["y_chain"][1:]][1] == "1"
    mermaid = to_mermaid(r)
    assert re.search(r"^  linkStyle [\d,]+ stroke:gray", mermaid, re.M)


def test_every_edge_out_of_a_node_sums_to_its_total():
    # the two-layer net: a node's total gradient is the sum of what flows back along its edges (checked in
    # full precision through the runtime's flows; the figure rounds them)
    from cgcalc.core.runtime import edge_flows

    r = cgcalc.load(GRAPHS / "two_layer_net.yaml").run()
    plan = r.plan
    flows = edge_flows(r)
    sums: dict[int, object] = {}
    for (i, j), d in flows.items():
        a = plan.steps[i].args[j]
        sums[a] = d if a not in sums else sums[a] + d
    for slot, total in sums.items():
        expected = r.grads[r.output][slot]
        assert abs(total - expected).max() < 1e-15, plan.names[slot]


MATMUL_BOMB = """\
inputs:
  a: {a}
  b: {b}
nodes:
  y: a @ b
  s: sum(y)
"""


def test_a_graph_that_needs_more_memory_than_the_limit_is_refused_before_it_runs(tmp_path):
    n = 3000  # (3000, 1) @ (1, 3000): 9M elements a node, 144 MB with gradients, for a 30 KB file
    g = write(tmp_path, "bomb.yaml", MATMUL_BOMB.format(a=[[1.0]] * n, b=[[1.0] * n]))
    msg = assert_error(
        cli("run", g, env={"CGCALC_MAX_MEMORY": "64M"}),
        f"{g}:5:3",
        "'y' alone",
        "(3000, 3000)",
        "CGCALC_MAX_MEMORY",
        "67.1 MB",
    )
    assert "over the limit" in msg
    # raised, it runs
    r = cli("run", g, "--format", "json", env={"CGCALC_MAX_MEMORY": "1G"})
    assert r.exit_code == 0, r.stderr


def test_the_memory_limit_counts_the_rows_of_a_batch(tmp_path):
    import numpy as np

    g = cgcalc.loads("inputs:\n  x: [1.0, 2.0, 3.0]\nnodes:\n  y: sum(x * x)\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CGCALC_MAX_MEMORY", "100000")  # 100 kB: 1,000 rows of 7 elements need 112 kB
        with pytest.raises(cgcalc.ShapeError, match="for 1,000 rows"):
            g.run_batch({"x": np.ones((1000, 3))})
        assert g.run_batch({"x": np.ones((100, 3))}).rows == 100


@pytest.mark.parametrize("text", ["lots", "8Q", "-", "1.5G"])
def test_a_bad_memory_limit_is_a_clear_error(tmp_path, text):
    g = write(tmp_path, "g.yaml", "inputs:\n  x: [1.0, 2.0]\nnodes:\n  y: sum(x)\n")
    line = one_error_line(cli("run", g, env={"CGCALC_MAX_MEMORY": text}))
    assert line.startswith("error: CGCALC_MAX_MEMORY must be a number of bytes"), line
