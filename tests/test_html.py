"""`cgcalc export --format html`, read as text (test_browser.py runs it in a browser): one self-contained file that
fetches nothing, whose script is the only one allowed to run, with the file's text escaped wherever it lands."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from cli_helpers import cli, write

import cgcalc
from cgcalc.views.html import page, page_data, script_json

ROOT = Path(__file__).resolve().parent.parent
GRAPH_FILES = sorted((ROOT / "graphs").glob("*.yaml"))
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
EVIL_NAME = "</script><script>window.pwned = 1</script><!--"
EVIL_DESCRIPTION = '<img src=x onerror="window.pwned = 2"> & --> ]]> </style>'


def evil(tmp_path: Path) -> Path:
    return write(
        tmp_path,
        "evil.yaml",
        f"name: {json.dumps(EVIL_NAME)}\ndescription: {json.dumps(EVIL_DESCRIPTION)}\n"
        "inputs: {x: 2.0}\nnodes:\n  y: x * x\n",
    )


def built_in(tmp_path: Path) -> dict:
    return {"PATH": str(tmp_path / "nowhere")}  # no dot: the built-in layout


@pytest.mark.parametrize("graph", GRAPH_FILES, ids=lambda p: p.stem)
def test_the_page_is_self_contained(graph, tmp_path):
    r = cli("export", graph, "--format", "html", env=built_in(tmp_path))
    assert r.exit_code == 0 and r.stderr == "", r.stderr
    html = r.stdout
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    # nothing to fetch: no src, no href but the empty data: icon, no url(), no @import; namespaces are not fetched
    assert re.findall(r"\b(?:src|href)\s*=\s*\"([^\"]*)\"", html) == ["data:,"]
    assert "url(" not in html and "@import" not in html
    links = set(re.findall(r"https?://[^\s\"'<>)]+", html))
    assert links <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}, links
    # a policy that forbids any fetch and lets only the page's own script (by its hash) run
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html).group(1)
    assert csp.startswith("default-src 'none'; script-src 'sha256-")
    scripts = re.findall(r"<script>(.*?)</script>", html, re.DOTALL)
    assert len(scripts) == 1
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    assert f"'sha256-{digest}'" in csp
    # the built-in drawing is well-formed SVG, with an element per node and edge of the data
    svg = html[html.index("<svg") : html.index("</svg>") + 6]
    tree = ET.fromstring(svg)
    ids = {e.get("id") for e in tree.iter() if e.get("id")}
    data = json.loads(re.search(r'<script type="application/json" id="cgcalc-data">(.*?)</script>', html).group(1))
    assert {f"node_{n['id']}" for n in data["nodes"]} | {f"edge_{e['k']}" for e in data["edges"]} == ids


@needs_dot
def test_graphviz_draws_the_page_when_it_is_installed(tmp_path):
    out = tmp_path / "page.html"
    r = cli("export", ROOT / "graphs" / "apple_orange.yaml", "-o", out)
    assert r.exit_code == 0, r.stderr
    html = out.read_text()
    assert 'data-layout="Graphviz"' in html
    assert "<!--" not in html.split("<svg", 1)[1]  # Graphviz's comments (which repeat names) are left out
    for k in range(9):  # every node and edge found by its id in Graphviz's SVG
        assert f'id="edge_{k}"' in html


def test_a_graph_too_large_for_graphviz_gets_the_built_in_layout(tmp_path):
    lines = ["inputs: {x0: 1.0}", "nodes:"] + [f"  x{i}: x{i - 1} * 1.0001" for i in range(1, 301)]
    graph = write(tmp_path, "chain.yaml", "\n".join(lines) + "\n")
    started = time.monotonic()
    r = cli("export", graph, "-o", tmp_path / "chain.html")
    assert r.exit_code == 0, r.stderr
    assert time.monotonic() - started < 30
    assert 'data-layout="built-in layout"' in (tmp_path / "chain.html").read_text()


@pytest.mark.parametrize("layout", ["built-in", pytest.param("Graphviz", marks=needs_dot)])
def test_the_files_text_is_escaped_everywhere(tmp_path, layout):
    out = tmp_path / "evil.html"
    r = cli("export", evil(tmp_path), "-o", out, env=built_in(tmp_path) if layout == "built-in" else None)
    assert r.exit_code == 0, r.stderr
    html = out.read_text()
    assert len(re.findall(r"<script", html, re.IGNORECASE)) == 2  # the data and the page's script, no other
    assert len(re.findall(r"</script", html, re.IGNORECASE)) == 2
    assert "<img" not in html and "<!-- " not in html and "</style>" not in html.split("</style>", 1)[1]
    assert "&lt;/script&gt;&lt;script&gt;window.pwned = 1&lt;/script&gt;&lt;!--" in html  # shown as text
    data = json.loads(re.search(r'id="cgcalc-data">(.*?)</script>', html, re.DOTALL).group(1))
    assert data["graph"] == EVIL_NAME


def test_script_json_cannot_end_its_element():
    text = script_json({"a": "</script><!-- & \u2028"})
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == {"a": "</script><!-- & \u2028"}


def test_the_steps_are_forward_then_backward_then_the_inputs_gradients():
    g = cgcalc.load(ROOT / "graphs" / "reuse.yaml")
    data = page_data(g.run())
    phases = [s["phase"] for s in data["steps"]]
    assert phases == ["forward"] * 4 + ["backward"] * 4 + ["done"]
    # at the fan-out, the accumulation as trace shows it
    lines = [line for s in data["steps"] for line in s["lines"]]
    assert "      ∂a += 2 × 1 = 2   (total ∂a = 10)" in lines
    # the node a's total gradient (10) is shown once every contribution has arrived: after the last step into it
    a = next(n for n in data["nodes"] if n["name"] == "a")
    assert a["final"] == 7 and a["value_exact"] == 3.0 and a["grad_exact"] == 10.0


def test_page_without_graphviz_is_the_built_in_layout():
    html = page(cgcalc.load(ROOT / "graphs" / "apple.yaml").run())
    assert 'data-layout="built-in layout"' in html


def test_a_picture_extension_with_format_html_is_refused(tmp_path):
    r = cli("export", ROOT / "graphs" / "apple.yaml", "--format", "html", "-o", tmp_path / "x.svg")
    assert r.exit_code == 2 and "pictures are drawn from the dot format" in r.stderr
