"""JSON Lines rows: one object per line, input name -> number or (nested) list; other keys kept (`--keep`) or
dropped (`--ignore-outputs`) by the column rules. Consecutive rows that set the same inputs with the same shapes
are read into one Chunk (they run together)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from typing import IO, Any

from ..errors import RowsError
from .columns import KEEP, MISSING, Chunk, ColumnRules, as_read, line_blocks, plain_rules


class JsonlRows:
    """JSON Lines: one object per line, input name -> number or (nested) list."""

    def __init__(
        self, f: IO[str], file: str, inputs: list[str], shapes: dict[str, tuple], rules: ColumnRules | None = None
    ) -> None:
        self.f, self.file, self.inputs, self.shapes = f, file, inputs, shapes
        self.rules = rules or plain_rules(inputs)
        self.line = 0
        self.names: list[str] | None = None  # the first row's inputs: the echo columns of a CSV output
        self.kept_names: list[str] | None = None  # and its kept keys (then --keep's others)
        self.notes: list[str] = []  # for --verbose: where rows could not all run together
        # keys other than inputs: ints kept as they are written (an id); inputs read them as floats anyway
        self.decoder = _DECODER if self.rules.plain else _KEEP_DECODER

    def blocks(self, size: int) -> Iterator[tuple[int, str]]:
        """`size` lines at a time, for worker processes: (line number of the block's first line, text)."""
        return line_blocks(self, size)

    def chunks(self, size: int, on_bad: Callable[[RowsError], None] | None) -> Iterator[Chunk]:
        for group in self.runs(size, on_bad):
            yield from group

    def runs(self, size: int, on_bad: Callable[[RowsError], None] | None) -> Iterator[list[Chunk]]:
        """Up to `size` good rows at a time, as the groups they run in (alike rows: the same inputs and shapes);
        a bad row is passed to on_bad (or raised) before the groups of the rows read with it."""
        pending: list[tuple[int, dict, dict | None, str]] = []
        for text in self.f:
            self.line += 1
            if not text.strip():
                continue
            try:
                row, kept = self._row(self.line, text)
            except RowsError as e:
                if on_bad is None:
                    raise
                on_bad(as_read(e, text.rstrip("\r\n")))
                continue
            pending.append((self.line, row, kept, text))
            if len(pending) >= size:
                yield list(self._groups(pending))
                pending = []
        if pending:
            yield list(self._groups(pending))

    def _row(self, line: int, text: str) -> tuple[dict, dict | None]:
        try:
            # integers as floats (a huge one is inf, as in --set); a key twice is an error, not the last one
            obj = self.decoder.decode(text)
        except ValueError as e:
            col = getattr(e, "colno", None)
            raise RowsError(f"not a JSON object: {getattr(e, 'msg', e)}", file=self.file, line=line, col=col) from None
        except RecursionError:  # json's reader recurses once per [ or {
            raise RowsError("the row is nested too deep", file=self.file, line=line, col=1) from None
        if not isinstance(obj, dict):
            raise RowsError("a row must be a JSON object {input: value, ...}", file=self.file, line=line, col=1)
        row, kept = {}, None
        inputs = self.shapes
        for name, v in obj.items():
            try:
                if name in inputs:
                    row[name] = v if type(v) is float else self._value(v, name, line)  # a number: the usual cell
                    continue
                kind = self.rules.kind(name, self.file, line)
            except RowsError as e:
                e.col = text.find(f'"{name}"') + 1 or None
                raise
            if kind == KEEP:
                if kept is None:
                    kept = {}
                kept[name] = v
        if self.names is None:
            self.names = list(row)  # the first good row's inputs and kept keys
            self.kept_names = list(self.rules.keep) + [k for k in kept or () if k not in self.rules.keep]
        return row, kept

    def _value(self, v, name: str, line: int):
        import numpy as np

        def bad(why: str) -> RowsError:
            return RowsError(f"column '{name}': {why}", file=self.file, line=line)

        if isinstance(v, bool) or v is None:
            raise bad(f"bad number {json.dumps(v)}")
        if isinstance(v, int):  # (read by the decoder of kept keys, which keeps integers)
            return _int_float(v)
        if isinstance(v, float):
            return v
        if isinstance(v, str):
            if v in ("NaN", "Infinity", "-Infinity"):
                return float(v)
            raise bad(f"bad number {json.dumps(v)}")
        try:
            a = np.array(strict_in(v), dtype=np.float64)
        except (ValueError, TypeError, RecursionError, OverflowError):
            raise bad("not a number or a rectangular list of numbers") from None
        if a.dtype != np.float64 or a.ndim == 0:
            raise bad("not a number or a rectangular list of numbers")
        return a

    def _groups(self, pending) -> Iterator[Chunk]:
        """Consecutive rows that set the same inputs with the same shapes run together."""
        import numpy as np

        def signature(row):
            return tuple((k, () if type(v) is float else v.shape) for k, v in row.items())

        start = 0
        groups = 0
        while start < len(pending):
            sig = signature(pending[start][1])
            end = start + 1
            while end < len(pending) and signature(pending[end][1]) == sig:
                end += 1
            group = pending[start:end]
            cols = {k: np.array([r[k] for _, r, _, _ in group], dtype=np.float64) for k, _ in sig}
            kept = _kept(group, self.rules.keep)
            yield Chunk([ln for ln, *_ in group], cols, None, kept, [t.rstrip("\r\n") for *_, t in group])
            groups += 1
            start = end
        if groups > 1:
            self.notes.append(
                f"lines {pending[0][0]}-{pending[-1][0]}: rows set different inputs or shapes, so they "
                f"ran in {groups} groups (each group vectorized)"
            )


def _kept(group: list, keep: tuple[str, ...]) -> dict[str, list] | None:
    """The kept keys of a group of rows, as columns (MISSING where a row leaves a key out), --keep's first, then
    the others as they come; None: none kept."""
    seen: dict[str, None] = {}
    for _, _, kept, _ in group:
        if kept:
            seen.update(dict.fromkeys(kept))
    if not seen:
        return None
    names = [k for k in keep if k in seen] + [k for k in seen if k not in keep]
    return {k: [MISSING if kept is None else kept.get(k, MISSING) for _, _, kept, _ in group] for k in names}


def _unique_pairs(items):
    d = dict(items)
    if len(d) != len(items):
        seen = set()
        dup = next(k for k, _ in items if k in seen or seen.add(k))
        raise ValueError(f"key '{dup}' appears twice")
    return d


_DECODER = json.JSONDecoder(parse_int=float, object_pairs_hook=_unique_pairs)  # one, not one per row
_KEEP_DECODER = json.JSONDecoder(object_pairs_hook=_unique_pairs)


def _int_float(v: int) -> float:
    """An integer as float() reads its text: a huge one is inf."""
    try:
        return float(v)
    except OverflowError:
        return math.copysign(math.inf, v)


def strict_in(v: Any) -> Any:
    """JSON input values: the strings our own output writes for non-finite numbers become floats."""
    if isinstance(v, list):
        return [strict_in(x) for x in v]
    if type(v) is int:
        return _int_float(v)
    if isinstance(v, str) and v in ("NaN", "Infinity", "-Infinity"):
        return float(v)
    return v
