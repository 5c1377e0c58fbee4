"""`cgcalc ops OP`: one op's page, as plain text: its layer, inputs, forward and backward rules, attributes with
their defaults, and what more its layer says (getitem's index, in both forms)."""

from __future__ import annotations

import textwrap

from ..core.base import Layer


def op_text(name: str, cls: type[Layer], width: int = 100) -> str:
    n = cls.arity
    takes = f"{'at least ' if cls.variadic else ''}{n} input{'' if n == 1 else 's'}"
    lines = [f"{name} ({cls.__name__}): {takes}"]
    rows = [("forward:", cls.forward_rule), ("backward:", cls.backward_rule)]
    if cls.attr_defaults:
        rows.append(("attributes:", ", ".join(_attr(k, v) for k, v in cls.attr_defaults.items())))
    for label, text in rows:
        lines += textwrap.wrap(text, width, initial_indent=f"{label:<12}", subsequent_indent=" " * 12)
    if cls.doc:
        lines += ["", *cls.doc.splitlines()]
    return "\n".join(lines)


def _attr(name: str, default) -> str:
    """name=default, or the name alone when it has none (None: the op's rule says what is missing means)."""
    if default is None:
        return name
    return f"{name}={('true' if default else 'false') if isinstance(default, bool) else default}"
