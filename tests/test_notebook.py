"""cgcalc in a notebook: a small notebook run by nbclient in an ipykernel, and what each cell displays (its mime
types and its numbers): a Result as its table, a Graph and g.draw() as the picture (SVG from Graphviz, else the
built-in layout as HTML), a Trace as its step list. CGCALC_UPDATE_SCREENSHOTS=1 (with chromium) rewrites
docs/notebook_cell.png: two of the cells' outputs, rendered by the browser."""

from __future__ import annotations

import html
import os
import re
import shutil
from pathlib import Path

import pytest

import cgcalc

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parent.parent
APPLE = ROOT / "graphs" / "apple.yaml"
NET = ROOT / "graphs" / "two_layer_net.yaml"
HAS_DOT = shutil.which("dot") is not None
UPDATE = os.environ.get("CGCALC_UPDATE_SCREENSHOTS", "") not in ("", "0")

CELLS = [
    f"import sys\nsys.path.insert(0, {str(ROOT)!r})\nimport cgcalc\ng = cgcalc.load({str(APPLE)!r})\ng",
    "r = g.run(apple=120)\nr",
    "g.trace()",
    "g.draw(apple=120)",
    "print(r.value('price'), r.grad('apple'))",
    f"cgcalc.load({str(NET)!r}).run()",
    # without Graphviz, the picture is the built-in layout, as HTML
    f"import os\nos.environ['PATH'] = '/nonexistent'\ncgcalc.load({str(APPLE)!r})",
]


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> list[list[dict]]:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    path = tmp_path_factory.mktemp("notebook")
    client = nbclient.NotebookClient(
        nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(path)}}
    )
    client.execute()
    return [cell.outputs for cell in nb.cells]


def result_of(cell: list[dict]) -> dict:
    (out,) = [o for o in cell if o["output_type"] == "execute_result"]
    return out["data"]


def test_a_graph_shows_its_picture(outputs):
    data = result_of(outputs[0])
    assert data["text/plain"] == "<cgcalc.Graph 'apple': 3 inputs, 2 nodes>"
    if HAS_DOT:
        assert set(data) == {"text/plain", "image/svg+xml"}
        svg = data["image/svg+xml"]
    else:
        assert set(data) == {"text/plain", "text/html"}
        svg = data["text/html"]
    assert "<svg" in svg and ">220<" in svg and ">2.2<" in svg  # the values and gradients on its edges


def test_a_result_shows_its_table(outputs):
    data = result_of(outputs[1])
    assert set(data) == {"text/plain", "text/html"}
    assert data["text/plain"] == "<cgcalc.Result graph='apple' output='price' value=264.0>"
    rows = re.findall(
        r"<tr[^>]*><td>(\w+)</td><td>\w+</td><td>[^<]*</td><td class=\"num\">([^<]*)</td>"
        r"<td class=\"num\">([^<]*)</td>",
        data["text/html"],
    )
    r = cgcalc.load(APPLE).run(apple=120)
    assert rows == [
        (n, f"{r.value(n):g}", f"{r.grad(n):g}") for n in ("apple", "apple_num", "tax", "apple_price", "price")
    ]


def test_a_trace_shows_its_step_list(outputs):
    data = result_of(outputs[2])
    assert set(data) == {"text/plain", "text/html"}
    text = html.unescape(re.sub(r"<[^>]+>", "", data["text/html"]))
    assert "   1. apple_price = mul(apple=100, apple_num=2) = 200" in text
    assert "      ∂apple = 1.1 × apple_num(2) = 2.2" in text
    assert data["text/plain"].startswith("apple: forward, in execution order\n")
    assert data["text/plain"] == str(cgcalc.load(APPLE).trace())


def test_draw_returns_the_picture(outputs):
    data = result_of(outputs[3])
    assert data["text/plain"].startswith("<cgcalc.Picture of 'apple', drawn by ")
    assert ("image/svg+xml" if HAS_DOT else "text/html") in data


def test_printed_numbers_and_an_array_graph(outputs):
    (stream,) = outputs[4]
    assert stream["text"] == "264.0 2.2\n"
    data = result_of(outputs[5])
    loss = float(cgcalc.load(NET).run().value("loss"))
    assert data["text/plain"] == f"<cgcalc.Result graph='two-layer-net' output='loss' value={loss!r}>"
    assert f'<td class="num">{loss:.6g}</td>' in data["text/html"]


def test_without_graphviz_a_graph_is_the_html_layout(outputs):
    data = result_of(outputs[6])
    assert set(data) == {"text/plain", "text/html"}
    assert data["text/html"].startswith('<div class="cgcalc-figure"><svg')


def test_a_picture_of_two_cells(outputs, tmp_path):
    """The README's notebook picture: the table of cell 2 and the picture of cell 4, as a notebook lays them out."""
    from browser_helpers import Browser, chromium_binary

    binary = chromium_binary()
    if binary is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    pytest.importorskip("websocket")
    picture = result_of(outputs[3])
    body = []
    for n, (source, shown) in enumerate(
        [
            (CELLS[1], result_of(outputs[1])["text/html"]),
            (CELLS[3], picture.get("image/svg+xml") or picture["text/html"]),
        ]
    ):
        number = (2, 4)[n]
        body.append(
            f'<div class="cell"><pre class="in"><span>In [{number}]:</span> {html.escape(source)}</pre>'
            f'<div class="out"><span>Out[{number}]:</span><div>{shown}</div></div></div>'
        )
    page = tmp_path / "cells.html"
    page.write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'><style>"
        "body{font-family:Helvetica,Arial,sans-serif;margin:12px;width:900px}"
        ".cell{margin-bottom:14px}.in{background:#f5f5f5;border:1px solid #e0e0e0;padding:6px;margin:0}"
        ".in span,.out>span{color:#303f9f;font-family:monospace;margin-right:8px}"
        ".out>span{color:#d84315;display:block;margin:6px 0}.out{padding-left:6px}"
        ".cgcalc-result{border-collapse:collapse}.cgcalc-result td,.cgcalc-result th{padding:2px 10px}"
        "</style></head><body>" + "".join(body) + "</body></html>",
        encoding="utf-8",
    )
    b = Browser(binary, width=940, height=700)
    try:
        b.open(page)
        shot = tmp_path / "notebook_cell.png"
        b.screenshot(shot)
    finally:
        b.close()
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if UPDATE:
        shutil.copyfile(shot, ROOT / "docs" / "notebook_cell.png")
