"""A graph file's records, as the readers (io/) hand them to the compiler: the inputs, one NodeSpec per node,
the graph's name, description and outputs, with source positions (1-based line and column) where known.

A reading (io.build.Reading) gives the name, description and inputs at once, then the nodes one by one,
then the outputs: the compiler takes the nodes as they come, so that no list of records is ever built.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any, NamedTuple, Protocol

from ..errors import GraphError

Pos = tuple[int, int] | None  # 1-based (line, column)
Ref = str | float  # an input/node name, or a constant

TOP_KEYS = ("name", "description", "inputs", "nodes", "outputs")
NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class Limits(NamedTuple):  # NamedTuples and plain classes here: a dataclass costs ~0.5 ms of start-up to make
    """Guards against absurd or hostile files; each can be raised by an environment variable."""

    max_elements: int = 10_000_000  # numbers in one input (CGCALC_MAX_ELEMENTS)
    max_depth: int = 200  # nesting of an expression or an array (CGCALC_MAX_DEPTH)
    max_file_bytes: int = 512 * 1024 * 1024  # size of a graph or --set text (CGCALC_MAX_FILE_BYTES)

    @classmethod
    def from_env(cls) -> Limits:
        def get(var: str, default: int) -> int:
            text = os.environ.get(var)
            if text is None:
                return default
            try:
                return int(text)
            except ValueError:
                raise GraphError(f"{var} must be a whole number, got {text!r}") from None

        default = cls._field_defaults
        return cls(
            get("CGCALC_MAX_ELEMENTS", default["max_elements"]),
            get("CGCALC_MAX_DEPTH", default["max_depth"]),
            get("CGCALC_MAX_FILE_BYTES", default["max_file_bytes"]),
        )


class InputSpec(NamedTuple):  # NamedTuples: immutable, and 5-10x cheaper to build than frozen dataclasses
    name: str
    value: float | tuple[float, ...]  # a float, or the elements of an array in C order
    shape: tuple[int, ...]
    grad: bool
    pos: Pos = None


class NodeSpec(NamedTuple):
    """One node as written. From a fast reading (Reading.fast), only name, op, inputs and pos are filled in,
    and as read: `inputs` a list, unchecked (the compiler checks every name and number it holds)."""

    name: str
    op: str | None  # None for the expression form (see `expr`)
    inputs: tuple[Ref, ...] | list = ()
    attrs: dict[str, Any] = {}  # never mutated
    pos: Pos = None  # the node's name
    op_pos: Pos = None
    in_pos: tuple[Pos, ...] = ()
    attr_pos: Pos = None
    expr: str | None = None
    expr_pos: Pos = None  # where the expression's first character stands


class Reading(Protocol):
    """What a reader made of a graph file's text, for compiler.compile_graph."""

    file: str | None
    name: str
    description: str
    inputs: tuple[InputSpec, ...]
    fast: bool  # its errors have no line or column: the caller reads the text again to say where
    positions: bool  # its nodes' `pos` is known: a plan keeps them (Plan.pos_of), for runtime messages
    numbers_as_text: bool  # a str in a node's inputs may be a number as written (`2`, `.inf`)
    count: int  # once `nodes` is called: how many it hands on (an expression then makes more)

    def nodes(self) -> Iterator[NodeSpec | tuple]:
        """The nodes in file order; raises GraphError for a node that is not well-formed. A fast reading may
        hand a node {op: OP, in: [...]} on as a plain tuple of NodeSpec's first five fields: (name, op (a str),
        inputs (a list, unchecked), attrs (empty), pos)."""
        ...

    def outputs(self) -> tuple[tuple[str, ...], tuple[Pos, ...]]:
        """The outputs (by default the last node) and where each is written; called after `nodes`."""
        ...


class GraphSpec:
    """A graph file's name, description, inputs and outputs, as a Plan keeps them (never changed once made);
    and each node written as an expression, name -> its text (a plan has the nodes it was lowered into)."""

    __slots__ = ("name", "description", "inputs", "outputs", "outputs_pos", "file", "exprs")

    def __init__(
        self,
        name: str,
        description: str,
        inputs: tuple[InputSpec, ...],
        outputs: tuple[str, ...],
        outputs_pos: tuple[Pos, ...],
        file: str | None = None,
        exprs: dict[str, str] | None = None,
    ) -> None:
        self.name, self.description, self.inputs = name, description, inputs
        self.outputs, self.outputs_pos, self.file = outputs, outputs_pos, file
        self.exprs = exprs or {}

    def __repr__(self) -> str:
        return f"GraphSpec({self.name!r}: {len(self.inputs)} inputs, outputs {self.outputs}, file={self.file!r})"
