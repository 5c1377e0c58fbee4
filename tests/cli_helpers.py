"""Helpers shared by the CLI tests: run a command in-process, write a graph, read the one error line, and stop a
command that hangs."""

from __future__ import annotations

import signal
import textwrap
import threading
from contextlib import contextmanager
from pathlib import Path

from typer.testing import CliRunner

from cgcalc.cli.app import app

# the shell running the tests may have set these; each test starts from the defaults
CLEAN_ENV = {"CGCALC_DEBUG": None, "CGCALC_MAX_ELEMENTS": None, "CGCALC_MAX_DEPTH": None, "CGCALC_MAX_FILE_BYTES": None}


def cli(*args, env: dict | None = None):
    return CliRunner(env=CLEAN_ENV).invoke(app, [str(a) for a in args], env=env)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def one_error_line(result) -> str:
    """The single stderr line of a failed command, after checking exit code 2, empty stdout, no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.endswith("\n")
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def assert_error(result, where: str, *fragments: str) -> str:
    """`error: {where}: message` with every fragment in the message; returns the message."""
    line = one_error_line(result)
    prefix = f"error: {where}: "
    assert line.startswith(prefix), f"expected {prefix!r}..., got {line!r}"
    message = line[len(prefix) :]
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


class Hang(BaseException):
    """Raised by time_limit's alarm: a BaseException, so that neither the CLI nor CliRunner swallows it."""


@contextmanager
def time_limit(seconds: float):
    """Raise Hang if the block uses more than `seconds` of CPU time, or waits 10x that on the clock (blocked on a
    read, say). CPU time, so that a machine busy with other work does not make a fast command look hung (main
    thread only; elsewhere it is not timed)."""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(what: str):
        def handler(signum, frame):
            raise Hang(f"still running after {what}")

        return handler

    old_prof = signal.signal(signal.SIGPROF, expire(f"{seconds} s of CPU time"))
    old_alarm = signal.signal(signal.SIGALRM, expire(f"{10 * seconds} s on the clock"))
    signal.setitimer(signal.ITIMER_PROF, seconds)
    signal.setitimer(signal.ITIMER_REAL, 10 * seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGPROF, old_prof)
        signal.signal(signal.SIGALRM, old_alarm)
