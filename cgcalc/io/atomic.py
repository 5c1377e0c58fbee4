"""Output files: complete or absent, and never written in place of what cgcalc does not own. Every command that
writes a file (`export -o`, `batch -o`, the dask engine's dataset and its part files) goes through here.

- A regular file, or a name that does not exist yet, is written to a temporary file beside it and renamed into
  place when the work is done: a failed or interrupted run leaves the old file (or none) and no temporary file.
  An existing file keeps its mode and owner. A symbolic link is followed: its target is replaced that way,
  and the link stays.
- stdout, `/dev/stdout`, `/dev/fd/N`, a character device (`/dev/null`, a terminal) and a FIFO are written
  directly, never replaced or removed. What goes to them is kept in an anonymous temporary file (in $TMPDIR)
  and copied at the end, so that a failed run writes nothing there either.
- An output that is the same file as one of the command's inputs is refused before anything is written.
- A full disk is `error: OUT: No space left on device`, with nothing partial left behind.

Imports nothing from cgcalc but its errors.
"""

from __future__ import annotations

import errno
import io
import os
import re
import shutil
import stat
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import IO, NamedTuple

from ..errors import UsageError

NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # a full disk, a quota, a file-size limit
_FD_PATH = re.compile(r"/(?:dev/fd|proc/(?:self|thread-self|(\d+))/fd)/(\d+)")
_STD_PATHS = {"/dev/stdin": 0, "/dev/stdout": 1, "/dev/stderr": 2}
_PART = ".part"  # the suffix of every temporary file made here


class Target(NamedTuple):
    """Where an output goes: exactly one of `replace`, `fd`, `device` is set."""

    label: str  # the name the user gave, for messages
    replace: str | None = None  # a regular file (or a new one), symlinks resolved: written beside and renamed
    fd: int | None = None  # an open file descriptor of this process (1: stdout), written directly
    device: str | None = None  # a character device or a FIFO, opened and written directly


def target(path: str | None) -> Target:
    """What writing to `path` (None or '-': stdout) means; raises UsageError for what cgcalc never writes."""
    if path is None or path == "-":
        return Target("<stdout>", fd=1)
    fd = _fd_of(path)
    if fd is not None:
        return Target(path, fd=fd)
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
    except FileNotFoundError:
        return Target(path, replace=real)
    except OSError as e:
        raise UsageError(f"cannot write the file: {e.strerror or e}", file=path) from None
    if stat.S_ISREG(st.st_mode):
        return Target(path, replace=real)
    if stat.S_ISDIR(st.st_mode):
        raise UsageError("is a directory (give a file name)", file=path)
    if stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode):
        return Target(path, device=real)
    raise UsageError("is neither a file, a character device nor a FIFO: cgcalc does not write there", file=path)


def _fd_of(path: str) -> int | None:
    """N when `path` is, or is a chain of symbolic links through, /dev/stdout, /dev/fd/N or /proc/self/fd/N."""
    p = os.path.abspath(path)
    for _ in range(40):  # the kernel's own limit on links followed
        if p in _STD_PATHS:
            return _STD_PATHS[p]
        m = _FD_PATH.fullmatch(p)
        if m and (m.group(1) is None or int(m.group(1)) == os.getpid()):
            return int(m.group(2))
        if not os.path.islink(p):
            return None
        p = os.path.normpath(os.path.join(os.path.dirname(p), os.readlink(p)))
    return None


def refuse_inputs(t: Target, inputs: Sequence[tuple[str, str]]) -> None:
    """UsageError when the output is one of `inputs` ((what, path); '-' is stdin): writing it would destroy what
    is being read. A character device (`/dev/null` in and out) is no file to lose."""
    st = _stat(t)
    if st is None or stat.S_ISCHR(st.st_mode):
        return
    for what, path in inputs:
        if path == "-":
            si = _fstat(sys.stdin)
        else:
            try:
                si = os.stat(path)
            except (OSError, ValueError):
                continue
        if si is not None and (si.st_dev, si.st_ino) == (st.st_dev, st.st_ino):
            shown = "stdin" if path == "-" else path
            raise UsageError(
                f"the output is the {what} ({shown}) itself: writing it would destroy the input "
                "(choose another output)",
                file=t.label,
            )


