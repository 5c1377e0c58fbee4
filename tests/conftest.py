"""Shared test set-up: no colour, a fixed width, the example graphs' directory, and a check that the suite
leaves the work tree as it found it (every test writes in a temporary folder)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GRAPHS = ROOT / "graphs"

os.environ["NO_COLOR"] = "1"
os.environ.pop("FORCE_COLOR", None)
os.environ["COLUMNS"] = "100"


@pytest.fixture
def graphs_dir() -> Path:
    return GRAPHS


def git_status(root: Path = ROOT) -> str | None:
    """`git status --porcelain` of the checkout `root` is the top of, untracked files included; None when it is
    not the top of a git checkout (an unpacked sdist, say) or git is missing."""
    if shutil.which("git") is None:
        return None

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=60, check=False)

    try:
        top = git("rev-parse", "--show-toplevel")
        if top.returncode != 0 or Path(top.stdout.strip()).resolve() != root.resolve():
            return None
        status = git("status", "--porcelain", "--untracked-files=all")
    except (OSError, subprocess.TimeoutExpired):
        return None
    return status.stdout if status.returncode == 0 else None


_STATUS_KEY = pytest.StashKey[str | None]()


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_STATUS_KEY] = git_status()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when a test created, changed or deleted a file of the checkout (as a fuzzed `-o --set` once
    wrote a file named `--set` into the project root)."""
    before = session.config.stash.get(_STATUS_KEY, None)
    if before is None:
        return
    after = git_status()
    if after is None or after == before:
        return
    changed = sorted(set(after.splitlines()) ^ set(before.splitlines()))
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"error: the tests changed the work tree (git status): {changed}", red=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
