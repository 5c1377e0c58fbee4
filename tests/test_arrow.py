"""The optional Arrow path: pyarrow reads and writes CSV, and Parquet rows in and out.

The Arrow path must give the same bytes as the Python path (CGCALC_ARROW=0): its float text is checked
against repr() itself, its cell parsing against Python's float(), and whole outputs against each other.
"""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from test_batch import GRAPHS, awkward_csv, bit_equal, leftovers, runner  # noqa: E402

import cgcalc  # noqa: E402
from cgcalc.cli.app import app  # noqa: E402
from cgcalc.errors import RowsError  # noqa: E402
from cgcalc.io.arrow import csv_floats, float_texts  # noqa: E402
from cgcalc.io.rows import _row  # noqa: E402
from cgcalc.numbers import NONFINITE  # noqa: E402

PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def cli(*args, arrow: bool = True, code: int | None = 0):
    r = runner.invoke(app, [str(a) for a in args], env={"CGCALC_ARROW": "1" if arrow else "0"})
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    if code is not None:
        assert r.exit_code == code, f"exit {r.exit_code}, stderr: {r.stderr!r}"
    return r


def python_text(x: float) -> str:
    t = repr(x)
    return NONFINITE.get(t, t)


# --- float text: exactly repr() --------------------------------------------------------------------


SPECIAL = [
    0.0,
    -0.0,
    1.0,
    3.0,
    110.0,
    -2.5,
    0.1,
    0.1 + 0.2,
    1e-4,
    9.999999999999999e-05,
    1e-5,
    1e15,
    1e16,
    9999999999999998.0,
    1e16 + 2,
    2.0**53,
    2.0**53 + 2,
    123456789012345.67,
    1e21,
    1e22,
    5e-324,
    2.2250738585072014e-308,
    1.7976931348623157e308,
    float("nan"),
    float("inf"),
    float("-inf"),
]


def test_float_texts_is_repr_on_special_values():
    a = np.array(SPECIAL)
    assert float_texts(a).to_pylist() == [python_text(x) for x in SPECIAL]


def test_float_texts_is_repr_on_random_bit_patterns_and_magnitudes():
    rng = np.random.default_rng(7)
    bits = rng.integers(0, 2**64, 200_000, dtype=np.uint64, endpoint=False).view(np.float64)
    mags = 10.0 ** rng.uniform(-8, 20, 200_000) * rng.choice([-1.0, 1.0], 200_000)
    cents = np.round(rng.uniform(0, 1e5, 100_000), 2) * rng.integers(1, 11, 100_000) * 1.1
    for a in (bits, mags, cents):
        got = float_texts(a).to_pylist()
        expected = [python_text(x) for x in a.tolist()]
        bad = [(g, e) for g, e in zip(got, expected) if g != e]
        assert not bad, bad[:5]


@PROPERTY
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=50))
def test_float_texts_is_repr_on_hypothesis_floats(xs):
    assert float_texts(np.array(xs, dtype=np.float64)).to_pylist() == [python_text(x) for x in xs]


# --- cell parsing: a subset of Python's, to the same values ----------------------------------------

CELL = st.text(alphabet='0123456789.eE+-naifNIty_ "x\ufeff\u00a0\t\u0661', max_size=7)


@PROPERTY
@given(st.lists(st.tuples(CELL, CELL), min_size=1, max_size=4))
def test_arrow_reads_a_cell_only_as_python_reads_it(rows):
    lines = [f"{a},{b}" for a, b in rows]
    text = "\n".join(lines) + "\n"
    try:
        expected = [_row(i + 2, line, ["x", "y"], "r.csv")[0] for i, line in enumerate(lines)]
    except RowsError:
        expected = None
    got = csv_floats(text, ["x", "y"], len(lines)) if all(lines) else None
    if got is None:
        return  # the block goes the Python way: always correct
    assert expected is not None, f"Arrow accepted what cgcalc's reader rejects: {lines}"
    for j, name in enumerate(["x", "y"]):
        assert bit_equal(got[name], [r[j] for r in expected]), lines