def _stat(t: Target) -> os.stat_result | None:
    if t.fd == 1:
        return _fstat(sys.stdout)
    try:
        return os.fstat(t.fd) if t.fd is not None else os.stat(t.replace or t.device)
    except OSError:
        return None  # not there yet (or a bad descriptor: said when it is written)


def _fstat(stream) -> os.stat_result | None:
    try:
        return os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):  # closed, or a test's stand-in
        return None


@contextmanager
def output(
    path: str | None,
    *,
    binary: bool = False,
    prefix: str = ".cgcalc-",
    name_only: bool = False,
    inputs: Sequence[tuple[str, str]] = (),
    stream: bool = False,
) -> Iterator[IO | str]:
    """A file to write the output of a block to, which appears at `path` (None or '-': stdout) complete, only
    when the block succeeds. Yields a text file (utf-8, no newline translation) or a binary one; name_only:
    the name of a file for a writer that opens it itself. `inputs` ((what, path)): refused as the output.
    stream: stdout, a pipe or a device is written as the block writes (a pipe's reader cannot be given
    all-or-nothing anyway: it may stop reading, or wait for the first rows); a file is still replaced whole."""
    t = target(path)
    refuse_inputs(t, inputs)
    if t.replace is not None:
        sink = _replacing(t, binary, prefix, name_only)
    elif stream and not name_only:
        sink = _direct(t, binary)
    else:
        sink = _spooled(t, binary, prefix, name_only)
    try:
        with sink as f:
            yield f
    except OSError as e:
        if e.errno not in NO_ROOM:
            raise
        raise UsageError(os.strerror(e.errno), file=t.label) from None


def write(path: str | None, data: str | bytes, inputs: Sequence[tuple[str, str]] = ()) -> None:
    """All of `data` to `path`, as `output` does."""
    with output(path, binary=isinstance(data, bytes), inputs=inputs) as f:
        f.write(data)


@contextmanager
def _replacing(t: Target, binary: bool, prefix: str, name_only: bool) -> Iterator[IO | str]:
    try:
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=_PART, dir=os.path.dirname(t.replace))
    except OSError as e:
        raise UsageError(f"cannot write the file: {e.strerror or e}", file=t.label) from None
    try:
        if name_only:
            os.close(fd)
            yield tmp
        else:
            with _open_fd(fd, binary) as f:
                yield f
        _keep_mode(tmp, t.replace)
        try:
            os.replace(tmp, t.replace)
        except OSError as e:
            raise UsageError(f"cannot write the file: {e.strerror or e}", file=t.label) from None
    finally:
        _unlink(tmp)


def _open_fd(fd: int, binary: bool) -> IO:
    return os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8", newline="")


def _keep_mode(tmp: str, replaced: str) -> None:
    """The mode (and, where allowed, the owner) of the file being replaced; a new file's usual mode."""
    try:
        old = os.stat(replaced)
    except FileNotFoundError:
        usual_mode(tmp)
        return
    new = os.stat(tmp)
    if (new.st_uid, new.st_gid) != (old.st_uid, old.st_gid):
        try:
            os.chown(tmp, old.st_uid, old.st_gid)
        except PermissionError:
            pass  # only root may give a file away: then the new file is the writer's, as with any editor
    os.chmod(tmp, stat.S_IMODE(old.st_mode))  # after chown, which clears set-user-ID bits


