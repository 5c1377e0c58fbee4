"""What every command shares: the typer app, its options, reading a graph, and turning a CgcalcError (or a
signal, or a closed stdout) into one line and an exit code. The cli package is the only part of cgcalc that
prints, creates a Console or handles signals; output files are written through io/atomic.py."""

from __future__ import annotations

import errno
import io
import os
import signal
import sys
from contextlib import contextmanager
from enum import StrEnum
from typing import Annotated

import typer
from typer.core import TyperGroup

from ..errors import CgcalcError, ExitCode, GraphError, UsageError
from ..errors import clean as _clean


class _OneLineErrors(TyperGroup):
    """Usage errors (a bad option value, an unknown option, a missing argument) as one line,
    `error: message (see 'cgcalc run --help')`, exit 2 — not a usage box. And every command takes --debug
    as the app does, so `cgcalc batch g.yaml rows.csv --debug` works (the internal error's hint says it)."""

    def get_command(self, ctx, name):
        command = super().get_command(ctx, name)
        if command is not None and not any(p.name == "debug" for p in command.params):
            command.params.append(
                typer.core.TyperOption(
                    param_decls=["--debug"], is_flag=True, expose_value=False, callback=_debug_flag, help=_DEBUG_HELP
                )
            )
        return command

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        _said.clear()  # (a program, a test say, may run several commands in one process)
        try:
            rv = super().main(*args, standalone_mode=False, **kwargs)
            sys.stdout.flush()  # a full or closed stdout is found here, not in the interpreter's exit
        except typer.Abort as e:
            sys.exit(_stopped(e.__cause__))
        except SystemExit as e:
            # click answers a closed pipe (`cgcalc --help | head -1`) with exit 1; cgcalc's answer is 141
            cause = e.__context__
            if e.code == 1 and isinstance(cause, BrokenPipeError):
                sys.exit(_stdout_failed(cause))
            raise
        except OSError as e:  # writing stdout: --help, --version, ops, validate, or the last flush
            if _debug() or not _stdout_error(e):
                raise
            sys.exit(_stdout_failed(e))
        except Exception as e:
            if not (hasattr(e, "format_message") and hasattr(e, "exit_code")):
                raise
            message = e.format_message().strip()
            if message:  # (none when the help was shown because no arguments were given)
                ctx = getattr(e, "ctx", None)
                hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
                _err(message.rstrip(".") + hint)
            sys.exit(e.exit_code)
        if not standalone_mode:
            return rv
        sys.exit(rv if isinstance(rv, int) else ExitCode.OK)


class _Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised in the main thread as Ctrl-C raises KeyboardInterrupt, so that every `finally` on
    the way out cleans up the same way (temporary files, worker processes, the dask cluster)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _terminate(signum, frame) -> None:
    for sig in _STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)  # once: the clean-up is not interrupted again
    raise _Terminated(signum)


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


_said: list[int] = []  # the stop already reported (once is enough: see main)


def _stopped(e: BaseException | None) -> int:
    """Say why the run stopped (Ctrl-C, SIGTERM, SIGHUP), once; the exit code of a process killed by that signal."""
    signum = getattr(e, "signum", signal.SIGINT)
    if not _said:
        _said.append(signum)
        _err("interrupted" if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}")
    return ExitCode(128 + signum)


# writing to a full disk, a quota, a file-size limit, a failing device, a closed stdout
_WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EBADF)


def _stdout_error(e: OSError) -> bool:
    """An error of writing stdout (errors of named files carry the name, and cgcalc reports those itself)."""
    return isinstance(e, BrokenPipeError) or (e.filename is None and e.errno in _WRITE_ERRNOS)


def _stdout_failed(e: OSError) -> int:
    """stdout cannot be written: one line (nothing for a reader that went away, as with `| head`), and stdout
    pointed at /dev/null so that the interpreter's last flush finds nothing to complain about."""
    if not isinstance(e, BrokenPipeError):
        _err(f"<stdout>: {e.strerror or e}")
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    except OSError:
        pass
    return ExitCode.BROKEN_PIPE if isinstance(e, BrokenPipeError) else ExitCode.USAGE


class _ClosedStdout(io.RawIOBase):
    """stdout when file descriptor 1 is closed (`cgcalc ... >&-`): the first write fails as writing a closed
    descriptor does (rather than with Python's None), and is reported; the rest is dropped."""

    failed = False

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        if not self.failed:
            self.failed = True
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))
        return len(b)


app = typer.Typer(
    cls=_OneLineErrors,
    add_completion=True,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    help="cgcalc: forward values and backprop gradients of every node of a computational graph.",
)

_state = {"debug": False}
_DEBUG_HELP = "Show Python tracebacks (also CGCALC_DEBUG=1)."


def _debug_flag(ctx, param, value: bool) -> None:
    if value:
        _state["debug"] = True


