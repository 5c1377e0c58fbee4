"""How a batch row's values become text: floats in their shortest round-trip form (`repr`, the default) or by
`--float-format`; arrays as JSON; CSV cells quoted when they need it; kept columns as they were read."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from ..io.columns import MISSING
from ..numbers import NONFINITE, strict

if TYPE_CHECKING:
    import numpy as np

# one float, printf style, that every CSV and JSON reader reads back as a number: no width, sign or padding flags
# (JSON has no '+1' or '007'), no %a (hexadecimal)
_FLOAT_FORMAT = re.compile(r"%#?(?:\.(\d{1,2}))?[eEfFgG]")
_JSON = json.JSONEncoder(allow_nan=False, ensure_ascii=False)
_ASCII = json.JSONEncoder(allow_nan=False)


def float_format(fmt: str | None, precision: int | None) -> str | None:
    """The printf-style format of the floats written (None: shortest round-trip), from --float-format or
    --precision N (N significant digits: %.Ng)."""
    if fmt is not None and precision is not None:
        raise UsageError("--precision and --float-format both say how to write floats: give one of them")
    if precision is not None:
        return f"%.{precision}g"
    if fmt is None:
        return None
    if not _FLOAT_FORMAT.fullmatch(fmt):
        raise UsageError(
            f"--float-format {fmt!r}: give one printf-style float format, such as %.6f, %.3e or %.10g "
            "(no width, sign or padding: every CSV and JSON reader must read it back)"
        )
    return fmt


def float_text(x: float, fmt: str | None) -> str:
    """One float's text (NaN and infinities as JSON's usual strings, unquoted)."""
    t = repr(x) if fmt is None else fmt % x
    return NONFINITE.get(t.lower(), t)


def float_cells(a: np.ndarray, fmt: str | None) -> list[str]:
    """The text of each float of a 1-D array."""
    import numpy as np

    xs = a.tolist()
    out = list(map(float.__repr__, xs)) if fmt is None else [fmt % x for x in xs]
    if not np.isfinite(a).all():
        out = [NONFINITE.get(t.lower(), t) for t in out]
    return out


def _formatted(v: Any, fmt: str) -> str:
    """JSON text of nested lists of floats, each number by `fmt` (a non-finite one as a JSON string)."""
    if isinstance(v, list):
        return "[" + ", ".join(_formatted(x, fmt) for x in v) + "]"
    t = float_text(v, fmt)
    return f'"{t}"' if t in NONFINITE.values() else t


def json_texts(a: np.ndarray, fmt: str | None = None) -> list[str]:
    """Each row's value as JSON text: a number, or nested lists (NaN and infinities as strings)."""
    if fmt is None:
        return [json.dumps(strict(x), allow_nan=False) for x in a.tolist()]
    return [_formatted(x, fmt) for x in a.tolist()]


def cell_texts(a: np.ndarray, quote: bool = False, fmt: str | None = None) -> list[str]:
    """Each row's cell text: floats as float_cells writes them; arrays as JSON (CSV-quoted when quote)."""
    if a.ndim == 1:
        return float_cells(a, fmt)
    texts = json_texts(a, fmt)
    return ['"' + t.replace('"', '""') + '"' for t in texts] if quote else texts


def csv_quoted(text: str, delimiter: str) -> str:
    """A CSV cell: quoted when it holds the delimiter, a quote or a line end (as the csv module does)."""
    if delimiter in text or '"' in text or "\n" in text or "\r" in text:
        return '"' + text.replace('"', '""') + '"'
    return text


def kept_value(v: Any) -> str:
    """A kept JSON value as a CSV cell's text: a string as it is, null or a missing key empty, else its JSON."""
    if isinstance(v, str):
        return v
    if v is None or v is MISSING:
        return ""
    return _json(v) if not isinstance(v, float) else float_text(v, None)


def kept_csv(values: Any, delimiter: str) -> list[str]:
    """CSV cells of a kept column: a list of read values, or an Arrow array (a Parquet column: Arrow's text)."""
    if not isinstance(values, list):
        from ..io.arrow_out import arrow_texts

        values = arrow_texts(values)
    return [csv_quoted(kept_value(v), delimiter) for v in values]


def kept_json(values: Any) -> list[str | None]:
    """JSON texts of a kept column (None where a JSON Lines row leaves it out)."""
    if not isinstance(values, list):
        values = values.to_pylist()
    return [None if v is MISSING else _json(v) for v in values]


def _json(v: Any) -> str:
    text = _JSON.encode(_plain(v))
    return text if text.isprintable() else _ASCII.encode(_plain(v))  # a lone surrogate, a bidi override: escaped


def _plain(v: Any) -> Any:
    """A value JSON can hold: a Parquet date, time or decimal as its text; NaN and infinities as strings."""
    if v is None or isinstance(v, (str, bool, int)):
        return v
    if isinstance(v, (float, list, dict)):
        return strict(v)
    return str(v)


def csv_line(cells: list[str], delimiter: str = ",") -> str:
    """One CSV line (a header), each cell quoted when it needs it."""
    return delimiter.join(csv_quoted(c, delimiter) for c in cells) + "\n"
