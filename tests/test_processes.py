"""Stopping `cgcalc batch` from outside (Ctrl-C is in test_batch.py): SIGTERM and SIGHUP clean up as Ctrl-C does,
no worker process outlives the main one (even after SIGKILL), a killed worker is one line, and a graph that comes
through a pipe reaches the workers. Real processes, stopped with real signals; every wait has a deadline."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest
from proc_helpers import CGCALC, GRAPHS, Run, alive, apple_lines, descendants, needs_proc, wait_until

pytestmark = needs_proc
APPLE = GRAPHS / "apple.yaml"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_stop_signal_leaves_no_file_and_no_process(tmp_path, sig, jobs):
    out = tmp_path / "out" / "o.csv"
    out.parent.mkdir()
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    run = Run(
        ["-o", out, "--chunk-rows", "1000", "--jobs", jobs],
        apple_lines(5000),
        env={**os.environ, "TMPDIR": str(tmpdir)},
    )
    run.wait_for_output_file(out.parent)
    processes = run.wait_for_workers(2) + descendants(run.pid) if jobs == "2" else []
    stdout, stderr = run.stop(sig)
    assert run.proc.returncode == 128 + sig, stderr
    assert stderr.decode() == f"error: stopped by {signal.Signals(sig).name}\n"
    assert stdout == b""
    assert list(out.parent.iterdir()) == [] and list(tmpdir.iterdir()) == []
    wait_until(lambda: not any(map(alive, processes)), what="the worker processes to end")


def test_a_stop_signal_writing_to_stdout_stops_the_stream_and_leaves_nothing(tmp_path):
    # stdout is streamed (issue 17): the rows read so far are out, whole, before the stop; no temporary file
    run = Run(["--chunk-rows", "1000"], apple_lines(5000), env={**os.environ, "TMPDIR": str(tmp_path)})
    lines = [run.proc.stdout.readline() for _ in range(1 + 5000)]
    assert all(line.endswith(b"\n") for line in lines)
    stdout, stderr = run.stop(signal.SIGTERM)
    assert (run.proc.returncode, stdout, stderr) == (128 + signal.SIGTERM, b"", b"error: stopped by SIGTERM\n")
    assert list(tmp_path.iterdir()) == []


def test_no_worker_outlives_a_killed_main_process(tmp_path):
    run = Run(["-o", tmp_path / "o.csv", "--chunk-rows", "1000", "--jobs", "2"], apple_lines(5000))
    run.wait_for_output_file(tmp_path)
    run.wait_for_workers(2)
    processes = descendants(run.pid)  # the workers, their forkserver, multiprocessing's resource tracker
    run.stop(signal.SIGKILL)
    wait_until(lambda: not any(map(alive, processes)), seconds=20, what="every process of the run to end")


def test_a_killed_worker_is_one_line_and_nothing_written(tmp_path):
    out = tmp_path / "o.csv"
    run = Run(["-o", out, "--chunk-rows", "1000", "--jobs", "2"], apple_lines(5000))
    run.wait_for_output_file(tmp_path)
    os.kill(run.wait_for_workers(2)[0], signal.SIGKILL)
    stdout, stderr = run.proc.communicate(timeout=60)
    assert run.proc.returncode == 2
    assert stderr.decode() == (
        "error: <stdin>: a worker process stopped abruptly (killed, or out of memory?); "
        "nothing was written (run again, or with --jobs 1)\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_graph_through_a_pipe_reaches_the_workers(tmp_path):
    rows = tmp_path / "rows.csv"
    rows.write_bytes(b"apple,apple_num,tax\n" + apple_lines(3000))
    plain = subprocess.run([*CGCALC, "batch", APPLE, rows, "--jobs", "1"], capture_output=True, check=True)
    piped = subprocess.run(
        ["bash", "-c", f'"$@" <(cat {APPLE}) {rows} --jobs 2 --chunk-rows 500 -v', "bash", *CGCALC, "batch"],
        capture_output=True,
        check=False,
    )
    assert piped.returncode == 0, piped.stderr
    assert "by 2 worker processes" in piped.stderr.decode()
    assert piped.stdout == plain.stdout


def test_a_stop_signal_removes_the_dask_engines_temporary_directory(tmp_path):
    pytest.importorskip("distributed")
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "data").mkdir()
    for i in range(40):
        pq.write_table(
            pa.table({"apple": np.arange(1000.0), "apple_num": np.ones(1000)}), tmp_path / "data" / f"p{i}.parquet"
        )
    proc = subprocess.Popen(
        [*CGCALC, "batch", APPLE, tmp_path / "data", "--engine", "dask", "--workers", "2", "-o", tmp_path / "out"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        # the dataset is being made in a temporary directory beside -o, and the cluster is up
        wait_until(
            lambda: any(p.name.startswith(".out.cgcalc-") for p in tmp_path.iterdir()) or proc.poll() is not None,
            what="the temporary directory",
        )
        wait_until(lambda: len(descendants(proc.pid)) >= 2 or proc.poll() is not None, what="the cluster")
        assert proc.poll() is None, proc.communicate()
        processes = descendants(proc.pid)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 128 + signal.SIGTERM
    assert stderr.decode() == "error: stopped by SIGTERM\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
    wait_until(lambda: not any(map(alive, processes)), what="the cluster's processes to end")


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"], ["ops"]])
def test_a_reader_that_goes_away_is_exit_141_and_no_message(args):
    # `cgcalc --help | head -1`: click's own answer to a closed pipe was exit 1
    r, w = os.pipe()
    os.close(r)  # the reader is gone before the first byte
    try:
        proc = subprocess.run([*CGCALC, *args], stdout=w, stderr=subprocess.PIPE, timeout=60, check=False)
    finally:
        os.close(w)
    assert proc.returncode == 141, proc.stderr
    assert proc.stderr == b""
