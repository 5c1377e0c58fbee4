"""Golden text of the `run` table, rendered on a fixed-width, colourless console and compared exactly (as rich's
own tests do). Each golden file was generated once and checked by eye against the book's numbers.

To rewrite the golden files after a deliberate change of layout: CGCALC_UPDATE_GOLDEN=1 pytest tests/test_golden.py,
then read the diff before committing it.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

import cgcalc
from cgcalc.cli.app import app
from cgcalc.views.render import result_table

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("CGCALC_UPDATE_GOLDEN", "") not in ("", "0")


def render(renderable) -> str:
    console = Console(
        file=io.StringIO(),
        record=True,
        width=100,
        color_system=None,
        force_terminal=False,
        highlight=False,
        soft_wrap=False,
    )
    console.print(renderable)
    return console.export_text()


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.write_text(text, encoding="utf-8", newline="\n")
        pytest.skip(f"rewrote {path}")
    assert path.exists(), f"{path} is missing: run with CGCALC_UPDATE_GOLDEN=1 to create it, then check it by eye"
    expected = path.read_text(encoding="utf-8")
    assert text == expected


@pytest.mark.parametrize(
    ("graph", "golden"),
    [("apple.yaml", "run_apple.txt"), ("apple_orange.yaml", "run_apple_orange.txt")],
)
def test_run_table(graph, golden):
    result = cgcalc.load(ROOT / "graphs" / graph).run()
    check_golden(golden, render(result_table(result)))


def test_narrow_run_table_with_formulas_labels_each_rows_own():
    """A terminal of 60 columns stacks each row; `--formulas` labels each row's formula with its own name
    (∂price/∂apple = apple_num × tax, the issue's example), where the wide table's column says ∂price/∂name."""
    from cgcalc.views.formulas import formulas

    g = cgcalc.load(ROOT / "graphs" / "apple.yaml")
    text = render(result_table(g.run(), formulas=formulas(g.plan, "price"), width=60))
    check_golden("run_apple_formulas_60.txt", text)
    assert "  ∂price/∂apple =        apple_num × tax\n" in text
    assert "  ∂price/∂tax =          apple × apple_num\n" in text
    assert "∂name" not in text and max(map(len, text.splitlines())) <= 60


@pytest.mark.parametrize(
    ("graph", "golden"),
    [("apple.yaml", "run_apple.txt"), ("apple_orange.yaml", "run_apple_orange.txt")],
)
def test_cli_prints_the_same_table(graph, golden):
    # piped (not a terminal), `cgcalc run` prints the table at its natural width: the golden text exactly
    result = CliRunner(env={"CGCALC_DEBUG": None}).invoke(app, ["run", str(ROOT / "graphs" / graph)])
    assert result.exit_code == 0 and result.stderr == ""
    assert result.stdout == (GOLDEN / golden).read_text(encoding="utf-8")


def rows_of(text: str) -> dict[str, list[str]]:
    """name -> [value, grad] for each row of a table of scalars (the output mark dropped)."""
    rows = {}
    for line in text.splitlines():
        words = line.removesuffix("◀ output").split()
        if len(words) >= 4 and words[1] in ("input", "mul", "add"):
            rows[words[0]] = words[-2:]
    return rows


def test_golden_files_hold_the_books_numbers():
    # a guard against rewriting a golden file with wrong numbers: the book's values, derived by hand
    assert rows_of((GOLDEN / "run_apple.txt").read_text(encoding="utf-8")) == {
        "apple": ["100", "2.2"],
        "apple_num": ["2", "110"],
        "tax": ["1.1", "200"],
        "apple_price": ["200", "1.1"],
        "price": ["220", "1"],
    }
    assert rows_of((GOLDEN / "run_apple_orange.txt").read_text(encoding="utf-8")) == {
        "apple": ["100", "2.2"],
        "apple_num": ["2", "110"],
        "orange": ["150", "3.3"],
        "orange_num": ["3", "165"],
        "tax": ["1.1", "650"],
        "apple_price": ["200", "1.1"],
        "orange_price": ["450", "1.1"],
        "all_price": ["650", "1.1"],
        "price": ["715", "1"],
    }