def test_arrow_reads_exactly_what_python_reads_on_decimal_text():
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(size=5000) * 10.0 ** rng.integers(-30, 30, 5000), rng.uniform(-1, 1, 5000)])
    texts = [repr(v) for v in x.tolist()] + [f"{v:.17e}" for v in x.tolist()] + [f"{v:.3f}" for v in x.tolist()]
    got = csv_floats("\n".join(texts) + "\n", ["x"], len(texts))
    assert got is not None
    assert bit_equal(got["x"], [float(t) for t in texts])


def test_a_nan_cell_keeps_its_sign_by_going_the_python_way():
    assert csv_floats("-nan\n1\n", ["x"], 2) is None
    assert csv_floats("1\n\n2\n", ["x"], 3) is None  # a blank line: line numbers would shift
    assert csv_floats("1\n2\n", ["x"], 2)["x"].tolist() == [1.0, 2.0]


# --- the whole output: the same bytes with and without Arrow ---------------------------------------


@pytest.mark.parametrize("jobs", ["1", "3"])
@pytest.mark.parametrize("out_name", ["o.csv", "o.jsonl"])
def test_arrow_gives_the_same_bytes_as_python(tmp_path, jobs, out_name):
    src = awkward_csv(tmp_path / "r.csv")
    outs, errs = [], []
    for arrow in (False, True):
        out = tmp_path / f"{arrow}{out_name}"
        r = cli(
            "batch",
            GRAPHS / "expressions.yaml",
            src,
            "-o",
            out,
            "--output",
            "all",
            "--chunk-rows",
            "11",
            "--jobs",
            jobs,
            arrow=arrow,
        )
        outs.append(out.read_bytes())
        errs.append(r.stderr)
    assert outs[0] == outs[1]
    assert errs[0] == errs[1]


def test_arrow_gives_the_same_bytes_for_the_book_graph_and_bad_rows(tmp_path):
    rng = np.random.default_rng(11)
    lines = ["apple,apple_num,orange,orange_num,tax"]
    for _ in range(2000):
        lines.append(
            f"{rng.uniform(50, 150):.2f},{rng.integers(1, 11)},{rng.uniform(50, 200):.2f},"
            f"{rng.integers(1, 11)},{rng.uniform(1, 1.2):.3f}"
        )
    lines[500] = lines[500].replace(",", ",oops", 1)
    lines[1500] = ""
    src = tmp_path / "r.csv"
    src.write_text("\n".join(lines) + "\n")
    outs = []
    for arrow in (False, True):
        out = tmp_path / f"{arrow}.csv"
        r = cli("batch", GRAPHS / "apple_orange.yaml", src, "-o", out, "--skip-bad-rows", arrow=arrow)
        assert ":501:" in r.stderr and "1 bad row skipped of 1,999 (each reported above); 1,998 written" in r.stderr
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]


# --- bad cells: the same reports with and without Arrow --------------------------------------------

BOM = "\ufeff"


def both_ways(args: list, stdin: bytes) -> list:
    """(exit code, stdout, stderr) of `cgcalc batch` with Arrow and without it, reading the rows from stdin."""
    out = []
    for arrow in ("1", "0"):
        r = runner.invoke(app, ["batch", *map(str, args)], input=stdin, env={"CGCALC_ARROW": arrow})
        if r.exception is not None and not isinstance(r.exception, SystemExit):
            raise r.exception
        out.append((r.exit_code, r.stdout, r.stderr))
    return out


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        (f"{BOM}apple,tax\n1,2\n3,4\n", []),  # the file's byte-order mark: stripped, as CSV tools do
        (f"apple,tax\n{BOM}1,2\n3,4\n", [(2, 1)]),  # elsewhere, a bad cell: here where Arrow's block starts
        (f"apple,tax\n{BOM}1,2\n3,x\n", [(2, 1), (3, 3)]),  # ... also when another bad row is in the block
        (f"apple,tax\n1,2\n3,{BOM}4\n", [(3, 3)]),
        (f"apple,tax\n1,2\n3,4\n{BOM}5,6\n", [(4, 1)]),  # the first line of the second block (--chunk-rows 2)
    ],
    ids=["file-start", "first-cell", "first-cell-and-a-bad-row", "later-cell", "block-start"],
)
@pytest.mark.parametrize("skip", [True, False])
def test_a_byte_order_mark_is_read_the_same_with_and_without_arrow(text, bad, skip):
    args = [GRAPHS / "apple.yaml", "-", "--chunk-rows", "2", *(["--skip-bad-rows"] if skip else [])]
    arrow, python = both_ways(args, text.encode())
    assert arrow == python
    code, stdout, stderr = arrow
    reported = [tuple(map(int, m)) for m in re.findall(r"<stdin>:(\d+):(\d+): ", stderr)]
    assert reported == (bad if skip else bad[:1]), stderr
    assert code == (2 if bad and not skip else 0)
    if code == 0:
        assert len(stdout.splitlines()) == 1 + text.count("\n") - 1 - len(bad)


