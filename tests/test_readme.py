"""The README, checked: its first set-up command through a real shell, in a fresh virtual environment (slow: it
installs cgcalc and its dependencies from the package index), and its example table against the real output."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cgcalc.cli.app import app

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def setup_command() -> str:
    """The first ```sh block under '## Set up'."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Set up") :]
    match = re.search(r"```sh\n(.*?)\n```", section, re.DOTALL)
    assert match, "no ```sh block under '## Set up'"
    return match.group(1).strip()


def test_setup_command_installs_and_runs_the_apple_graph():
    cmd = setup_command()
    assert "venv" in cmd and "pip install" in cmd and "cgcalc run graphs/apple.yaml" in cmd


@pytest.mark.slow
def test_setup_command_in_a_fresh_checkout(tmp_path):
    """Run the README's command exactly, in a copy of the checkout (so that the build leaves nothing behind)."""
    checkout = tmp_path / "cgcalc"
    shutil.copytree(
        ROOT,
        checkout,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis"
        ),
    )
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    # `python3` is the interpreter running these tests (a venv made from a venv is based on its base Python)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.update(NO_COLOR="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.pop("CGCALC_DEBUG", None)
    proc = subprocess.run(
        ["bash", "-c", setup_command()], cwd=checkout, env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    rows = {}
    for line in proc.stdout.splitlines():
        words = line.removesuffix("◀ output").split()
        if len(words) >= 4 and words[1] in ("input", "mul"):
            rows[words[0]] = words[-2:]
    # the book: 2 apples at 100 with 10% tax cost 220; d price/d apple = 2.2, d apple_num = 110, d tax = 200
    assert rows == {
        "apple": ["100", "2.2"],
        "apple_num": ["2", "110"],
        "tax": ["1.1", "200"],
        "apple_price": ["200", "1.1"],
        "price": ["220", "1"],
    }
    # a real install into the new environment, not the editable one these tests run from
    where = subprocess.run(
        [str(checkout / ".venv" / "bin" / "python"), "-c", "import cgcalc; print(cgcalc.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).resolve().is_relative_to((checkout / ".venv").resolve())


def _examples() -> list[tuple[str, list[tuple[str, str]]]]:
    """Every ``` block of the README that shows `$ ` commands: (its first command, [(command, shown output)])."""
    text = README.read_text(encoding="utf-8")
    out = []
    for block in re.findall(r"```\n(\$ .*?)```", text, re.DOTALL):
        steps: list[tuple[str, list[str]]] = []
        for line in block.splitlines():
            if line.startswith("$ "):
                steps.append((line[2:], []))
            else:
                steps[-1][1].append(line)
        out.append((steps[0][0], [(c, "\n".join(lines)) for c, lines in steps]))
    return out


def _lines(s: str) -> list[str]:
    return "\n".join(line.rstrip() for line in s.splitlines()).strip("\n").splitlines()


@pytest.mark.parametrize("first, steps", _examples(), ids=[e[0] for e in _examples()])
def test_every_readme_example_is_the_real_output(first, steps, tmp_path, monkeypatch):
    """Each `$ cgcalc ...` example, pipes between cgcalc commands included, run in a folder holding the graphs
    (and any file a `$ cat FILE` before it shows), prints exactly what the README shows; a `$ cat FILE` after a
    command that wrote FILE shows exactly what it wrote."""
    import shlex

    shutil.copytree(ROOT / "graphs", tmp_path / "graphs")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner(env={"CGCALC_DEBUG": None, "COLUMNS": "100"})
    for command, shown in steps:
        words = shlex.split(command)
        if words[0] == "cat":
            path = tmp_path / words[1]
            if path.exists():  # a file an earlier command wrote (or a graph): shown as it is
                assert _lines(shown) == _lines(path.read_text(encoding="utf-8")), command
            else:  # a file the example shows: made, so that the next command can read it
                path.write_text(shown + "\n", encoding="utf-8")
            continue
        stdin = None
        for part in " ".join(shlex.quote(w) for w in words).split(" '|' "):
            args = shlex.split(part)
            assert args[0] == "cgcalc", f"a README example runs {args[0]}: only cgcalc is checked here"
            result = runner.invoke(app, args[1:], input=stdin)
            assert result.exit_code == 0, (command, result.stdout, result.stderr)
            stdin = result.stdout
        assert _lines(shown) == _lines(stdin), command
