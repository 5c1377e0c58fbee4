"""Which columns of a rows file are the graph's inputs, which are copied to the output as they are (`batch --keep
COL,...`, `--keep-all`), and which are dropped (`--ignore-outputs`: the columns `batch` itself writes, so that it
can read its own output back). One set of rules for CSV headers, Parquet schemas and JSON Lines keys."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from ..errors import RowsError, suggest

ROW_NUMBER = "line"  # the column --row-number writes: each row's line in the rows file (Parquet: its row)
_GRAD = re.compile(r"d([A-Za-z_][A-Za-z0-9_.]*)/d([A-Za-z_][A-Za-z0-9_.]*)")  # node names: f, f.1

INPUT, KEEP, IGNORE = "input", "keep", "ignore"


class _Missing:
    """A kept key that a JSON Lines row leaves out (not null: JSON Lines output leaves it out too)."""

    def __reduce__(self) -> str:
        return "MISSING"  # unpickled (in another process) as this same object

    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()


@dataclass
class Chunk:
    """Good rows read together: their line numbers, their inputs as float64 columns, and what is copied."""

    lines: Sequence[int]  # line number of each row in the rows file (Parquet: its 1-based row)
    columns: dict[str, Any]  # input name -> array (rows, *shape)
    echo: list[str] | None  # CSV: each row's kept and input cells as CSV text, to copy to a CSV output
    kept: dict[str, Any] | None = None  # kept column -> its values (a list, MISSING where left out; Parquet: Arrow)
    raw: Sequence[str] | None = None  # each row's text as read (CSV, JSON Lines), for --bad-rows


def as_read(e: RowsError, text: str | None = None, row: dict | None = None) -> RowsError:
    """A bad row's error, with the row as it was read: its text (CSV, JSON Lines) or its values (Parquet)."""
    e.text, e.row = text, row
    return e


@dataclass(frozen=True)
class ColumnRules:
    """What each column name of a rows file is: an input, a kept column, an ignored one, or an error."""

    inputs: tuple[str, ...]
    keep: tuple[str, ...] = ()  # --keep, in its order
    keep_all: bool = False  # --keep-all: every column that is not an input
    ignore_outputs: bool = False  # --ignore-outputs: drop the columns batch writes (results, line)
    nodes: frozenset[str] = frozenset()  # the graph's node names (not inputs): what --ignore-outputs recognizes
    results: frozenset[str] = frozenset()  # the columns this run writes besides the rows' own: a kept one clashes
    _seen: dict = field(default_factory=dict, compare=False, repr=False)  # name -> kind, for JSON Lines keys

    @property
    def plain(self) -> bool:
        """Only the inputs are allowed (every other column is an error), as without these options."""
        return not (self.keep or self.keep_all or self.ignore_outputs)

    def is_result(self, name: str) -> bool:
        """A column that `batch` writes for this graph: an output or node's value, a gradient, the row number."""
        if name == ROW_NUMBER or name in self.nodes:
            return True
        m = _GRAD.fullmatch(name)
        return m is not None and m[1] in self.nodes and (m[2] in self.nodes or m[2] in self.inputs)

    def kind(self, name: str, file: str, line: int | None = None, col: int | None = None) -> str:
        """INPUT, KEEP or IGNORE; a column that is none of them is a RowsError naming --keep."""
        known = self._seen.get(name)
        if known is not None:
            return known
        if name in self.inputs:
            k = INPUT
        elif name in self.keep:
            k = KEEP
        elif self.ignore_outputs and self.is_result(name):
            k = IGNORE
        elif self.keep_all:
            k = KEEP
        else:
            raise RowsError(self._unknown(name), file=file, line=line, col=col)
        if k == KEEP and name in self.results:
            raise RowsError(
                f"column '{name}' is kept, and this run writes a result column of that name too (drop the old "
                "results with --ignore-outputs)",
                file=file,
                line=line,
                col=col,
            )
        if len(self._seen) < 10_000:  # JSON Lines keys: a file of endless distinct keys does not grow this
            self._seen[name] = k
        return k

    def _unknown(self, name: str) -> str:
        hint = suggest(name, list(self.inputs))
        if self.is_result(name):
            return (
                f"column '{name}' is a result column of this graph, not an input: to read rows that batch wrote, "
                f"give --ignore-outputs (or --keep {name})"
            )
        return (
            f"unknown column '{name}': not an input of the graph{hint}; to copy it to the output, "
            f"give --keep {name} (or --keep-all)"
        )

    def layout(self, names: list[str], file: str, line: int | None = None, starts: list[int] | None = None) -> Layout:
        """The layout of a header (CSV) or schema (Parquet): every column classified, in file order."""
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise RowsError(f"column '{dup}' appears twice", file=file, line=line)
        kinds = [self.kind(n, file, line, starts[j] if starts else None) for j, n in enumerate(names)]
        missing = [k for k in self.keep if k not in names]
        if missing:
            raise RowsError(f"--keep {missing[0]}: the rows have no column '{missing[0]}'", file=file, line=line)
        kept = [names.index(k) for k in self.keep] + [
            j for j, (n, k) in enumerate(zip(names, kinds)) if k == KEEP and n not in self.keep
        ]
        return Layout(tuple(names), tuple(j for j, k in enumerate(kinds) if k == INPUT), tuple(kept))


@dataclass(frozen=True)
class Layout:
    """The columns of a CSV header or a Parquet schema: all of them in file order, and which are inputs and kept."""

    names: tuple[str, ...]
    inputs: tuple[int, ...]  # the input columns, in file order
    kept: tuple[int, ...]  # the kept columns, in output order (--keep's, then the file's)

    @property
    def plain(self) -> bool:
        """Every column is an input (nothing kept, nothing dropped): each line is parsed whole."""
        return len(self.inputs) == len(self.names)

    @property
    def input_names(self) -> list[str]:
        return [self.names[j] for j in self.inputs]

    @property
    def kept_names(self) -> list[str]:
        return [self.names[j] for j in self.kept]

    @property
    def in_order(self) -> bool:
        """The kept columns lead and the inputs follow, nothing dropped: a line is already its output's lead."""
        return self.kept + self.inputs == tuple(range(len(self.names)))


def plain_rules(inputs: list[str]) -> ColumnRules:
    return ColumnRules(tuple(inputs))


def line_blocks(rows, size: int) -> Iterator[tuple[int, str]]:
    """`size` lines of rows.f at a time, counted in rows.line: (line number of the first, their text)."""
    while True:
        raw = list(islice(rows.f, size))
        if not raw:
            return
        first = rows.line + 1
        rows.line += len(raw)
        yield first, "".join(raw)
