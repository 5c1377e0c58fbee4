"""The dask engine (`cgcalc.batch.dask_client.run_dask`) on a 2-worker LocalCluster on loopback: the same rows and
values as local batch, bad cells located, the output complete or absent, a worker killed mid-run."""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("distributed")
pytest.importorskip("dask.dataframe")
pytest.importorskip("pyarrow")

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from distributed import Client  # noqa: E402

from cgcalc.api import Graph, load  # noqa: E402
from cgcalc.batch import dask_client as dask_engine  # noqa: E402
from cgcalc.batch import dask_cluster, dask_dataset  # noqa: E402
from cgcalc.batch.dask_cluster import local_cluster  # noqa: E402
from cgcalc.batch.runner import run_rows
from cgcalc.errors import GraphError, RowsError, UsageError  # noqa: E402
from cgcalc.io.rows import CsvRows  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
GRAPHS = ROOT / "graphs"


def scalar_graphs() -> list[Path]:
    out = []
    for p in sorted(GRAPHS.glob("*.yaml")):
        plan = load(p).plan
        if all(not s for s in plan.shapes[: len(plan.inputs)]):
            out.append(p)
    return out


SCALAR = scalar_graphs()


def test_the_scalar_graphs_are_found():
    assert {"apple.yaml", "apple_orange.yaml", "expressions.yaml", "sigmoid.yaml"} <= {p.name for p in SCALAR}
    assert "two_layer_net.yaml" not in {p.name for p in SCALAR}


@pytest.fixture(scope="module")
def cluster():
    with (
        local_cluster(2) as c,  # as the engine starts one
        Client(c, set_as_default=False) as client,
    ):
        yield c.scheduler_address, client


def run(graph: Path, rows, out, scheduler, **kw) -> dask_engine.DaskSummary:
    return dask_engine.run_dask(graph.read_text(), str(graph), str(rows), str(out), scheduler=scheduler, **kw)


def values(rng, names: list[str], n: int) -> dict[str, np.ndarray]:
    # in (0.5, 3): log, division and exp are all defined; not round numbers, so every bit counts
    return {name: rng.uniform(0.5, 3.0, n) for name in names}


def write_parquet(d: Path, names: list[str], sizes: list[int], seed: int = 0) -> list[dict]:
    d.mkdir()
    rng = np.random.default_rng(seed)
    parts = []
    for i, n in enumerate(sizes):
        cols = values(rng, names, n)
        pq.write_table(pa.table(cols), d / f"part.{i}.parquet")
        parts.append(cols)
    return parts


def write_csv(path: Path, names: list[str], cols: dict, extra: str = "") -> None:
    rows = [",".join(repr(float(cols[n][i])) for n in names) for i in range(len(cols[names[0]]))]
    path.write_text(",".join(names) + "\n" + "\n".join(rows) + ("\n" if rows else "") + extra)


def read_parquet_parts(out: Path) -> tuple[list[str], dict[str, np.ndarray], list[int]]:
    files = sorted(out.iterdir())
    assert [f.name for f in files] == [f"part-{i:05d}.parquet" for i in range(len(files))]
    tables = [pq.read_table(f) for f in files]
    names = tables[0].column_names
    assert all(t.column_names == names for t in tables)
    assert all(t.schema.field(n).type == pa.float64() for t in tables for n in names)
    return (
        names,
        {n: np.concatenate([t.column(n).to_numpy() for t in tables]) for n in names},
        [t.num_rows for t in tables],
    )


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.ascontiguousarray(a, dtype=np.float64), np.ascontiguousarray(b, dtype=np.float64)
    return a.shape == b.shape and np.array_equal(a.view(np.int64), b.view(np.int64))


def assert_equals_local(g: Graph, names: list[str], given: dict, got_names: list[str], got: dict, output=None):
    res = g.run_batch({n: given[n] for n in names}, output=output).columns()
    assert got_names == names + list(res)
    for n in names:
        assert same_bits(got[n], given[n]), n
    for n, a in res.items():
        assert same_bits(got[n], np.broadcast_to(a, got[n].shape)), n


