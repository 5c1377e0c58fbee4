"""Helpers for the tests that run `cgcalc batch` as a real process and stop it with a signal: a run that cannot
finish before the signal (its rows come through a pipe the test holds open), waiting with a deadline, and the
processes and open files of a run, read from /proc (Linux)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

CGCALC = [sys.executable, "-m", "cgcalc"]
ROOT = Path(__file__).resolve().parent.parent
GRAPHS = ROOT / "graphs"

needs_proc = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="reads /proc (Linux)")


def apple_lines(n: int) -> bytes:
    return "".join(f"{i % 997 + 0.5},{i % 7 + 1},1.1\n" for i in range(n)).encode()


def wait_until(condition: Callable[[], object], seconds: float = 30, what: str = "the condition") -> None:
    """Poll `condition` until it is true; fail the test when `seconds` pass first."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {seconds} s")
        time.sleep(0.02)


def open_files(pid: int) -> list[str]:
    """What the process's file descriptors point to (paths, or 'pipe:[...]' and the like)."""
    out = []
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return []
    for name in names:
        try:
            out.append(os.readlink(f"/proc/{pid}/fd/{name}"))
        except OSError:
            pass
    return out


def holds_file_in(pid: int, directory: Path) -> bool:
    """Has the process a file open in `directory` (a temporary file, named or anonymous)?"""
    prefix = str(directory) + os.sep
    return any(f.startswith(prefix) for f in open_files(pid))


def alive(pid: int) -> bool:
    """Running (a zombie, waiting for its parent to read its exit status, is not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def children(pid: int) -> list[int]:
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                ppid = int(f.read().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            out.append(int(name))
    return out


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        for child in children(todo.pop()):
            found.append(child)
            todo.append(child)
    return found


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def workers(pid: int) -> list[int]:
    """The worker processes of a `cgcalc batch --jobs N` run: the children of its forkserver."""
    return [w for child in children(pid) if "forkserver" in cmdline(child) for w in children(child)]


class Run:
    """`cgcalc batch GRAPH - ARGS...` with its rows written to stdin by the test, which keeps stdin open: the run
    cannot finish until the test closes it (or stops the run)."""

    def __init__(
        self,
        args: list,
        rows: bytes,
        graph: Path = GRAPHS / "apple.yaml",
        env: dict | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.proc = subprocess.Popen(
            [*CGCALC, "batch", str(graph), "-", *map(str, args)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
        )
        self.proc.stdin.write(b"apple,apple_num,tax\n" + rows)
        self.proc.stdin.flush()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait_for_output_file(self, directory: Path) -> None:
        """Until the run has opened its temporary output in `directory`; it must still be running then."""
        wait_until(lambda: holds_file_in(self.pid, directory) or not self.running(), what="a temporary file")
        assert self.running(), self.proc.communicate()

    def wait_for_workers(self, n: int) -> list[int]:
        wait_until(lambda: len(workers(self.pid)) >= n or not self.running(), what=f"{n} worker processes")
        assert self.running(), self.proc.communicate()
        return workers(self.pid)

    def stop(self, sig: int) -> tuple[bytes, bytes]:
        """Send `sig`, then wait for the run to end: (stdout, stderr)."""
        self.proc.send_signal(sig)
        return self.proc.communicate(timeout=60)

    def kill(self) -> None:
        if self.running():
            self.proc.kill()
        self.proc.communicate(timeout=60)


@pytest.fixture(scope="module", autouse=True, params=["arrow", "python"])
def csv_path(request):
    """(autouse, imported by the batch tests) Every test of a module twice: with pyarrow reading and writing CSV (when installed), and without it."""
    if request.param == "arrow":
        pytest.importorskip("pyarrow")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CGCALC_ARROW", "1" if request.param == "arrow" else "0")
        yield request.param