def usual_mode(path: str, directory: bool = False) -> None:
    """mkstemp and mkdtemp make private files and directories; give ours the mode any new one would get."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, (0o777 if directory else 0o666) & ~umask)


@contextmanager
def _spooled(t: Target, binary: bool, prefix: str, name_only: bool) -> Iterator[IO | str]:
    """Collect the output in an anonymous temporary file (nothing to clean up, even after SIGKILL), then copy it."""
    if name_only:  # a named one, for a writer that opens it by name
        try:
            fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=_PART)
        except OSError as e:
            raise UsageError(
                f"cannot make a temporary file in {tempfile.gettempdir()}: {e.strerror or e}", file=t.label
            ) from None
        try:
            os.close(fd)
            yield tmp
            with open(tmp, "rb") as f:
                _copy(f, t)
        finally:
            _unlink(tmp)
        return
    try:
        spool = tempfile.TemporaryFile("w+b", prefix=prefix)
    except OSError as e:
        raise UsageError(
            f"cannot make a temporary file in {tempfile.gettempdir()}: {e.strerror or e}", file=t.label
        ) from None
    with spool:
        if binary:
            yield spool
        else:
            text = io.TextIOWrapper(spool, encoding="utf-8", newline="")
            yield text
            text.flush()
            text.detach()
        spool.seek(0)
        _copy(spool, t)


@contextmanager
def _direct(t: Target, binary: bool) -> Iterator[IO]:
    """stdout, a file descriptor or a device, written as the block writes (each write reaches it when flushed)."""
    if t.fd == 1:
        sys.stdout.flush()  # what was printed before comes first
        raw, own = sys.stdout.buffer, False
    else:
        try:
            fd = os.dup(t.fd) if t.fd is not None else os.open(t.device, os.O_WRONLY | os.O_NOCTTY)
        except OSError as e:
            raise UsageError(f"cannot write: {e.strerror or e}", file=t.label) from None
        raw, own = os.fdopen(fd, "wb"), True
    try:
        yield raw if binary else _Utf8(raw)
        raw.flush()
    finally:
        if own:
            try:
                raw.close()
            except OSError:
                pass  # (already reported by the write or flush that failed)


class _Utf8:
    """Text written as UTF-8 to a binary file that stays the caller's (no close, no flush when collected: after a
    broken pipe, stdout is the CLI's to drop quietly)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw

    def write(self, text: str) -> int:
        data = memoryview(text.encode("utf-8"))
        while data:  # a pipe whose reader goes away mid-write takes part of it (then the next write fails)
            data = data[self.raw.write(data) or 0 :]
        return len(text)

    def flush(self) -> None:
        self.raw.flush()


def _copy(f: IO[bytes], t: Target) -> None:
    """The spooled output to where it goes; any failure there (a full device, a closed stdout) is one line."""
    try:
        if t.fd == 1:
            sys.stdout.flush()  # what was printed before comes first
            shutil.copyfileobj(f, sys.stdout.buffer)
            sys.stdout.buffer.flush()
        elif t.fd is not None:
            _pump(f, t.fd)
        else:
            fd = os.open(t.device, os.O_WRONLY | os.O_NOCTTY)  # never O_CREAT or O_TRUNC: it exists, and stays
            try:
                _pump(f, fd)
            finally:
                os.close(fd)
    except BrokenPipeError:
        raise  # the reader went away: the CLI stops quietly
    except (OSError, ValueError) as e:  # ValueError: sys.stdout closed
        why = os.strerror(e.errno) if isinstance(e, OSError) and e.errno else str(e)
        raise UsageError(why, file=t.label) from None


def _pump(f: IO[bytes], fd: int) -> None:
    while block := f.read(1 << 20):
        view = memoryview(block)
        while view:
            view = view[os.write(fd, view) :]


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


# -- a directory of part files (the dask engine's dataset) ---------------------------------------------------


@contextmanager
def new_directory(path: str) -> Iterator[str]:
    """A directory that appears at `path` (absent, or empty) complete or not at all: built under a temporary name
    beside it, renamed into place when the block succeeds, removed when it fails. Yields its temporary name."""
    real = os.path.realpath(path)
    try:
        tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(real)}.cgcalc-", dir=os.path.dirname(real))
    except OSError as e:
        raise UsageError(f"cannot write the directory: {e.strerror or e}", file=path) from None
    try:
        yield tmp
        for name in os.listdir(tmp):
            if name.endswith(_PART):  # a part file whose writer was killed (and its task run again elsewhere)
                _unlink(os.path.join(tmp, name))
        usual_mode(tmp, directory=True)
        try:
            os.replace(tmp, real)  # replaces an empty directory; fails on one that someone filled meanwhile
        except OSError as e:
            raise UsageError(f"cannot move the results into place: {e.strerror or e}", file=path) from None
    except BaseException:
        _remove_tree(tmp)
        raise


def _remove_tree(tmp: str) -> None:
    """Remove a temporary directory; a cancelled task on a remote worker may still be finishing a part in it."""
    for _ in range(10):
        shutil.rmtree(tmp, ignore_errors=True)
        if not os.path.exists(tmp):
            return
        time.sleep(0.2)


@contextmanager
def replacing(path: str) -> Iterator[str]:
    """A temporary name beside `path` for a writer to create, renamed onto `path` when the block succeeds and
    removed when it fails: a reader of `path` sees the whole file or none (a retried task rewrites it whole)."""
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{uuid.uuid4().hex}{_PART}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        _unlink(tmp)