def _debug() -> bool:
    return _state["debug"] or os.environ.get("CGCALC_DEBUG", "") not in ("", "0")


def _console(stderr: bool = False):
    from rich.console import Console

    # emoji=False: no `:name:` codes in cgcalc's text (and rich's 1.9 ms table of them is never imported);
    # markup=False: no `[style]` either (render.py makes Text of a file's text anyway)
    return Console(stderr=stderr, highlight=False, soft_wrap=False, emoji=False, markup=False)


def _print(renderable) -> None:
    """Print to stdout; when piped, as wide as the renderable needs rather than cropped at 80 columns."""
    console = _console()
    if not console.is_terminal:
        width = console.measure(renderable, options=console.options.update(max_width=1000)).maximum
        console.width = max(80, min(width, 1000))
    console.print(renderable)


def _err(message: str) -> None:
    sys.stderr.write(f"error: {_clean(message)}\n")


def _warn(message: str) -> None:
    sys.stderr.write(f"warning: {_clean(message)}\n")


@contextmanager
def _errors():
    """CgcalcError -> 'error: FILE:LINE:COL: message' and exit 2; no traceback unless --debug."""
    try:
        yield
    except typer.Exit:
        raise
    except CgcalcError as e:
        if _debug():
            raise
        _err(str(e))
        raise typer.Exit(ExitCode.USAGE) from None
    except KeyboardInterrupt as e:  # Ctrl-C, SIGTERM, SIGHUP
        raise typer.Exit(_stopped(e)) from None
    except OSError as e:
        if _stdout_error(e) and not _debug():  # a full or closed stdout; `| head` gone: quietly, as cat does
            raise typer.Exit(_stdout_failed(e)) from None
        _internal(e)
    except MemoryError:
        if _debug():
            raise
        _err("out of memory (the graph or its arrays are too large for this machine)")
        raise typer.Exit(ExitCode.USAGE) from None
    except Exception as e:  # a bug: still one line, and a way to see more
        _internal(e)


def _internal(e: Exception) -> None:
    if _debug():
        raise e
    _err(f"internal error: {type(e).__name__}: {e} (run with --debug for the traceback, and please report it)")
    raise typer.Exit(ExitCode.INTERNAL) from None


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"cgcalc {version('cgcalc')}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool | None, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help=_DEBUG_HELP)] = False,
) -> None:
    _state["debug"] = debug


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


class SortBy(StrEnum):
    order = "order"
    grad = "grad"
    elasticity = "elasticity"


class Only(StrEnum):
    all = "all"
    inputs = "inputs"
    nodes = "nodes"


GraphArg = Annotated[str, typer.Argument(help="The graph file (.yaml, .yml or .json).", metavar="GRAPH")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        "-s",
        metavar="NAME=VALUE",
        help="Override an input: a number or a list, e.g. --set x=[1,2]. Repeatable.",
    ),
]
OutputOpt = Annotated[
    str | None, typer.Option("--output", "-O", help="The output to differentiate (default: the first listed).")
]


def _read_graph(path: str) -> tuple[bytes, str]:
    """A graph file's bytes, once (it may be a pipe: `<(cgcalc derive ...)`), and its name for messages; `-` is
    stdin (`<stdin>`)."""
    from ..io.source import read_limited

    if path != "-":
        try:
            with open(path, "rb") as f:
                return read_limited(f, path), path
        except OSError as e:
            raise GraphError(f"cannot read the file: {e.strerror or e}", file=path) from None
    if sys.stdin is None:
        raise GraphError("cannot read stdin: it is closed", file="<stdin>")
    return read_limited(sys.stdin.buffer, "<stdin>"), "<stdin>"


def _compile(data: bytes, label: str):
    from ..api import loads
    from ..io.source import is_json

    return loads(data, file=label, name="stdin" if label == "<stdin>" else None, json=is_json(data, label))


def _load(path: str):
    """The graph at `path` (`-`: stdin, YAML, or JSON when it starts with '{'), compiled."""
    return _compile(*_read_graph(path))


def _overrides(sets: list[str] | None) -> dict:
    from ..io.read import parse_value

    out = {}
    for item in sets or []:
        name, eq, text = item.partition("=")
        name = name.strip()
        if not eq or not name:
            raise UsageError(f"--set takes NAME=VALUE, got {item!r}")
        v = parse_value(text, f"--set {name}")
        if isinstance(v, tuple):
            import numpy as np

            v = np.array(v[0], dtype=np.float64).reshape(v[1])
        out[name] = v
    return out


def _outputs(g, output: str | None) -> list[str] | None:
    """--output NAME, or 'all' (every output of the graph: a gradient column each, the Jacobian)."""
    if output == "all" and "all" not in g.plan.index:
        return list(g.outputs)
    return [output] if output else None


def _report(result) -> None:
    for w in result.warnings:
        _warn(w)
