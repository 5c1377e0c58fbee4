"""A node's attribute values in two forms: frozen (tuples, FrozenMapping: hashable, for the derivative store's
terms) and thawed (lists and dicts, as a graph file writes them)."""

from __future__ import annotations

from typing import Any

__all__ = ["FrozenMapping", "file_attrs", "thawed"]


class FrozenMapping(tuple):
    """A mapping in an attribute (getitem's slice {start: 1, stop: 3}), frozen: its (key, value) pairs."""

    __slots__ = ()


def _frozen(v: Any) -> Any:
    if isinstance(v, dict):
        return FrozenMapping((k, _frozen(x)) for k, x in v.items())
    return tuple(_frozen(x) for x in v) if isinstance(v, (list, tuple)) and not isinstance(v, FrozenMapping) else v


def thawed(v: Any) -> Any:
    if isinstance(v, FrozenMapping):
        return {k: thawed(x) for k, x in v}
    return [thawed(x) for x in v] if isinstance(v, tuple) else v


def file_attrs(cls, attrs: dict) -> dict:
    """A layer's checked attributes back in the form a file writes them, defaults left out."""
    out = {}
    for k, v in attrs.items():
        if k in cls.attr_defaults and v == cls.attr_defaults[k]:
            continue
        out[k] = thawed(_frozen(v))
    return out
