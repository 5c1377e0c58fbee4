"""The page `cgcalc export --format html` writes, in a real browser: Debian's chromium, headless, driven over the
DevTools protocol (browser_helpers.py). It loads with no console error and fetches nothing; the keys and buttons
step forward node by node and then backward, each step highlighting its own node and edges and showing the
arithmetic `trace` prints; the numbers it shows are those of `run --format json`; a graph's name made of markup
runs nothing. Both layouts: Graphviz's (when dot is installed) and the built-in one.

Skipped when chromium is not installed (`apt-get install chromium`; or CGCALC_CHROMIUM=/path/to/chrome). Run
alone: `pytest -m browser`. CGCALC_UPDATE_SCREENSHOTS=1 rewrites docs/html_page.png from the screenshot test.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from browser_helpers import Browser, chromium_binary
from cli_helpers import cli, write

import cgcalc
from cgcalc.numbers import fmt_value

ROOT = Path(__file__).resolve().parent.parent
GRAPHS = ROOT / "graphs"
GRAPH_FILES = sorted(GRAPHS.glob("*.yaml"))
CHROMIUM = chromium_binary()
UPDATE = os.environ.get("CGCALC_UPDATE_SCREENSHOTS", "") not in ("", "0")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"),
]
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
LAYOUTS = ["built-in layout", pytest.param("Graphviz", marks=needs_dot)]


@pytest.fixture(scope="module")
def browser():
    pytest.importorskip("websocket", reason="websocket-client is not installed (pip install '.[test]')")
    b = Browser(CHROMIUM)
    yield b
    b.close()


def export(tmp_path: Path, graph: Path, layout: str, *args) -> Path:
    """The page of `graph`, drawn by Graphviz or (with no dot on the PATH) by the built-in layout."""
    out = tmp_path / f"{graph.stem}.html"
    env = {"PATH": str(tmp_path / "nowhere")} if layout == "built-in layout" else None
    r = cli("export", graph, "-o", out, *args, env=env)
    assert r.exit_code == 0, r.stderr
    return out


def current(b: Browser) -> list[str]:
    return b.eval("Array.from(document.querySelectorAll('#figure .current')).map(e => e.id)")


def visible(b: Browser, selector: str) -> list[str]:
    """The text of the labels matching `selector` that are not hidden."""
    return b.eval(
        f"Array.from(document.querySelectorAll({json.dumps(selector)}))"
        ".filter(t => !t.classList.contains('unseen')).map(t => t.textContent)"
    )


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("graph", GRAPH_FILES, ids=lambda p: p.stem)
def test_every_example_loads_without_a_console_error_and_fetches_nothing(browser, tmp_path, graph, layout):
    page = export(tmp_path, graph, layout)
    browser.open(page)
    assert browser.problems() == []
    assert browser.eval("document.body.dataset.layout") == layout
    assert browser.eval("performance.getEntriesByType('resource').length") == 0  # no network, not even a font
    # every node and edge of the data is drawn, and found by its id
    counts = browser.eval(
        "(() => { const d = JSON.parse(document.getElementById('cgcalc-data').textContent);"
        " return [d.nodes.length, d.nodes.filter(n => document.getElementById('node_' + n.id)).length,"
        " d.edges.length, d.edges.filter(e => document.getElementById('edge_' + e.k)).length]; })()"
    )
    assert counts[0] == counts[1] and counts[2] == counts[3] and counts[0] > 0
    for key in ("ArrowRight", "End", "ArrowLeft", "h", "Home"):
        browser.key(key)
    assert browser.problems() == []


def trace_steps(graph: Path) -> list[list[str]]:
    """The steps as `cgcalc trace --formulas` prints them: each forward line, each backward block."""
    out = cli("trace", graph, "--formulas").stdout.splitlines()
    steps: list[list[str]] = []
    section = 0
    for line in out:
        if not line.strip():
            section += 1
        elif section < 2 and line.startswith("  ") and not line.startswith("      "):
            steps.append([line])
        elif section < 2 and line.startswith("      "):
            steps[-1].append(line)
    return steps


@pytest.mark.parametrize("layout", LAYOUTS)
def test_stepping_forward_then_backward_changes_what_is_highlighted(browser, tmp_path, layout):
    graph = GRAPHS / "apple_orange.yaml"
    browser.open(export(tmp_path, graph, layout))
    assert current(browser) == []  # the whole graph, nothing highlighted
    assert len(visible(browser, "#figure .edge text[fill='red']")) == 9  # every gradient shown
    expected = trace_steps(graph)
    assert len(expected) == 8  # 4 forward, 4 backward
    seen = []
    for k, lines in enumerate(expected):
        browser.key("ArrowRight")
        assert browser.eval("document.body.dataset.step") == str(k)
        highlighted = current(browser)
        backward = browser.eval("document.body.classList.contains('backward')")  # red highlights, not blue
        assert backward == (k >= 4)
        assert highlighted and (highlighted, backward) not in seen[-1:]  # each step lights up something else
        seen.append((highlighted, backward))
        shown = browser.eval("document.getElementById('step-lines').textContent").split("\n")
        assert shown == lines, k  # the arithmetic as trace prints it
    # forward: apple_price = mul(apple, apple_num) first, with its two input edges; later values not shown yet
    assert set(seen[0][0]) == {"node_n5", "edge_0", "edge_1"}
    # the first backward step is the output's: the seed flows in, and the gradients along its inputs
    assert "node_n8" in seen[4][0]
    browser.key("ArrowRight")  # the last step: the gradients of the inputs
    assert browser.eval("document.getElementById('step-title').textContent").startswith("step 9 of 9")
    last = browser.eval("document.getElementById('step-lines').textContent").split("\n")
    assert last[0] == "gradients of the inputs: ∂price/∂x" and last[-1].startswith("  ∂tax = ")
    assert last[-1].endswith(" = 650")
    browser.key("ArrowLeft")
    assert current(browser) == seen[-1][0]
    browser.click("#prev")  # the buttons step too
    assert current(browser) == seen[-2][0]
    browser.key("Home")
    assert current(browser) == []
    assert browser.problems() == []


def test_values_and_gradients_appear_as_the_steps_compute_them(browser, tmp_path):
    browser.open(export(tmp_path, GRAPHS / "apple.yaml", "built-in layout"))
    browser.key("ArrowRight")  # step 1: apple_price = 200; price not computed yet
    values = visible(browser, "#figure .edge text:not([fill='red'])")
    assert "200" in values and "220" not in values
    assert visible(browser, "#figure .edge text[fill='red']") == []
    assert browser.eval("document.getElementById('node_n4').classList.contains('pending')")
    browser.key("ArrowRight")  # step 2: price = 220
    assert "220" in visible(browser, "#figure .edge text:not([fill='red'])")
    browser.key("ArrowRight")  # step 3, backward from price: the seed 1, and 1.1 and 200 passed back
    assert sorted(visible(browser, "#figure .edge text[fill='red']")) == ["1", "1.1", "200"]
    browser.key("ArrowRight")
    assert sorted(visible(browser, "#figure .edge text[fill='red']")) == ["1", "1.1", "110", "2.2", "200"]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("name", ["apple_orange", "reuse", "two_layer_net", "neuron"])
def test_the_numbers_shown_are_those_of_run_json(browser, tmp_path, name, layout):
    graph = GRAPHS / f"{name}.yaml"
    r = cli("run", graph, "--format", "json")
    expected = {n["name"]: n for n in json.loads(r.stdout)["nodes"]}
    browser.open(export(tmp_path, graph, layout))
    plan = cgcalc.load(graph).plan
    for slot, node in enumerate(plan.names):
        want = expected[node]
        browser.click(f"#values tr[data-node='n{slot}']")  # pins the node: its details stay shown
        got = browser.eval(
            "(() => { const p = document.getElementById('details');"
            " const q = s => { const e = p.querySelector(s); return e ? e.textContent : null; };"
            " return [p.querySelector('h2').textContent, q('.value-exact'), q('.grad-exact'), q('pre.value'),"
            " q('pre.grad')]; })()"
        )
        assert got[0] == node
        assert json.loads(got[1].removeprefix("exactly ")) == want["value"]
        if want["grad"] is None:
            assert got[2] is None and got[4] == "—"
        else:
            assert json.loads(got[2].removeprefix("exactly ")) == want["grad"]
        shown = [line.rstrip() for line in got[3].split("\n")]
        assert shown == fmt_value(cgcalc_value(want["value"]), 6, full=True).split("\n")
        browser.key("Escape")
        # the table's row: the same rounded numbers
        cells = browser.eval(
            f"Array.from(document.querySelectorAll(\"#values tr[data-node='n{slot}'] td\")).map(td => td.textContent)"
        )
        assert cells[0] == node and cells[3] == got[3]
    if all(isinstance(n["value"], float) for n in expected.values()):
        # on the figure, each edge out of a node is labelled with that node's value
        labels = browser.eval(
            "(() => { const d = JSON.parse(document.getElementById('cgcalc-data').textContent);"
            " return d.edges.filter(e => e.src.startsWith('n')).map(e => [e.src, "
            "Array.from(document.getElementById('edge_' + e.k).querySelectorAll('text'))"
            ".filter(t => t.getAttribute('fill') !== 'red').map(t => t.textContent).join('')]); })()"
        )
        for src, text in labels:
            assert text == fmt_value(expected[plan.names[int(src[1:])]]["value"], 6), src
    assert browser.problems() == []


def cgcalc_value(v):
    import numpy as np

    return v if isinstance(v, float) else np.array(v)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_name_made_of_markup_runs_nothing(browser, tmp_path, layout):
    name = "</script><script>window.pwned = 1</script><!--"
    description = '<img src=x onerror="window.pwned = 2"> & <b>bold</b> --> ]]> \u2028 </style>'
    graph = write(
        tmp_path,
        "evil.yaml",
        f"name: {json.dumps(name)}\ndescription: {json.dumps(description)}\ninputs: {{x: 2.0}}\nnodes:\n  y: x * x\n",
    )
    browser.open(export(tmp_path, graph, layout))
    assert browser.eval("typeof window.pwned") == "undefined"
    assert browser.eval("document.getElementById('graph-name').textContent") == name
    assert browser.eval("document.getElementById('graph-description').textContent") == " ".join(description.split())
    assert browser.eval("document.querySelectorAll('script').length") == 2  # the data and the page's own script
    assert browser.eval("document.querySelectorAll('img, b, iframe, object').length") == 0
    assert browser.problems() == []  # (an injected script, blocked by the page's policy, would be an error here)
    browser.key("ArrowRight")
    assert browser.eval("typeof window.pwned") == "undefined"


def test_the_heat_map_colours_by_gradient_with_a_legend(browser, tmp_path):
    browser.open(export(tmp_path, GRAPHS / "apple_orange.yaml", "built-in layout"))
    assert browser.eval("document.getElementById('legend').hidden")
    browser.key("h")
    assert not browser.eval("document.getElementById('legend').hidden")
    fills = browser.eval(
        "Object.fromEntries(['n0', 'n4', 'n5', 'n8'].map(id => [id,"
        " getComputedStyle(document.querySelector('#node_' + id + ' ellipse, #node_' + id + ' polygon')).fill]))"
    )
    # tax (|grad| 650, the largest) darkest; apple (2.2) and the mul nodes (1.1) pale; the output (1) palest
    assert fills["n4"] == "rgb(177, 0, 38)"
    assert len(set(fills.values())) >= 3
    assert browser.eval("document.getElementById('legend-hi').textContent") == "650"
    browser.click("#heat")
    assert browser.eval("document.getElementById('legend').hidden")


def test_a_screenshot_of_the_page(browser, tmp_path):
    """The README's picture: apple_orange in the middle of backward, coloured by |gradient|, a node pinned."""
    layout = "Graphviz" if shutil.which("dot") else "built-in layout"
    browser.open(export(tmp_path, GRAPHS / "apple_orange.yaml", layout))
    for _ in range(6):
        browser.key("ArrowRight")
    browser.key("h")
    browser.click("#node_n5")
    shot = tmp_path / "html_page.png"
    browser.screenshot(shot)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    assert browser.problems() == []
    if UPDATE:
        (ROOT / "docs" / "html_page.png").write_bytes(data)
