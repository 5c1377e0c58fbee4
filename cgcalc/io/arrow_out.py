"""The optional Arrow path's output side (see io/arrow.py): a batch block's columns as Arrow arrays, written as
Parquet row groups; kept Parquet columns turned into text; the bad rows of a Parquet rows file written back."""

from __future__ import annotations

from typing import IO, Any

from .arrow import _floats, _strings


def arrow_column(values: Any):
    """An Arrow array of an output column: float64 (or int64: row numbers) from numpy, strings from a list
    (kept CSV cells, or JSON texts; None is null), or an Arrow array as it is (a kept Parquet column)."""
    import numpy as np
    import pyarrow as pa

    if isinstance(values, np.ndarray):
        if values.dtype == np.int64:
            return pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(np.ascontiguousarray(values))])
        return _floats(values)
    if isinstance(values, list):
        return _strings(values)
    return values


def concat_arrays(parts: list) -> Any:
    """Arrow arrays one after the other, as one."""
    import pyarrow as pa

    return pa.concat_arrays(parts)


def arrow_texts(a: Any) -> list:
    """A Parquet column's values as Arrow writes them as text (nulls: None)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_string(a.type) or pa.types.is_large_string(a.type):
        return a.to_pylist()
    try:
        return pc.cast(a, pa.string()).to_pylist()
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        return [None if v is None else str(v) for v in a.to_pylist()]


class ParquetSink:
    """Rows written to a Parquet file (a path or a file object): float64 columns (kept ones as they were read),
    a row group per block."""

    def __init__(self, f: str | IO[bytes]) -> None:
        self.f = f
        self.writer = None

    def write(self, columns: dict) -> None:
        import numpy as np
        import pyarrow as pa
        import pyarrow.parquet as pq

        from ..errors import UsageError

        for name, a in columns.items():
            if isinstance(a, np.ndarray) and a.ndim != 1:
                raise UsageError(
                    f"Parquet output holds one number per cell, and '{name}' is an array "
                    f"(shape {a.shape[1:]}): write CSV or JSON Lines"
                )
        table = pa.Table.from_arrays([arrow_column(v) for v in columns.values()], names=list(columns))
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.f, table.schema)
        elif table.schema != self.writer.schema:
            table = table.cast(self.writer.schema)  # a kept column all null in the first block, say
        self.writer.write_table(table)

    def close(self, names: list[str], types: dict | None = None) -> None:
        """Finish the file (with these columns and no rows when nothing was written: float64, or `types`, an
        Arrow type or its name, such as "string")."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self.writer is None:
            types = types or {}
            fields = [(n, _arrow_type(types.get(n, "float64"))) for n in names]
            self.writer = pq.ParquetWriter(self.f, pa.schema(fields))
        self.writer.close()


class ValuesSink:
    """Rows given as Python values (the bad rows of --bad-rows), written to a Parquet file with these columns
    (name, Arrow type or its name)."""

    def __init__(self, f: str | IO[bytes], fields: list[tuple[str, Any]]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.schema = pa.schema([(n, _arrow_type(t)) for n, t in fields])
        self.writer = pq.ParquetWriter(f, self.schema)

    def write(self, data: dict[str, list]) -> None:
        import pyarrow as pa

        self.writer.write_table(pa.table({f.name: pa.array(data[f.name], type=f.type) for f in self.schema}))

    def close(self) -> None:
        self.writer.close()


def _arrow_type(t: Any):
    import pyarrow as pa

    return t if isinstance(t, pa.DataType) else pa.type_for_alias(t)
