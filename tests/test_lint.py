"""The code stays as `ruff check` and `ruff format` want it (the project's config in pyproject.toml); ruff comes
with the test extra, so this runs in CI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args, "cgcalc", "tests"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module", autouse=True)
def _ruff_installed():
    if subprocess.run([sys.executable, "-m", "ruff", "--version"], capture_output=True).returncode != 0:
        pytest.skip("ruff is not installed (pip install '.[test]')")


def test_ruff_check_is_clean():
    r = ruff("check", "--no-cache")
    assert r.returncode == 0, r.stdout + r.stderr


def test_ruff_format_is_applied():
    r = ruff("format", "--check", "--no-cache")
    assert r.returncode == 0, r.stdout + r.stderr
