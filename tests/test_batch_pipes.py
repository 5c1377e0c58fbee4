"""Issue 17, `cgcalc batch` in a pipe: rows streamed to stdout as they are computed (`| head -1` ends the run at
once, exit 141, no traceback), files still all-or-nothing, and the bad rows: `--bad-rows FILE` (as read, with the
line and the error), found in a block cut into pieces as the whole block would find them."""

from __future__ import annotations

import csv
import io
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from proc_helpers import Run, apple_lines, needs_proc
from typer.testing import CliRunner

from cgcalc.cli.app import app
from cgcalc.errors import RowsError
from cgcalc.io import rows as rows_module
from cgcalc.io.rows import CsvSpec, parse_csv

ROOT = Path(__file__).resolve().parent.parent
GRAPHS = ROOT / "graphs"
APPLE = GRAPHS / "apple.yaml"
CGCALC = [sys.executable, "-m", "cgcalc"]
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def cli(*args, input: str | None = None, code: int = 0, env: dict | None = None):
    r = CliRunner(env={"CGCALC_DEBUG": None}).invoke(app, [str(a) for a in args], input=input, env=env)
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    assert r.exit_code == code, f"exit {r.exit_code}, stderr: {r.stderr!r}, stdout: {r.stdout[:300]!r}"
    return r


def env(**extra) -> dict:
    e = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), **extra}
    e.pop("CGCALC_DEBUG", None)
    return e


ENDLESS = "import itertools\nprint('apple,apple_num,tax', flush=True)\nfor i in itertools.count():\n    print(f'{i % 97 + 0.5},{i % 7 + 1},1.1')\n"  # fmt: skip


def shell(script: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env(), timeout=timeout)


# --- streaming to a pipe ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("jobs", ["1", "2"])
@pytest.mark.parametrize("out", [[], ["-o", "-"], ["--out-format", "jsonl"]])
def test_head_1_ends_an_endless_run_at_once_exit_141_and_no_traceback(tmp_path, jobs, out):
    """The rows never end: only a run that writes its first rows at once, and stops when its reader goes away,
    lets this pipeline finish (the timeout would fail it)."""
    gen = tmp_path / "endless.py"
    gen.write_text(ENDLESS)
    batch = " ".join(shlex.quote(a) for a in [*CGCALC, "batch", str(APPLE), "-", "--jobs", jobs, *out])
    err = tmp_path / "stderr.txt"
    r = shell(f"{sys.executable} {gen} | {batch} 2>{err} | head -1; echo ${{PIPESTATUS[1]}}")
    first, code = r.stdout.splitlines()
    if out == ["--out-format", "jsonl"]:
        assert json.loads(first) == {
            "apple": 0.5,
            "apple_num": 1.0,
            "tax": 1.1,
            "price": 0.55,
            "dprice/dapple": 1.1,
            "dprice/dapple_num": 0.55,
            "dprice/dtax": 0.5,
        }
    else:
        assert first == "apple,apple_num,tax,price,dprice/dapple,dprice/dapple_num,dprice/dtax"
    assert code == "141"  # as if killed by SIGPIPE
    assert err.read_text() == ""  # quietly: no message, no traceback


def test_head_1_of_a_large_file_with_worker_processes(tmp_path):
    src = tmp_path / "rows.csv"
    src.write_bytes(b"apple,apple_num,tax\n" + apple_lines(400_000))  # over 8 MB: worker processes
    batch = " ".join(shlex.quote(a) for a in [*CGCALC, "batch", str(APPLE), str(src), "--verbose"])
    r = shell(f"{batch} 2>{tmp_path}/err | head -2; echo ${{PIPESTATUS[0]}}")
    header, row, code = r.stdout.splitlines()
    assert (row, code) == ("0.5,1,1.1,0.55,1.1,0.55,0.5", "141")
    assert (tmp_path / "err").read_text() == ""


@needs_proc
@pytest.mark.parametrize("args", [[], ["-o", "-"], ["-o", "/dev/stdout"], ["--out-format", "jsonl"]])
def test_rows_are_written_while_the_input_is_still_open(tmp_path, args):
    # (a block is written when it is whole: 200 rows are 2 blocks of 100)
    run = Run(["--chunk-rows", "100", *args], apple_lines(200), env=env(TMPDIR=str(tmp_path)))
    try:
        lines = [run.proc.stdout.readline() for _ in range(200 + (not args or args[0] == "-o"))]
        assert all(line.endswith(b"\n") for line in lines) and run.running()  # stdin is still open
        assert list(tmp_path.iterdir()) == []  # nothing spooled
        run.proc.stdin.write(apple_lines(3))
        run.proc.stdin.close()
        rest, err = run.proc.stdout.read(), run.proc.stderr.read()
        assert run.proc.wait(timeout=60) == 0, err
        assert len(rest.splitlines()) == 3
    finally:
        if run.running():
            run.kill()


