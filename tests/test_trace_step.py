"""`trace --step` with a scripted stdin (CliRunner input) and a terminal pretended (stepper.interactive patched):
numbered, single-spaced steps; Enter steps, b goes back, q quits, end of input shows the rest."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import CLEAN_ENV
from typer.testing import CliRunner

from cgcalc.cli import stepper
from cgcalc.cli.app import app


def cli(*args, input: str | None = None):
    return CliRunner(env=CLEAN_ENV).invoke(app, [str(a) for a in args], input=input)


APPLE = Path(__file__).resolve().parent.parent / "graphs" / "apple.yaml"
ERASE = "\r\x1b[2K"


@pytest.fixture
def at_a_terminal(monkeypatch):
    monkeypatch.setattr(stepper, "interactive", lambda: True)


def stepped(keys: str) -> list[str]:
    r = cli("trace", APPLE, "--step", input=keys)
    assert r.exit_code == 0 and r.stderr == "", r.stderr
    assert r.stdout.count(stepper.PROMPT) == r.stdout.count(ERASE)  # every prompt is erased once answered
    return r.stdout.replace(stepper.PROMPT, "").replace(ERASE, "").split("\n")


PLAIN = cli("trace", APPLE).stdout.splitlines()
STEP1 = "  1. apple_price = mul(apple=100, apple_num=2) = 200"
STEP2 = "  2. price       = mul(apple_price=200, tax=1.1) = 220"
STEP3 = "  3. price (mul)   upstream ∂price = 1"
STEP4 = "  4. apple_price (mul)   upstream ∂apple_price = 1.1"


def test_enter_steps_through_every_numbered_step_single_spaced(at_a_terminal):
    lines = stepped("\n" * 10)
    numbered = [PLAIN[0], STEP1, STEP2, "", PLAIN[4], STEP3, *PLAIN[6:8], STEP4, *PLAIN[9:]]
    assert lines == numbered + [""]
    assert "" not in lines[1:3]  # no blank line between steps (a blank line only before each section)


def test_q_quits(at_a_terminal):
    assert stepped("\nq\n") == [PLAIN[0], STEP1, STEP2, ""]
    assert stepped("q\n") == [PLAIN[0], STEP1, ""]


def test_b_goes_back(at_a_terminal):
    lines = stepped("\n\nb\nb\nq\n")
    # 1, 2, 3 (with its section's title), back to 2, back to 1, quit
    assert [line for line in lines if line.startswith("  ") and line[2].isdigit()] == [
        STEP1,
        STEP2,
        STEP3,
        STEP2,
        STEP1,
    ]
    assert lines.count(PLAIN[4]) == 1  # a section's title is shown once
    assert stepped("b\nq\n") == [PLAIN[0], STEP1, ""]  # nothing before the first step


def test_end_of_input_shows_the_rest_at_once(at_a_terminal):
    lines = stepped("\n")
    assert lines[:3] == [PLAIN[0], STEP1, STEP2]
    assert lines[-2] == "  ∂tax = 200" and STEP4 in lines


def test_without_a_terminal_it_is_the_plain_trace():
    r = cli("trace", APPLE, "--step", input="q\n")
    assert r.exit_code == 0 and r.stdout.splitlines() == PLAIN
