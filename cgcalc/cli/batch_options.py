"""The options of `cgcalc batch` (cli/batch.py), as --help lists them, and what they mean once read: the rows'
and the output's formats, and a batch.options.Options of --set, --keep, --nodes, --delimiter, --float-format."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import UsageError
from .common import _overrides

if TYPE_CHECKING:
    from ..api import Graph
    from ..batch.options import Options


class RowsFormat(StrEnum):
    csv = "csv"
    jsonl = "jsonl"
    parquet = "parquet"  # needs pyarrow


class Engine(StrEnum):
    local = "local"
    dask = "dask"


RowsArg = Annotated[
    str, typer.Argument(help="Rows: CSV (header = input names), JSON Lines or Parquet; - for stdin.", metavar="ROWS")
]
OutOpt = Annotated[
    str | None,
    typer.Option(
        "--out",
        "-o",
        help="Write here (CSV; JSON Lines for .jsonl; Parquet for .parquet), atomically; default: stdout, "
        "streamed (rows as they are computed).",
    ),
]
RowsFormatOpt = Annotated[
    RowsFormat | None,
    typer.Option(
        "--rows-format", help="csv, jsonl or parquet (default: from ROWS' extension; stdin: by its first line)."
    ),
]
OutFormatOpt = Annotated[
    RowsFormat | None,
    typer.Option("--out-format", help="csv, jsonl or parquet (default: from OUT's extension, else csv)."),
]
ChunkRowsOpt = Annotated[
    int | None,
    typer.Option("--chunk-rows", min=1, help="Rows evaluated together (default 16,384; with Parquet 131,072)."),
]
SkipBadRowsOpt = Annotated[bool, typer.Option("--skip-bad-rows", help="Report bad rows on stderr and go on.")]
BadRowsOpt = Annotated[
    str | None,
    typer.Option(
        "--bad-rows",
        metavar="FILE",
        help="Write every bad row there, as read, with its line and the error (implies --skip-bad-rows).",
    ),
]
KeepOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--keep", metavar="COL,...", help="Copy these columns (any text) of each row to its output row, in front."
    ),
]
KeepAllOpt = Annotated[bool, typer.Option("--keep-all", help="Copy every column that is not an input.")]
RowNumberOpt = Annotated[
    bool, typer.Option("--row-number", help="Add each row's line in ROWS (Parquet: its row), first.")
]
IgnoreOutputsOpt = Annotated[
    bool, typer.Option("--ignore-outputs", help="Drop the columns batch writes (results, line): read its own output.")
]
NodesOpt = Annotated[
    list[str] | None,
    typer.Option("--nodes", metavar="NAME,...", help="Add these intermediate nodes' values as columns."),
]
NodesGradOpt = Annotated[bool, typer.Option("--nodes-grad", help="And dO/dN for each of the --nodes.")]
PrecisionOpt = Annotated[
    int | None, typer.Option("--precision", "-p", min=1, max=17, help="Write floats with N significant digits (%.Ng).")
]
FloatFormatOpt = Annotated[
    str | None,
    typer.Option(
        "--float-format", metavar="FMT", help="Write floats as this printf format, e.g. %.6f (default: shortest exact)."
    ),
]
DelimiterOpt = Annotated[
    str | None,
    typer.Option("--delimiter", "-d", metavar="CHAR", help="CSV cell delimiter, in and out: ; | tab (default ,)."),
]
FastMathOpt = Annotated[
    bool,
    typer.Option(
        "--fast-math",
        help="numpy's exp/log/tanh/pow/sin/cos for graphs of scalars (faster; may differ from `run` in the last bit).",
    ),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar, no summary.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Say how rows were grouped.")]
EngineOpt = Annotated[
    Engine,
    typer.Option(
        "--engine",
        help="local, or dask: a dataset of Parquet/CSV files on a "
        "dask.distributed cluster (pip install 'cgcalc\\[dask]').",
    ),
]
SchedulerOpt = Annotated[
    str | None,
    typer.Option("--scheduler", help="dask: the scheduler to connect to (default: a LocalCluster on this machine)."),
]
WorkersOpt = Annotated[
    int | None, typer.Option("--workers", min=1, help="dask: workers of the LocalCluster (default: one per core).")
]
JobsOpt = Annotated[
    int | None,
    typer.Option(
        "--jobs",
        "-j",
        min=1,
        help="Worker processes for CSV rows, or JSON Lines "
        "to JSON Lines (default: one per core for files over 8 MB; 1: none).",
    ),
]


@dataclass
class BatchArgs:
    """Every option of `cgcalc batch`, as given."""

    graph: str
    rows: str
    out: str | None
    output: str | None
    rows_format: RowsFormat | None
    out_format: RowsFormat | None
    chunk_rows: int | None
    skip_bad_rows: bool
    bad_rows: str | None
    keep: list[str] | None
    keep_all: bool
    row_number: bool
    ignore_outputs: bool
    set_: list[str] | None
    nodes: list[str] | None
    nodes_grad: bool
    precision: int | None
    float_format: str | None
    delimiter: str | None
    fast_math: bool
    quiet: bool
    verbose: bool
    engine: Engine
    scheduler: str | None
    workers: int | None
    jobs: int | None

    @property
    def skip(self) -> bool:
        return self.skip_bad_rows or self.bad_rows is not None


def names_list(values: list[str] | None, option: str) -> tuple[str, ...]:
    """--keep a,b --keep c: ('a', 'b', 'c'), each once."""
    out: dict[str, None] = {}
    for v in values or []:
        for name in v.split(","):
            name = name.strip()
            if not name:
                raise UsageError(f"{option} takes names separated by commas, got {v!r}")
            out[name] = None
    return tuple(out)


# the cell delimiters of CSV: one character that no number holds and that is not a quote or a line end
_DELIMITER_NAMES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|", "space": " "}


def delimiter(text: str | None) -> str:
    """The CSV delimiter --delimiter names: one character, or tab (also `\\t`)."""
    if text is None:
        return ","
    d = _DELIMITER_NAMES.get(text.lower(), text)
    if len(d) != 1:
        raise UsageError(f"--delimiter {text!r}: give one character, such as ';' or '|', or tab")
    if d.isalnum() or d in "\"'.+-_\r\n%":
        raise UsageError(f"--delimiter {text!r}: a CSV delimiter cannot be a letter, a digit or one of \" ' . + - _ %")
    return d


def options(args: BatchArgs, g: Graph, fmt_in: str, fmt_out: str) -> Options:
    """The run's batch.options.Options from the command line; what does not fit the formats is a UsageError."""
    from ..batch.cells import float_format
    from ..batch.options import Options

    fmt = float_format(args.float_format, args.precision)
    if fmt is not None and fmt_out == "parquet":
        raise UsageError("--precision and --float-format are for text output (CSV, JSON Lines), not Parquet")
    if args.delimiter is not None and "csv" not in (fmt_in, fmt_out):
        raise UsageError(f"--delimiter is for CSV, and these rows are {fmt_in}, the output {fmt_out}")
    if args.bad_rows is not None and _same_output(args.bad_rows, args.out):
        raise UsageError("--bad-rows and -o name the same file: give the bad rows a file of their own")
    return Options(
        sets=_overrides(args.set_),
        nodes=names_list(args.nodes, "--nodes"),
        node_grads=args.nodes_grad,
        float_format=fmt,
        delimiter=delimiter(args.delimiter),
        row_number=args.row_number,
        keep=names_list(args.keep, "--keep"),
        keep_all=args.keep_all,
        ignore_outputs=args.ignore_outputs,
    )