@needs_proc
def test_a_fifo_given_with_o_is_streamed_too(tmp_path):
    fifo = tmp_path / "rows.fifo"
    os.mkfifo(fifo)
    run = Run(["--chunk-rows", "100", "-o", fifo], apple_lines(200), env=env(TMPDIR=str(tmp_path)))
    try:
        with open(fifo, "rb") as f:  # opened when the run opens it to write
            lines = [f.readline() for _ in range(201)]
            assert lines[0].startswith(b"apple,apple_num,tax,price,") and run.running()
            run.proc.stdin.close()
            assert f.read() == b""
        assert run.proc.wait(timeout=60) == 0
        assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.fifo"]  # nothing spooled
    finally:
        if run.running():
            run.kill()


def test_a_file_is_still_all_or_nothing_and_so_is_the_bad_rows_file(tmp_path):
    src = tmp_path / "rows.csv"
    src.write_text("apple,apple_num\n" + "".join(f"{i},1\n" for i in range(50)) + "1,oops\n" + "2,,\n")
    out, bad = tmp_path / "out.csv", tmp_path / "bad.csv"
    r = cli("batch", APPLE, src, "-o", out, "--chunk-rows", "10", code=2)
    assert r.stderr.startswith(f"error: {src}:52:")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.csv"]
    # what is not a bad row fails the run with --bad-rows too (a CSV output of JSON Lines rows that do not set the
    # same inputs): neither file appears
    n = _write(tmp_path, "n.jsonl", '{"b": 1}\n{"x": [1, 2, 3]}\n')
    r = cli("batch", GRAPHS / "neuron.yaml", n, "-o", out, "--bad-rows", tmp_path / "bad.jsonl", code=2)
    assert "this row sets 'x', which the first row did not" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["n.jsonl", "rows.csv"]
    cli("batch", APPLE, src, "-o", out, "--bad-rows", bad, "--chunk-rows", "10")
    assert len(out.read_text().splitlines()) == 51 and len(bad.read_text().splitlines()) == 3


def _write(tmp_path: Path, name: str, text: str) -> Path:
    (tmp_path / name).write_text(text)
    return tmp_path / name


# --- --bad-rows -------------------------------------------------------------------------------------------------

BAD_CSV = 'apple,apple_num\n100,2\nx,3\n\n120,\n"1,5",4\n130,1,5\n140,2\n'


def test_bad_rows_csv_holds_each_row_as_read_with_its_line_and_error(tmp_path):
    src, bad = _write(tmp_path, "rows.csv", BAD_CSV), tmp_path / "bad.csv"
    r = cli("batch", APPLE, src, "--bad-rows", bad)
    assert bad.read_text() == (
        "line,error,apple,apple_num\n"
        "3,column 'apple': bad number 'x',x,3\n"
        "5,column 'apple_num': empty cell,120,\n"
        "6,\"column 'apple': bad number '1,5'\",\"1,5\",4\n"
        '7,"row has 3 cells, the header has 2",130,1,5\n'
    )
    # --bad-rows implies --skip-bad-rows; stderr has the count, not each row (the file has them)
    assert r.stderr == f"warning: 4 bad rows skipped of 6 (written to {bad}); 2 written\n"
    assert [row[0] for row in csv.reader(io.StringIO(r.stdout))][1:] == ["100", "140"]


def test_bad_rows_can_be_fixed_and_read_back(tmp_path):
    src, bad = _write(tmp_path, "rows.csv", BAD_CSV), tmp_path / "bad.csv"
    cli("batch", APPLE, src, "--bad-rows", bad)
    rows = list(csv.reader(io.StringIO(bad.read_text())))
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([rows[0][:4]] + [r[:2] + ["1", "1"] for r in rows[1:]])
    fixed = _write(tmp_path, "fixed.csv", buf.getvalue())
    r = cli("batch", APPLE, fixed, "--keep", "line,error")
    assert [row[0] for row in csv.reader(io.StringIO(r.stdout))][1:] == ["3", "5", "6", "7"]


