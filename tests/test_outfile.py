"""`-o` never replaces what it does not own (cgcalc/io/atomic.py): devices and FIFOs are written directly, a symlink's
target is replaced and the link kept, a file keeps its mode and owner, an input is never the output, and a full
disk is one line with nothing partial. Devices are nodes the tests make in their own folder (with the numbers of
/dev/null and /dev/full), never the machine's /dev entries."""

from __future__ import annotations

import os
import stat
import subprocess
import threading
from pathlib import Path

import pytest
from cli_helpers import cli, one_error_line
from proc_helpers import CGCALC, GRAPHS

from cgcalc.errors import UsageError
from cgcalc.io import atomic as outfile

APPLE = GRAPHS / "apple.yaml"
ROWS = "apple,apple_num\n100,2\n120,3\n"
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="making device nodes needs root")


def device(path: Path, like: str) -> Path:
    """A character device node at `path` with the numbers of /dev/null or /dev/full."""
    os.mknod(path, 0o666 | stat.S_IFCHR, os.stat(like).st_rdev)
    return path


def same_device(path: Path, like: str) -> bool:
    st = os.lstat(path)
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == os.stat(like).st_rdev


def expected(*args) -> str:
    r = cli(*args)
    assert r.exit_code == 0, r.stderr
    return r.stdout


def rows_file(tmp_path: Path) -> Path:
    p = tmp_path / "rows.csv"
    p.write_text(ROWS)
    return p


def read_fifo(path: Path) -> tuple[threading.Thread, list[bytes]]:
    """A reader for a FIFO, as `-o >(gzip > x.gz)` has one."""
    got: list[bytes] = []

    def read() -> None:
        with open(path, "rb") as f:
            got.append(f.read())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return reader, got


# --- devices, FIFOs, /dev/stdout: written directly, never replaced ------------------------------------------


@root_only
@pytest.mark.parametrize("command", ["export", "batch"])
def test_a_character_device_is_written_not_replaced(tmp_path, command):
    null = device(tmp_path / "null", "/dev/null")
    args = [APPLE, "-o", null] if command == "export" else [APPLE, rows_file(tmp_path), "-o", null]
    r = cli(command, *args)
    assert r.exit_code == 0, r.stderr
    assert same_device(null, "/dev/null")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["null"] + (["rows.csv"] if command == "batch" else []))


@pytest.mark.parametrize("command", ["export", "batch"])
def test_a_fifo_is_written_not_replaced(tmp_path, command):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    args = [APPLE] if command == "export" else [APPLE, rows_file(tmp_path)]
    reader, got = read_fifo(fifo)
    r = cli(command, *args, "-o", fifo)
    reader.join(timeout=30)
    assert r.exit_code == 0, r.stderr
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert got == [expected(command, *args).encode()]


