"""A reading of a graph file -> Plan: names resolved, ops, arity and attributes checked against LAYERS,
expressions lowered, the nodes ordered (Kahn's algorithm, ties in file order, no recursion) and shapes
inferred, all before anything runs.

One pass over the nodes as the reading hands them over, keeping no record per node: a node written after
its inputs (as generated graphs are) becomes its Step at once, and a graph so written is never sorted. The
errors are located with the positions the reading gives (a fast reading gives none: the caller reads the
text again, with positions, to say where). Of several errors the one reported is the first of: a node that
is not well-formed (the reader's), a bad expression, a name used twice, an unknown op, wrong inputs or
attributes or an undefined name (the first node in file order), a cycle, an unknown output, shapes that
do not fit; so after the first error the rest of the file is still read for an error of an earlier kind.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator

from ..errors import GraphError, suggest
from ..numbers import parse_number
from .plan import Plan, Step
from .registry import LAYERS
from .spec import GraphSpec, Limits, NodeSpec, Pos, Reading

__all__ = ["Plan", "Step", "compile_graph"]  # Plan and Step are imported from here

# kinds of error, in the order they are reported when a file has several
_EXPR, _TWICE, _NODE = 0, 1, 2


class _Found(Exception):
    def __init__(self, rank: int, error: GraphError) -> None:
        self.rank, self.error = rank, error


def compile_graph(reading: Reading, limits: Limits | None = None) -> Plan:
    """The Plan of a graph file as a reader read it (raises GraphError, located when the reading knows where)."""
    nodes = reading.nodes()  # and so reading.count
    c = _Compiler(reading, limits or Limits.from_env())
    c.take(nodes)
    outputs, outputs_pos = reading.outputs()  # the reader's errors come first: it checks them after the nodes
    if c.error is not None:
        raise c.error[1]
    spec = GraphSpec(reading.name, reading.description, reading.inputs, outputs, outputs_pos, reading.file, c.exprs)
    return c.plan(spec)


class _Compiler:
    """The Plan as it is built. Slots are given in file order (inputs, then nodes), and a node written before
    its inputs sorts the steps at the end. The reading counts the nodes: so each constant takes its slot after
    them at once, and the nodes' lines and columns go into arrays made at their size, until an expression
    makes more nodes (see `constants_last`)."""

    def __init__(self, reading: Reading, limits: Limits) -> None:
        self.file, self.limits, self.fast = reading.file, limits, reading.fast
        self.numbers_as_text = reading.numbers_as_text
        self.inputs = reading.inputs
        self.index: dict[str, int] = {inp.name: slot for slot, inp in enumerate(self.inputs)}
        # by slot: every node takes its true gradient (the output may depend on it), but a node of an op whose
        # output is an index or a count (argmax, accuracy: takes_grad false); a constant takes none
        self.has_grad = [inp.grad for inp in self.inputs]
        self.defaults: dict[type, dict] = {}  # by op: the checked attributes of a node that gives none
        self.exprs: dict[str, str] = {}  # each node written as an expression: its text
        self.steps: list[Step] = []
        self.constants: list[float] = []
        self.const_slot: dict = {}
        self.shared: dict[tuple, tuple] = {}  # a handful of distinct `needs` tuples, shared by all the steps
        self.const_base: int | None = len(self.has_grad) + reading.count  # the first constant's slot, while known
        self.known: dict = self.const_slot  # then: constant -> slot, for the constants seen so far
        self.with_consts: list[int] = []  # steps whose arguments include constants, when it is not
        self.pending: list[tuple[int, NodeSpec]] = []  # steps with a name not yet defined among their inputs
        self.scalars = all(not inp.shape for inp in self.inputs)  # and every op elementwise: every shape is ()
        self.lines = self.cols = None  # the steps' lines and columns, when the reading has them
        if reading.positions:
            from array import array

            self.lines, self.cols = array("l", [0]) * reading.count, array("l", [0]) * reading.count  # 0: not known
        self.late: dict[str, Pos] = {}  # nodes read on after an error (see drain)
        self.error: tuple[int, GraphError] | None = None

    def err(self, msg: str, pos: Pos, node: str | None = None) -> GraphError:
        line, col = pos if pos else (None, None)
        return GraphError(msg, file=self.file, line=line, col=col, node=node)

    # --- the nodes --------------------------------------------------------------------------------------

    def take(self, nodes: Iterator[NodeSpec]) -> None:
        """Every node, as the reading hands them over; the first error (see the module's docstring)."""
        it = iter(nodes)
        try:
            self.loop(it)
            if self.pending:
                self.resolve()
        except _Found as found:
            if self.fast:
                raise found.error from None  # the caller reads the file again to locate it
            self.error = (found.rank, found.error)
            self.drain(it)

    def loop(self, nodes: Iterator[NodeSpec | tuple]) -> None:
        """The usual node ({op: OP, in: [names written above]}, as a fast reading hands it on: a plain tuple)
        inline; anything else through `add`."""
        index, steps, has_grad, lines, n_in = self.index, self.steps, self.has_grad, self.lines, len(self.inputs)
        get_layer, slot_of, grad_of = LAYERS.get, index.__getitem__, has_grad.__getitem__
        share, new, defaults = self.shared.setdefault, tuple.__new__, self.defaults
        for ns in nodes:
            if type(ns) is not tuple:
                self.add(ns)
                continue
            name, op, ins, _, pos = ns  # op a str, ins a list, no attributes (see build.plain_nodes)
            cls = get_layer(op)
            if cls is None or len(ins) != cls.arity:
                self.add(ns)  # an error
                continue
            attrs = cls.attr_defaults
            if attrs:
                attrs = defaults.get(cls)
                if attrs is None:  # the first node of its op (whose defaults may need a value: reshape's shape)
                    self.add(ns)
                    continue
            try:
                args = tuple(map(slot_of, ins))  # names written above: the common case, in C
                needs = tuple(map(grad_of, args))
            except (KeyError, TypeError):  # a constant, a name further down, or anything else
                args, needs = self.args(ns, ins)
            slot = len(has_grad)
            index[name] = slot
            has_grad.append(cls.takes_grad)
            steps.append(new(Step, (slot, name, cls.op, cls, args, attrs, share(needs, needs))))
            if lines is not None and pos:
                lines[slot - n_in], self.cols[slot - n_in] = pos
            if not cls.elementwise or attrs:
                self.scalars = False
        if len(index) < len(has_grad):  # a name given to two nodes, or to an input and a node, in a fast reading
            raise _Found(_TWICE, self.err("a name is used twice", None))

    def add(self, ns: NodeSpec | tuple) -> None:
        if type(ns) is tuple:  # a fast reading's node: NodeSpec's first five fields (see build.plain_nodes)
            ns = NodeSpec(*ns)
        if ns.op is None:
            subs = self.lower(ns)
            if self.lines is not None:  # the nodes it makes but its last, which the reading did not count
                self.lines.extend([0] * (len(subs) - 1))
                self.cols.extend([0] * (len(subs) - 1))
            for sub in subs:
                self.add(sub)
            self.exprs[ns.name] = ns.expr
            return
        name = ns.name
        if name in self.index:
            raise _Found(_TWICE, self.twice(name, ns.pos))
        cls, attrs = self.layer(ns)
        args, needs = self.args(ns, ns.inputs)
        slot = len(self.has_grad)
        self.index[name] = slot
        self.has_grad.append(cls.takes_grad)
        self.steps.append(Step(slot, name, cls.op, cls, args, attrs, self.shared.setdefault(needs, needs)))
        if self.lines is not None and ns.pos:
            self.lines[slot - len(self.inputs)], self.cols[slot - len(self.inputs)] = ns.pos
        if not cls.elementwise or attrs:
            self.scalars = False

    def layer(self, ns: NodeSpec) -> tuple[type, dict]:
        """A node's layer class and checked attributes (for a node that gives none, one dict per op, shared and
        never mutated: an op may need one, reshape its shape); on an error its name is still known (see drain)."""
        name, op = ns.name, ns.op
        cls = LAYERS.get(op) if type(op) is str else None
        try:
            if cls is None:
                hint = suggest(op, LAYERS) if type(op) is str else ""
                raise self.err(f"unknown op '{op}'{hint} in node '{name}' (see: cgcalc ops)", ns.op_pos, name)
            n = len(ns.inputs)
            if n != cls.arity and not (cls.variadic and n > cls.arity):
                takes = f"{'at least ' if cls.variadic else ''}{cls.arity} input{'' if cls.arity == 1 else 's'}"
                raise self.err(f"op '{op}' takes {takes}, node '{name}' gives {n}", ns.op_pos, name)
            try:
                if ns.attrs or not cls.attr_defaults:
                    return cls, cls.check_attrs(ns.attrs) if ns.attrs else cls.attr_defaults
                if cls not in self.defaults:
                    self.defaults[cls] = cls.check_attrs({})
                return cls, self.defaults[cls]
            except GraphError as e:
                raise self.err(f"node '{name}': {e.message}", ns.attr_pos or ns.pos, name) from None
        except GraphError as e:
            self.index[name] = -1  # defined, for the names that refer to it (resolve)
            self.late[name] = ns.pos
            raise _Found(_NODE, e) from None

    def lower(self, ns: NodeSpec) -> list[NodeSpec]:
        from .expr import lower  # only for a graph with expressions (3 ms of start-up otherwise)

        self.constants_last()
        try:
            return lower(ns, self.file, self.limits.max_depth)
        except GraphError as e:
            raise _Found(_EXPR, e) from None

    def args(self, ns: NodeSpec | tuple, ins) -> tuple[tuple, tuple]:
        """A node's argument slots and gradient needs, one input at a time: names (also of nodes further down:
        the name stands in its slot until `resolve`), and numbers (constants)."""
        index, known, out, later = self.index, self.known, [], False
        for r in ins:
            t = type(r)
            if t is str:
                a = index.get(r)
                if a is None:
                    a = known.get(r)  # a constant written so before, in a fast reading of YAML
                    if a is None:
                        a = self.unknown(ns, r)
                        later = later or type(a) is str
            elif t is float or t is int:  # never bool: type(True) is bool
                a = known.get(r if r == r else "nan")  # as float(r) would be: -0.0 == 0.0 == 0
                if a is None:
                    a = self.constant(float(r))
            else:  # only from a fast reading, whose values the builder did not check
                raise _Found(_NODE, self.err(f"bad input {r!r} of node '{ns[0]}'", ns[4], ns[0]))
            out.append(a)
        has_grad, n = self.has_grad, len(self.has_grad)
        if later or self.const_base is None:  # a name further down: its needs are set in `resolve`
            return tuple(out), tuple([type(a) is str or (0 <= a < n and has_grad[a]) for a in out])
        return tuple(out), tuple([a < n and has_grad[a] for a in out])  # a constant (its slot >= n) takes none

    def unknown(self, ns: NodeSpec | tuple, r: str) -> int | str:
        """An input that is not a name defined so far: a number as written (a fast reading of YAML), or the
        name of a node further down (kept for `resolve`), or of nothing."""
        x = parse_number(r) if self.numbers_as_text else None
        if x is not None:
            a = self.constant(x)
            if self.const_base is not None:
                self.known[r] = a
            return a
        if not self.pending or self.pending[-1][0] != len(self.steps):
            self.pending.append((len(self.steps), NodeSpec(*ns)))
        return r

    def constant(self, x: float) -> int:
        key = x if x == x else "nan"
        a = self.const_slot.get(key)
        if a is None:
            k = len(self.constants)
            a = self.const_slot[key] = -1 - k if self.const_base is None else self.const_base + k
            self.constants.append(x)
        if self.const_base is None and (not self.with_consts or self.with_consts[-1] != len(self.steps)):
            self.with_consts.append(len(self.steps))  # (when it is known, `known` finds it from the next one on)
        return a

    def constants_last(self) -> None:
        """An expression makes more nodes than the reading counted: the constants' slots so far become -1, -2,
        ... (their slots are given at the end, see `plan`)."""
        base, self.const_base, self.known = self.const_base, None, {}
        if base is None or not self.constants:
            return
        self.const_slot = {k: base - 1 - a for k, a in self.const_slot.items()}
        for i, st in enumerate(self.steps):
            args = tuple(a if type(a) is str or a < base else base - 1 - a for a in st.args)
            if args != st.args:
                self.steps[i] = st._replace(args=args)
                self.with_consts.append(i)

    def resolve(self) -> None:
        """The names of nodes further down, in the steps that use them; an undefined name is an error."""
        for i, ns in self.pending:
            st = self.steps[i]
            for k, a in enumerate(st.args):
                if type(a) is str and a not in self.index:
                    pos = ns.in_pos[k] if k < len(ns.in_pos) else ns.pos
                    msg = f"undefined name '{a}' in node '{ns.name}'{suggest(a, self.index)}"
                    raise _Found(_NODE, self.err(msg, pos, ns.name))
            if self.error is None:
                args = tuple(self.index[a] if type(a) is str else a for a in st.args)
                n, has_grad = len(self.has_grad), self.has_grad
                needs = tuple([0 <= a < n and has_grad[a] for a in args])  # argmax's node takes none
                self.steps[i] = st._replace(args=args, needs=self.shared.setdefault(needs, needs))

    def drain(self, nodes: Iterator[NodeSpec]) -> None:
        """After an error: read the rest of the nodes for an error that comes first (a bad expression, a name
        used twice), and for undefined names before it. (A reading with positions has found its own errors
        before it handed on the first node: see build.Builder.nodes.)"""
        for ns in nodes:
            if self.error[0] == _EXPR:
                return  # nothing comes before it
            ns = NodeSpec(*ns)
            try:
                subs = self.lower(ns) if ns.op is None else [ns]
                for sub in subs:
                    if sub.name in self.index:
                        if self.error[0] > _TWICE:
                            raise _Found(_TWICE, self.twice(sub.name, sub.pos))
                    else:
                        self.index[sub.name] = -1
                        self.late[sub.name] = sub.pos
            except _Found as found:
                self.error = (found.rank, found.error)
        if self.error[0] == _NODE and self.pending:
            try:
                self.resolve()
            except _Found as found:
                self.error = (found.rank, found.error)

    def twice(self, name: str, pos: Pos) -> GraphError:
        slot = self.index[name]
        if slot < len(self.inputs):
            kind, first = "an input", self.inputs[slot].pos
        else:
            kind, first = "a node", self.pos_at(slot) if slot >= 0 else self.late.get(name)
        where = f" at line {first[0]}" if first else ""
        return self.err(f"name '{name}' is used twice (first as {kind}{where})", pos, name)

    def pos_at(self, slot: int) -> Pos:
        i = slot - len(self.inputs)
        return (self.lines[i], self.cols[i]) if self.lines is not None and self.lines[i] else None

    # --- the plan ---------------------------------------------------------------------------------------

    def plan(self, spec: GraphSpec) -> Plan:
        """Constants' slots, the order of execution, outputs, shapes."""
        n_named = len(self.has_grad)
        assert self.const_base in (None, n_named), "a node the reading did not count"
        steps = self.reorder(self.toposort()) if self.pending else self.steps
        for i in self.with_consts:
            st = steps[i]
            steps[i] = st._replace(args=tuple(a if a >= 0 else n_named - 1 - a for a in st.args))
        for name, pos in zip(spec.outputs, spec.outputs_pos):
            if name not in self.index:
                raise self.err(f"output '{name}' is not an input or a node{suggest(name, self.index)}", pos)
        names = tuple(self.index)  # inputs, then nodes: slot order (see reorder)
        lines = (self.lines, self.cols) if self.lines is not None else None
        plan = Plan(spec, names, self.index, self.inputs, tuple(steps), tuple(self.constants), (),
                    tuple(self.has_grad), spec.outputs, lines)  # fmt: skip
        if self.scalars:  # every layer sees its inputs as they are
            shapes: list = [()] * n_named
            plan.layouts = (None,) * len(steps)
        else:
            shapes, plan.layouts = plan.infer([inp.shape for inp in self.inputs])
        plan.shapes = tuple(shapes[:n_named])
        return plan

    def toposort(self) -> list[int]:
        """Kahn's algorithm on the steps (in file order); among the ready nodes the first in the file goes first."""
        n_in, n = len(self.inputs), len(self.steps)
        deps = [[a - n_in for a in st.args if n_in <= a < n_in + n] for st in self.steps]  # not constants
        indeg = [0] * n
        users: list[list[int]] = [[] for _ in range(n)]
        for j, d in enumerate(deps):
            for k in set(d):
                indeg[j] += 1
                users[k].append(j)
        ready = [j for j in range(n) if indeg[j] == 0]
        heapq.heapify(ready)
        order = []
        while ready:
            j = heapq.heappop(ready)
            order.append(j)
            for u in users[j]:
                indeg[u] -= 1
                if indeg[u] == 0:
                    heapq.heappush(ready, u)
        if len(order) < n:
            raise self.cycle(deps, {j for j in range(n) if indeg[j] > 0})
        return order

    def cycle(self, deps: list[list[int]], left: set[int]) -> GraphError:
        """Walk from the first node left over along its remaining inputs until one repeats."""
        j = min(left)
        seen: dict[int, int] = {}
        path: list[int] = []
        while j not in seen:
            seen[j] = len(path)
            path.append(j)
            j = next(k for k in deps[j] if k in left)
        cycle = path[seen[j] :]
        k = cycle.index(min(cycle))
        cycle = cycle[k:] + cycle[:k]
        # deps point backwards (node -> its input); show the direction data flows
        members = [self.steps[c].name for c in reversed(cycle)]
        members = members[-1:] + members[:-1]
        first = self.steps[cycle[0]]
        return self.err(f"cycle: {' -> '.join(members + [members[0]])}", self.pos_at(first.slot), first.name)

    def reorder(self, order: list[int]) -> list[Step]:
        """The steps in execution order, with their slots (and the index, positions, with_consts) to match."""
        n_in, n_named = len(self.inputs), len(self.has_grad)
        new_slot = [0] * len(order)
        for k, j in enumerate(order):
            new_slot[j] = n_in + k
        steps = []
        for j in order:
            st = self.steps[j]
            args = tuple(a if a < n_in or a >= n_named else new_slot[a - n_in] for a in st.args)  # not constants
            steps.append(st._replace(slot=new_slot[j], args=args))
        self.index = {inp.name: s for s, inp in enumerate(self.inputs)}
        self.index.update((st.name, st.slot) for st in steps)
        self.has_grad[n_in:] = [self.has_grad[n_in + j] for j in order]
        self.with_consts = [new_slot[j] - n_in for j in self.with_consts]
        if self.lines is not None:
            self.lines = type(self.lines)("l", [self.lines[j] for j in order])
            self.cols = type(self.cols)("l", [self.cols[j] for j in order])
        return steps
