"""The command line: a thin typer client of the library. The only module that prints, opens output
files, creates a Console, and turns a CgcalcError into a one-line message and an exit code."""

from __future__ import annotations

import gc
import io
import math
import os
import sys
from contextlib import contextmanager
from enum import StrEnum
from typing import Annotated

_gc_was_on = gc.isenabled()
gc.disable()  # importing typer (and later rich) makes ~50,000 objects: no collection is worth running meanwhile

import typer  # noqa: E402
from typer.core import TyperGroup  # noqa: E402

from .errors import CgcalcError, ExitCode, UsageError  # noqa: E402
from .errors import clean as _clean  # noqa: E402


class _OneLineErrors(TyperGroup):
    """Usage errors (a bad option value, an unknown option, a missing argument) as one line,
    `error: message (see 'cgcalc run --help')`, exit 2 — not a usage box."""

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        try:
            rv = super().main(*args, standalone_mode=False, **kwargs)
        except typer.Abort:
            _err("aborted")
            sys.exit(130)
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
        sys.exit(rv if isinstance(rv, int) else 0)


app = typer.Typer(
    cls=_OneLineErrors,
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    help="cgcalc: forward values and backprop gradients of every node of a computational graph.",
)

_state = {"debug": False}


def _debug() -> bool:
    return _state["debug"] or os.environ.get("CGCALC_DEBUG", "") not in ("", "0")


def _console(stderr: bool = False):
    from rich.console import Console

    # emoji=False: no `:name:` codes in cgcalc's text (and rich's 1.9 ms table of them is never imported)
    return Console(stderr=stderr, highlight=False, soft_wrap=False, emoji=False)


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
    except KeyboardInterrupt:
        _err("interrupted")
        raise typer.Exit(130) from None
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as cat does
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        except (OSError, ValueError):
            pass
        raise typer.Exit(128 + 13) from None  # as if killed by SIGPIPE
    except MemoryError:
        if _debug():
            raise
        _err("out of memory (the graph or its arrays are too large for this machine)")
        raise typer.Exit(ExitCode.USAGE) from None
    except Exception as e:  # a bug: still one line, and a way to see more
        if _debug():
            raise
        _err(f"internal error: {type(e).__name__}: {e} (run with --debug for the traceback, and please report it)")
        raise typer.Exit(3) from None


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"cgcalc {version('cgcalc')}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool | None, typer.Option("--version", callback=_version, is_eager=True,
                                                    help="Show the version and exit.")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show Python tracebacks (also CGCALC_DEBUG=1).")] = False,
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


def _load(path: str):
    from .graph import load

    return load(path)


def _overrides(sets: list[str] | None) -> dict:
    from .spec import parse_value

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
            from .export import to_json

            sys.stdout.write(to_json(r))
        elif fmt is Format.csv:
            from .export import to_csv

            sys.stdout.write(to_csv(r))
        else:
            from .render import MAX_ROWS, result_table

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
    from .gradcheck import check as gradcheck

    with _errors():
        if not (math.isfinite(eps) and eps > 0 and math.isfinite(rtol) and rtol >= 0
                and math.isfinite(atol) and atol >= 0):
            raise UsageError("--eps must be a positive number, --rtol and --atol numbers not below 0")
        g = _load(graph)
        report = gradcheck(g.plan, _overrides(set_), _outputs(g, output), eps, rtol, atol, max_elements)
        if fmt is Format.table:
            from .render import check_table

            _print(check_table(report, full))
        elif fmt is Format.json:
            from .export import dumps

            sys.stdout.write(dumps(report.to_dict()) + "\n")
        else:
            raise UsageError("check writes a table or json")
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
    from .render import trace_view
    from .trace import trace as make_trace

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


class FigureFormat(StrEnum):
    dot = "dot"
    mermaid = "mermaid"


@app.command()
def export(
    graph: GraphArg,
    fmt: Annotated[FigureFormat | None, typer.Option("--format", "-f", help="dot or mermaid (default: from -o, else dot).")] = None,
    out: Annotated[str | None, typer.Option("--out", "-o", help="Write here; .svg, .png or .pdf is drawn by Graphviz's dot.")] = None,
    set_: SetOpt = None,
    output: OutputOpt = None,
    precision: Annotated[int, typer.Option("--precision", "-p", min=1, max=17)] = 6,
) -> None:
    """The graph with values and gradients on its edges, like the book's figures."""
    from .export import to_dot, to_mermaid

    with _errors():
        ext = os.path.splitext(out)[1].lower().lstrip(".") if out else ""
        drawn = ext in ("svg", "png", "pdf")
        if fmt is None:
            fmt = FigureFormat.mermaid if ext in ("mmd", "mermaid") else FigureFormat.dot
        if drawn and fmt is not FigureFormat.dot:
            raise UsageError(f"-o {out}: pictures are drawn from the dot format, not {fmt.value}")
        g = _load(graph)
        r = g.run(_overrides(set_), output=_outputs(g, output))
        text = to_dot(r, precision) if fmt is FigureFormat.dot else to_mermaid(r, precision)
        if drawn:
            _draw(text, out, ext)
        elif out:
            _write_atomic(out, text)
        else:
            sys.stdout.write(text)