GOOD_CELLS = ["1", "2.5", " 3 ", '"4"', "1e3", "-0.0", "nan", "-nan", "inf", "-inf", "1e400", "\u00a05", "007"]
BAD_CELLS = [BOM + "1", "x", "", "1_0", "0x10", '"', "\u0661", "1 2", "--1", "1" + BOM, "\t"]
GOOD_CELL = st.one_of(st.floats().map(repr), st.sampled_from(GOOD_CELLS))
CSV_CELL = st.one_of(GOOD_CELL, GOOD_CELL, st.sampled_from(BAD_CELLS))  # mostly good: a block may be all good
CSV_LINE = st.one_of(
    st.tuples(CSV_CELL, CSV_CELL).map(",".join),
    st.tuples(CSV_CELL, CSV_CELL).map(",".join),
    st.just(""),
    st.lists(CSV_CELL, min_size=1, max_size=3).map(",".join),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=st.lists(CSV_LINE, min_size=1, max_size=12), bom=st.booleans(), crlf=st.booleans(), chunk=st.integers(1, 5)
)
def test_random_csv_with_bad_cells_gives_the_same_bytes_and_reports_with_and_without_arrow(lines, bom, crlf, chunk):
    end = "\r\n" if crlf else "\n"
    text = (BOM if bom else "") + end.join(["apple,tax", *lines]) + end
    for skip in ([], ["--skip-bad-rows"]):
        arrow, python = both_ways([GRAPHS / "apple.yaml", "-", "--chunk-rows", chunk, *skip], text.encode())
        assert arrow == python, text


# --- Parquet ---------------------------------------------------------------------------------------


def write_parquet(path: Path, columns: dict) -> Path:
    pq.write_table(pa.table(columns), path, row_group_size=300)
    return path


def apple_columns(n: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "apple": np.round(rng.uniform(50, 150, n), 2),
        "apple_num": rng.integers(1, 11, n),
        "tax": np.round(rng.uniform(1, 1.2, n), 3),
    }


def test_parquet_rows_equal_single_runs_and_the_csv_path(tmp_path):
    cols = apple_columns(1000)
    src = write_parquet(tmp_path / "r.parquet", cols)
    csv_src = tmp_path / "r.csv"
    csv_src.write_text(
        "apple,apple_num,tax\n"
        + "".join(
            f"{a!r},{float(n)!r},{t!r}\n"
            for a, n, t in zip(cols["apple"].tolist(), cols["apple_num"].tolist(), cols["tax"].tolist())
        )
    )
    cli("batch", GRAPHS / "apple.yaml", src, "-o", tmp_path / "from_parquet.csv", "--chunk-rows", "128")
    cli("batch", GRAPHS / "apple.yaml", csv_src, "-o", tmp_path / "from_csv.csv")
    assert (tmp_path / "from_parquet.csv").read_bytes() == (tmp_path / "from_csv.csv").read_bytes()
    cli("batch", GRAPHS / "apple.yaml", src, "-o", tmp_path / "o.parquet")
    t = pq.read_table(tmp_path / "o.parquet")
    assert t.column_names == ["apple", "apple_num", "tax", "price", "dprice/dapple", "dprice/dapple_num", "dprice/dtax"]
    assert t.num_rows == 1000 and all(t.schema.field(n).type == pa.float64() for n in t.column_names)
    g = cgcalc.load(GRAPHS / "apple.yaml")
    for i in (0, 299, 300, 999):
        r = g.run(apple=cols["apple"][i], apple_num=float(cols["apple_num"][i]), tax=cols["tax"][i])
        assert t.column("price")[i].as_py() == r.value("price")
        assert t.column("dprice/dapple")[i].as_py() == r.grad("apple")
        assert t.column("dprice/dtax")[i].as_py() == r.grad("tax")