def no_leftovers(out: Path) -> None:
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.cgcalc-")]


# -- results equal local batch ------------------------------------------------------------------------------


@pytest.mark.parametrize("graph", SCALAR, ids=lambda p: p.stem)
def test_parquet_dataset_equals_run_batch(graph, tmp_path, cluster):
    g = load(graph)
    names = list(g.inputs)
    parts = write_parquet(tmp_path / "data", names, [40, 1, 0, 25])
    out = tmp_path / "out"
    s = run(graph, tmp_path / "data" / "*.parquet", out, cluster[0])
    got_names, got, counts = read_parquet_parts(out)
    assert counts == [40, 1, 0, 25]  # one part per file, in file order, the empty one included
    given = {n: np.concatenate([p[n] for p in parts]) for n in names}
    assert_equals_local(g, names, given, got_names, got)
    assert (s.rows, s.written, s.bad, s.files, s.partitions, s.out_format) == (66, 66, 0, 4, 4, "parquet")


@pytest.mark.parametrize("graph", SCALAR, ids=lambda p: p.stem)
def test_csv_glob_equals_local_batch_text(graph, tmp_path, cluster):
    """Each part file against `cgcalc batch`'s own engine (run_rows) on the same file: same header, the
    results' cells the same text, the input cells the same numbers."""
    g = load(graph)
    names = list(g.inputs)
    rng = np.random.default_rng(1)
    d = tmp_path / "rows"
    d.mkdir()
    for i, n in enumerate([30, 7, 12]):
        write_csv(d / f"r{i}.csv", names, values(rng, names, n))
    # blank lines, spaces, a quoted cell, exponents and integers: parsed as local batch parses them
    first = (d / "r0.csv").read_text().splitlines()
    first[2] = ",".join(f'"{c}"' if j == 0 else f" {c} " for j, c in enumerate(first[2].split(",")))
    first[3] = ",".join(["2"] + ["1.5e0"] * (len(names) - 1))
    (d / "r0.csv").write_text("\n" + "\n".join(first[:5] + [""] + first[5:]) + "\n\n")
    out = tmp_path / "out"
    s = run(graph, d / "r*.csv", out, cluster[0])
    assert sorted(p.name for p in out.iterdir()) == ["part-00000.csv", "part-00001.csv", "part-00002.csv"]
    for i in range(3):
        src = d / f"r{i}.csv"
        local = io.StringIO()
        with open(src, encoding="utf-8-sig", newline="") as f:
            run_rows(g.plan, CsvRows(f, str(src), names), local, "csv")
        want = local.getvalue().splitlines()
        got = (out / f"part-{i:05d}.csv").read_text().splitlines()
        assert got[0] == want[0]
        assert len(got) == len(want)
        for a, b in zip(got[1:], want[1:]):
            a_cells, b_cells = a.split(","), next(csv.reader([b]))
            assert a_cells[len(names) :] == b_cells[len(names) :]
            assert [float(c) for c in a_cells[: len(names)]] == [float(c) for c in b_cells[: len(names)]]
    assert (s.rows, s.written, s.files) == (49, 49, 3)


def test_some_columns_and_several_outputs(tmp_path, cluster):
    """Inputs a dataset leaves out keep the file's values; --output f g writes both gradients (CSV -> Parquet)."""
    graph = GRAPHS / "expressions.yaml"
    g = load(graph)
    rng = np.random.default_rng(2)
    d = tmp_path / "rows"
    d.mkdir()
    parts = [values(rng, ["y"], n) for n in (5, 9)]
    for i, p in enumerate(parts):
        write_csv(d / f"{i}.csv", ["y"], p)
    out = tmp_path / "out"
    run(graph, d, out, cluster[0], output=["g", "f"], out_format="parquet")
    got_names, got, counts = read_parquet_parts(out)
    assert counts == [5, 9]
    assert got_names == ["y", "f", "g", "dg/dx", "dg/dy", "df/dx", "df/dy"]
    assert_equals_local(g, ["y"], {"y": np.concatenate([p["y"] for p in parts])}, got_names, got, output=["g", "f"])


