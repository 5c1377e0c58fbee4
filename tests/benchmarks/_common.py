"""Shared helpers of the benchmark scripts: interleaved medians, child processes with their peak RSS,
and the report table (`target | ours | baseline | ratio | limit | PASS/FAIL`)."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GRAPHS = ROOT / "graphs"
_BIN = ROOT / ".venv" / "bin"
PYTHON = str(_BIN / "python") if (_BIN / "python").exists() else sys.executable
CGCALC = str(_BIN / "cgcalc") if (_BIN / "cgcalc").exists() else "cgcalc"


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def interleaved(
    ours: Callable[[], float], base: Callable[[], float], runs: int, warmup: int = 0
) -> tuple[list[float], list[float]]:
    """Alternate the two measurements (ours first on even runs, baseline first on odd ones) so that a
    drift of the machine hits both alike. Each callable returns its own measurement (seconds, bytes)."""
    for _ in range(warmup):
        ours()
        base()
    a, b = [], []
    for i in range(runs):
        if i % 2 == 0:
            a.append(ours())
            b.append(base())
        else:
            b.append(base())
            a.append(ours())
    return a, b


def timed(f: Callable[[], object]) -> Callable[[], float]:
    def run() -> float:
        t0 = time.perf_counter()
        f()
        return time.perf_counter() - t0

    return run


@dataclass
class Child:
    seconds: float  # wall time, from spawn to exit
    maxrss: int  # peak resident set size of that process alone, bytes
    code: int
    stdout: str
    stderr: str


# A tiny middle process that starts the command, waits for it with os.wait4 and writes the command's own
# wall time and ru_maxrss to a file. Why not wait4 from here: on Linux a child's ru_maxrss keeps the high
# water mark of the process it was forked (or vforked) from, across exec; a benchmark process holding
# a million rows would then show up as the child's peak. The middle process is small (~10 MB), far below
# anything measured, so it cannot mask the figure.
_WRAPPER = """\
import json, os, subprocess, sys, time
t0 = time.perf_counter()
p = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(p.pid, 0)
seconds = time.perf_counter() - t0
p.returncode = 0
with open(sys.argv[1], "w") as f:
    json.dump({"seconds": seconds, "maxrss": usage.ru_maxrss * 1024,
               "code": os.waitstatus_to_exitcode(status)}, f)
"""


def run_child(
    cmd: list[str], cwd: str | os.PathLike | None = None, env: dict | None = None, capture_stdout: bool = False
) -> Child:
    """Run a command (stdin and, unless captured, stdout from/to /dev/null); its wall time and its own
    peak RSS, measured by a fresh middle process."""
    import json

    with (
        tempfile.TemporaryFile() as err,
        tempfile.TemporaryFile() as out,
        tempfile.NamedTemporaryFile(suffix=".json") as res,
    ):
        p = subprocess.run(
            [sys.executable, "-I", "-S", "-c", _WRAPPER, res.name, *map(str, cmd)],
            stdin=subprocess.DEVNULL,
            stdout=out if capture_stdout else subprocess.DEVNULL,
            stderr=err,
            cwd=cwd,
            env=env,
        )
        err.seek(0)
        out.seek(0)
        stderr = err.read().decode(errors="replace")
        try:
            r = json.loads(open(res.name).read())
        except ValueError:
            raise RuntimeError(f"the measuring wrapper failed (exit {p.returncode}): {stderr[-500:]}") from None
        return Child(r["seconds"], r["maxrss"], r["code"], out.read().decode(errors="replace"), stderr)


def fmt_s(x: float) -> str:
    if x >= 1:
        return f"{x:.2f} s"
    if x >= 1e-3:
        return f"{x * 1e3:.1f} ms"
    return f"{x * 1e6:.1f} us"


def fmt_bytes(x: float) -> str:
    if abs(x) >= 1 << 20:
        return f"{x / (1 << 20):.1f} MiB"
    if abs(x) >= 1 << 10:
        return f"{x / (1 << 10):.1f} KiB"
    return f"{x:.0f} B"


class Report:
    """Prints each target as soon as it is measured, in fixed-width columns."""

    WIDTHS = (58, 14, 14, 8, 14, 9)

    def __init__(self, title: str) -> None:
        self.rows: list[tuple[str, ...]] = []
        self.notes: list[str] = []
        print(f"== {title}", flush=True)
        self._line(("target", "ours", "baseline", "ratio", "limit", "PASS/FAIL"))
        print("-+-".join("-" * w for w in self.WIDTHS), flush=True)

    def _line(self, cells: tuple[str, ...]) -> None:
        print(" | ".join(c.ljust(w) for c, w in zip(cells, self.WIDTHS)).rstrip(), flush=True)

    def row(self, target: str, ours: str, base: str, ratio: float | str | None, limit: str, ok: bool | None) -> None:
        status = "info" if ok is None else ("PASS" if ok else "FAIL")
        shown = "-" if ratio is None else ratio if isinstance(ratio, str) else f"{ratio:.2f}x"
        cells = (target, ours, base, shown, limit, status)
        self.rows.append(cells)
        self._line(cells)

    def info(self, target: str, ours: list[float], base: list[float]) -> None:
        """A row for information (no target): the medians of two interleaved timings and their ratio."""
        self.row(target, fmt_s(median(ours)), fmt_s(median(base)), median(ours) / median(base), "-", None)

    def error(self, target: str, message: str) -> None:
        cells = (target, "ERROR", "-", "-", "-", "FAIL")
        self.rows.append(cells)
        self._line(cells)
        self.note(f"{target}: {message}")

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"   # {text}", flush=True)

    def finish(self) -> None:
        failed = sum(r[5] == "FAIL" for r in self.rows)
        passed = sum(r[5] == "PASS" for r in self.rows)
        print("-+-".join("-" * w for w in self.WIDTHS))
        print(f"{passed} PASS, {failed} FAIL (this script reports; it always exits 0)", flush=True)


@contextmanager
def work_dir(rep: Report, prefix: str, keep: bool) -> Iterator[Path]:
    """A temporary directory for a benchmark's files, removed at the end (with keep: kept, and said so)."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield tmp
    finally:
        if keep:
            rep.note(f"temp dir kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def attempt(rep: Report, name: str, f: Callable, *args):
    """f(*args), or None with the error in the report: a broken target is reported, and the others still run."""
    try:
        return f(*args)
    except Exception as e:
        rep.error(name, f"{type(e).__name__}: {e}")
        return None
