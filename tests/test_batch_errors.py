"""Issue 17's errors, as tables: each bad use of a `cgcalc batch` option, or rows that do not fit it, is one line
`error: [FILE:LINE:COL: ]message` on stderr, exit 2, nothing on stdout, no traceback, and no output file."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import cli, one_error_line

ROOT = Path(__file__).resolve().parent.parent
GRAPHS = ROOT / "graphs"
APPLE = str(GRAPHS / "apple.yaml")

ROWS = {
    "rows.csv": "apple,apple_num\n100,2\n",
    "ids.csv": "id,apple\na,100\n",
    "semi.csv": "id;apple\na;100\n",
    "rows.jsonl": '{"apple": 100}\n',
    "own.csv": "apple,price,dprice/dapple,dprice/dapple_num,dprice/dtax\n100,220,2.2,110,200\n",
    "line.yaml": "inputs: {line: 1}\nnodes: {y: line * 2}\n",
}

# (arguments after `cgcalc batch`, what the one line says: its start, then fragments of it)
OPTION_ERRORS = [
    (["rows.csv", "--keep", "apple"], "error: --keep apple: an input of the graph"),
    (["ids.csv", "--keep", "id,nope"], "error: ids.csv:1: --keep nope: the rows have no column 'nope'"),
    (["ids.csv", "--keep", "id,"], "error: --keep takes names separated by commas"),
    (["ids.csv"], "error: ids.csv:1:1: unknown column 'id': not an input of the graph", "give --keep id"),
    (["rows.csv", "--keep", "price"], "error: --keep price: this run writes a result column of that name too"),
    (["own.csv"], "error: own.csv:1:7: column 'price' is a result column of this graph", "--ignore-outputs"),
    (["own.csv", "--keep-all"], "error: own.csv:1:7: column 'price' is kept, and this run writes", "--ignore-outputs"),
    (["semi.csv"], "error: semi.csv:1:1: the header is one column, 'id;apple'", "--delimiter ';'"),
    (["rows.csv", "--nodes", "nope"], "error: --nodes nope: no node of that name in the graph"),
    (["rows.csv", "--nodes", "apple_pric"], "error: --nodes apple_pric:", "did you mean 'apple_price'"),
    (["rows.csv", "--nodes", "apple"], "error: --nodes apple: an input, not a node"),
    (["rows.csv", "--nodes-grad"], "error: --nodes-grad adds the gradients of the --nodes"),
    (["rows.csv", "--set", "nope=1"], "error: --set nope: not an input of the graph"),
    (["rows.csv", "--set", "tax"], "error: --set takes NAME=VALUE"),
    (["rows.csv", "--set", "tax=abc"], "error: bad value for --set tax: 'abc' is not a number"),
    (["rows.csv", "--precision", "0"], "error: Invalid value for '--precision' / '-p'"),
    (["rows.csv", "--precision", "18"], "error: Invalid value for '--precision' / '-p'"),
    (["rows.csv", "-p", "3", "--float-format", "%.3f"], "error: --precision and --float-format both say"),
    (["rows.csv", "--float-format", "%d"], "error: --float-format '%d': give one printf-style float format"),
    (["rows.csv", "--float-format", "%+.3f"], "error: --float-format '%+.3f'"),
    (["rows.csv", "--float-format", "%10.3f"], "error: --float-format '%10.3f'"),
    (["rows.csv", "--float-format", "%.3f %.3f"], "error: --float-format '%.3f %.3f'"),
    (["rows.csv", "--float-format", "%a"], "error: --float-format '%a'"),
    (["rows.csv", "--float-format", "%.3f", "-o", "o.parquet"], "error: --precision and --float-format are for text"),
    (["rows.csv", "--delimiter", ""], "error: --delimiter '': give one character"),
    (["rows.csv", "--delimiter", ";;"], "error: --delimiter ';;': give one character"),
    (["rows.csv", "--delimiter", "."], "error: --delimiter '.': a CSV delimiter cannot be"),
    (["rows.csv", "--delimiter", "x"], "error: --delimiter 'x': a CSV delimiter cannot be"),
    (["rows.csv", "--delimiter", '"'], "error: --delimiter '\"': a CSV delimiter cannot be"),
    (["rows.jsonl", "--delimiter", ";", "-o", "o.jsonl"], "error: --delimiter is for CSV"),
    (
        ["rows.csv", "--bad-rows", "bad.jsonl"],
        "error: --bad-rows bad.jsonl: the bad rows are written as the rows are read, as csv",
    ),  # fmt: skip
    (["rows.csv", "--bad-rows", "o.csv", "-o", "o.csv"], "error: --bad-rows and -o name the same file"),
    (["rows.csv", "--bad-rows", "-"], "error: --bad-rows and -o name the same file"),
    (["rows.csv", "--bad-rows", "/dev/stdout", "-o", "-"], "error: --bad-rows and -o name the same file"),
    (
        ["rows.csv", "--output", "out.csv"],
        "error: --output out.csv: no output or node of that name.",
        "give -o out.csv",
    ),  # fmt: skip
    (["rows.csv", "-O", "results/out.jsonl"], "error: --output results/out.jsonl:", "-o results/out.jsonl"),
    (["rows.csv", "--output", "prize"], "error: no input or node named 'prize'", "did you mean 'price'"),
    (["rows.csv", "--outt", "x.csv"], "error: No such option: --outt", "--out"),
    (["rows.csv", "--row-numbers"], "error: No such option: --row-numbers", "--row-number"),
]


def _in(tmp_path: Path) -> None:
    for name, text in ROWS.items():
        (tmp_path / name).write_text(text)


@pytest.mark.parametrize(
    "args, start, fragments",
    [(a, s, tuple(f)) for a, s, *f in OPTION_ERRORS],
    ids=[" ".join(e[0]) for e in OPTION_ERRORS],
)
def test_each_bad_option_is_one_line_and_exit_2(tmp_path, monkeypatch, args, start, fragments):
    _in(tmp_path)
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    line = one_error_line(cli("batch", APPLE, *args))
    assert line.startswith(start), line
    for fragment in fragments:
        assert fragment in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no output file, no bad-rows file, no temporary


# rows that do not fit the options: with the file, line and column of the row
ROW_ERRORS = [
    (
        "r.jsonl",
        '{"apple": 1, "id": "a"}\n{"apple": 2, "x": 1}\n',
        ["--keep", "id"],
        "error: r.jsonl:2:14: unknown column 'x'",
        "--keep x",
    ),  # fmt: skip
    (
        "r.jsonl",
        '{"apple": 1}\n{"apple": 2, "tax": 1}\n',
        ["--out-format", "csv"],
        "error: r.jsonl:2: this row sets 'tax', which the first row did not",
    ),  # fmt: skip
    (
        "r.jsonl",
        '{"apple": 1}\n{"apple": 2, "id": 1}\n',
        ["--keep-all", "--out-format", "csv"],
        "error: r.jsonl:2: this row has 'id', which the first row did not",
    ),  # fmt: skip
    (
        "r.jsonl",
        '{"apple": 1, "price": 3}\n',
        ["--keep-all"],
        "error: r.jsonl:1:14: column 'price' is kept, and this run writes",
    ),  # fmt: skip
    (
        "r.csv",
        "line,apple\n1,2\n",
        ["--keep", "line", "--row-number"],
        "error: --keep line: this run writes a result column",
    ),  # fmt: skip
    ("r.csv", "id,apple\na,1\nb\n", ["--keep", "id"], "error: r.csv:3:1: row has 1 cell, the header has 2"),
    ("r.csv", 'id,apple\n"a,1\n', ["--keep", "id"], "error: r.csv:2:1: row has 1 cell, the header has 2"),
    ("r.csv", "id,apple,apple\na,1,2\n", ["--keep", "id"], "error: r.csv:1: column 'apple' appears twice"),
]


@pytest.mark.parametrize(
    "name, text, args, start, fragments",
    [(*e[:4], tuple(e[4:])) for e in ROW_ERRORS],
    ids=[e[3][7:40] for e in ROW_ERRORS],
)
def test_rows_that_do_not_fit_the_options_are_one_located_line(tmp_path, monkeypatch, name, text, args, start, fragments):  # fmt: skip
    monkeypatch.chdir(tmp_path)
    (tmp_path / name).write_text(text)
    line = one_error_line(cli("batch", APPLE, name, *args))
    assert line.startswith(start), line
    for fragment in fragments:
        assert fragment in line, line


def test_row_number_refuses_a_graph_with_an_input_named_line(tmp_path):
    _in(tmp_path)
    (tmp_path / "r.csv").write_text("line\n1\n")
    line = one_error_line(cli("batch", tmp_path / "line.yaml", tmp_path / "r.csv", "--row-number"))
    assert line == "error: --row-number writes a column 'line', and the graph has an input of that name"


def test_the_dask_engine_says_the_same(tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    pytest.importorskip("dask.dataframe")
    pytest.importorskip("pyarrow")
    _in(tmp_path)
    monkeypatch.chdir(tmp_path)
    for args, start in [
        (["rows.csv", "--nodes", "nope", "-o", "out"], "error: --nodes nope: no node of that name"),
        (["ids.csv", "-o", "out"], "error: ids.csv:1:1: unknown column 'id'"),
        (["rows.csv", "--float-format", "%x", "-o", "out"], "error: --float-format '%x'"),
        (
            ["rows.csv", "--precision", "3", "--out-format", "parquet", "-o", "out"],
            "error: --precision and --float-format are for text",
        ),  # fmt: skip
        (["rows.csv", "--output", "out.csv", "-o", "out"], "error: --output out.csv: no output or node of that name."),
    ]:
        line = one_error_line(cli("batch", APPLE, *args, "--engine", "dask"))
        assert line.startswith(start), line
        assert not (tmp_path / "out").exists()