def test_a_large_parquet_file_is_split_by_row_groups(tmp_path, cluster, monkeypatch):
    graph = GRAPHS / "apple.yaml"
    g = load(graph)
    monkeypatch.setattr(dask_dataset, "PARQUET_PART_ROWS", 20)
    rng = np.random.default_rng(3)
    cols = values(rng, list(g.inputs), 70)
    cols["apple_num"] = rng.integers(0, 10, 70)  # integers are numbers too
    pq.write_table(pa.table(cols), tmp_path / "big.parquet", row_group_size=10)
    out = tmp_path / "out"
    s = run(graph, tmp_path / "big.parquet", out, cluster[0])
    got_names, got, counts = read_parquet_parts(out)
    assert counts == [20, 20, 20, 10] and s.partitions == 4
    cols["apple_num"] = cols["apple_num"].astype(np.float64)
    assert_equals_local(g, list(g.inputs), cols, got_names, got)


# -- bad cells ----------------------------------------------------------------------------------------------


def csv_dataset(d: Path, names: list[str], sizes: list[int]) -> None:
    d.mkdir()
    rng = np.random.default_rng(4)
    for i, n in enumerate(sizes):
        write_csv(d / f"f{i:02d}.csv", names, values(rng, names, n))


def test_a_bad_cell_in_the_third_csv_file(tmp_path, cluster):
    graph = GRAPHS / "apple_orange.yaml"
    names = list(load(graph).inputs)
    d = tmp_path / "rows"
    csv_dataset(d, names, [20, 20, 20, 20])
    third = d / "f02.csv"
    lines = third.read_text().splitlines()
    cells = lines[7].split(",")
    cells[2] = "12x"
    lines[7] = ",".join(cells)
    third.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    with pytest.raises(RowsError) as e:
        run(graph, d / "*.csv", out, cluster[0])
    col = len(cells[0]) + len(cells[1]) + 3
    assert (e.value.file, e.value.line, e.value.col) == (str(third), 8, col)
    assert str(e.value) == f"{third}:8:{col}: column 'orange': bad number '12x'"
    no_leftovers(out)


def test_skip_bad_rows_reports_each_and_writes_the_rest(tmp_path, cluster):
    graph = GRAPHS / "apple.yaml"
    g = load(graph)
    names = list(g.inputs)
    d = tmp_path / "rows"
    csv_dataset(d, names, [5, 6, 7])
    third = d / "f02.csv"
    lines = third.read_text().splitlines()
    lines[2] = "1,,3"
    lines[5] = "1,2"
    third.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    s = run(graph, d, out, cluster[0], skip_bad_rows=True, out_format="parquet")
    assert (s.rows, s.written, s.bad) == (18, 16, 2)
    assert [(e.file, e.line, e.col, e.message) for e in s.errors] == [
        (str(third), 3, 3, "column 'apple_num': empty cell"),
        (str(third), 6, 1, "row has 2 cells, the header has 3"),
    ]
    got_names, got, counts = read_parquet_parts(out)
    assert counts == [5, 6, 5]
    keep = [ln for i, ln in enumerate(lines[1:], start=2) if i not in (3, 6)]
    want = {n: [] for n in names}
    for f in (d / "f00.csv", d / "f01.csv"):
        for ln in f.read_text().splitlines()[1:]:
            for n, c in zip(names, ln.split(",")):
                want[n].append(float(c))
    for ln in keep:
        for n, c in zip(names, ln.split(",")):
            want[n].append(float(c))
    assert_equals_local(g, names, {n: np.array(v) for n, v in want.items()}, got_names, got)