def test_jsonl_and_csv_to_parquet_and_back(tmp_path):
    src = tmp_path / "r.jsonl"
    src.write_text('{"apple": 100, "tax": 1.1}\n{"apple": 50}\n')
    cli("batch", GRAPHS / "apple.yaml", src, "-o", tmp_path / "o.parquet")
    t = pq.read_table(tmp_path / "o.parquet").to_pylist()
    assert [r["apple"] for r in t] == [100.0, 50.0] and [r["tax"] for r in t] == [1.1, 1.1]  # the file's tax
    assert t[0]["price"] == 100.0 * 2 * 1.1 and t[1]["dprice/dapple"] == 2 * 1.1


def test_parquet_null_is_a_bad_cell_at_its_row(tmp_path):
    cols = apple_columns(700)
    tax = pa.array(cols["tax"], mask=np.arange(700) == 456)
    src = write_parquet(tmp_path / "r.parquet", {**cols, "tax": tax})
    r = cli("batch", GRAPHS / "apple.yaml", src, "-o", tmp_path / "o.csv", code=2)
    assert r.stderr == f"error: {src}:457: column 'tax': empty cell (null)\n"
    assert not (tmp_path / "o.csv").exists() and leftovers(tmp_path) == []
    r = cli("batch", GRAPHS / "apple.yaml", src, "-o", tmp_path / "o.csv", "--skip-bad-rows")
    assert f"{src}:457: column 'tax': empty cell (null) (row skipped)" in r.stderr
    assert len((tmp_path / "o.csv").read_text().splitlines()) == 1 + 699


def test_parquet_with_a_column_name_twice_is_an_error(tmp_path):
    src = tmp_path / "r.parquet"
    pq.write_table(pa.table([pa.array([1.0, 2.0]), pa.array([3.0, 4.0])], names=["apple", "apple"]), src)
    r = cli("batch", GRAPHS / "apple.yaml", src, code=2)
    assert r.stderr == f"error: {src}: column 'apple' appears twice\n" and r.stdout == ""


def test_parquet_errors_are_one_line(tmp_path):
    g = GRAPHS / "apple.yaml"
    src = write_parquet(tmp_path / "r.parquet", {"apples": [1.0]})
    assert "unknown column 'apples'" in cli("batch", g, src, code=2).stderr
    src = write_parquet(tmp_path / "s.parquet", {"apple": ["1.0"]})
    assert "column 'apple' holds string, not numbers" in cli("batch", g, src, code=2).stderr
    bad = tmp_path / "t.parquet"
    bad.write_bytes(b"not parquet at all")
    assert "cannot read as Parquet" in cli("batch", g, bad, code=2).stderr
    assert (
        cli("batch", g, "-", "--rows-format", "parquet", code=2).stderr
        == "error: Parquet rows must be a file, not stdin\n"
    )
    r = cli("batch", g, src, arrow=False, code=2)
    assert r.stderr == "error: Parquet needs pyarrow (turned off by CGCALC_ARROW=0)\n"
    neuron = tmp_path / "n.jsonl"
    neuron.write_text('{"x": [1, 2, 3]}\n')
    r = cli("batch", GRAPHS / "neuron.yaml", neuron, "-o", tmp_path / "n.parquet", code=2)
    assert "Parquet output holds one number per cell" in r.stderr
    assert leftovers(tmp_path) == [] and not (tmp_path / "n.parquet").exists()


