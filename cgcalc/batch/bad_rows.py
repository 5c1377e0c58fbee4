"""`--bad-rows FILE`: every row that `--skip-bad-rows` leaves out, as it was read, with its line and the error —
in the rows' own format, so that it can be fixed and read again (`--keep line,error`).

- CSV: `line,error,` then the rows file's header as read; each row `N,"the error",` then its line as read.
- JSON Lines: `{"line": N, "error": "...", "text": "the line as read"}` (a bad line may not even be JSON).
- Parquet: `line` (int64), `error`, then the row's values, with the rows file's types (nulls where they were).
The dask engine's bad rows come from many files: a `file` column comes first.
"""

from __future__ import annotations

import json
from typing import IO, Any

from ..errors import RowsError
from ..io.columns import ROW_NUMBER
from .cells import csv_line, csv_quoted

PARQUET_BATCH = 10_000  # bad rows written to a Parquet file at a time (a row group)


class BadRows:
    """Where the bad rows go, in the rows' format (`fmt`): `out` is a text file, or for Parquet the name of one.

    `header`: the CSV rows file's header as read; `columns`: a Parquet file's columns and their Arrow types;
    `with_file`: a `file` column first (rows from several files)."""

    def __init__(
        self,
        out: IO[str] | str,
        fmt: str,
        *,
        header: str = "",
        delimiter: str = ",",
        columns: dict[str, Any] | None = None,
        with_file: bool = False,
    ) -> None:
        self.out, self.fmt, self.delimiter, self.with_file = out, fmt, delimiter, with_file
        self.columns = columns or {}
        self.count = 0
        self._pending: list[RowsError] = []
        self._writer = None
        if fmt == "csv":
            lead = (["file"] if with_file else []) + [ROW_NUMBER, "error"]
            out.write(csv_line(lead, delimiter).rstrip("\n") + delimiter + header + "\n")

    def add(self, e: RowsError) -> None:
        """One bad row (its error, with the row as read: see io.columns.as_read)."""
        self.count += 1
        if self.fmt == "parquet":
            self._pending.append(e)
            if len(self._pending) >= PARQUET_BATCH:
                self._flush()
            return
        text = getattr(e, "text", None) or ""
        if self.fmt == "csv":
            d = self.delimiter
            lead = [e.file or ""] if self.with_file else []
            cells = [csv_quoted(c, d) for c in [*lead, str(e.line or ""), e.message]]
            self.out.write(d.join(cells) + d + text + "\n")
        else:
            obj = ({"file": e.file} if self.with_file else {}) | {ROW_NUMBER: e.line, "error": e.message, "text": text}
            self.out.write(json.dumps(obj, ensure_ascii=False) + "\n")

    def close(self) -> None:
        """Finish the file (a Parquet file with no bad rows still has its columns)."""
        if self.fmt == "parquet":
            self._flush(final=True)

    def _flush(self, final: bool = False) -> None:
        if self._writer is None:
            from ..io.arrow_out import ValuesSink

            lead = [("file", "string")] if self.with_file else []
            fields = [*lead, (ROW_NUMBER, "int64"), ("error", "string"), *self.columns.items()]
            self._writer = ValuesSink(self.out, fields)
        rows, self._pending = self._pending, []
        if rows:
            data = {
                "file": [e.file for e in rows],
                ROW_NUMBER: [e.line for e in rows],
                "error": [e.message for e in rows],
            }
            for name in self.columns:
                data[name] = [(getattr(e, "row", None) or {}).get(name) for e in rows]
            self._writer.write(data)
        if final:
            self._writer.close()
