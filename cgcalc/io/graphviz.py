"""`cgcalc export -o`: which format a file name asks for, whether a graph is small enough to draw, and drawing it
with Graphviz's `dot` under a time limit.

Graphviz's layout grows much faster than the graph: a chain of 60 layers takes it minutes (a PNG of it over 20
minutes was seen), so a picture of a graph above MAX_NODES nodes or MAX_EDGES edges is refused unless insisted
on (`--force`), and `dot` is stopped after CGCALC_GRAPHVIZ_TIMEOUT seconds.
"""

from __future__ import annotations

import os
import signal
import subprocess

from ..errors import UsageError

PICTURES = ("svg", "png", "pdf")  # drawn by Graphviz
# extension -> text format (html: the step-through page, a text file too)
TEXTS = {"dot": "dot", "gv": "dot", "mmd": "mermaid", "mermaid": "mermaid", "html": "html", "htm": "html"}
MAX_NODES = 200  # inputs and operations
MAX_EDGES = 400
DEFAULT_TIMEOUT = 60.0  # seconds (CGCALC_GRAPHVIZ_TIMEOUT)


def choose(out: str | None, fmt: str | None) -> tuple[str, str | None]:
    """(the text format, the picture format to draw from it, or None) for `-o out` and `--format fmt`. A name
    without an extension (stdout, /dev/fd/N) gets text; an extension that is neither text nor picture is an
    error, unless --format says which text to write."""
    ext = os.path.splitext(out)[1].lower().lstrip(".") if out else ""
    if ext in PICTURES:
        if fmt not in (None, "dot"):
            raise UsageError(f"pictures are drawn from the dot format, not {fmt}", file=out)
        return "dot", ext
    if fmt is not None:
        return fmt, None
    if not ext:
        return "dot", None
    if ext in TEXTS:
        return TEXTS[ext], None
    raise UsageError(
        f"unknown extension '.{ext}': write .dot or .gv (dot text), .mmd or .mermaid (Mermaid text), "
        ".html (the step-through page), or .svg, .png or .pdf (drawn by Graphviz); or give --format "
        "dot|mermaid|html to write the text under any name",
        file=out,
    )


def small_enough(plan) -> bool:
    """Whether Graphviz draws the graph in reasonable time (MAX_NODES, MAX_EDGES)."""
    nodes = len(plan.inputs) + len(plan.steps)
    edges = sum(len(st.args) for st in plan.steps)
    return nodes <= MAX_NODES and edges <= MAX_EDGES


def installed() -> bool:
    import shutil

    return shutil.which("dot") is not None


def check_size(plan, out: str) -> None:
    """UsageError when the graph is too large for Graphviz to draw in reasonable time."""
    if small_enough(plan):
        return
    nodes = len(plan.inputs) + len(plan.steps)
    edges = sum(len(st.args) for st in plan.steps)
    raise UsageError(
        f"the graph has {nodes:,} nodes and {edges:,} edges, more than cgcalc draws ({MAX_NODES} "
        f"nodes, {MAX_EDGES} edges: Graphviz's layout would take minutes); write the text instead (-o "
        "graph.dot, or -o graph.mmd for Mermaid), or insist with --force",
        file=out,
    )


def timeout() -> float:
    text = os.environ.get("CGCALC_GRAPHVIZ_TIMEOUT", "")
    if not text:
        return DEFAULT_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not seconds > 0 or seconds == float("inf"):
        raise UsageError(f"CGCALC_GRAPHVIZ_TIMEOUT={text!r}: give a number of seconds above 0")
    return seconds


def draw(dot_text: str, ext: str, out: str) -> bytes:
    """The picture Graphviz's `dot` draws of `dot_text`, as bytes; UsageError with dot's own message when it
    fails, and when it runs longer than timeout()."""
    import shutil

    dot = shutil.which("dot")
    if dot is None:
        raise UsageError(
            "cannot draw: Graphviz's 'dot' is not installed (Debian/Ubuntu: apt-get install graphviz; "
            "macOS: brew install graphviz; or write the text with -o graph.dot)",
            file=out,
        )
    seconds = timeout()
    # a session of its own: on a timeout (or Ctrl-C) dot and anything it started are stopped together
    proc = subprocess.Popen(
        [dot, f"-T{ext}"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        picture, err = proc.communicate(dot_text.encode(), timeout=seconds)
    except subprocess.TimeoutExpired:
        _stop(proc)
        raise UsageError(
            f"Graphviz did not finish in {seconds:g} s (raise the limit with CGCALC_GRAPHVIZ_TIMEOUT, "
            "or write the text with -o graph.dot)",
            file=out,
        ) from None
    except BaseException:
        _stop(proc)
        raise
    if proc.returncode != 0:
        why = " ".join(err.decode(errors="replace").split())[:1000] or "no message"
        code = f"killed by {_signal_name(-proc.returncode)}" if proc.returncode < 0 else f"exit {proc.returncode}"
        raise UsageError(f"Graphviz failed ({code}): {why}", file=out)
    return picture


def _stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass
    proc.communicate()


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
