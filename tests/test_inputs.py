"""What cgcalc reads: CGCALC_MAX_FILE_BYTES holds for every kind of file (a device that never ends, a FIFO, a
rows file with one endless line), and GRAPH or ROWS `-` is stdin. The endless inputs run in a subprocess whose
memory is capped, so that a reader that does not stop fails its test instead of eating the machine."""

from __future__ import annotations

import json
import os
import resource
import stat
import subprocess
import threading
from pathlib import Path

import pytest
import yaml
from cli_helpers import CLEAN_ENV, cli, one_error_line
from proc_helpers import CGCALC, GRAPHS
from typer.testing import CliRunner

from cgcalc.cli.app import app

APPLE = GRAPHS / "apple.yaml"
NEURON = GRAPHS / "neuron.yaml"
LIMIT = {"CGCALC_MAX_FILE_BYTES": "1000"}
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="making device nodes needs root")


def capped(*args, env: dict | None = None, stdin=None) -> subprocess.CompletedProcess:
    """cgcalc ARGS... with at most 2 GiB of memory and a minute of time."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    return subprocess.run(
        [*CGCALC, *map(str, args)],
        env={**os.environ, **(env or {})},
        stdin=stdin,
        capture_output=True,
        preexec_fn=cap,
        timeout=60,
        check=False,
    )


def error(proc: subprocess.CompletedProcess) -> str:
    """The one error line of a run that failed with exit 2."""
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def endless_fifo(path: Path, head: bytes, filler: bytes) -> threading.Thread:
    """A FIFO at `path` that gives `head`, then `filler` again and again until its reader goes away."""
    os.mkfifo(path)

    def feed() -> None:
        try:
            with open(path, "wb") as f:
                f.write(head)
                while True:
                    f.write(filler * 4096)
        except BrokenPipeError:
            pass

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    return writer


def zero_device(path: Path) -> Path:
    os.mknod(path, 0o444 | stat.S_IFCHR, os.stat("/dev/zero").st_rdev)
    return path


# --- CGCALC_MAX_FILE_BYTES, for every kind of file -----------------------------------------------------------


@root_only
def test_a_graph_that_never_ends_stops_at_the_limit(tmp_path):
    zero = zero_device(tmp_path / "zero")
    assert error(capped("run", zero, env=LIMIT)) == (
        f"error: {zero}: file is over the limit of 1,000 bytes (stopped reading there; raise it with "
        "CGCALC_MAX_FILE_BYTES)"
    )


def test_a_graph_from_an_endless_fifo_stops_at_the_limit(tmp_path):
    fifo = tmp_path / "graph.yaml"
    writer = endless_fifo(fifo, b"inputs:\n  x: 1\n# ", b"x")
    assert error(capped("validate", fifo, env=LIMIT)).startswith(f"error: {fifo}: file is over the limit of 1,000")
    writer.join(timeout=30)


def test_a_graph_on_stdin_over_the_limit_is_refused(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text(APPLE.read_text() + "#" * 2000 + "\n")
    with open(big, "rb") as f:
        line = error(capped("run", "-", env=LIMIT, stdin=f))
    assert line.startswith("error: <stdin>: file is")


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_a_rows_fifo_with_an_endless_line_stops_at_the_limit(tmp_path, kind):
    fifo = tmp_path / f"rows.{kind}"
    head = b"apple,apple_num\n1,2\n" if kind == "csv" else b'{"apple": 1}\n{"apple": ['
    writer = endless_fifo(fifo, head, b"1" if kind == "csv" else b"1, ")
    assert error(capped("batch", APPLE, fifo, env=LIMIT)) == (
        f"error: {fifo}:3: the line is over the limit of 1,000 bytes (a row is read whole; raise the limit with "
        "CGCALC_MAX_FILE_BYTES)"
        if kind == "csv"
        else f"error: {fifo}:2: the line is over the limit of 1,000 bytes (a row is read whole; raise the limit with "
        "CGCALC_MAX_FILE_BYTES)"
    )
    writer.join(timeout=30)


@root_only
def test_rows_from_a_device_that_never_ends_stop_at_the_limit(tmp_path):
    zero = zero_device(tmp_path / "zero")
    assert error(capped("batch", APPLE, zero, env=LIMIT)).startswith(f"error: {zero}:1: the line is over the limit")


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_one_long_line_among_short_ones_is_found_exactly(tmp_path, jobs):
    lines = ["apple,apple_num"] + [f"{i},2" for i in range(50)]
    lines[30] = "1," + "2" * 1200  # line 31: 1,202 bytes, in the middle of a block read at once
    rows = tmp_path / "rows.csv"
    rows.write_text("\n".join(lines) + "\n")
    line = one_error_line(cli("batch", APPLE, rows, "--jobs", jobs, env=LIMIT))
    assert line.startswith(f"error: {rows}:31: the line is over the limit of 1,000 bytes")
    lines[30] = "1," + "2" * 990  # 992 bytes: under the limit (the line end does not count)
    rows.write_text("\n".join(lines) + "\n")
    assert cli("batch", APPLE, rows, "--jobs", jobs, env=LIMIT).exit_code == 0


def test_lines_ended_by_carriage_returns_are_lines(tmp_path):
    rows = tmp_path / "rows.csv"
    rows.write_bytes(b"apple,apple_num\r" + b"".join(b"%d,2\r" % i for i in range(400)))  # 2.8 kB, short lines
    r = cli("batch", APPLE, rows, env=LIMIT)
    assert r.exit_code == 0, r.stderr
    assert len(r.stdout.splitlines()) == 401


# --- GRAPH and ROWS from stdin -------------------------------------------------------------------------------


def stdin_cli(args: list, data: bytes):
    return CliRunner(env=CLEAN_ENV).invoke(app, [str(a) for a in args], input=data)


@pytest.mark.parametrize(
    "command", [["run"], ["run", "-f", "json"], ["check"], ["trace"], ["export"], ["export", "--format", "mermaid"]]
)
@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_every_command_reads_the_graph_from_stdin(tmp_path, command, suffix):
    g = tmp_path / f"g{suffix}"
    g.write_text(json.dumps(yaml.safe_load(APPLE.read_text())) if suffix == ".json" else APPLE.read_text())
    r = stdin_cli([command[0], "-", *command[1:]], g.read_bytes())
    assert r.exit_code == 0, r.stderr
    assert r.stdout == cli(*command[:1], g, *command[1:]).stdout


def test_validate_and_batch_read_the_graph_from_stdin(tmp_path):
    rows = tmp_path / "rows.csv"
    rows.write_text("apple,apple_num\n100,2\n")
    v = stdin_cli(["validate", "-"], APPLE.read_bytes())
    assert (v.exit_code, v.stdout) == (0, "ok: - (3 inputs, 2 nodes)\n")
    b = stdin_cli(["batch", "-", rows], APPLE.read_bytes())
    assert b.exit_code == 0 and b.stdout == cli("batch", APPLE, rows).stdout


def test_a_graph_from_stdin_is_named_stdin_and_its_errors_say_stdin():
    r = stdin_cli(["run", "-", "-f", "json"], b'{"inputs": {"x": 2}, "nodes": {"y": "x * x"}}')
    assert r.exit_code == 0 and json.loads(r.stdout)["graph"] == "stdin"
    line = one_error_line(stdin_cli(["run", "-"], b"inputs:\n  x: 1\nnodes:\n  y: {op: nope, in: [x]}\n"))
    assert line.startswith("error: <stdin>:4:")


def test_batch_reads_json_lines_from_stdin(tmp_path):
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"x": [1, 2, 3]}\n{"x": [0.5, 0.5, 0.5], "b": 1}\n')
    r = stdin_cli(["batch", NEURON, "-", "--rows-format", "jsonl", "--out-format", "jsonl"], rows.read_bytes())
    assert r.exit_code == 0, r.stderr
    assert r.stdout == cli("batch", NEURON, rows, "--out-format", "jsonl").stdout
    assert len(r.stdout.splitlines()) == 2


def test_graph_and_rows_both_from_stdin_is_a_usage_error():
    line = one_error_line(cli("batch", "-", "-"))
    assert line == "error: the graph and the rows cannot both come from stdin (-): give one of them as a file"
    line = one_error_line(cli("validate", "-", APPLE, "-"))
    assert line == "error: stdin (-) can be read only once: give the other graphs as files"


def test_the_dask_engine_refuses_a_rows_line_over_the_limit(tmp_path):
    pytest.importorskip("distributed")
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_text("apple,apple_num\n1,2\n3,4\n")
    (data / "b.csv").write_text("apple,apple_num\n1,2\n3," + "4" * 1200 + "\n")
    line = one_error_line(
        cli("batch", APPLE, data, "--engine", "dask", "--workers", "1", "-o", tmp_path / "out", env=LIMIT)
    )
    assert line.startswith(f"error: {data / 'b.csv'}:3: the line is over the limit of 1,000 bytes")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