def _usual_mode(path: str) -> None:
    """mkstemp makes files private (0600); give ours the mode any new file would get (0666 less umask)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def _draw(dot_text: str, out: str, ext: str) -> None:
    import shutil
    import subprocess

    dot = shutil.which("dot")
    if dot is None:
        raise UsageError(
            f"cannot draw {out}: Graphviz's 'dot' is not installed (Debian/Ubuntu: apt-get install graphviz; "
            "macOS: brew install graphviz; or write the text with -o graph.dot)"
        )
    proc = subprocess.run([dot, f"-T{ext}"], input=dot_text.encode(), capture_output=True, check=False)
    if proc.returncode != 0:
        raise UsageError(f"Graphviz failed: {proc.stderr.decode(errors='replace').strip()}")
    _write_atomic(out, proc.stdout)


def _write_atomic(path: str, data: str | bytes) -> None:
    """Write to a temporary file beside `path`, then rename: never a half-written file."""
    with _atomic_output(path, binary=isinstance(data, bytes)) as f:
        f.write(data)


class RowsFormat(StrEnum):
    csv = "csv"
    jsonl = "jsonl"
    parquet = "parquet"  # needs pyarrow


class Engine(StrEnum):
    local = "local"
    dask = "dask"


@app.command()
def batch(
    graph: GraphArg,
    rows: Annotated[str, typer.Argument(help="Rows: CSV (header = input names), JSON Lines or Parquet; - for "
                                        "stdin.",
                                        metavar="ROWS")],
    out: Annotated[str | None, typer.Option("--out", "-o", help="Write here (CSV; JSON Lines for .jsonl; "
                                            "Parquet for .parquet), atomically; default: stdout.")] = None,
    output: OutputOpt = None,
    rows_format: Annotated[RowsFormat | None, typer.Option("--rows-format", help="csv, jsonl or parquet (default: from "
                                                           "ROWS' extension).")] = None,
    out_format: Annotated[RowsFormat | None, typer.Option("--out-format", help="csv, jsonl or parquet (default: from "
                                                          "OUT's extension, else csv).")] = None,
    chunk_rows: Annotated[int | None, typer.Option("--chunk-rows", min=1, help="Rows evaluated together "
                                                   "(default 16,384; with Parquet 131,072).")] = None,
    skip_bad_rows: Annotated[bool, typer.Option("--skip-bad-rows", help="Report bad rows on stderr and go on.")] = False,
    fast_math: Annotated[bool, typer.Option("--fast-math", help="numpy's exp/log/tanh/pow for graphs of scalars "
                                            "(faster; may differ from `run` in the last bit).")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar, no summary.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Say how rows were grouped.")] = False,
    engine: Annotated[Engine, typer.Option("--engine", help="local, or dask: a dataset of Parquet/CSV files on a "
                                           "dask.distributed cluster (pip install 'cgcalc\\[dask]').")] = Engine.local,
    scheduler: Annotated[str | None, typer.Option("--scheduler", help="dask: the scheduler to connect to "
                                                  "(default: a LocalCluster on this machine).")] = None,
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="dask: workers of the LocalCluster "
                                                "(default: one per core).")] = None,
    jobs: Annotated[int | None, typer.Option("--jobs", "-j", min=1, help="CSV rows: worker processes (default: one "
                                             "per core for files over 8 MB; 1: none).")] = None,
) -> None:
    """Evaluate many rows: per row, its input columns, every output, and dO/dX for every input X."""
    from .arrow_io import why_not
    from .batch import DEFAULT_CHUNK_ROWS, run_rows

    with _errors():
        g = _load(graph)
        plan = g.plan
        if engine is Engine.dask:
            _batch_dask(graph, g, rows, out, output, rows_format, out_format, skip_bad_rows, fast_math, quiet,
                        scheduler, workers)
            return
        if out == "-":
            out = None
        fmt_in = rows_format.value if rows_format else _format_of(rows, "csv")
        fmt_out = out_format.value if out_format else _format_of(out or "", "csv")
        no_arrow = why_not()
        arrow = no_arrow is None
        if "parquet" in (fmt_in, fmt_out) and not arrow:
            raise UsageError(f"Parquet needs pyarrow ({no_arrow})")
        if fmt_out == "parquet" and not out and sys.stdout.isatty():
            raise UsageError("Parquet is binary: write it to a file with -o OUT.parquet (or pipe it)")
        label = "<stdin>" if rows == "-" else rows
        reader, total, done = _rows_reader(rows, label, fmt_in, plan)

        def on_bad(e) -> None:
            _warn(f"{e} (row skipped)")

        graph_text = None
        if fmt_in == "csv":
            from .parallel import auto_jobs

            jobs = jobs or auto_jobs(total)
            if jobs > 1:
                with open(graph, "rb") as f:
                    graph_text = f.read()
        with _progress(quiet, total) as advance, \
                _atomic_output(out, prefix=".cgcalc-batch-", name_only=fmt_out == "parquet") as f:
            try:
                sink = f
                if fmt_out == "parquet":  # Arrow writes the file itself (a Python file object: 1.3x the time)
                    from .arrow_io import ParquetSink

                    sink = ParquetSink(f)
                if chunk_rows is None:
                    from .arrow_io import PARQUET_CHUNK_ROWS

                    chunk_rows = PARQUET_CHUNK_ROWS if "parquet" in (fmt_in, fmt_out) else DEFAULT_CHUNK_ROWS
                summary = run_rows(plan, reader, sink, fmt_out, _outputs(g, output), chunk_rows,
                                   on_bad if skip_bad_rows else None, lambda n: advance(done(n)),
                                   exact=not fast_math, jobs=jobs or 1, graph_text=graph_text, graph_file=graph,
                                   arrow=arrow)
            except UnicodeDecodeError:
                raise UsageError(f"{label}: not UTF-8 text") from None
        if summary.bad:
            _warn(f"{summary.bad:,} bad row{'s' if summary.bad > 1 else ''} skipped of {summary.rows:,} "
                  f"(each reported above); {summary.written:,} written")
        if summary.nonfinite:
            _warn(f"{summary.nonfinite:,} row{'s' if summary.nonfinite > 1 else ''} with NaN or inf in their "
                  f"results, first at {label}:{summary.first_nonfinite_line} "
                  f"(run that row alone with `cgcalc run --set` to see which node produced it)")
        if verbose:
            for note in summary.notes:
                sys.stderr.write(f"note: {note}\n")
        if not quiet and sys.stderr.isatty():
            sys.stderr.write(f"{summary.written:,} rows -> {out or 'stdout'}\n")


def _batch_dask(graph: str, g, rows: str, out: str | None, output, rows_format, out_format, skip_bad_rows: bool,
                fast_math: bool, quiet: bool, scheduler: str | None, workers: int | None) -> None:
    """cgcalc batch --engine dask: the same rows -> results, as a partitioned dataset written by a cluster."""
    from .dask_engine import require_dask, run_dask

    require_dask()
    if not out:
        raise UsageError("--engine dask writes a dataset: give its directory with -o OUT")
    with open(graph, "rb") as f:
        text = f.read()
    with _partition_progress(quiet) as progress:
        summary = run_dask(text, graph, rows, out, output=_outputs(g, output),
                           scheduler=scheduler, rows_format=rows_format.value if rows_format else None,
                           out_format=out_format.value if out_format else None, skip_bad_rows=skip_bad_rows,
                           exact=not fast_math, workers=workers, progress=progress)
    for e in summary.errors:
        _warn(f"{e} (row skipped)")
    if summary.bad:
        _warn(f"{summary.bad:,} bad row{'s' if summary.bad > 1 else ''} skipped of {summary.rows:,} "
              f"(each reported above); {summary.written:,} written")
    if summary.nonfinite:
        _warn(f"{summary.nonfinite:,} row{'s' if summary.nonfinite > 1 else ''} with NaN or inf in their results, "
              f"first at {summary.first_nonfinite_file}:{summary.first_nonfinite_line}")
    if not quiet and sys.stderr.isatty():
        sys.stderr.write(f"{summary.written:,} rows -> {out} ({summary.partitions} partitions, "
                         f"{summary.workers} workers)\n")


@contextmanager
def _partition_progress(quiet: bool):
    """A Rich progress bar of partitions done, on stderr when it is a terminal; else no callback."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("batch (dask)"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=_console(stderr=True), transient=True) as bar:
        task = bar.add_task("partitions", total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _format_of(path: str, default: str) -> str:
    from .arrow_io import PARQUET_EXTS

    p = path.lower()
    return "jsonl" if p.endswith((".jsonl", ".ndjson")) else "parquet" if p.endswith(PARQUET_EXTS) else default


def _rows_reader(rows: str, label: str, fmt: str, plan):
    """The reader of a rows file, its size for the progress bar, and a function from rows done (in the
    last block) to progress done (bytes read, or rows for Parquet)."""
    from .rows import CsvRows, JsonlRows

    names = [i.name for i in plan.inputs]
    if fmt == "parquet":
        from .arrow_io import ParquetRows

        if rows == "-":
            raise UsageError("Parquet rows must be a file, not stdin")
        if not os.path.isfile(rows):
            raise UsageError(f"{rows}: no such file")
        reader = ParquetRows(rows, label, names)
        count = [0]

        def rows_done(n: int) -> int:
            count[0] += n
            return count[0]

        return reader, reader.total or None, rows_done
    counter = _ByteCounter(_open_rows(rows))
    text = io.TextIOWrapper(io.BufferedReader(counter, 1 << 20), encoding="utf-8-sig", newline="")
    try:
        reader = (CsvRows(text, label, names) if fmt == "csv"
                  else JsonlRows(text, label, names, dict(zip(names, plan.shapes))))
    except UnicodeDecodeError:
        raise UsageError(f"{label}: not UTF-8 text") from None
    return reader, counter.total, lambda n: counter.bytes_read


def _open_rows(path: str):
    if path == "-":
        return sys.stdin.buffer
    try:
        return open(path, "rb")  # noqa: SIM115 - closed with the process; read to the end
    except OSError as e:
        raise UsageError(f"{path}: cannot read the file: {e.strerror or e}") from None


class _ByteCounter(io.RawIOBase):
    """Counts the bytes read through it, for the progress bar."""

    def __init__(self, f) -> None:
        self.f = f
        self.bytes_read = 0
        try:
            self.total = os.fstat(f.fileno()).st_size or None
        except (OSError, ValueError, io.UnsupportedOperation):
            self.total = None

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        data = self.f.read(len(b))
        n = len(data)
        b[:n] = data
        self.bytes_read += n
        return n


@contextmanager
def _progress(quiet: bool, total: int | None):
    """A Rich progress bar on stderr, only on a terminal; yields a function taking bytes read so far."""
    if quiet or not sys.stderr.isatty():
        yield lambda done: None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    with Progress(TextColumn("batch"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=_console(stderr=True), transient=True) as bar:
        task = bar.add_task("rows", total=total)
        yield lambda done: bar.update(task, completed=done)


@contextmanager
def _atomic_output(path: str | None, binary: bool = False, prefix: str = ".cgcalc-", name_only: bool = False):
    """A sink that appears complete at `path` (or on stdout) only when the block succeeds: it is a
    temporary file beside `path`, renamed into place at the end (for stdout: copied at the end).
    name_only: yields the temporary file's name instead, for a writer that opens it itself."""
    import shutil
    import tempfile

    directory = os.path.dirname(os.path.abspath(path)) if path else None
    try:
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".part", dir=directory)
    except OSError as e:
        raise UsageError(f"cannot write {path or 'the output'}: {e.strerror or e}") from None
    try:
        if name_only:
            os.close(fd)
            yield tmp
        else:
            with (os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8", newline="")) as f:
                yield f
        if path:
            _usual_mode(tmp)
            try:
                os.replace(tmp, path)
            except OSError as e:
                raise UsageError(f"cannot write {path}: {e.strerror or e}") from None
        else:
            with open(tmp, "rb") as f:
                shutil.copyfileobj(f, sys.stdout.buffer)
            sys.stdout.buffer.flush()
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@app.command()
def validate(
    graphs: Annotated[list[str], typer.Argument(help="Graph files to check.", metavar="GRAPH...")],
) -> None:
    """Check graph files without running them: exit 0 when all are valid, 2 otherwise."""
    from .graph import load

    bad = 0
    worst = ExitCode.USAGE
    for path in graphs:
        try:
            with _errors():
                g = load(path)
        except typer.Exit as e:
            bad += 1
            worst = max(worst, e.exit_code)  # an internal error (3) stays visible
            continue
        n_in, n_nodes = len(g.plan.inputs), len(g.plan.steps)
        typer.echo(f"ok: {path} ({n_in} input{'s' * (n_in != 1)}, {n_nodes} node{'s' * (n_nodes != 1)})")
    if bad:
        raise typer.Exit(worst)


@app.command()
def ops() -> None:
    """Every op with its layer class, forward rule and backward rule."""
    from .layers import LAYERS
    from .render import ops_table

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
    app()


if _gc_was_on:
    gc.enable()  # imported by a program (a test, say) rather than run as `cgcalc`: as it was
