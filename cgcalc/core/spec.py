"""A graph file's values -> plain immutable records with source positions (the text is read by read.py).

Structure and types only: names are resolved, ops checked and shapes inferred by the compiler.
YAML 1.1's traps are handled here, deliberately: scalars are read from the composed node tree (never
constructed by PyYAML), so `1e-3` is a number, `yes`/`on` are not, and a duplicated key is an error.
JSON files (`.json`) load with the json module; positions are then found only when an error needs them.
"""

from __future__ import annotations

import math
import os
import re
from typing import Any, NamedTuple

from ..errors import GraphError, suggest
from ..numbers import INT_RE, parse_number

Pos = tuple[int, int] | None  # 1-based (line, column)
Ref = str | float  # an input/node name, or a constant

TOP_KEYS = ("name", "description", "inputs", "nodes", "outputs")
NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_TRUE = ("true", "True", "TRUE")
_FALSE = ("false", "False", "FALSE")
_NULL = ("", "~", "null", "Null", "NULL")


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
    name: str
    op: str | None  # None for the expression form (see `expr`)
    inputs: tuple[Ref, ...] = ()
    attrs: dict[str, Any] = {}  # never mutated
    pos: Pos = None  # the node's name
    op_pos: Pos = None
    in_pos: tuple[Pos, ...] = ()
    attr_pos: Pos = None
    expr: str | None = None
    expr_pos: Pos = None  # where the expression's first character stands
    origin: str | None = None  # for a node made from an expression: the node it was written as


class GraphSpec:
    """A graph file as read (never changed once made)."""

    __slots__ = ("name", "description", "inputs", "nodes", "outputs", "outputs_pos", "file", "exact_positions")

    def __init__(
        self,
        name: str,
        description: str,
        inputs: tuple[InputSpec, ...],
        nodes: tuple[NodeSpec, ...],
        outputs: tuple[str, ...],
        outputs_pos: tuple[Pos, ...],
        file: str | None = None,
        exact_positions: bool = True,
    ) -> None:
        self.name, self.description, self.inputs, self.nodes = name, description, inputs, nodes
        self.outputs, self.outputs_pos, self.file = outputs, outputs_pos, file
        self.exact_positions = exact_positions  # False when read by a fast path that keeps only the entries' lines

    def __repr__(self) -> str:
        return f"GraphSpec({self.name!r}: {len(self.inputs)} inputs, {len(self.nodes)} nodes, file={self.file!r})"


# --- numbers and scalars -------------------------------------------------------------------------


# Views of a parsed file: plain JSON (or fastyaml) values, without positions, here; composed YAML nodes, with
# positions, in read.py (_Yaml). The builder below reads them all through these few functions.


class _Plain:
    composed = False  # True for read._Yaml, the view of PyYAML's composed nodes: exact positions, keys checked

    @staticmethod
    def kind(n) -> str:
        if isinstance(n, dict):
            return "mapping"
        if isinstance(n, list):
            return "sequence"
        return "scalar"

    @staticmethod
    def pos(n) -> Pos:
        return None

    @staticmethod
    def items(n):
        return list(n.items())

    @staticmethod
    def seq(n):
        return n

    @staticmethod
    def text(n) -> str:
        if n is None:
            return "null"
        if isinstance(n, bool):
            return "true" if n else "false"
        return n if isinstance(n, str) else repr(n)

    @staticmethod
    def plain(n) -> bool:
        return not isinstance(n, str)


class _FastYaml(_Plain):
    """fastyaml's output: plain data in which every scalar is a str, as written, unquoted."""

    @staticmethod
    def plain(n) -> bool:
        return True


