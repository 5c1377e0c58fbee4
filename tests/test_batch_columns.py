"""Issue 17, the columns of `cgcalc batch` in a pipeline: kept columns (--keep, --keep-all), --row-number,
--ignore-outputs (reading its own output back), --set, --nodes / --nodes-grad, --precision / --float-format,
--delimiter, and the rows' format on stdin. CSV, JSON Lines and Parquet; every test with and without pyarrow.

Expected numbers come from single runs (`cgcalc run --set ... --format json`) or from Python's own csv, json and
`%` formatting applied to those numbers; kept text from what Python's csv module reads in the rows file.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np
import proc_helpers
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import cgcalc
from cgcalc.cli.app import app

ROOT = Path(__file__).resolve().parent.parent
csv_path = proc_helpers.csv_path  # an autouse fixture: every test with pyarrow and without it
GRAPHS = ROOT / "graphs"
APPLE, APPLE_ORANGE, EXPRESSIONS = GRAPHS / "apple.yaml", GRAPHS / "apple_orange.yaml", GRAPHS / "expressions.yaml"
RESULTS = ["price", "dprice/dapple", "dprice/dapple_num", "dprice/dtax"]  # apple.yaml's result columns
PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def parquet(mode: str):
    """pyarrow.parquet, for a test with Parquet rows or output: skipped without pyarrow (CGCALC_ARROW=0)."""
    if mode != "arrow":
        pytest.skip("Parquet needs pyarrow: this is the run without it")
    return pytest.importorskip("pyarrow.parquet")


def cli(*args, input: str | bytes | None = None, code: int = 0):
    r = CliRunner(env={"CGCALC_DEBUG": None}).invoke(app, [str(a) for a in args], input=input)
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    assert r.exit_code == code, f"exit {r.exit_code}, stderr: {r.stderr!r}, stdout: {r.stdout[:500]!r}"
    return r


def table(text: str, delimiter: str = ",") -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    return rows[0], rows[1:]


def nonfinite(v):
    if isinstance(v, list):
        return [nonfinite(x) for x in v]
    return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}.get(v, v) if isinstance(v, str) else v


def single_run(graph: Path, row: dict, output: str | None = None) -> dict:
    """`cgcalc run --set ... --format json`: every node's value and its gradient for the selected output, by name
    (`name` and `dO/dname`)."""
    sets = [a for k, v in row.items() for a in ("--set", f"{k}={json.dumps(v) if isinstance(v, list) else repr(v)}")]
    d = json.loads(cli("run", graph, *sets, "--format", "json", *(["--output", output] if output else [])).stdout)
    out = {}
    for node in d["nodes"]:
        out[node["name"]] = nonfinite(node["value"])
        if node["grad"] is not None:
            out[f"d{d['output']}/d{node['name']}"] = nonfinite(node["grad"])
    return out


def same_bits(got: float, want: float) -> bool:
    a, b = np.float64(got), np.float64(want)
    return (np.isnan(a) and np.isnan(b)) or a.tobytes() == b.tobytes()


def apple_csv(tmp_path: Path, text: str, name: str = "rows.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


TRICKY = 'id,apple,name,apple_num\nA-1,100,"Smith, J.",2\nB-2,120.5,"say ""hi""",3\nC 3,7,Zoë,1\n'


# --- kept columns -----------------------------------------------------------------------------------------


def test_keep_copies_any_text_in_front_in_keeps_order_and_rows_equal_single_runs(tmp_path):
    src = apple_csv(tmp_path, TRICKY)
    header, rows = table(cli("batch", APPLE, src, "--keep", "name,id").stdout)
    assert header == ["name", "id", "apple", "apple_num", *RESULTS]
    _, given = table(TRICKY)
    for row, source in zip(rows, given):
        assert row[:4] == [source[2], source[0], source[1], source[3]]  # as Python's csv module reads them
        single = single_run(APPLE, {"apple": float(source[1]), "apple_num": float(source[3])})
        assert all(same_bits(float(cell), single[name]) for cell, name in zip(row[4:], RESULTS))


