"""`trace --step`: the trace one numbered step at a time, in a terminal. Enter (or space) shows the next step, b
the one before again, q quits; Ctrl-D shows the rest at once. On a terminal a key needs no Enter and is not
echoed, so the steps stay single-spaced (the prompt is erased before the next step is printed)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

from rich.text import Text

PROMPT = "  (Enter: next step · b: back · q: quit · Ctrl-D: the rest)"
NEXT, BACK, QUIT, REST = "next", "back", "quit", "rest"


def interactive() -> bool:
    """Step only when a person is at the terminal: stdin and stdout both terminals."""
    return sys.stdin.isatty() and sys.stdout.isatty()


def _keys() -> Iterator[str]:
    """What the user asks for, one key at a time: on a terminal without Enter (cbreak mode, no echo), else a line
    at a time (a pipe, a test's scripted input)."""
    try:
        import termios
        import tty
    except ImportError:  # Windows
        yield from _lines()
        return
    try:
        fd = sys.stdin.fileno()
        old = termios.tcgetattr(fd)
    except (OSError, ValueError, AttributeError, termios.error):  # not a terminal: a pipe, a test's input
        yield from _lines()
        return
    try:
        tty.setcbreak(fd)
        while True:
            key = os.read(fd, 1).decode(errors="replace")
            if key in ("", "\x04"):
                yield REST
            elif key in ("\r", "\n", " "):
                yield NEXT
            elif key in ("b", "B"):
                yield BACK
            elif key in ("q", "Q"):
                yield QUIT
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)


def _lines() -> Iterator[str]:
    while True:
        line = sys.stdin.readline()
        if not line:
            yield REST
            continue
        word = line.strip().lower()
        yield {"": NEXT, "b": BACK, "q": QUIT}.get(word[:1], NEXT)


def numbered(lines: list, k: int, width: int) -> list:
    """A step's lines with its number in front of the first (which is indented by two spaces)."""
    first = lines[0]
    head = Text(f"  {k:>{width}}. ")
    head.append_text(first[2:] if isinstance(first, Text) and first.plain.startswith("  ") else first)
    return [head, *lines[1:]]


def step_through(console, steps: list[tuple[list, list]]) -> None:
    """Print the steps (from render_trace.trace_steps) one at a time as the keys ask; the last entry (the gradients of
    the inputs) comes after the last step."""
    *body, (tail, _) = steps
    width = len(str(len(body)))
    shown = -1  # the furthest step shown so far: a step's heading is printed the first time only

    def show(i: int) -> None:
        nonlocal shown
        heading, lines = body[i]
        for line in (heading if i > shown else []) + numbered(lines, i + 1, width):
            console.print(line)
        shown = max(shown, i)

    def rest(i: int) -> None:
        for j in range(i, len(body)):
            show(j)
        for line in tail:
            console.print(line)

    if not body:
        rest(0)
        return
    i = 0
    show(0)
    keys = _keys()
    try:
        while True:
            console.print(Text(PROMPT, style="dim"), end="")
            console.file.flush()
            key = next(keys)
            console.file.write("\r\x1b[2K")  # the prompt erased: the next step follows the last one directly
            if key == QUIT:
                return
            if key == REST:
                rest(i + 1)
                return
            if key == BACK:
                if i > 0:
                    i -= 1
                    show(i)
                continue
            i += 1
            if i == len(body):
                rest(i)
                return
            show(i)
    finally:
        keys.close()