def test_a_null_in_parquet_is_a_bad_cell_at_its_row(tmp_path, cluster):
    graph = GRAPHS / "apple.yaml"
    names = list(load(graph).inputs)
    d = tmp_path / "data"
    write_parquet(d, names, [10, 10, 10])
    t = pq.read_table(d / "part.2.parquet")
    tax = t.column("tax").to_pylist()
    tax[3] = None
    pq.write_table(t.set_column(2, "tax", pa.array(tax, pa.float64())), d / "part.2.parquet")
    out = tmp_path / "out"
    with pytest.raises(RowsError) as e:
        run(graph, d, out, cluster[0])
    assert (e.value.file, e.value.line, e.value.message) == (
        str(d / "part.2.parquet"),
        4,
        "column 'tax': empty cell (null)",
    )
    no_leftovers(out)
    s = run(graph, d, out, cluster[0], skip_bad_rows=True)
    assert (s.rows, s.written, s.bad) == (30, 29, 1)
    assert [(e.file, e.line) for e in s.errors] == [(str(d / "part.2.parquet"), 4)]


def test_columns_are_checked_before_anything_runs(tmp_path, cluster):
    graph = GRAPHS / "apple.yaml"
    d = tmp_path / "rows"
    d.mkdir()
    (d / "a.csv").write_text("apple,tax\n1,2\n")
    (d / "b.csv").write_text("apple\n1\n")
    with pytest.raises(RowsError) as e:
        run(graph, d / "*.csv", tmp_path / "out", cluster[0])
    assert (e.value.file, e.value.line) == (str(d / "b.csv"), 1)
    assert "no column 'tax'" in e.value.message
    (d / "b.csv").write_text("apple,taxx\n1,2\n")
    with pytest.raises(RowsError, match="unknown column 'taxx'.*did you mean 'tax'"):
        run(graph, d / "*.csv", tmp_path / "out", cluster[0])
    pq.write_table(pa.table({"apple": ["1"]}), tmp_path / "s.parquet")
    with pytest.raises(RowsError, match="column 'apple' holds string, not numbers"):
        run(graph, tmp_path / "s.parquet", tmp_path / "out", cluster[0])
    no_leftovers(tmp_path / "out")


def test_a_file_that_is_not_utf8(tmp_path, cluster):
    graph = GRAPHS / "apple.yaml"
    d = tmp_path / "rows"
    d.mkdir()
    (d / "a.csv").write_text("apple\n1\n")
    (d / "b.csv").write_bytes(b"apple\n1\n\xff\xfe2\n")  # the header reads fine; a row does not
    with pytest.raises(RowsError) as e:
        run(graph, d, tmp_path / "out", cluster[0])
    assert (e.value.file, e.value.message) == (str(d / "b.csv"), "not UTF-8 text")
    no_leftovers(tmp_path / "out")


def test_nonfinite_results_are_counted_and_located(tmp_path, cluster):
    graph = GRAPHS / "expressions.yaml"
    d = tmp_path / "rows"
    d.mkdir()
    (d / "a.csv").write_text("x,y\n1,2\n")
    (d / "b.csv").write_text("x,y\n1,2\n1,0\n1,-1\n")
    s = run(graph, d, tmp_path / "out", cluster[0])
    assert (s.written, s.nonfinite, s.first_nonfinite_file, s.first_nonfinite_line) == (4, 2, str(d / "b.csv"), 3)
    rows = (tmp_path / "out" / "part-00001.csv").read_text().splitlines()
    # f = exp(-1)/0 - log(0) and f = ... - log(-1), written as local batch writes them
    assert [r.split(",")[2] for r in rows[1:]] == ["1.490792540025776", "Infinity", "NaN"]


# -- the output: complete or absent -------------------------------------------------------------------------


def test_refuses_an_output_directory_that_holds_anything(tmp_path, cluster):
    graph = GRAPHS / "apple.yaml"
    write_parquet(tmp_path / "data", list(load(graph).inputs), [3])
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(UsageError, match="exists and is not empty"):
        run(graph, tmp_path / "data", out, cluster[0])
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    (out / "keep.txt").unlink()
    run(graph, tmp_path / "data", out, cluster[0])  # an empty directory is fine
    assert [p.name for p in out.iterdir()] == ["part-00000.parquet"]