def test_keep_all_keeps_every_column_that_is_not_an_input_in_file_order(tmp_path):
    src = apple_csv(tmp_path, TRICKY)
    header, rows = table(cli("batch", APPLE, src, "--keep-all").stdout)
    assert header == ["id", "name", "apple", "apple_num", *RESULTS]
    assert [r[:2] for r in rows] == [["A-1", "Smith, J."], ["B-2", 'say "hi"'], ["C 3", "Zoë"]]
    # --keep's columns first, then the others in the file's order
    header, _ = table(cli("batch", APPLE, src, "--keep-all", "--keep", "name").stdout)
    assert header[:2] == ["name", "id"]


def test_kept_csv_text_goes_to_json_lines_and_parquet_as_strings(tmp_path, csv_path):
    src = apple_csv(tmp_path, TRICKY)
    out = tmp_path / "o.jsonl"
    cli("batch", APPLE, src, "--keep", "id,name", "-o", out)
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [list(r)[:4] for r in rows] == [["id", "name", "apple", "apple_num"]] * 3
    assert [(r["id"], r["name"]) for r in rows] == [("A-1", "Smith, J."), ("B-2", 'say "hi"'), ("C 3", "Zoë")]
    pq = parquet(csv_path)
    cli("batch", APPLE, src, "--keep", "id,name", "-o", tmp_path / "o.parquet")
    t = pq.read_table(tmp_path / "o.parquet")
    assert t.column_names == ["id", "name", "apple", "apple_num", *RESULTS]
    assert str(t.schema.field("id").type) == "string" and t.column("name").to_pylist()[2] == "Zoë"
    assert t.column("price").to_pylist() == [r["price"] for r in rows]


def test_jsonl_kept_values_stay_as_written(tmp_path):
    src = tmp_path / "r.jsonl"
    lines = [
        '{"id": 7, "apple": 100, "tags": ["a", 1], "big": 12345678901234567890123}',
        '{"apple": 2, "id": "x\\"y", "note": null, "meta": {"k": [1.5, true]}}',
        '{"apple": 3}',
    ]
    src.write_text("\n".join(lines) + "\n")
    out = tmp_path / "o.jsonl"
    cli("batch", APPLE, src, "--keep-all", "-o", out)
    got = [json.loads(line) for line in out.read_text().splitlines()]
    want = [json.loads(line) for line in lines]
    for g, w in zip(got, want):
        assert {k: v for k, v in g.items() if k not in ("apple", *RESULTS)} == {
            k: v for k, v in w.items() if k != "apple"
        }
    assert out.read_text().splitlines()[0].startswith('{"id": 7, "tags": ["a", 1], "big": 12345678901234567890123, ')
    assert [list(g)[-5:] for g in got] == [["apple", *RESULTS]] * 3  # kept first, then the inputs, then results


def test_jsonl_to_csv_kept_columns_are_the_first_rows_and_keeps(tmp_path):
    src = tmp_path / "r.jsonl"
    src.write_text('{"apple": 1, "id": "a"}\n{"apple": 2}\n{"id": "c", "apple": 3, "tag": 1}\n')
    r = cli("batch", APPLE, src, "--keep", "id,tag")
    header, rows = table(r.stdout)
    assert header == ["id", "tag", "apple", *RESULTS] and [row[:2] for row in rows] == [["a", ""], ["", ""], ["c", "1"]]
    r = cli("batch", APPLE, src, "--keep-all", code=2)  # 'tag' was not in the first row: a CSV needs fixed columns
    assert r.stderr.startswith(f"error: {src}:3: this row has 'tag', which the first row did not")