class _Builder:
    def __init__(self, view, file: str | None, limits: Limits, positions: dict | None = None) -> None:
        self.v = view
        self.file = file
        self.limits = limits
        self.positions = positions or {}  # (section, name) -> (line, col), from a fast path
        self.unique_keys = not view.composed  # JSON and fastyaml refuse duplicate keys themselves

    def key_pos(self, section: str, name: str, k) -> Pos:
        return self.v.pos(k) or self.positions.get((section, name))

    def err(self, msg: str, n=None, pos: Pos = None) -> GraphError:
        if pos is None and n is not None:
            pos = self.v.pos(n)
        line, col = pos if pos else (None, None)
        return GraphError(msg, file=self.file, line=line, col=col)

    # scalars

    def scalar(self, n, what: str):
        v = self.v
        if v.kind(n) != "scalar":
            raise self.err(f"{what} must be a single value, not a {v.kind(n)}", n)
        return v.text(n)

    def number(self, n, what: str) -> float:
        v = self.v
        if v.kind(n) == "scalar" and not isinstance(n, (str, bool)) and isinstance(n, (int, float)):
            return float(n)  # JSON number
        text = self.scalar(n, what)
        # quoted text is not a number, except the forms our own JSON output writes for non-finite values
        x = parse_number(text) if v.plain(n) or text in ("NaN", "Infinity", "-Infinity") else None
        if x is None:
            shown = (
                f"'{text}'"
                if v.plain(n)
                else f'"{text}" ({"tagged !!str" if v.composed and not n.style else "quoted text"})'
            )
            raise self.err(f"bad number {shown} for {what}", n)
        return x

    def boolean(self, n, what: str) -> bool:
        if isinstance(n, bool):
            return n
        text = self.scalar(n, what)
        if self.v.plain(n) and text in _TRUE:
            return True
        if self.v.plain(n) and text in _FALSE:
            return False
        raise self.err(f"{what} must be true or false, got '{text}'", n)

    def string(self, n, what: str) -> str:
        if self.v.kind(n) == "scalar" and n is None:
            raise self.err(f"{what} is empty", n)
        text = self.scalar(n, what)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise self.err(
                f"{what} holds an unpaired surrogate (\\u{ord(text[0]):04x}...), which no output can carry", n
            ) from None
        return text

    def name(self, n, what: str) -> str:
        text = self.scalar(n, what)
        if not NAME_RE.match(text):
            raise self.err(f"bad {what} '{text}': names are letters, digits and _, not starting with a digit", n)
        return text

    def attr_value(self, n, depth: int = 0):
        v = self.v
        kind = v.kind(n)
        if kind == "sequence":
            items = v.seq(n)
            if len(items) > 64 or depth > 2:
                raise self.err("attribute list is too long or too deep", n)
            return [self.attr_value(x, depth + 1) for x in items]
        if kind == "mapping":
            raise self.err("an attribute value must be a number, true/false or a list", n)
        if isinstance(n, (bool, int, float)) or n is None:
            return n
        text = self.scalar(n, "attribute")
        if not v.plain(n):
            return text
        if INT_RE.match(text):
            # as JSON integers (read._json_int): a long one is a float, so int() never meets Python's
            # 4,300-digit limit (the op then says what it thinks of 1e30 or inf as an axis)
            return int(text) if len(text) <= 15 else float(text)
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        if text in _NULL:
            return None
        x = parse_number(text)
        return text if x is None else x

    def mapping(self, n, what: str) -> list:
        v = self.v
        if self.unique_keys and type(n) is dict:
            return list(n.items())  # string keys, duplicates refused by the reader
        if v.kind(n) != "mapping":
            raise self.err(f"{what} must be a mapping (name: value), not a {v.kind(n)}", n)
        pairs = v.items(n)
        seen: dict[str, Any] = {}
        for k, _ in pairs:
            key = self.scalar(k, "a key")
            if key in seen:
                line = v.pos(seen[key])
                first = f" (first at line {line[0]})" if line else ""
                raise self.err(f"duplicate key '{key}' in {what}{first}", k)
            seen[key] = k
        return pairs

    # the file

    def graph(self, root, default_name: str, raw_nodes: bool = False):
        """The GraphSpec; with raw_nodes (JSON), when 'nodes' is a non-empty object: (the GraphSpec without
        its nodes, the nodes object as read), for the compiler's straight path (compiler.compile_plain)."""
        v = self.v
        if root is None or (v.kind(root) == "scalar" and v.text(root) in _NULL and v.plain(root)):
            raise self.err("the file is empty: expected a mapping with 'inputs', 'nodes' and 'outputs'", pos=(1, 1))
        top = dict()
        for k, val in self.mapping(root, "the graph"):
            key = v.text(k)
            if key not in TOP_KEYS:
                raise self.err(
                    f"unknown key '{key}'{suggest(key, TOP_KEYS)}; expected one of: {', '.join(TOP_KEYS)}", k
                )
            top[key] = (k, val)
        name = self.string(top["name"][1], "name") if "name" in top else default_name
        desc = self.string(top["description"][1], "description") if "description" in top else ""
        inputs = self.inputs(top["inputs"][1]) if "inputs" in top else ()
        if "nodes" not in top:
            raise self.err("the graph has no 'nodes'", pos=(1, 1))
        raw = top["nodes"][1]
        if raw_nodes and type(raw) is dict and raw:
            nodes: tuple[NodeSpec, ...] = ()
            last = next(reversed(raw))
        else:
            raw = None
            nodes = self.nodes(top["nodes"][1])
            if not nodes:
                raise self.err("'nodes' is empty: a graph needs at least one node", top["nodes"][0])
            last = nodes[-1].name
        if "outputs" in top:
            out_node = top["outputs"][1]
            items = v.seq(out_node) if v.kind(out_node) == "sequence" else [out_node]
            if not items:
                raise self.err("'outputs' is empty", top["outputs"][0])
            outputs = tuple(self.name(x, "output name") for x in items)
            outputs_pos = tuple(v.pos(x) for x in items)
        else:
            outputs, outputs_pos = (last,), (nodes[-1].pos if nodes else None,)
        spec = GraphSpec(name, desc, inputs, nodes, outputs, outputs_pos, self.file, v.composed)
        return (spec, raw) if raw_nodes else spec

    def inputs(self, n) -> tuple[InputSpec, ...]:
        v = self.v
        if v.kind(n) == "scalar" and v.plain(n) and v.text(n) in _NULL:
            return ()
        entries = []
        for k, val in self.mapping(n, "'inputs'"):
            name = self.name(k, "input name")
            grad = True
            if v.kind(val) == "mapping":
                fields = {}
                for fk, fv in self.mapping(val, f"input '{name}'"):
                    key = v.text(fk)
                    if key not in ("value", "grad"):
                        raise self.err(
                            f"unknown key '{key}' in input '{name}'{suggest(key, ('value', 'grad'))}; expected value, grad",
                            fk,
                        )
                    fields[key] = fv
                if "value" not in fields:
                    raise self.err(f"input '{name}' has no 'value'", val)
                if "grad" in fields:
                    grad = self.boolean(fields["grad"], f"'grad' of input '{name}'")
                val = fields["value"]
            entries.append((name, k, val, grad))
        # every input's size is known from its first elements: refuse an alias bomb before reading a number
        total = 0
        for name, _, val, _ in entries:
            shape = self.shape_of(val, f"input '{name}'")
            total += math.prod(shape)
            if total > self.limits.max_elements:
                raise self.err(
                    f"the inputs hold more than {self.limits.max_elements:,} numbers (input '{name}' alone "
                    f"{math.prod(shape):,}); raise the limit with CGCALC_MAX_ELEMENTS",
                    val,
                )
        out = []
        for name, k, val, grad in entries:
            value, shape = self.array(val, f"input '{name}'")
            out.append(InputSpec(name, value, shape, grad, self.key_pos("inputs", name, k)))
        return tuple(out)

    def shape_of(self, n, what: str) -> tuple[int, ...]:
        """The shape an array would have, from the first element at each depth (no walk)."""
        v = self.v
        shape = []
        probe = n
        while v.kind(probe) == "sequence":
            items = v.seq(probe)
            shape.append(len(items))
            if len(shape) > self.limits.max_depth:
                raise self.err(
                    f"{what} is nested more than {self.limits.max_depth} deep (raise it with CGCALC_MAX_DEPTH)", n
                )
            if not items:
                break
            probe = items[0]
        return tuple(shape)

    def array(self, n, what: str):
        """A number, or a rectangular nested list of numbers: (value, shape)."""
        v = self.v
        if v.kind(n) != "sequence":
            return self.number(n, what), ()
        # the shape comes from the first element at each depth; its size is checked before any walk,
        # so that an alias bomb is refused at once
        shape = self.shape_of(n, what)
        size = math.prod(shape)
        if size > self.limits.max_elements:
            raise self.err(
                f"{what} has {size:,} elements, over the limit of {self.limits.max_elements:,} "
                "(raise it with CGCALC_MAX_ELEMENTS)",
                n,
            )
        flat: list[float] = []
        stack = [(n, 0)]
        while stack:
            node, depth = stack.pop()
            if depth == len(shape):
                flat.append(self.number(node, f"an element of {what}"))
                continue
            if v.kind(node) != "sequence" or len(v.seq(node)) != shape[depth]:
                got = f"{len(v.seq(node))} elements" if v.kind(node) == "sequence" else "a single value"
                raise self.err(
                    f"{what} is not rectangular: expected {shape[depth]} elements at depth {depth + 1}, got {got}",
                    node,
                )
            stack.extend((x, depth + 1) for x in reversed(v.seq(node)))
        return tuple(flat), tuple(shape)

    def nodes(self, n) -> tuple[NodeSpec, ...]:
        v = self.v
        if v.kind(n) == "scalar" and v.plain(n) and v.text(n) in _NULL:
            return ()
        out = []
        fast = self.unique_keys and type(n) is dict
        positions = self.positions
        match = NAME_RE.match
        for k, val in self.mapping(n, "'nodes'"):
            if fast and type(val) is dict and len(val) == 2:
                # JSON's common form {"op": "mul", "in": ["a", "b"]}: all the checks of node_mapping, inline
                op, ins = val.get("op"), val.get("in")
                if (
                    type(op) is str
                    and op
                    and type(ins) is list
                    and len(ins) <= 16
                    and match(k)
                    and all(
                        (type(r) is str and match(r)) or type(r) is float or (type(r) is int and type(r) is not bool)
                        for r in ins
                    )
                ):
                    out.append(
                        NodeSpec(
                            k,
                            op,
                            tuple(r if type(r) is str else float(r) for r in ins),
                            {},
                            positions.get(("nodes", k)),
                        )
                    )
                    continue
            name = self.name(k, "node name")
            if v.kind(val) == "scalar":
                text = self.scalar(val, f"node '{name}'")
                pos = v.pos(val)
                if pos and not v.plain(val):
                    pos = (pos[0], pos[1] + 1)  # past the opening quote
                out.append(NodeSpec(name, None, pos=self.key_pos("nodes", name, k), expr=text, expr_pos=pos))
            elif v.kind(val) == "mapping":
                out.append(self.node_mapping(name, k, val))
            else:
                raise self.err(
                    f"node '{name}' must be {{op: NAME, in: [...]}} or an expression string, not a list", val
                )
        return tuple(out)

    def node_mapping(self, name: str, k, val) -> NodeSpec:
        v = self.v
        fields = {v.text(fk): (fk, fv) for fk, fv in self.mapping(val, f"node '{name}'")}
        if "op" not in fields:
            raise self.err(f"node '{name}' has no 'op'", val)
        op = self.string(fields["op"][1], f"'op' of node '{name}'")
        if "in" not in fields:
            raise self.err(f"node '{name}' has no 'in' (its inputs)", val)
        ins = fields["in"][1]
        items = v.seq(ins) if v.kind(ins) == "sequence" else [ins]
        if len(items) > 16:
            raise self.err(f"node '{name}' has {len(items)} inputs; no op takes more than 3", ins)
        refs = tuple(self.ref(x, name) for x in items)
        attrs = {key: self.attr_value(fv) for key, (fk, fv) in fields.items() if key not in ("op", "in")}
        attr_pos = next((v.pos(fk) for key, (fk, fv) in fields.items() if key not in ("op", "in")), None)
        return NodeSpec(
            name,
            op,
            refs,
            attrs,
            self.key_pos("nodes", name, k),
            v.pos(fields["op"][1]),
            tuple(v.pos(x) for x in items),
            attr_pos,
        )

    def ref(self, n, node: str) -> Ref:
        v = self.v
        if isinstance(n, (int, float)) and not isinstance(n, bool):
            return float(n)
        text = self.scalar(n, f"an input of node '{node}'")
        if v.plain(n):
            x = parse_number(text)
            if x is not None:
                return x
        if not NAME_RE.match(text):
            raise self.err(f"bad input '{text}' of node '{node}': expected a name or a number", n)
        return text
