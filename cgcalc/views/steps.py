"""The trace as text and as HTML (a notebook's step list): the lines `cgcalc trace` prints."""

from __future__ import annotations

from html import escape

from .render_trace import trace_steps


def trace_text(t, precision: int = 6) -> str:
    """The trace as `cgcalc trace` prints it."""
    return "\n".join(line.plain for heading, lines in trace_steps(t, precision) for line in heading + lines)


def trace_html(t, precision: int = 6) -> str:
    """The trace's steps, numbered, as HTML (the same text as `cgcalc trace`)."""
    out = []
    k = 0
    for heading, lines in trace_steps(t, precision):
        for line in heading:
            text = line.plain
            if text.strip():
                tag = "b" if not text.startswith("  ") else "span"
                out.append(f"<{tag}>{escape(text)}</{tag}>")
        if lines:
            k += 1
            first, rest = lines[0].plain, [line.plain for line in lines[1:]]
            out.append(escape(f"  {k:>2}. {first[2:]}"))
            out += [escape(line) for line in rest]
    return '<pre class="cgcalc-trace">' + "\n".join(out) + "</pre>"
