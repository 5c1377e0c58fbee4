"""GraphSpec -> Plan: resolve names, check ops and arity against LAYERS, find cycles, order the nodes
(Kahn's algorithm, ties in file order, no recursion), infer shapes before anything runs."""

from __future__ import annotations

import heapq

from ..errors import GraphError, suggest
from ..numbers import parse_number
from .base import Layer
from .plan import Plan, Step
from .registry import LAYERS
from .spec import GraphSpec, Limits, NodeSpec

__all__ = ["Plan", "Step", "compile_plain", "compile_spec", "default_attrs"]  # Plan and Step are imported from here


def compile_spec(spec: GraphSpec, limits: Limits | None = None) -> Plan:
    limits = limits or Limits.from_env()
    file = spec.file

    def err(msg: str, pos, node: str | None = None, cls=GraphError) -> GraphError:
        line, col = pos if pos else (None, None)
        return cls(msg, file=file, line=line, col=col, node=node)

    nodes: list[NodeSpec] = []
    for ns in spec.nodes:
        if ns.expr is not None:
            from .expr import lower  # only for a graph with expressions (3 ms of start-up otherwise)

            nodes.extend(lower(ns, file, limits.max_depth))
        else:
            nodes.append(ns)

    # names: unique across inputs and nodes
    input_index = {inp.name: i for i, inp in enumerate(spec.inputs)}
    node_index: dict[str, int] = {}
    for j, ns in enumerate(nodes):
        if ns.name in input_index or ns.name in node_index:
            first_pos = (
                spec.inputs[input_index[ns.name]].pos if ns.name in input_index else nodes[node_index[ns.name]].pos
            )
            first = f" at line {first_pos[0]}" if first_pos else ""
            kind = "an input" if ns.name in input_index else "a node"
            raise err(f"name '{ns.name}' is used twice (first as {kind}{first})", ns.pos, ns.name)
        node_index[ns.name] = j

    # ops, arity, attributes, references
    deps: list[list[int]] = []
    attrs_of: list[dict] = []
    defaults: dict[type[Layer], dict] = {}
    for ns in nodes:
        cls = LAYERS.get(ns.op)
        if cls is None:
            raise err(
                f"unknown op '{ns.op}'{suggest(ns.op, LAYERS)} in node '{ns.name}' (see: cgcalc ops)",
                ns.op_pos,
                ns.name,
            )
        if len(ns.inputs) != cls.arity:
            s = "" if cls.arity == 1 else "s"
            raise err(
                f"op '{ns.op}' takes {cls.arity} input{s}, node '{ns.name}' gives {len(ns.inputs)}", ns.op_pos, ns.name
            )
        if ns.attrs or cls.attr_defaults:
            try:
                attrs_of.append(cls.check_attrs(ns.attrs) if ns.attrs else default_attrs(cls, defaults))
            except GraphError as e:
                raise err(f"node '{ns.name}': {e.message}", ns.attr_pos or ns.pos, ns.name) from None
        else:
            attrs_of.append(cls.attr_defaults)  # shared, never mutated
        d = []
        for i, ref in enumerate(ns.inputs):
            if type(ref) is str:
                j = node_index.get(ref)
                if j is not None:
                    d.append(j)
                elif ref not in input_index:
                    pos = ns.in_pos[i] if i < len(ns.in_pos) else ns.pos
                    known = [*input_index, *node_index]
                    raise err(f"undefined name '{ref}' in node '{ns.name}'{suggest(ref, known)}", pos, ns.name)
        deps.append(d)

    order = _toposort(nodes, deps, err)

    # slots: inputs, nodes in execution order, constants
    names = [inp.name for inp in spec.inputs] + [nodes[j].name for j in order]
    index = {name: s for s, name in enumerate(names)}
    n_named = len(names)
    constants: list[float] = []
    const_slot: dict[float, int] = {}
    # every node takes its true gradient, also one fed only by constants or `grad: false` inputs (the output
    # may depend on it all the same); only constants, `grad: false` inputs and the nodes of an op whose output
    # is an index or a count (argmax, accuracy: takes_grad false) take none
    has_grad = [inp.grad for inp in spec.inputs] + [True] * len(nodes)
    steps = []
    shared: dict[tuple, tuple] = {}
    for j in order:
        ns = nodes[j]
        args = []
        for ref in ns.inputs:
            if type(ref) is str:
                args.append(index[ref])
            else:
                key = ref if ref == ref else "nan"
                if key not in const_slot:
                    const_slot[key] = len(names) + len(constants)
                    constants.append(ref)
                args.append(const_slot[key])
        slot = index[ns.name]
        needs = tuple([a < n_named and has_grad[a] for a in args])
        needs = shared.setdefault(needs, needs)  # a handful of distinct tuples, shared by all the steps
        cls = LAYERS[ns.op]
        if not cls.takes_grad:
            has_grad[slot] = False  # before the nodes that use it: the order is topological
        steps.append(Step(slot, ns.name, ns.op, cls, tuple(args), attrs_of[j], needs, ns))

    for name, pos in zip(spec.outputs, spec.outputs_pos):
        if name not in index:
            raise err(f"output '{name}' is not an input or a node{suggest(name, index)}", pos)

    plan = Plan(
        spec, tuple(names), index, spec.inputs, tuple(steps), tuple(constants), (), tuple(has_grad), spec.outputs
    )
    shapes, plan.layouts = plan.infer([inp.shape for inp in spec.inputs])
    plan.shapes = tuple(shapes[: len(names)])
    return plan


