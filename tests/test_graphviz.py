"""`export -o` and Graphviz: a picture of a big graph is refused (unless --force), Graphviz runs under a time limit
and its own message is reported, and a file name asks for a format it names or is an error. A fake `dot` on PATH
(a shell script) stands in for Graphviz, so these run without it and fast."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from cli_helpers import cli, one_error_line
from proc_helpers import GRAPHS, alive, wait_until

from cgcalc.io import graphviz

APPLE = GRAPHS / "apple.yaml"
posix_only = pytest.mark.skipif(os.name != "posix", reason="the fake dot is a shell script")


def chain(path: Path, layers: int) -> Path:
    """A chain of `layers` layers sigmoid(h @ W + b): 3 inputs and 3 operations a layer."""
    lines = ["inputs:", "  x: [[1.0, 2.0]]"]
    for i in range(1, layers + 1):
        lines += [f"  W{i}: [[0.1, 0.2], [0.3, 0.4]]", f"  b{i}: [0.1, 0.1]"]
    lines.append("nodes:")
    for i in range(1, layers + 1):
        lines.append(f"  h{i}: sigmoid({'x' if i == 1 else f'h{i - 1}'} @ W{i} + b{i})")
    path.write_text("\n".join(lines) + "\n")
    return path


def fake_dot(tmp_path: Path, script: str) -> dict:
    """A `dot` that runs `script` (sh), first on PATH; returns the env for cli()."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    dot = bin_dir / "dot"
    dot.write_text("#!/bin/sh\n" + script)
    dot.chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}


def test_a_picture_of_a_60_layer_chain_is_refused_without_running_graphviz(tmp_path):
    g = chain(tmp_path / "chain.yaml", 60)
    env = fake_dot(tmp_path, f"touch {tmp_path}/dot-ran\ncat >/dev/null\necho PNG\n")
    out = tmp_path / "x.png"
    line = one_error_line(cli("export", g, "-o", out, env=env))
    assert line == (
        f"error: {out}: the graph has 301 nodes and 300 edges, more than cgcalc draws (200 nodes, 400 "
        "edges: Graphviz's layout would take minutes); write the text instead (-o graph.dot, or -o "
        "graph.mmd for Mermaid), or insist with --force"
    )
    assert not (tmp_path / "dot-ran").exists() and not out.exists()
    # --force insists; the text formats are never refused
    assert cli("export", g, "-o", out, "--force", env=env).exit_code == 0
    assert out.read_bytes() == b"PNG\n"
    assert cli("export", g, "-o", tmp_path / "x.mmd").exit_code == 0


def test_the_bound_is_200_nodes(tmp_path):
    env = fake_dot(tmp_path, "cat >/dev/null\necho SVG\n")
    below = chain(tmp_path / "c39.yaml", 39)  # 79 inputs + 117 operations = 196 nodes
    r = cli("export", below, "-o", tmp_path / "x.svg", env=env)
    assert r.exit_code == 0, r.stderr
    above = chain(tmp_path / "c40.yaml", 40)  # 201 nodes
    assert "the graph has 201 nodes" in one_error_line(cli("export", above, "-o", tmp_path / "y.svg", env=env))


@posix_only
def test_graphviz_is_stopped_at_its_time_limit(tmp_path):
    pid_file = tmp_path / "dot.pid"
    env = fake_dot(tmp_path, f"echo $$ > {pid_file}\nexec sleep 60\n") | {"CGCALC_GRAPHVIZ_TIMEOUT": "0.5"}
    out = tmp_path / "x.svg"
    started = time.monotonic()
    line = one_error_line(cli("export", APPLE, "-o", out, env=env))
    assert time.monotonic() - started < 20
    assert line == (
        f"error: {out}: Graphviz did not finish in 0.5 s (raise the limit with CGCALC_GRAPHVIZ_TIMEOUT, "
        "or write the text with -o graph.dot)"
    )
    wait_until(lambda: not alive(int(pid_file.read_text())), what="the stopped dot to end")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin", "dot.pid"]


@posix_only
def test_graphviz_stderr_is_in_the_error(tmp_path):
    env = fake_dot(
        tmp_path,
        "cat >/dev/null\necho 'Error: <stdin>: syntax error in line 3' >&2\necho '... near \"x\"' >&2\nexit 1\n",
    )
    line = one_error_line(cli("export", APPLE, "-o", tmp_path / "x.pdf", env=env))
    assert (
        line
        == f'error: {tmp_path / "x.pdf"}: Graphviz failed (exit 1): Error: <stdin>: syntax error in line 3 ... near "x"'
    )
    env = fake_dot(tmp_path, "cat >/dev/null\nkill -9 $$\n")
    line = one_error_line(cli("export", APPLE, "-o", tmp_path / "x.pdf", env=env))
    assert line == f"error: {tmp_path / 'x.pdf'}: Graphviz failed (killed by SIGKILL): no message"


def test_a_bad_time_limit_is_a_usage_error(tmp_path):
    env = fake_dot(tmp_path, "cat >/dev/null\n") | {"CGCALC_GRAPHVIZ_TIMEOUT": "soon"}
    line = one_error_line(cli("export", APPLE, "-o", tmp_path / "x.svg", env=env))
    assert line == "error: CGCALC_GRAPHVIZ_TIMEOUT='soon': give a number of seconds above 0"


@pytest.mark.parametrize("name", ["x.jpg", "x.txt", "x.xhtml", "x.dot.bak"])
def test_an_unknown_extension_is_an_error_naming_the_known_ones(tmp_path, name):
    out = tmp_path / name
    line = one_error_line(cli("export", APPLE, "-o", out))
    ext = name.rsplit(".", 1)[1]
    assert line.startswith(f"error: {out}: unknown extension '.{ext}': write .dot or .gv")
    assert ".mmd" in line and ".svg, .png or .pdf" in line and "--format dot|mermaid" in line
    assert not out.exists()
    # --format says which text: then any name will do
    assert cli("export", APPLE, "-o", out, "--format", "dot").exit_code == 0
    assert out.read_text() == cli("export", APPLE).stdout


@pytest.mark.parametrize(
    "name, fmt, picture",
    [
        (None, None, ("dot", None)),
        ("g.dot", None, ("dot", None)),
        ("g.GV", None, ("dot", None)),
        ("g.mmd", None, ("mermaid", None)),
        ("g.mermaid", None, ("mermaid", None)),
        ("page.html", None, ("html", None)),
        ("page.HTM", None, ("html", None)),
        ("/dev/fd/63", None, ("dot", None)),
        ("g", "mermaid", ("mermaid", None)),
        ("g.svg", None, ("dot", "svg")),
        ("g.PNG", "dot", ("dot", "png")),
        ("a.b/graph", None, ("dot", None)),
        ("--set", None, ("dot", None)),
    ],
)
def test_the_format_a_name_asks_for(name, fmt, picture):
    assert graphviz.choose(name, fmt) == picture