def _same_output(a: str, b: str | None) -> bool:
    """Two outputs that are one (stdout has three names)."""
    stdout = ("-", "/dev/stdout", None)
    return (a in stdout and b in stdout) or a == b


def check_output_name(g: Graph, output: str | None) -> None:
    """--output names the output to differentiate; `--output out.csv` (meant for -o) says so in one line."""
    if output is None or output == "all" or output in g.plan.index:
        return
    if "." in output or "/" in output or "\\" in output:
        raise UsageError(
            f"--output {output}: no output or node of that name. --output (-O) chooses the output to "
            f"differentiate; to write the rows to a file, give -o {output}"
        )


def format_of(path: str, default: str | None) -> str | None:
    """The format a file name says (.csv, .jsonl/.ndjson, .parquet/.parq/.pq), or `default`."""
    from ..io.arrow import PARQUET_EXTS

    p = path.lower()
    if p.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if p.endswith(PARQUET_EXTS):
        return "parquet"
    return "csv" if p.endswith(".csv") else default


def out_format(args: BatchArgs, out: str | None) -> tuple[str, bool]:
    """The output's format (as given, else from OUT's extension, else CSV), and whether pyarrow is there (it reads
    and writes CSV faster; Parquet needs it)."""
    from ..io.arrow import why_not

    fmt_out = args.out_format.value if args.out_format else format_of(out or "", "csv")
    no_arrow = why_not()
    rows_fmt = args.rows_format.value if args.rows_format else format_of(args.rows, None)
    if "parquet" in (rows_fmt, fmt_out) and no_arrow is not None:
        raise UsageError(f"Parquet needs pyarrow ({no_arrow})")
    if fmt_out == "parquet" and not out and sys.stdout.isatty():
        raise UsageError("Parquet is binary: write it to a file with -o OUT.parquet (or pipe it)")
    return fmt_out, no_arrow is None
