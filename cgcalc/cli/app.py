"""The command line: a thin typer client of the library. With cli_batch.py (the batch command), the only
module that prints, creates a Console, handles signals, and turns a CgcalcError into a one-line message and an
exit code. Output files are written through outfile.py."""

from __future__ import annotations

import errno
import gc
import io
import math
import os
import signal
import sys
from contextlib import contextmanager
from enum import StrEnum
from typing import Annotated

_gc_was_on = gc.isenabled()
gc.disable()  # importing typer (and later rich) makes ~50,000 objects: no collection is worth running meanwhile

import typer  # noqa: E402
from typer.core import TyperGroup  # noqa: E402

from ..errors import CgcalcError, ExitCode, GraphError, UsageError  # noqa: E402
from ..errors import clean as _clean  # noqa: E402


class _OneLineErrors(TyperGroup):
    """Usage errors (a bad option value, an unknown option, a missing argument) as one line,
    `error: message (see 'cgcalc run --help')`, exit 2 — not a usage box. And every command takes --debug
    as the app does, so `cgcalc batch g.yaml rows.csv --debug` works (the internal error's hint says it)."""

    def get_command(self, ctx, name):
        command = super().get_command(ctx, name)
        if command is not None and not any(p.name == "debug" for p in command.params):
            command.params.append(typer.core.TyperOption(
                param_decls=["--debug"], is_flag=True, expose_value=False, callback=_debug_flag,
                help=_DEBUG_HELP))
        return command

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        try:
            rv = super().main(*args, standalone_mode=False, **kwargs)
            sys.stdout.flush()  # a full or closed stdout is found here, not in the interpreter's exit
        except typer.Abort as e:
            sys.exit(_stopped(e.__cause__))
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


def _stopped(e: BaseException | None) -> int:
    """Say why the run stopped (Ctrl-C, SIGTERM, SIGHUP); the exit code of a process killed by that signal."""
    signum = getattr(e, "signum", signal.SIGINT)
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
    add_completion=False,
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
    version: Annotated[bool | None, typer.Option("--version", callback=_version, is_eager=True,
                                                    help="Show the version and exit.")] = None,
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


GraphArg = Annotated[str, typer.Argument(help="The graph file (.yaml, .yml or .json).", metavar="GRAPH")]
SetOpt = Annotated[list[str] | None, typer.Option(
    "--set", "-s", metavar="NAME=VALUE", help="Override an input: a number or a list, e.g. --set x=[1,2]. Repeatable.")]
OutputOpt = Annotated[str | None, typer.Option(
    "--output", "-O", help="The output to differentiate (default: the first listed).")]


def _read_graph(path: str) -> tuple[bytes, str]:
    """A graph file's bytes, once (it may be a pipe: `<(cgcalc derive ...)`), and its name for messages; `-` is
    stdin (`<stdin>`)."""
    from ..api import read_limited

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
    from ..api import is_json, loads

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


@app.command()
def run(
    graph: GraphArg,
    set_: SetOpt = None,
    output: OutputOpt = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="table, json or csv.")] = Format.table,
    precision: Annotated[int, typer.Option("--precision", "-p", min=1, max=17,
                                           help="Significant digits in the table (JSON and CSV are always exact).")] = 6,
    full: Annotated[bool, typer.Option("--full", help="Show arrays in full in the table.")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 if a NaN or inf appears.")] = False,
    all_rows: Annotated[bool, typer.Option("--all", help="Every row in the table, however large the graph.")] = False,
    sort: Annotated[SortBy, typer.Option("--sort", help="Table order: execution order, or by |gradient| "
                                         "(the most sensitive nodes first).")] = SortBy.order,
) -> None:
    """Forward values and gradients of every input and node."""
    with _errors():
        g = _load(graph)
        r = g.run(_overrides(set_), output=_outputs(g, output))
        if fmt is Format.json:
            from ..views.export import to_json

            sys.stdout.write(to_json(r))
        elif fmt is Format.csv:
            from ..views.export import to_csv

            sys.stdout.write(to_csv(r))
        else:
            from ..views.render import MAX_ROWS, result_table

            _print(result_table(r, precision, full, None if all_rows else MAX_ROWS,
                                "grad" if sort is SortBy.grad else None))
        _report(r)
        if strict and r.warnings:
            raise typer.Exit(ExitCode.CHECK_FAILED)


@app.command()
def check(
    graph: GraphArg,
    set_: SetOpt = None,
    output: OutputOpt = None,
    eps: Annotated[float, typer.Option("--eps", help="Step of the central difference.")] = 1e-6,
    rtol: Annotated[float, typer.Option("--rtol", help="Relative tolerance.")] = 1e-5,
    atol: Annotated[float, typer.Option("--atol", help="Absolute tolerance.")] = 1e-6,
    full: Annotated[bool, typer.Option("--full", help="List every element, not just the worst of each input.")] = False,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="table or json.")] = Format.table,
    max_elements: Annotated[int, typer.Option("--max-elements", min=1, help="Check at most this many elements of "
                                              "each input (a fixed random sample beyond it).")] = 1000,
) -> None:
    """Backprop vs central differences (f(x+eps) - f(x-eps)) / 2eps for every input: exit 1 on a mismatch."""
    from ..views.check import check as gradcheck

    with _errors():
        if not (math.isfinite(eps) and eps > 0 and math.isfinite(rtol) and rtol >= 0
                and math.isfinite(atol) and atol >= 0):
            raise UsageError("--eps must be a positive number, --rtol and --atol numbers not below 0")
        g = _load(graph)
        report = gradcheck(g.plan, _overrides(set_), _outputs(g, output), eps, rtol, atol, max_elements)
        if fmt is Format.table:
            from ..views.render import check_table

            _print(check_table(report, full))
        elif fmt is Format.json:
            from ..views.export import dumps

            sys.stdout.write(dumps(report.to_dict()) + "\n")
        else:
            raise UsageError("check writes a table or json")
        for w in report.warnings:
            _warn(w)
        fails = sum(e.status == "FAIL" for c in report.inputs for e in c.elements)
        if fails:
            _err(f"{fails} gradient element{'s disagree' if fails > 1 else ' disagrees'} with central differences")
            raise typer.Exit(ExitCode.CHECK_FAILED)


