"""Numbers as text, in one place: what a graph file's number is (parse_number), the shortest round-trip text of
a float and strict JSON (NaN and infinities as strings), and the rounded text of tables and figures."""

from __future__ import annotations

import json
import math
import re
from typing import Any

_NUMBER_RE = re.compile(r"[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)?\Z")
INT_RE = re.compile(r"[-+]?[0-9]+\Z")
_SPECIAL = {
    ".inf": math.inf,
    "+.inf": math.inf,
    "-.inf": -math.inf,
    ".nan": math.nan,
    "inf": math.inf,
    "+inf": math.inf,
    "-inf": -math.inf,
    "nan": math.nan,
    "infinity": math.inf,
    "+infinity": math.inf,
    "-infinity": -math.inf,  # as JSON writers spell them
}


def parse_number(text: str) -> float | None:
    """A number as a user of YAML 1.2 or JSON means it (1e-3, 2E2, .inf, nan), or None."""
    if _NUMBER_RE.match(text):
        if text.lstrip("+-").startswith("_") or "__" in text:
            return None
        return float(text.replace("_", ""))
    return _SPECIAL.get(text.lower())


NONFINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def fmt_float(x: float) -> str:
    """Shortest round-trip text of a float; non-finite values as JSON's usual strings."""
    return repr(x) if math.isfinite(x) else NONFINITE[repr(x)]


def strict(v: Any) -> Any:
    """A plain value (float, nested lists, dicts) with NaN and infinities replaced by strings."""
    if type(v) is float:
        return v if math.isfinite(v) else NONFINITE[repr(v)]
    if isinstance(v, list):
        return [strict(x) for x in v]
    if isinstance(v, dict):
        return {k: strict(x) for k, x in v.items()}
    return v


def dumps(v: Any) -> str:
    text = json.dumps(strict(v), allow_nan=False, ensure_ascii=False)
    if not text.isprintable():  # json escapes C0; for DEL, C1 or a bidi override (a terminal's), escape all
        text = json.dumps(strict(v), allow_nan=False)
    return text


INLINE_ELEMENTS = 6  # 1-D arrays up to this size are shown whole; others by shape and first elements


def fmt_num(x: float, precision: int) -> str:
    if x != x:
        return "NaN"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    s = f"{x:.{precision}g}"
    if "e+" in s and abs(x) < 1e16:
        s = f"{x:.0f}"  # 220 at 2 digits reads better as 220 than as 2.2e+02
    return "0" if s == "-0" else s


def fmt_value(v: Any, precision: int, full: bool = False, width: int | None = None) -> str:
    """A float as rounded text; an array compactly with its shape (in full when full: a vector on one line, a
    matrix as a grid, see `grid`)."""
    if v is None:
        return "—"
    if type(v) is float or getattr(v, "ndim", 0) == 0:
        return fmt_num(float(v), precision)
    if full:
        return grid(v, precision, width) if v.ndim >= 2 else _nested(v.tolist(), precision, 0)
    if v.ndim == 1 and v.size <= INLINE_ELEMENTS:
        return _nested(v.tolist(), precision, 0)
    shape = "×".join(map(str, v.shape))
    head = ", ".join(fmt_num(float(x), precision) for x in v.ravel()[:3])
    return f"{shape} [{head}{', …' if v.size > 3 else ''}]"


def _nested(v, precision: int, depth: int) -> str:
    if not isinstance(v, list):
        return fmt_num(v, precision)
    sep = ",\n" + " " * (depth + 1) if v and isinstance(v[0], list) else ", "
    return "[" + sep.join(_nested(x, precision, depth + 1) for x in v) + "]"


def _halves(text: str) -> tuple[str, str]:
    """A number's text split where the decimal point is (or would be): '-0.25' -> ('-0', '.25'), '1e-07' -> ('1',
    'e-07'), '220' -> ('220', '')."""
    for mark in (".", "e"):
        i = text.find(mark)
        if i >= 0:
            return text[:i], text[i:]
    return text, ""


def grid(v: Any, precision: int, width: int | None = None) -> str:
    """An array of 2 or more dimensions as a grid: each row on its own line, each column's numbers aligned on the
    decimal point (a space between columns, and one more where a column has negative numbers: the minus sign's
    room), bracketed as numpy prints it (a blank line between the matrices of a 3-D array). A row longer than
    `width` goes on over more lines, indented under the first number, as numpy's does."""
    shape = tuple(v.shape)
    nd = len(shape)
    if v.size == 0:
        return "×".join(map(str, shape)) + " []"
    rows = v.reshape(-1, shape[-1]).tolist()
    texts = [[_halves(fmt_num(float(x), precision)) for x in row] for row in rows]
    n_cols = shape[-1]
    left = [max(len(r[j][0]) for r in texts) for j in range(n_cols)]
    right = [max(len(r[j][1]) for r in texts) for j in range(n_cols)]
    blocks = []  # rows in each enclosing level: a matrix, a stack of matrices, ...
    n = 1
    for d in reversed(shape[:-1]):
        n *= d
        blocks.append(n)
    lines: list[str] = []
    for i, r in enumerate(texts):
        cells = [r[j][0].rjust(left[j]) + r[j][1].ljust(right[j]) for j in range(n_cols)]
        opens = 1 + sum(1 for b in blocks[:-1] if i % b == 0) + (i == 0)
        closes = 1 + sum(1 for b in blocks[:-1] if (i + 1) % b == 0) + (i == len(texts) - 1)
        if i > 0:
            lines += [""] * (opens - 1)  # a blank line between the matrices of a 3-D array (two between stacks)
        prefix = " " * (nd - opens) + "[" * opens
        suffix = "]" * closes
        pieces: list[str] = []
        chunk: list[str] = []
        for cell in cells:  # a row too long for `width` goes on over more lines, as numpy's does
            if width is not None and chunk and nd + len(" ".join(chunk + [cell])) + len(suffix) > width:
                pieces.append(" ".join(chunk).rstrip())
                chunk = []
            chunk.append(cell)
        pieces.append(" ".join(chunk))
        for k, piece in enumerate(pieces):
            lines.append((prefix if k == 0 else " " * nd) + piece + (suffix if k == len(pieces) - 1 else ""))
    return "\n".join(lines)