def test_parquet_kept_columns_keep_their_type(tmp_path, csv_path):
    pq = parquet(csv_path)
    import datetime as dt

    import pyarrow as pa

    when = [dt.datetime(2024, 1, 2, 3, 4, 5), dt.datetime(2024, 6, 7, 8, 9, 10)]
    src = tmp_path / "r.parquet"
    pq.write_table(
        pa.table({"id": pa.array([7, 8], pa.int64()), "apple": [1.5, 2.5], "at": when, "s": ["a", None]}), src
    )
    cli("batch", APPLE, src, "--keep-all", "-o", tmp_path / "o.parquet")
    t = pq.read_table(tmp_path / "o.parquet")
    assert t.column_names == ["id", "at", "s", "apple", *RESULTS]
    assert [str(t.schema.field(n).type) for n in ("id", "at", "s")] == ["int64", "timestamp[us]", "string"]
    assert t.column("id").to_pylist() == [7, 8] and t.column("at").to_pylist() == when
    assert t.column("s").to_pylist() == ["a", None]
    header, rows = table(cli("batch", APPLE, src, "--keep-all").stdout)
    texts = pa.compute.cast(pa.array(when), pa.string()).to_pylist()  # Arrow's own text of a timestamp
    assert [r[:3] for r in rows] == [["7", texts[0], "a"], ["8", texts[1], ""]]
    out = tmp_path / "o.jsonl"
    cli("batch", APPLE, src, "--keep-all", "-o", out)
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(r["id"], r["at"], r["s"]) for r in rows] == [(7, str(when[0]), "a"), (8, str(when[1]), None)]


# --- row numbers --------------------------------------------------------------------------------------------


def test_row_number_is_the_line_that_errors_and_bad_rows_name(tmp_path):
    text = "apple,apple_num\n\n100,2\nx,1\n\n120,3\n130,oops\n140,4\n"
    src = apple_csv(tmp_path, text)
    r = cli("batch", APPLE, src, "--row-number", "--skip-bad-rows", "--chunk-rows", "2")
    header, rows = table(r.stdout)
    assert header[0] == "line"
    lines = text.split("\n")
    for row in rows:  # each row's line is the line of the file that holds its cells
        assert lines[int(row[0]) - 1] == ",".join(row[1:3])
    assert [int(row[0]) for row in rows] == [3, 6, 8]
    assert [ln.split(":")[2] for ln in r.stderr.splitlines()[:2]] == ["4", "7"]  # file:LINE:COL, the skipped ones


def test_row_number_in_json_lines_and_parquet(tmp_path, csv_path):
    src = tmp_path / "r.jsonl"
    src.write_text('{"apple": 1}\n\n{"apple": 2}\n')
    out = tmp_path / "o.jsonl"
    cli("batch", APPLE, src, "--row-number", "-o", out)
    assert [json.loads(x)["line"] for x in out.read_text().splitlines()] == [1, 3]
    assert list(json.loads(out.read_text().splitlines()[0]))[:2] == ["line", "apple"]
    pq = parquet(csv_path)
    import pyarrow as pa

    pq.write_table(pa.table({"apple": [1.0, None, 3.0]}), tmp_path / "r.parquet")
    cli("batch", APPLE, tmp_path / "r.parquet", "--row-number", "--skip-bad-rows", "-o", tmp_path / "o.parquet")
    t = pq.read_table(tmp_path / "o.parquet")
    assert t.column("line").to_pylist() == [1, 3] and str(t.schema.field("line").type) == "int64"


# --- reading its own output back ---------------------------------------------------------------------------


@pytest.mark.parametrize("ext", ["csv", "jsonl", "parquet"])
def test_ignore_outputs_reads_its_own_output_back_to_the_same_output(tmp_path, ext, csv_path):
    if ext == "parquet":
        parquet(csv_path)
    src = apple_csv(tmp_path, TRICKY)
    first, second = tmp_path / f"first.{ext}", tmp_path / f"second.{ext}"
    opts = ["--keep-all", "--row-number", "--nodes", "apple_price", "--nodes-grad"]
    cli("batch", APPLE, src, *opts, "-o", first)
    r = cli("batch", APPLE, first, "-o", tmp_path / "x.csv", code=2)  # without it: the old results are no inputs
    assert "--ignore-outputs" in r.stderr
    cli("batch", APPLE, first, "--ignore-outputs", *opts, "-o", second)
    if ext == "parquet":  # a Parquet file's row numbers are its rows, 1-based: one less than the CSV's lines
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        again = pq.read_table(second)
        again = again.set_column(0, "line", pc.add(again.column("line"), pa.scalar(1, pa.int64())))
        assert again.equals(pq.read_table(first))
    else:
        lines = second.read_text(encoding="utf-8").splitlines()
        if ext == "jsonl":  # JSON Lines' line numbers are its own: one row a line, no header
            lines = [
                json.dumps({**json.loads(x), "line": json.loads(x)["line"] + 1}, ensure_ascii=False) for x in lines
            ]
        assert lines == first.read_text(encoding="utf-8").splitlines()