def test_bad_rows_json_lines_and_parquet(tmp_path):
    src = _write(tmp_path, "rows.jsonl", '{"apple": 1}\nnot json\n{"apple": "x"}\n{"apple": 2, "nope": 1}\n')
    cli("batch", APPLE, src, "--bad-rows", tmp_path / "bad.jsonl")
    got = [json.loads(x) for x in (tmp_path / "bad.jsonl").read_text().splitlines()]
    assert [(g["line"], g["text"]) for g in got] == [
        (2, "not json"),
        (3, '{"apple": "x"}'),
        (4, '{"apple": 2, "nope": 1}'),
    ]
    assert got[1]["error"] == "column 'apple': bad number \"x\"" and "--keep nope" in got[2]["error"]
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"apple": [1.0, None, 3.0], "apple_num": pa.array([1, 2, None], pa.int32())}), tmp_path / "r.parquet")  # fmt: skip
    cli("batch", APPLE, tmp_path / "r.parquet", "--bad-rows", tmp_path / "bad.parquet", "-o", tmp_path / "o.csv")
    t = pq.read_table(tmp_path / "bad.parquet")
    assert t.column_names == ["line", "error", "apple", "apple_num"]
    assert str(t.schema.field("apple_num").type) == "int32"  # the rows' own types, nulls where they were
    assert t.to_pylist() == [
        {"line": 2, "error": "column 'apple': empty cell (null)", "apple": None, "apple_num": 2},
        {"line": 3, "error": "column 'apple_num': empty cell (null)", "apple": 3.0, "apple_num": None},
    ]


def test_bad_rows_with_worker_processes_and_a_delimiter_are_the_same(tmp_path):
    # every 7th row is bad; its line is the row's number + 2
    src = _write(
        tmp_path, "rows.csv", "apple;apple_num\n" + "".join(f"{i};{'z' if i % 7 == 0 else 1}\n" for i in range(3000))
    )
    files = []
    for jobs in ("1", "2"):
        bad = tmp_path / f"bad{jobs}.csv"
        cli("batch", APPLE, src, "-d", ";", "--bad-rows", bad, "--jobs", jobs, "--chunk-rows", "100", "-o", tmp_path / f"o{jobs}.csv")  # fmt: skip
        files.append(bad.read_text())
    assert files[0] == files[1]
    lines = files[0].splitlines()
    assert lines[0] == "line;error;apple;apple_num" and len(lines) == 1 + len(range(0, 3000, 7))
    assert lines[1] == "2;column 'apple_num': bad number 'z';0;z"
    assert lines[-1] == "2998;column 'apple_num': bad number 'z';2996;z"


# --- a block with bad cells, read in pieces ------------------------------------------------------------------


def _whole_block_slowly(text: str, first: int, spec: CsvSpec) -> tuple[list[int], np.ndarray, list[str]]:
    """What the cell-by-cell reader makes of a block (good lines, values, errors): the expected answer."""
    good, values, errors = [], [], []
    for i, line in enumerate(text.split("\n")[:-1]):
        if not line.strip():
            continue
        try:
            row, _ = rows_module._row(first + i, line, spec, "r.csv")
        except RowsError as e:
            errors.append(str(e))
            continue
        good.append(first + i)
        values.append(row)
    return good, np.array(values).reshape(len(values), len(spec.names)), errors


LINE = st.one_of(
    st.tuples(st.floats(-1e9, 1e9), st.floats(-1e9, 1e9)).map(lambda t: f"{t[0]!r},{t[1]!r}"),
    st.sampled_from(["", "x,1", "1,", "1,2,3", "1_0,2", "  ", "nan,-inf", "1e5,2E-3"]),
)


@PROPERTY
@given(st.lists(LINE, min_size=1, max_size=200), st.sampled_from([None, "arrow"]))
def test_a_block_read_in_pieces_finds_what_the_whole_block_read_cell_by_cell_finds(lines, fast):
    if fast:
        pytest.importorskip("pyarrow")
        from cgcalc.io.arrow import csv_floats as fast
    spec = CsvSpec(("apple", "tax"))
    text = "\n".join(lines) + "\n"
    good, values, errors = _whole_block_slowly(text, 2, spec)
    found: list[RowsError] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(rows_module, "SPLIT", 3)  # small pieces, so that a block of 200 lines is cut three times over
        mp.setattr(rows_module, "SLOW_LINES", 4)
        chunk = parse_csv(text, 2, spec, "r.csv", found.append, fast)
    assert [str(e) for e in found] == errors  # every bad row, in line order
    if chunk is None:
        assert good == []
        return
    assert list(chunk.lines) == good
    got = np.column_stack([chunk.columns["apple"], chunk.columns["tax"]])
    assert np.array_equal(got, values, equal_nan=True) and (np.signbit(got) == np.signbit(values)).all()
    assert chunk.echo == [text.split("\n")[n - 2] for n in good]
    assert all(getattr(e, "text", None) == text.split("\n")[e.line - 2] for e in found)  # each row as read
