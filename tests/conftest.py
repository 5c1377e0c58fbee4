"""Shared test set-up: no colour, a fixed width, and the example graphs' directory."""

from __future__ import annotations

import os
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