def test_no_rows_gives_a_parquet_file_with_the_columns(tmp_path):
    src = tmp_path / "r.csv"
    src.write_text("apple,tax\n")
    cli("batch", GRAPHS / "apple.yaml", src, "-o", tmp_path / "o.parquet")
    t = pq.read_table(tmp_path / "o.parquet")
    assert t.num_rows == 0
    assert t.column_names == ["apple", "tax", "price", "dprice/dapple", "dprice/dapple_num", "dprice/dtax"]


def test_parquet_to_stdout_when_piped(tmp_path):
    src = write_parquet(tmp_path / "r.parquet", apple_columns(5))
    r = cli("batch", GRAPHS / "apple.yaml", src, "--out-format", "parquet")
    t = pq.read_table(io.BytesIO(r.stdout_bytes))
    assert t.num_rows == 5


def test_csv_dash_o_dash_is_stdout(tmp_path):
    src = tmp_path / "r.csv"
    src.write_text("apple\n1\n")
    r = cli("batch", GRAPHS / "apple.yaml", src, "-o", "-")
    assert list(csv.reader(io.StringIO(r.stdout)))[1][:2] == ["1", "2.2"]
    assert not Path("-").exists()


NO_PANDAS = """
import sys
seen = []
class Watch:
    def find_spec(self, name, path=None, target=None):
        if name == "pandas":
            seen.append(name)
        return None
sys.meta_path.insert(0, Watch())
from cgcalc.cli.app import main
sys.argv = ["cgcalc"] + sys.argv[1:]
try:
    main()
except SystemExit as e:
    assert not e.code, e.code
print("pandas looked for" if seen else "no pandas")
"""


@pytest.mark.parametrize(
    "src, out", [("r.csv", "o.csv"), ("r.parquet", "o.parquet"), ("r.parquet", "o.csv"), ("r.csv", "o.parquet")]
)
def test_the_arrow_path_never_imports_pandas(tmp_path, src, out):
    # pa.array(), pa.scalar() and to_numpy() import pandas when it is installed: 0.2 s per process
    cols = apple_columns(50)
    write_parquet(tmp_path / "r.parquet", cols)
    (tmp_path / "r.csv").write_text(
        "apple,tax\n" + "".join(f"{a!r},{t!r}\n" for a, t in zip(cols["apple"].tolist(), cols["tax"].tolist()))
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            NO_PANDAS,
            "batch",
            str(GRAPHS / "apple.yaml"),
            str(tmp_path / src),
            "-o",
            str(tmp_path / out),
            "--jobs",
            "1",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "CGCALC_ARROW": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "no pandas"


def test_verbose_says_whether_pyarrow_read_and_wrote_the_csv(tmp_path):
    src = tmp_path / "r.csv"
    src.write_text("apple\n1\n2\n")
    with_arrow = cli("batch", GRAPHS / "apple.yaml", src, "-o", tmp_path / "a.csv", "-v").stderr
    without = cli("batch", GRAPHS / "apple.yaml", src, "-o", tmp_path / "b.csv", "-v", arrow=False).stderr
    assert "2 rows read in chunks of up to 16,384, CSV read and written with pyarrow" in with_arrow
    assert "pyarrow" not in without


def test_arrow_reads_long_digit_strings_overflow_and_halfway_cases_as_python_does():
    from decimal import Decimal

    rng = np.random.default_rng(5)
    cells = []
    for _ in range(500):
        x = float(rng.normal() * 10.0 ** rng.integers(-320, 300))
        cells += [str(Decimal(x)), repr(x) + "0000000000000000000001", f"{x:.25e}"]  # exact expansion (to 750 digits)
    cells += [
        "1e5000",
        "-1e5000",
        "1e-400",
        "4.9e-324",
        "2.4703282292062327e-324",
        "2.4703282292062328e-324",
        "0." + "0" * 400 + "1",
    ]
    got = csv_floats("\n".join(cells) + "\n", ["x"], len(cells))
    assert got is not None
    assert bit_equal(got["x"], [float(c) for c in cells])