def test_bad_usage_is_an_error_not_a_traceback(tmp_path, cluster, monkeypatch):
    graph = GRAPHS / "apple.yaml"
    write_parquet(tmp_path / "data", list(load(graph).inputs), [3])
    with pytest.raises(UsageError, match="no files match"):
        run(graph, tmp_path / "nothing*.csv", tmp_path / "out", cluster[0])
    with pytest.raises(UsageError, match="no input or node named 'prize'"):
        run(graph, tmp_path / "data", tmp_path / "out", cluster[0], output=["prize"])
    with pytest.raises(GraphError):
        dask_engine.run_dask(
            "nodes: {y: {op: nope, in: [x]}}\n",
            "bad.yaml",
            str(tmp_path / "data"),
            str(tmp_path / "out"),
            scheduler=cluster[0],
        )
    with pytest.raises(UsageError, match="one number per cell"):
        neuron = GRAPHS / "neuron.yaml"
        pq.write_table(pa.table({"b": [0.5]}), tmp_path / "b.parquet")
        run(neuron, tmp_path / "b.parquet", tmp_path / "out", cluster[0])
    monkeypatch.setattr(dask_cluster, "CONNECT_TIMEOUT", 1)
    with pytest.raises(UsageError, match="cannot connect to the dask scheduler at tcp://127.0.0.1:9"):
        run(graph, tmp_path / "data", tmp_path / "out", "tcp://127.0.0.1:9")
    no_leftovers(tmp_path / "out")


# -- the workers --------------------------------------------------------------------------------------------


def test_each_worker_compiles_the_graph_once(tmp_path, cluster):
    graph = GRAPHS / "reuse.yaml"
    text = graph.read_text() + "# compiled-once test\n"  # a key no other test used
    path = tmp_path / "reuse.yaml"
    path.write_text(text)
    write_parquet(tmp_path / "data", ["a"], [2] * 12)
    s = run(path, tmp_path / "data", tmp_path / "out", cluster[0])
    assert s.partitions == 12
    key = dask_engine.graph_key(text, str(path))
    counts = cluster[1].run(lambda: dask_engine._COMPILED.get(key, 0))
    assert sum(counts.values()) >= 1
    assert set(counts.values()) <= {0, 1}, counts  # never once per partition


ROWS_PER_PART = 30_000  # slow enough (CSV output) that work is left when the first partition is done


def assert_complete_and_exact(out: Path, parts: list[dict], g: Graph) -> None:
    """Every partition's part file, every row once, in order, every bit as local run_batch computes it."""
    files = sorted(out.iterdir())
    assert [f.name for f in files] == [f"part-{i:05d}.csv" for i in range(len(parts))]  # no stray temporaries
    for f, p in zip(files, parts):
        res = g.run_batch(p).columns()
        table = np.loadtxt(f, delimiter=",", skiprows=1, ndmin=2)
        assert table.shape == (ROWS_PER_PART, 2 + len(res))
        assert same_bits(table[:, 0], p["x"]) and same_bits(table[:, 1], p["y"])
        for j, a in enumerate(res.values()):
            assert same_bits(table[:, 2 + j], a)


def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(tmp_path, cluster):
    graph = GRAPHS / "expressions.yaml"
    parts = write_parquet(tmp_path / "data", ["x", "y"], [ROWS_PER_PART] * 10, seed=5)
    address, client = cluster
    pids = client.run(os.getpid)
    killed = {}

    def progress(done: int, total: int) -> None:
        if 1 <= done < total and not killed:
            busy = [w for w, keys in client.processing().items() if keys]
            assert busy, "every partition was done before the kill: make them slower"
            killed["pid"], killed["left"] = pids[busy[0]], total - done
            os.kill(killed["pid"], signal.SIGKILL)

    out = tmp_path / "out"
    s = run(graph, tmp_path / "data", out, address, out_format="csv", progress=progress)
    assert killed and killed["left"] > 0
    client.wait_for_workers(2, timeout=30)
    assert killed["pid"] not in client.run(os.getpid).values()  # the nanny started a new process
    assert (s.rows, s.written, s.partitions) == (10 * ROWS_PER_PART, 10 * ROWS_PER_PART, 10)
    assert_complete_and_exact(out, parts, load(graph))