def test_dev_stdout_and_dev_fd_are_written_directly(tmp_path):
    # stdout appending to a file: writing /dev/stdout appends to it (replacing the file would lose "kept")
    out = tmp_path / "out.dot"
    out.write_text("kept\n")
    with open(out, "ab") as f:
        proc = subprocess.run(
            [*CGCALC, "export", APPLE, "-o", "/dev/stdout"], stdout=f, stderr=subprocess.PIPE, check=False
        )
    assert proc.returncode == 0, proc.stderr
    assert out.read_text() == "kept\n" + expected("export", APPLE)
    # -o >(cat > x): a pipe, through /dev/fd/N
    x = tmp_path / "x.csv"
    proc = subprocess.run(
        ["bash", "-c", f'"$@" -o >(cat > {x}); wait', "bash", *CGCALC, "batch", str(APPLE), str(rows_file(tmp_path))],
        capture_output=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert x.read_text() == expected("batch", APPLE, tmp_path / "rows.csv")


def test_the_targets_of_paths():
    assert outfile.target(None) == outfile.target("-") == outfile.Target("<stdout>", fd=1)
    assert outfile.target("/dev/stdout").fd == 1
    assert outfile.target("/dev/fd/7").fd == 7
    assert outfile.target(f"/proc/{os.getpid()}/fd/5").fd == 5
    assert outfile.target("/proc/self/fd/2").fd == 2


def test_a_failed_block_writes_nothing_to_a_fifo(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(RuntimeError, match="the work failed"), outfile.output(str(fifo)) as f:
        f.write("partial")
        raise RuntimeError("the work failed")
    # nothing was opened: a reader would still be waiting for a writer
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        assert os.read(fd, 100) == b""
    finally:
        os.close(fd)
    assert os.listdir(tmp_path) == ["fifo"]


def test_a_directory_is_refused(tmp_path):
    line = one_error_line(cli("export", APPLE, "-o", tmp_path))
    assert line == f"error: {tmp_path}: is a directory (give a file name)"


# --- symlinks, mode and owner ------------------------------------------------------------------------------


def test_a_symlink_is_kept_and_its_target_written(tmp_path):
    target = tmp_path / "real" / "graph.dot"
    target.parent.mkdir()
    target.write_text("old\n")
    link = tmp_path / "link.dot"
    link.symlink_to(target)
    assert cli("export", APPLE, "-o", link).exit_code == 0
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == expected("export", APPLE)
    assert sorted(os.listdir(target.parent)) == ["graph.dot"]  # no temporary file beside the target either


def test_a_dangling_symlink_gets_its_target_made(tmp_path):
    link = tmp_path / "link.csv"
    link.symlink_to(tmp_path / "new.csv")
    assert cli("batch", APPLE, rows_file(tmp_path), "-o", link).exit_code == 0
    assert link.is_symlink() and (tmp_path / "new.csv").read_text() == expected("batch", APPLE, tmp_path / "rows.csv")


@root_only
def test_an_existing_file_keeps_its_mode_and_owner(tmp_path):
    out = tmp_path / "out.csv"
    out.write_text("old\n")
    os.chmod(out, 0o640)
    os.chown(out, 1234, 5678)
    assert cli("batch", APPLE, rows_file(tmp_path), "-o", out).exit_code == 0
    st = os.stat(out)
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o640, 1234, 5678)
    assert out.read_text() != "old\n"


def test_a_new_file_gets_the_usual_mode(tmp_path):
    umask = os.umask(0o027)
    try:
        assert cli("export", APPLE, "-o", tmp_path / "g.dot").exit_code == 0
    finally:
        os.umask(umask)
    assert stat.S_IMODE(os.stat(tmp_path / "g.dot").st_mode) == 0o640


# --- an input is never the output ---------------------------------------------------------------------------


def test_the_graph_file_as_the_output_is_refused(tmp_path):
    g = tmp_path / "g.yaml"
    g.write_text(APPLE.read_text())
    line = one_error_line(cli("export", g, "-o", g, "--format", "dot"))
    assert line.startswith(f"error: {g}: the output is the graph file ({g}) itself")
    assert g.read_text() == APPLE.read_text()


@pytest.mark.parametrize("how", ["same", "symlink", "hard link"])
def test_the_rows_file_as_the_output_is_refused(tmp_path, how):
    rows = rows_file(tmp_path)
    out = rows
    if how == "symlink":
        out = tmp_path / "out.csv"
        out.symlink_to(rows)
    elif how == "hard link":
        out = tmp_path / "out.csv"
        os.link(rows, out)
    line = one_error_line(cli("batch", APPLE, rows, "-o", out))
    assert f"the output is the rows file ({rows}) itself" in line
    assert rows.read_text() == ROWS


@root_only
def test_dev_null_as_input_and_output_is_fine(tmp_path):
    null = device(tmp_path / "null", "/dev/null")
    r = cli("batch", APPLE, rows_file(tmp_path), "-o", null)
    assert r.exit_code == 0, r.stderr
    line = one_error_line(cli("batch", APPLE, null, "-o", null))  # read as rows, /dev/null is an empty file
    assert "empty" in line and "itself" not in line


# --- a full disk: one line, nothing partial ------------------------------------------------------------------


@root_only
@pytest.mark.parametrize("command", ["export", "batch", "batch-jsonl"])
def test_a_full_device_is_one_line_and_exit_2(tmp_path, command):
    full = device(tmp_path / "full", "/dev/full")
    args = {
        "export": ["export", APPLE],
        "batch": ["batch", APPLE, rows_file(tmp_path)],
        "batch-jsonl": ["batch", APPLE, rows_file(tmp_path), "--out-format", "jsonl"],
    }[command]
    line = one_error_line(cli(*args, "-o", full))
    assert line == f"error: {full}: No space left on device"
    assert same_device(full, "/dev/full")


def fsize_limited(limit: int):
    """For subprocess' preexec_fn: files may grow to `limit` bytes; a write beyond fails with EFBIG (as a full disk
    fails with ENOSPC) instead of killing the process."""
    import resource
    import signal

    def limit_it() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return limit_it


def test_a_file_that_cannot_grow_leaves_nothing_partial(tmp_path):
    rows = tmp_path / "rows.csv"
    rows.write_text("apple,apple_num\n" + "".join(f"{i},2\n" for i in range(20_000)))
    out = tmp_path / "out.csv"
    out.write_text("old\n")
    proc = subprocess.run(
        [*CGCALC, "batch", APPLE, rows, "-o", out, "--chunk-rows", "1000"],
        capture_output=True,
        preexec_fn=fsize_limited(100_000),
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.decode() == f"error: {out}: File too large\n"
    assert out.read_text() == "old\n"
    assert sorted(os.listdir(tmp_path)) == ["out.csv", "rows.csv"]


def test_usage_error_from_outfile_is_one_line():
    with pytest.raises(UsageError, match="is a directory"):
        outfile.target("/")


# --- a full or closed stdout: one line, for every command ----------------------------------------------------

STDOUT_COMMANDS = [
    ["--help"],
    ["--version"],
    ["ops"],
    ["validate", APPLE],
    ["run", APPLE],
    ["run", APPLE, "-f", "json"],
    ["check", APPLE],
    ["trace", APPLE],
    ["export", APPLE],
    ["batch", APPLE, "{rows}"],
]


def stdout_commands(tmp_path: Path) -> list[list[str]]:
    rows = str(rows_file(tmp_path))
    return [[rows if a == "{rows}" else str(a) for a in args] for args in STDOUT_COMMANDS]


@root_only
def test_a_full_stdout_is_one_line_for_every_command(tmp_path):
    full = device(tmp_path / "full", "/dev/full")
    for args in stdout_commands(tmp_path):
        with open(full, "wb") as f:
            proc = subprocess.run([*CGCALC, *args], stdout=f, stderr=subprocess.PIPE, check=False)
        assert (proc.returncode, proc.stderr) == (2, b"error: <stdout>: No space left on device\n"), args


def test_a_closed_stdout_is_one_line_for_every_command(tmp_path):
    for args in stdout_commands(tmp_path):
        proc = subprocess.run(
            ["bash", "-c", 'exec >&-; exec "$@"', "bash", *CGCALC, *args], stderr=subprocess.PIPE, check=False
        )
        assert (proc.returncode, proc.stderr) == (2, b"error: <stdout>: Bad file descriptor\n"), args