def test_kept_columns_that_clash_with_results_say_to_ignore_outputs(tmp_path):
    out = tmp_path / "o.csv"
    cli("batch", APPLE, apple_csv(tmp_path, TRICKY), "--keep-all", "-o", out)
    r = cli("batch", APPLE, out, "--keep-all", code=2)
    assert "column 'price' is kept, and this run writes a result column of that name too" in r.stderr
    assert "--ignore-outputs" in r.stderr


# --- --set ---------------------------------------------------------------------------------------------------


def test_set_applies_to_every_row_that_leaves_the_input_out(tmp_path):
    src = tmp_path / "r.jsonl"
    src.write_text('{"apple": 100}\n{"apple": 120, "tax": 1.5}\n{"apple": 7.25}\n')
    out = tmp_path / "o.jsonl"
    cli("batch", APPLE, src, "--set", "tax=1.25", "-s", "apple_num=3", "-o", out)
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [list(r)[: len(r) - 4] for r in rows] == [["apple"], ["apple", "tax"], ["apple"]]  # --set is not echoed
    for r, own in zip(rows, [{"apple": 100.0}, {"apple": 120.0, "tax": 1.5}, {"apple": 7.25}]):
        single = single_run(APPLE, {"tax": 1.25, "apple_num": 3.0} | own)
        assert all(same_bits(r[n], single[n]) for n in RESULTS)
    src.write_text('{"apple": 100}\n{"apple": 7.25}\n')
    header, cells = table(cli("batch", APPLE, src, "--set", "tax=1.25").stdout)  # CSV: the rows' own columns
    assert header == ["apple", *RESULTS]
    for row in cells:
        single = single_run(APPLE, {"apple": float(row[0]), "tax": 1.25})
        assert all(same_bits(float(c), single[n]) for c, n in zip(row[1:], RESULTS))


def test_set_an_array_input(tmp_path):
    src = apple_csv(tmp_path, "b\n0.5\n-1\n", "n.csv")
    out = tmp_path / "o.jsonl"
    cli("batch", GRAPHS / "neuron.yaml", src, "--set", "w=[0.1, 0.2, 0.3]", "-o", out)
    for line, b in zip(out.read_text().splitlines(), [0.5, -1.0]):
        got, single = json.loads(line), single_run(GRAPHS / "neuron.yaml", {"b": b, "w": [0.1, 0.2, 0.3]})
        assert same_bits(got["y"], single["y"]) and all(map(same_bits, got["dy/dw"], single["dy/dw"]))


# --- intermediate nodes ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("out_name", ["o.csv", "o.jsonl"])
def test_nodes_and_their_gradients_equal_single_runs(tmp_path, out_name):
    src = apple_csv(tmp_path, "x,y\n1.5,2\n-0.3,0.7\n2.25,3.5\n")
    out = tmp_path / out_name
    cli("batch", EXPRESSIONS, src, "--nodes", "f.1,f.5", "--nodes", "f.4", "--nodes-grad", "-o", out)
    names = ["x", "y", "f", "g", "f.1", "f.5", "f.4", "df/dx", "df/dy", "df/df.1", "df/df.5", "df/df.4"]
    if out_name.endswith(".csv"):
        header, cells = table(out.read_text())
        assert header == names
        rows = [dict(zip(header, map(float, c))) for c in cells]
    else:
        rows = [json.loads(x) for x in out.read_text().splitlines()]
        assert all(list(r) == names for r in rows)
    for r in rows:
        single = single_run(EXPRESSIONS, {"x": r["x"], "y": r["y"]})
        assert all(same_bits(r[n], single[n]) for n in names[2:]), r