def compile_plain(spec: GraphSpec, raw: dict, positions: dict | None = None) -> Plan | None:
    """The straight path for a graph whose nodes are all {op: OP, in: [...]}, each written after its inputs
    (as a generated graph usually is): one pass over the values json (or fastyaml) read, no NodeSpec record
    per node. With `positions` (fastyaml's {(section, name): (line, col)}), the values are fastyaml's: every
    scalar a str, numbers as written; the nodes' positions are kept (Plan.pos_of) for warnings.

    Returns None for anything else, or anything wrong (a name used twice, an unknown op, a node used before
    it is defined...): the general path then reads the file and reports it with its line and column. The
    Plan is the one compile_spec makes of the same file (tested), except that its steps have no NodeSpec.
    Each node's object is emptied once read, so that the file's values and the plan never take memory
    together: the caller must read the text again if this returns None.
    """
    inputs = spec.inputs
    n_in = len(inputs)
    n_named = n_in + len(raw)
    text = positions is not None
    # every name at once, in C (no resizing per node); a node's slot is set when it is reached, so a
    # name still None is a node written further down
    index: dict = dict.fromkeys([inp.name for inp in inputs])
    index.update(dict.fromkeys(raw))
    if len(index) != n_named:  # a name used twice (JSON refuses a node name twice; an input's, not)
        return None
    if text and any(len(n) in (3, 8) and parse_number(n) is not None for n in index):
        return None  # a name like `inf` or `nan`, which YAML's reader takes as a number in `in`: general path
    for s_, inp in enumerate(inputs):
        index[inp.name] = s_
    if text:
        from array import array

        lines, cols = array("l", [0]) * len(raw), array("l", [0]) * len(raw)  # 0: no position
    has_grad = [inp.grad for inp in inputs]
    constants: list[float] = []
    const_slot: dict = {}
    shared: dict[tuple, tuple] = {}
    defaults: dict[type[Layer], dict] = {}
    steps = []
    new = tuple.__new__  # a Step without NamedTuple's Python-level __new__ or _make
    layers = LAYERS
    get = index.__getitem__
    grad_of = has_grad.__getitem__
    scalars = all(not inp.shape for inp in inputs)  # and every op elementwise: every shape is ()
    slot = n_in
    for name, val in raw.items():
        if type(val) is not dict or len(val) != 2:
            return None
        op, ins = val.get("op"), val.get("in")
        cls = layers.get(op) if type(op) is str else None
        if text and type(ins) is str:
            ins = [ins]  # `in: x` for one input
        if cls is None or type(ins) is not list or len(ins) != cls.arity:
            return None
        attrs = cls.attr_defaults
        if attrs:
            try:
                attrs = default_attrs(cls, defaults)
            except GraphError:
                return None  # an attribute the op needs (reshape's shape): the general path says so
        if not cls.elementwise or attrs:
            scalars = False
        try:
            args = tuple(map(get, ins))  # names written above: the common case, in C
            needs = tuple(map(grad_of, args))
        except (KeyError, TypeError):  # a number, or anything else
            args = _plain_args(ins, index, n_named, constants, const_slot, text)
            if args is None:
                return None
            needs = tuple([a < n_named and has_grad[a] for a in args])
        needs = shared.setdefault(needs, needs)  # a handful of distinct tuples, shared by all the steps
        has_grad.append(cls.takes_grad)  # every node takes a gradient, but argmax's (see compile_spec)
        index[name] = slot
        steps.append(new(Step, (slot, name, cls.op, cls, args, attrs, needs, None)))
        val.clear()
        if text:
            pos = positions.get(("nodes", name))
            if pos:
                lines[slot - n_in], cols[slot - n_in] = pos
        slot += 1
    names = tuple(index)  # inputs, then nodes: insertion order
    if not (all(map(str.isidentifier, names)) and "".join(names).isascii()):  # NAME_RE, in C
        return None
    for out in spec.outputs:
        if out not in index:
            return None
    plan = Plan(
        spec,
        names,
        index,
        inputs,
        tuple(steps),
        tuple(constants),
        (),
        tuple(has_grad),
        spec.outputs,
        (lines, cols) if text else None,
    )
    if scalars:  # every layer sees its inputs as they are
        shapes: list = [()] * n_named
        plan.layouts = (None,) * len(steps)
    else:
        try:
            shapes, plan.layouts = plan.infer([inp.shape for inp in inputs])
        except GraphError:
            return None
    plan.shapes = tuple(shapes[:n_named])
    return plan