def test_a_cluster_restart_mid_run_is_survived(tmp_path, cluster):
    """`client.restart()` kills every worker and cancels every future: the partitions not done are resubmitted."""
    graph = GRAPHS / "expressions.yaml"
    parts = write_parquet(tmp_path / "data", ["x", "y"], [ROWS_PER_PART] * 10, seed=6)
    address, client = cluster
    pids = set(client.run(os.getpid).values())
    seen, restarted = [], []

    def progress(done: int, total: int) -> None:
        seen.append(done)
        if 1 <= done < total and not restarted:
            restarted.append(done)
            client.restart()  # returns when the new workers are up

    out = tmp_path / "out"
    s = run(graph, tmp_path / "data", out, address, out_format="csv", progress=progress)
    assert not pids & set(client.run(os.getpid).values())  # every worker is a new process
    assert restarted and seen[0] == 0 and seen[-1] == 10 and seen == sorted(set(seen))  # each partition once
    assert (s.rows, s.written, s.partitions) == (10 * ROWS_PER_PART, 10 * ROWS_PER_PART, 10)
    assert_complete_and_exact(out, parts, load(graph))


def test_without_a_scheduler_a_local_cluster_is_started_and_closed(tmp_path):
    graph = GRAPHS / "sigmoid.yaml"
    parts = write_parquet(tmp_path / "data", ["x"], [4, 3])
    s = run(graph, tmp_path / "data", tmp_path / "out", None, workers=1)
    assert (s.written, s.workers) == (7, 1)
    got_names, got, _ = read_parquet_parts(tmp_path / "out")
    g = load(graph)
    assert_equals_local(g, ["x"], {"x": np.concatenate([p["x"] for p in parts])}, got_names, got)


# -- packaging ----------------------------------------------------------------------------------------------


