"""A graph file's values -> a Reading (core.spec.Reading): the records the compiler takes, node by node.

Structure and types only: names are resolved, ops checked and shapes inferred by the compiler. Every reader's
values come through here, read through a view (kind, pos, items, seq, text, plain) that each reader gives with
them: plain JSON or fastyaml values, which have no positions (a fast reading), or marks.Marked nodes and
PyYAML's composed nodes, which do (read.py and marks.py). YAML 1.1's traps are handled here, deliberately:
scalars are read as text (PyYAML never constructs them), so `1e-3` is a number, `yes`/`on` are not, and a
duplicated key is an error.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from ..core.spec import NAME_RE, TOP_KEYS, InputSpec, Limits, NodeSpec, Pos
from ..errors import GraphError, suggest
from ..numbers import INT_RE, parse_number

_TRUE = ("true", "True", "TRUE")
_FALSE = ("false", "False", "FALSE")
_NULL = ("", "~", "null", "Null", "NULL")
_NO_ATTRS: dict = {}  # shared, never mutated
MAX_INPUTS = 10_000  # concat and stack take any number; the others 3 at most (the compiler says so)


class Builder:
    """A Reading (core.spec.Reading) of a graph file's values, read through `view`: the name, description and
    inputs at once (`read`), the nodes as the compiler takes them (`nodes`), then the outputs. A view without
    positions makes a fast reading. `where`: fastyaml's {(section, name): (line, col)} of each entry;
    `reader`: which reader made the values (for read.read_graph(again=...)).

    The Builder owns the values it reads: the reader that made them hands them over and nobody else sees
    them, so that each node's values can be let go once handed on (see plain_nodes)."""

    def __init__(self, view, file: str | None, limits: Limits, where: dict | None = None, reader: str = "") -> None:
        self.v, self.file, self.limits, self.reader = view, file, limits, reader
        self.fast = not view.composed
        self.numbers_as_text = view.numbers_as_text
        self.where = where or {}
        self.positions = view.composed or where is not None
        self.name, self.description, self.inputs = "", "", ()
        self.top: dict[str, tuple] = {}
        self.last: tuple[str, Pos] = ("", None)  # the last node: the default output
        self.count = 0  # the nodes `nodes` hands on (see Reading.count)

    def read(self, root, default_name: str) -> Builder:
        """The head of the file: its keys, name, description and inputs."""
        top = self.top = self.head(root)
        self.name = self.string(top["name"][1], "name") if "name" in top else default_name
        self.description = self.string(top["description"][1], "description") if "description" in top else ""
        self.inputs = self.inputs_of(top["inputs"][1]) if "inputs" in top else ()
        if "nodes" not in top:
            raise self.err("the graph has no 'nodes'", pos=(1, 1))
        return self

    def key_pos(self, section: str, name: str, k) -> Pos:
        return self.v.pos(k) or self.where.get((section, name))

    def err(self, msg: str, n=None, pos: Pos = None) -> GraphError:
        if pos is None and n is not None:
            pos = self.v.pos(n)
        line, col = pos if pos else (None, None)
        return GraphError(msg, file=self.file, line=line, col=col)

    # --- scalars ----------------------------------------------------------------------------------------

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
            if v.plain(n):
                shown = f"'{text}'"
            else:
                shown = f'"{text}" ({"tagged !!str" if v.composed and not n.style else "quoted text"})'
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

    def name_of(self, n, what: str) -> str:
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
        if kind == "mapping":  # getitem's slices: {start: 1, stop: 3}
            pairs = self.mapping(n, "an attribute")
            if len(pairs) > 64 or depth > 2:
                raise self.err("attribute mapping is too long or too deep", n)
            return {self.scalar(k, "a key"): self.attr_value(x, depth + 1) for k, x in pairs}
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
        if not v.composed and type(n) is dict:
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

    def null(self, n) -> bool:
        v = self.v
        return v.kind(n) == "scalar" and v.plain(n) and v.text(n) in _NULL

    # --- the file: head, inputs -------------------------------------------------------------------------

    def head(self, root) -> dict[str, tuple]:
        """The top-level keys: name -> (key, value)."""
        if root is None or self.null(root):
            raise self.err("the file is empty: expected a mapping with 'inputs', 'nodes' and 'outputs'", pos=(1, 1))
        top = {}
        for k, val in self.mapping(root, "the graph"):
            key = self.v.text(k)
            if key not in TOP_KEYS:
                raise self.err(
                    f"unknown key '{key}'{suggest(key, TOP_KEYS)}; expected one of: {', '.join(TOP_KEYS)}", k
                )
            top[key] = (k, val)
        return top

    def inputs_of(self, n) -> tuple[InputSpec, ...]:
        if self.null(n):
            return ()
        entries = [self.input_entry(k, val) for k, val in self.mapping(n, "'inputs'")]
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

    def input_entry(self, k, val) -> tuple[str, Any, Any, bool]:
        """(name, key, value, grad) of one input: a value, or {value: ..., grad: false}."""
        v = self.v
        name = self.name_of(k, "input name")
        grad = True
        if v.kind(val) == "mapping":
            fields = {}
            for fk, fv in self.mapping(val, f"input '{name}'"):
                key = v.text(fk)
                if key not in ("value", "grad"):
                    hint = suggest(key, ("value", "grad"))
                    raise self.err(f"unknown key '{key}' in input '{name}'{hint}; expected value, grad", fk)
                fields[key] = fv
            if "value" not in fields:
                raise self.err(f"input '{name}' has no 'value'", val)
            if "grad" in fields:
                grad = self.boolean(fields["grad"], f"'grad' of input '{name}'")
            val = fields["value"]
        return name, k, val, grad

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

    # --- the nodes, the outputs -------------------------------------------------------------------------

    def nodes(self) -> Iterator[NodeSpec | tuple]:
        """The nodes in file order (Reading.nodes). A reading with positions reads them all before it hands
        on the first, so that its errors come before any the compiler finds (and before the compiler's work,
        such as lowering an expression 100,000 terms long); a fast reading hands each on as it reads it (an
        error in it sends the text to a reading with positions anyway)."""
        key, n = self.top["nodes"]
        if self.fast and type(n) is dict and n and self.plain_names(n):
            name = next(reversed(n))
            self.last = (name, self.where.get(("nodes", name)))
            self.count = len(n)
            return self.plain_nodes(n)
        if self.fast:
            self.count = len(n) if type(n) is dict else 0
            return self.each_node(key, n)
        nodes = list(self.each_node(key, n))
        self.count = len(nodes)
        return iter(nodes)

    def each_node(self, key, n) -> Iterator[NodeSpec]:
        count = 0
        if not self.null(n):
            for k, val in self.mapping(n, "'nodes'"):
                ns = self.node(k, val)
                count += 1
                self.last = (ns.name, ns.pos)
                yield ns
        if not count:
            raise self.err("'nodes' is empty: a graph needs at least one node", key)

    def plain_names(self, raw: dict) -> bool:
        """May the nodes be handed on as read (plain_nodes)? Their names are all names (checked at once, in C),
        and in YAML none of them, nor any input's, is also a number: `in: [nan]` is the number there."""
        if not (all(map(str.isidentifier, raw)) and "".join(raw).isascii()):
            return False
        if self.numbers_as_text:
            names = [*raw, *(inp.name for inp in self.inputs)]
            lengths = set(map(len, names))
            if 3 in lengths or 8 in lengths:  # inf, nan, infinity
                return not any(len(n) in (3, 8) and parse_number(n) is not None for n in names)
        return True

    def plain_nodes(self, raw: dict) -> Iterator[tuple]:
        """A fast reading's nodes: {op: OP, in: [...]} handed on as read, as a plain tuple (name, op, inputs,
        attrs, pos), NodeSpec's first fields (a NodeSpec costs twice as much to make), its inputs unchecked
        (the compiler checks every name and number); anything else through `node`. Once handed on, a node's
        values are let go (they are the Builder's own), so that the file's values and the plan never take
        memory together."""
        node, where, text = self.node, self.where.get, self.numbers_as_text
        for name, val in raw.items():
            if type(val) is dict and len(val) == 2:
                op, ins = val.get("op"), val.get("in")
                if text and type(ins) is str:
                    ins = [ins]  # `in: x` for one input
                if type(op) is str and type(ins) is list:
                    yield (name, op, ins, _NO_ATTRS, where(("nodes", name)) if text else None)
                    val.clear()
                    continue
            yield node(name, val)

    def node(self, k, val) -> NodeSpec:
        """One node: {op: NAME, in: [...], <attributes>}, or an expression."""
        v = self.v
        name = self.name_of(k, "node name")
        if v.kind(val) == "scalar":
            text = self.scalar(val, f"node '{name}'")
            pos = v.pos(val)
            if pos and not v.plain(val):
                pos = (pos[0], pos[1] + 1)  # past the opening quote
            return NodeSpec(name, None, pos=self.key_pos("nodes", name, k), expr=text, expr_pos=pos)
        if v.kind(val) != "mapping":
            raise self.err(f"node '{name}' must be {{op: NAME, in: [...]}} or an expression string, not a list", val)
        fields = {v.text(fk): (fk, fv) for fk, fv in self.mapping(val, f"node '{name}'")}
        if "op" not in fields:
            raise self.err(f"node '{name}' has no 'op'", val)
        op = self.string(fields["op"][1], f"'op' of node '{name}'")
        if "in" not in fields:
            raise self.err(f"node '{name}' has no 'in' (its inputs)", val)
        ins = fields["in"][1]
        items = v.seq(ins) if v.kind(ins) == "sequence" else [ins]
        if len(items) > MAX_INPUTS:
            raise self.err(f"node '{name}' has {len(items)} inputs; no op takes more than {MAX_INPUTS:,}", ins)
        refs = tuple(self.ref(x, name) for x in items)
        attrs = {key: self.attr_value(fv) for key, (fk, fv) in fields.items() if key not in ("op", "in")}
        attr_pos = next((v.pos(fk) for key, (fk, fv) in fields.items() if key not in ("op", "in")), None)
        in_pos = tuple(v.pos(x) for x in items)
        return NodeSpec(name, op, refs, attrs, self.key_pos("nodes", name, k), v.pos(fields["op"][1]), in_pos, attr_pos)

    def ref(self, n, node: str):
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

    def outputs(self) -> tuple[tuple[str, ...], tuple[Pos, ...]]:
        """The outputs (Reading.outputs): a name or a list of them; by default the last node."""
        if "outputs" not in self.top:
            return (self.last[0],), (self.last[1],)
        key, n = self.top["outputs"]
        v = self.v
        items = v.seq(n) if v.kind(n) == "sequence" else [n]
        if not items:
            raise self.err("'outputs' is empty", key)
        return tuple(self.name_of(x, "output name") for x in items), tuple(v.pos(x) for x in items)