def default_attrs(cls: type[Layer], cache: dict) -> dict:
    """The checked attributes of a node of `cls` that gives none (one dict per op per graph, shared): an op
    that needs one (reshape's shape, clip's bounds) raises GraphError saying so."""
    attrs = cache.get(cls)
    if attrs is None:
        attrs = cache[cls] = cls.check_attrs({})
    return attrs


def _plain_args(
    ins: list, index: dict, n_named: int, constants: list, const_slot: dict, text: bool = False
) -> tuple | None:
    """The argument slots of a node's "in": names written above, or numbers (constants: JSON numbers, or
    with `text` numbers as YAML writes them); None for anything else."""
    args = []
    for r in ins:
        t = type(r)
        if t is str:
            a = index.get(r)
            if a is not None:
                args.append(a)
                continue
            if not text or r in index:  # undefined, or defined further down: the general path sorts it out
                return None
            r = parse_number(r)
            if r is None:
                return None
        elif t is not float and t is not int:  # never bool: type(True) is bool
            return None
        x = float(r)
        key = x if x == x else "nan"
        a = const_slot.get(key)
        if a is None:
            a = const_slot[key] = n_named + len(constants)
            constants.append(x)
        args.append(a)
    return tuple(args)


def _toposort(nodes: list[NodeSpec], deps: list[list[int]], err) -> list[int]:
    """Kahn's algorithm; among the ready nodes the first in the file goes first."""
    n = len(nodes)
    if all(not d or max(d) < j for j, d in enumerate(deps)):
        return list(range(n))  # already in order: Kahn's with file-order ties would give exactly this
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
    if len(order) == n:
        return order
    # a cycle: walk from the first node left over along its remaining dependencies until one repeats
    left = {j for j in range(n) if indeg[j] > 0}
    j = min(left)
    seen: dict[int, int] = {}
    path: list[int] = []
    while j not in seen:
        seen[j] = len(path)
        path.append(j)
        j = next(k for k in deps[j] if k in left)
    cycle = path[seen[j] :]
    first = min(cycle)
    k = cycle.index(first)
    cycle = cycle[k:] + cycle[:k]
    # deps point backwards (node -> its input); show the direction data flows
    members = [nodes[c].name for c in reversed(cycle)]
    members = members[-1:] + members[:-1]
    text = " -> ".join(members + [members[0]])
    return _raise(err(f"cycle: {text}", nodes[first].pos, nodes[first].name))


def _raise(e: Exception):
    raise e