def test_the_core_never_imports_dask():
    code = (
        "import sys, cgcalc, cgcalc.cli.app, cgcalc.batch.runner, cgcalc.batch.dask_client; "
        "print(sorted(m for m in ('dask', 'distributed', 'pandas', 'pyarrow') if m in sys.modules))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "[]"


def test_without_dask_the_error_says_what_to_install():
    code = (
        "import sys; sys.modules['distributed'] = None\n"
        "from cgcalc.batch.dask_client import require_dask\n"
        "try:\n    require_dask()\nexcept Exception as e:\n    print(type(e).__name__, e)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == (
        "UsageError --engine dask needs distributed, which is not installed: pip install 'cgcalc[dask]'"
    )


# --- through the command line ----------------------------------------------------------------------


def test_cli_engine_dask_equals_local_batch(tmp_path, cluster):
    from typer.testing import CliRunner

    from cgcalc.cli.app import app

    rng = np.random.default_rng(3)
    paths = []
    for i in range(3):
        p = tmp_path / f"rows{i}.csv"
        rows = rng.uniform(1, 200, size=(5, 2))
        p.write_text("apple,tax\n" + "".join(f"{a!r},{t!r}\n" for a, t in rows.tolist()))
        paths.append(p)
    runner = CliRunner()
    address = cluster[0]
    out = tmp_path / "out"
    r = runner.invoke(
        app,
        [
            "batch",
            str(GRAPHS / "apple.yaml"),
            str(tmp_path / "rows*.csv"),
            "--engine",
            "dask",
            "--scheduler",
            address,
            "-o",
            str(out),
            "--out-format",
            "csv",
        ],
    )
    assert r.exit_code == 0, r.stderr
    parts = sorted(out.glob("part-*.csv"))
    assert len(parts) == 3
    got = [row for part in parts for row in csv.DictReader(io.StringIO(part.read_text()))]
    local = [
        row
        for p in paths
        for row in csv.DictReader(io.StringIO(runner.invoke(app, ["batch", str(GRAPHS / "apple.yaml"), str(p)]).stdout))
    ]
    assert len(got) == len(local) == 15
    for a, b in zip(got, local):
        for col in ("price", "dprice/dapple", "dprice/dapple_num", "dprice/dtax"):
            assert float(a[col]) == float(b[col])  # bit for bit, as parsed floats
        assert float(a["apple"]) == float(b["apple"])


def test_cli_engine_dask_needs_an_output_directory(tmp_path):
    from typer.testing import CliRunner

    from cgcalc.cli.app import app

    (tmp_path / "r.csv").write_text("apple\n1\n")
    r = CliRunner().invoke(app, ["batch", str(GRAPHS / "apple.yaml"), str(tmp_path / "r.csv"), "--engine", "dask"])
    assert r.exit_code == 2
    assert r.stderr.startswith("error: ") and "-o" in r.stderr and r.stderr.count("\n") == 1


def test_cli_local_engine_reads_one_parquet_file_and_names_a_missing_one(tmp_path):
    from typer.testing import CliRunner

    from cgcalc.cli.app import app

    r = CliRunner().invoke(app, ["batch", str(GRAPHS / "apple.yaml"), str(tmp_path / "r.parquet")])
    assert r.exit_code == 2 and r.stderr == f"error: {tmp_path / 'r.parquet'}: no such file\n"


# -- issue 17: the options of local batch, in the dask engine -----------------------------------------------


def _cli(*args):
    from typer.testing import CliRunner

    from cgcalc.cli.app import app

    r = CliRunner(env={"CGCALC_DEBUG": None}).invoke(app, [str(a) for a in args])
    assert r.exit_code == 0, r.stderr
    return r


def _csv_rows(text: str, delimiter: str = ",") -> list[dict]:
    return list(csv.DictReader(io.StringIO(text), delimiter=delimiter))


def test_cli_options_in_the_dask_engine_equal_local_batch_csv(tmp_path, cluster):
    """--keep, --row-number, --set, --nodes/--nodes-grad, --float-format and --delimiter: each part file has the
    columns, kept text and values of local batch of its file with the same options."""
    graph = GRAPHS / "apple.yaml"
    d = tmp_path / "rows"
    d.mkdir()
    texts = ['note;apple;id\n"a;b";100;1\nplain;120.5;2\n', 'note;apple;id\nZoë;7;3\n"say ""hi""";8.25;4\n']
    for i, text in enumerate(texts):
        (d / f"f{i}.csv").write_text(text, encoding="utf-8")
    opts = ["--keep", "id,note", "--row-number", "--set", "tax=1.25", "--nodes", "apple_price", "--nodes-grad"]
    opts += ["--float-format", "%.6g", "--delimiter", ";"]
    _cli("batch", graph, d, *opts, "--engine", "dask", "--scheduler", cluster[0], "-o", tmp_path / "out")
    parts = sorted((tmp_path / "out").glob("part-*.csv"))
    assert len(parts) == 2
    for part, i in zip(parts, range(2)):
        got = _csv_rows(part.read_text(encoding="utf-8"), ";")
        local = _csv_rows(_cli("batch", graph, d / f"f{i}.csv", *opts).stdout, ";")
        assert [list(r) for r in got] == [list(r) for r in local]
        assert list(got[0])[:4] == ["line", "id", "note", "apple"]
        for a, b in zip(got, local):
            assert (a["line"], a["id"], a["note"]) == (b["line"], b["id"], b["note"])
            assert float(a["apple"]) == float(b["apple"])
            assert [a[k] for k in list(a)[4:]] == [b[k] for k in list(b)[4:]]  # results, by the same format


def test_options_in_the_dask_engine_equal_local_batch_parquet(tmp_path, cluster):
    graph = GRAPHS / "apple.yaml"
    d = tmp_path / "rows"
    d.mkdir()
    tables = [
        pa.table({"id": pa.array([1, 2], pa.int64()), "apple": [1.5, 2.5], "tag": ["x", None]}),
        pa.table({"id": pa.array([3], pa.int64()), "apple": [4.0], "tag": ["z"]}),
    ]
    for i, t in enumerate(tables):
        pq.write_table(t, d / f"f{i}.parquet")
    opts = ["--keep-all", "--row-number", "--nodes", "apple_price"]
    _cli("batch", graph, d, *opts, "--engine", "dask", "--scheduler", cluster[0], "-o", tmp_path / "out")
    parts = sorted((tmp_path / "out").glob("part-*.parquet"))
    for i, part in enumerate(parts):
        local = tmp_path / f"local{i}.parquet"
        _cli("batch", graph, d / f"f{i}.parquet", *opts, "-o", local)
        got, want = pq.read_table(part), pq.read_table(local)
        assert got.schema.equals(want.schema) and got.equals(want)
    assert str(pq.read_table(parts[0]).schema.field("id").type) == "int64"


def _bad_rows_of(tmp_path, cluster, f0: str, f1: str):
    """`batch --bad-rows` of apple.yaml over two CSV files in the dask engine: (the run, the bad-rows file, the
    files' folder)."""
    d = tmp_path / "rows"
    d.mkdir()
    (d / "f0.csv").write_text(f0)
    (d / "f1.csv").write_text(f1)
    bad = tmp_path / "bad.csv"
    r = _cli(
        "batch", GRAPHS / "apple.yaml", d, "--bad-rows", bad, "--engine", "dask", "--scheduler", cluster[0],
        "-o", tmp_path / "out",
    )  # fmt: skip
    return r, bad, d


def test_bad_rows_file_of_the_dask_engine_names_each_file(tmp_path, cluster):
    r, bad, d = _bad_rows_of(tmp_path, cluster, "apple,tax\n1,2\nx,1\n", "apple,tax\n3,\n4,5\n")
    assert bad.read_text() == (
        "file,line,error,apple,tax\n"
        f"{d / 'f0.csv'},3,column 'apple': bad number 'x',x,1\n"
        f"{d / 'f1.csv'},2,column 'tax': empty cell,3,\n"
    )
    assert r.stderr == f"warning: 2 bad rows skipped of 4 (written to {bad}); 2 written\n"


def test_bad_rows_of_a_file_with_its_columns_in_another_order_are_written_in_the_header_s_order(tmp_path, cluster):
    # the bad-rows file has one header, the first file's: a row of f1 (tax,apple) goes in as apple,tax, so that
    # fixed and read back it means what it meant; a row that is bad for its number of cells stays as read
    graph = GRAPHS / "apple.yaml"
    _, bad, _ = _bad_rows_of(tmp_path, cluster, "apple,tax\n1,2\n", 'tax,apple\n0.5,x\n"1,5",2\n7\n0.25,4\n')
    lines = bad.read_text().splitlines()
    assert lines[0] == "file,line,error,apple,tax"
    assert [line.split(",", 3)[1] for line in lines[1:]] == ["2", "3", "4"]
    assert lines[1].endswith(",x,0.5") and lines[2].endswith(',2,"1,5"') and lines[3].endswith(",7")
    fixed = tmp_path / "fixed.csv"  # the first row fixed by hand, read back by local batch with its columns
    fixed.write_text(lines[0] + "\n" + lines[1].replace(",x,", ",3,") + "\n")
    out = _csv_rows(_cli("batch", graph, fixed, "--keep", "file,line,error", "-o", "-").stdout)
    assert float(out[0]["price"]) == 3 * 2 * 0.5  # apple 3, apple_num 2 (the file's), tax 0.5


def test_the_dask_engine_reads_local_batch_output_back_with_ignore_outputs(tmp_path, cluster):
    graph = GRAPHS / "apple.yaml"
    src = tmp_path / "rows.csv"
    src.write_text("id,apple\na,1.5\nb,2.5\n")
    first = tmp_path / "first" / "f.csv"
    first.parent.mkdir()
    _cli("batch", graph, src, "--keep", "id", "-o", first)
    _cli("batch", graph, first.parent, "--keep-all", "--ignore-outputs", "--engine", "dask", "--scheduler", cluster[0], "-o", tmp_path / "out")  # fmt: skip
    got = _csv_rows((tmp_path / "out" / "part-00000.csv").read_text())
    want = _csv_rows(first.read_text())
    assert [list(r) for r in got] == [list(r) for r in want]
    assert [(r["id"], float(r["price"])) for r in got] == [(r["id"], float(r["price"])) for r in want]