@app.command()
def trace(
    graph: GraphArg,
    set_: SetOpt = None,
    output: OutputOpt = None,
    precision: Annotated[int, typer.Option("--precision", "-p", min=1, max=17)] = 6,
    step: Annotated[bool, typer.Option("--step", help="Wait for Enter between steps (in a terminal).")] = False,
) -> None:
    """Forward step by step, then backward: each node's upstream gradient, local derivatives, and what it passes on."""
    from ..views.render import trace_view
    from ..views.trace import trace as make_trace

    with _errors():
        g = _load(graph)
        if output == "all" and "all" not in g.plan.index:
            raise UsageError(f"trace follows one output at a time: choose one of {', '.join(g.outputs)}")
        t = make_trace(g.plan, _overrides(set_), output)
        view = trace_view(t, precision)
        if step and sys.stdin.isatty() and sys.stdout.isatty():
            console = _console()
            console.print("(press Enter for the next step, Ctrl-D to see the rest at once)", style="dim")
            waiting = True
            for line in view.renderables:
                console.print(line)
                if waiting and line.plain.startswith("  ") and not line.plain.startswith("      "):
                    try:
                        input()
                    except EOFError:
                        waiting = False
        else:
            _print(view)
        for w in t.warnings:
            _warn(w)


class FigureFormat(StrEnum):
    dot = "dot"
    mermaid = "mermaid"


@app.command()
def export(
    graph: GraphArg,
    fmt: Annotated[FigureFormat | None, typer.Option("--format", "-f", help="dot or mermaid (default: from -o, else dot).")] = None,
    out: Annotated[str | None, typer.Option("--out", "-o", help="Write here: .dot/.gv or .mmd text; .svg, .png or .pdf is "
                                            "drawn by Graphviz's dot.")] = None,
    set_: SetOpt = None,
    output: OutputOpt = None,
    precision: Annotated[int, typer.Option("--precision", "-p", min=1, max=17)] = 6,
    force: Annotated[bool, typer.Option("--force", help="Draw a picture of a graph however large (Graphviz may take "
                                        "minutes).")] = False,
) -> None:
    """The graph with values and gradients on its edges, like the book's figures."""
    from ..io import graphviz
    from ..views.export import to_dot, to_mermaid

    with _errors():
        text_format, picture = graphviz.choose(out, fmt.value if fmt else None)
        g = _load(graph)
        if picture and not force:
            graphviz.check_size(g.plan, out)
        r = g.run(_overrides(set_), output=_outputs(g, output))
        text = to_dot(r, precision) if text_format == "dot" else to_mermaid(r, precision)
        if out:
            from ..io.atomic import write

            write(out, graphviz.draw(text, picture, out) if picture else text, inputs=[("graph file", graph)])
        else:
            sys.stdout.write(text)
        _report(r)


from . import batch  # noqa: E402, F401 - registers `cgcalc batch` (here: the order of the commands in --help)


@app.command()
def validate(
    graphs: Annotated[list[str], typer.Argument(help="Graph files to check.", metavar="GRAPH...")],
) -> None:
    """Check graph files without running them: exit 0 when all are valid, 2 otherwise."""
    bad = 0
    worst = ExitCode.USAGE
    if graphs.count("-") > 1:
        with _errors():
            raise UsageError("stdin (-) can be read only once: give the other graphs as files")
    for path in graphs:
        try:
            with _errors():
                g = _load(path)
        except typer.Exit as e:
            bad += 1
            worst = max(worst, e.exit_code)  # an internal error stays visible
            continue
        n_in, n_nodes = len(g.plan.inputs), len(g.plan.steps)
        typer.echo(_clean(f"ok: {path} ({n_in} input{'s' * (n_in != 1)}, {n_nodes} node{'s' * (n_nodes != 1)})"))
    if bad:
        raise typer.Exit(worst)


@app.command()
def ops() -> None:
    """Every op with its layer class, forward rule and backward rule."""
    from ..core.registry import LAYERS
    from ..views.render import ops_table

    _print(ops_table(LAYERS))


def main() -> None:
    # Typer turns every command's signature into click parameters before running one (~12 ms for all of
    # them): for `cgcalc COMMAND ...` register only that command. (The callback keeps the app a group,
    # so the command line is read the same way; `cgcalc --help` and a mistyped command see them all.)
    name = sys.argv[1] if len(sys.argv) > 1 else ""
    chosen = [c for c in app.registered_commands if (c.name or c.callback.__name__) == name]
    if chosen:
        app.registered_commands[:] = chosen
    # A command other than batch is short, and makes no garbage cycles worth collecting: the collector
    # stays off (5 ms of a 100 ms start-up). batch may run for hours: it gets the collector back.
    if name == "batch":
        gc.enable()
    else:
        gc.disable()
    for sig in _STOP_SIGNALS:
        if signal.getsignal(sig) is signal.SIG_DFL:  # (`nohup` ignores SIGHUP: then so does cgcalc)
            signal.signal(sig, _terminate)
    if sys.stdout is None:
        sys.stdout = io.TextIOWrapper(io.BufferedWriter(_ClosedStdout()), encoding="utf-8")
    app()


if _gc_was_on:
    gc.enable()  # imported by a program (a test, say) rather than run as `cgcalc`: as it was