def test_nodes_of_arrays_and_a_node_without_gradient(tmp_path):
    graph = GRAPHS / "softmax_cross_entropy.yaml"
    src = tmp_path / "r.jsonl"
    src.write_text('{"b": [0.0, 0.1, -0.1]}\n{"b": [1.0, -2.0, 0.5]}\n')
    out = tmp_path / "o.jsonl"
    cli("batch", graph, src, "--nodes", "scores,pred", "--nodes-grad", "-o", out)
    for line, b in zip(out.read_text().splitlines(), [[0.0, 0.1, -0.1], [1.0, -2.0, 0.5]]):
        got, single = json.loads(line), single_run(graph, {"b": b})
        assert "dloss/dpred" not in got  # argmax takes no gradient: no column
        for name in ("scores", "pred", "dloss/dscores"):
            np.testing.assert_array_equal(got[name], single[name])


# --- float formats -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("args, fmt", [(["--precision", "4"], "%.4g"), (["--float-format", "%.3e"], "%.3e"), (["-p", "17"], "%.17g"), (["--float-format", "%.2f"], "%.2f")])  # fmt: skip
def test_float_formats_write_each_result_by_the_format_and_leave_inputs_alone(tmp_path, args, fmt):
    text = "x,y\n1.5,2\n-0.3,0.7\n1e-300,1e300\n"
    src = apple_csv(tmp_path, text)
    header, rows = table(cli("batch", EXPRESSIONS, src, *args).stdout)
    for row, cells in zip(rows, table(text)[1]):
        assert row[:2] == cells  # the inputs as they were read
        single = single_run(EXPRESSIONS, {"x": float(cells[0]), "y": float(cells[1])})
        want = [fmt % single[n] for n in header[2:]]
        assert row[2:] == [{"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}.get(w.lower(), w) for w in want]
    out = tmp_path / "o.jsonl"
    cli("batch", EXPRESSIONS, src, *args, "-o", out)
    for line in out.read_text().splitlines():
        obj = json.loads(line)  # still JSON
        single = single_run(EXPRESSIONS, {"x": obj["x"], "y": obj["y"]})
        for name in header[2:]:
            v = single[name]
            assert line.count(f'"{name}": {fmt % v}') == 1 or not math.isfinite(v)


@PROPERTY
@given(
    st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=1, max_size=6),
    st.sampled_from(["%.6f", "%.3g", "%#.3g", "%.10e", "%E", "%.0f", "%G"]),
)
def test_a_float_format_is_python_s_percent_formatting_of_the_single_runs_value(tmp_path_factory, xs, fmt):
    tmp = tmp_path_factory.mktemp("fmt")
    src = apple_csv(tmp, "x,y\n" + "".join(f"{x!r},2.5\n" for x in xs))
    header, rows = table(cli("batch", EXPRESSIONS, src, "--float-format", fmt, "--output", "g").stdout)
    for row, x in zip(rows, xs):
        try:
            g = -(x**2)  # g = -x ** 2, by hand
        except OverflowError:
            g = -math.inf
        assert row[header.index("g")] == ({"-inf": "-Infinity"}.get((fmt % g).lower(), fmt % g))


# --- delimiters --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("given, d", [(";", ";"), ("tab", "\t"), ("\\t", "\t"), ("|", "|")])
def test_delimiter_in_and_out_is_the_comma_output_with_the_other_delimiter(tmp_path, given, d):
    comma = apple_csv(tmp_path, "apple,apple_num\n100,2\n120.5,3\n", "comma.csv")
    other = apple_csv(tmp_path, f"apple{d}apple_num\n100{d}2\n120.5{d}3\n", "other.csv")
    want = cli("batch", APPLE, comma).stdout
    assert cli("batch", APPLE, other, "--delimiter", given).stdout == want.replace(",", d)
    out = tmp_path / "o.jsonl"  # CSV in, JSON Lines out: read with the delimiter
    cli("batch", APPLE, other, "-d", given, "-o", out)
    assert out.read_text() == cli("batch", APPLE, comma, "--out-format", "jsonl").stdout


def test_delimiter_quotes_kept_text_that_holds_it(tmp_path):
    src = apple_csv(tmp_path, 'id;apple\n"a;b";1\nplain;2\n')
    r = cli("batch", APPLE, src, "-d", ";", "--keep", "id")
    header, rows = table(r.stdout, ";")
    assert header == ["id", "apple", *RESULTS] and [x[0] for x in rows] == ["a;b", "plain"]
    jsonl = tmp_path / "r.jsonl"
    jsonl.write_text('{"id": "x;y", "apple": 1}\n')
    header, rows = table(cli("batch", APPLE, jsonl, "-d", ";", "--keep", "id", "--out-format", "csv").stdout, ";")
    assert rows[0][0] == "x;y"


# --- the rows' format, stdin -------------------------------------------------------------------------------------


def test_json_lines_on_stdin_is_read_as_json_lines(tmp_path):
    rows = '{"apple": 100, "tax": 1.5}\n{"apple": 2}\n'
    want = cli("batch", APPLE, "-", "--rows-format", "jsonl", input=rows).stdout
    assert cli("batch", APPLE, "-", input=rows).stdout == want  # found by its first character
    assert cli("batch", APPLE, "-", input="\ufeff  \n" + rows).stdout == want  # after a byte-order mark and blanks
    header, _ = table(want)
    assert header == ["apple", "tax", *RESULTS]
    assert cli("batch", APPLE, "-", input="apple\n100\n").stdout.startswith("apple,price,")
    r = cli("batch", APPLE, "-", "--rows-format", "csv", input=rows, code=2)  # as asked, even when it is not
    assert "error: <stdin>:1:1: " in r.stderr


def test_a_rows_file_whose_name_says_nothing_is_read_by_its_content(tmp_path, csv_path):
    (tmp_path / "rows.txt").write_text('{"apple": 100}\n')
    assert cli("batch", APPLE, tmp_path / "rows.txt").stdout.startswith("apple,price,")
    pq = parquet(csv_path)
    import pyarrow as pa

    pq.write_table(pa.table({"apple": [100.0]}), tmp_path / "rows.bin")
    assert cli("batch", APPLE, tmp_path / "rows.bin").stdout == cli("batch", APPLE, tmp_path / "rows.txt").stdout


# --- kept text round-trips ---------------------------------------------------------------------------------------

TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00"), max_size=8)


@PROPERTY
@given(st.lists(st.tuples(TEXT, st.floats(-1e6, 1e6)), min_size=1, max_size=5), st.sampled_from([",", ";", "\t"]))
def test_kept_text_comes_out_as_the_csv_module_reads_it(tmp_path_factory, rows, d):
    tmp = tmp_path_factory.mktemp("keep")
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=d, lineterminator="\n")
    w.writerow(["note", "apple"])
    w.writerows([[text, repr(x)] for text, x in rows])
    src = apple_csv(tmp, buf.getvalue())
    expected = [r[0] for r in list(csv.reader(io.StringIO(buf.getvalue()), delimiter=d))[1:]]
    header, got = table(cli("batch", APPLE, src, "-d", d, "--keep", "note").stdout, d)
    assert [r[0] for r in got] == expected
    out = tmp / "o.jsonl"
    cli("batch", APPLE, src, "-d", d, "--keep", "note", "-o", out)
    assert [json.loads(x)["note"] for x in out.read_text(encoding="utf-8").splitlines()] == expected


def test_the_example_graphs_these_tests_use():
    g = cgcalc.load(EXPRESSIONS)
    assert list(g.inputs) == ["x", "y"] and list(g.outputs) == ["f", "g"]
    assert {"f.1", "f.4", "f.5"} <= set(g.plan.names)


def test_no_rows_still_give_the_header_with_the_kept_columns(tmp_path, csv_path):
    assert cli("batch", APPLE, apple_csv(tmp_path, "id,apple\n"), "--keep", "id", "--row-number").stdout == (
        "line,id,apple,price,dprice/dapple,dprice/dapple_num,dprice/dtax\n"
    )
    assert cli("batch", APPLE, "-", "--rows-format", "jsonl", "--keep", "id", input="").stdout == (
        "id,price,dprice/dapple,dprice/dapple_num,dprice/dtax\n"
    )
    pq = parquet(csv_path)
    cli("batch", APPLE, apple_csv(tmp_path, "id,apple\n"), "--keep", "id", "--row-number", "-o", tmp_path / "o.parquet")
    t = pq.read_table(tmp_path / "o.parquet")
    assert t.num_rows == 0 and [str(f.type) for f in t.schema][:3] == ["int64", "string", "double"]
