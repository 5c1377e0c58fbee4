"""Differential test of cgcalc's `run` and `run_batch` against PyTorch autograd (float64).

Not collected by pytest (tests/benchmarks is ignored). torch is not a dependency of cgcalc: install it in a
venv of its own and run this with that venv's Python and cgcalc on PYTHONPATH:

    python3 -m venv /work/torchvenv && /work/torchvenv/bin/pip install torch numpy pyyaml typer rich
    PYTHONPATH=. /work/torchvenv/bin/python tests/benchmarks/difftest_torch.py --graphs 3000 --seed 0

Graphs come from tests/randgraphs.py (every op, broadcasting, N-D matmul/affine operands of different ranks,
number literals and a literal class index, `grad: false` inputs, several outputs, expressions and {op:, in:}
nodes, YAML and JSON). For each graph, a few rows of random per-row values (a random subset of the inputs) are
evaluated with `Graph.run` (one run per row) and `Graph.run_batch` (all rows at once), and each row with torch:
the value of every node, and the gradient of sum(O) for every selected output O with respect to every node
and input (retain_grad on intermediates; a node torch would not differentiate, fed only by constants or
`grad: false` inputs, is made a leaf that requires grad, so that it has its true gradient too). run_batch
gives only the outputs and the inputs' gradients; those are compared.

softmax_with_loss(x, t) is, as cgcalc defines it (`cgcalc ops`), mean over samples of -sum(t * log softmax(x)),
with t one-hot (or any target of x's shape) or class indices (x.shape[:-1]); torch: log_softmax, one_hot.

A second family of graphs (--scale-share, default 15%) has only mul, div and neg with inputs of magnitudes
1e-250..1e250 (--spread); their reference is exact (fractions.Fraction, rounded once), because torch's own
float64 formulas are not exact there either. A row whose exact values or gradients are not normal floats is
skipped ("out of range").

Exit status: 0 when nothing disagrees, 1 otherwise. --report FILE writes the Markdown report to FILE too.

Tolerances: |cgcalc - reference| <= 1e-9 |reference| + 1e-12 M, where M is the magnitude of the values
involved (for a value: the largest |value| of the node and everything it is computed from; for a gradient:
the largest |gradient| of that output in the graph). For the exact family: 1e-9 relative to the sum of the
absolute values of the terms (no allowance otherwise). A graph where torch gives a non-finite value or
gradient, or where a relu's argument (a computed one) is within rounding of 0, is skipped and counted.

Each distinct kind of failure (where: run or run_batch; what: value, gradient, missing gradient, an error, a
shape; the op it shows at, and a coarse feature such as the ranks of matmul's operands) is shrunk greedily to
a small graph (fewer outputs, nodes replaced by inputs holding their values, fewer rows and columns) that
still fails the same way, and reported with that graph's YAML, its rows, and the two numbers.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import traceback
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/: randgraphs

import randgraphs as rg  # noqa: E402

import cgcalc  # noqa: E402

RTOL, ATOL_REL = 1e-9, 1e-12
NORMAL_MIN, NORMAL_MAX = 2.2250738585072014e-308, 1.7976931348623157e308


# --- references ------------------------------------------------------------------------------------------------


@dataclass
class Ref:
    values: dict  # name -> ndarray
    grads: dict  # output -> name -> ndarray or None (no gradient: a grad: false input)
    vmag: dict  # name -> allowance magnitude for its value
    gmag: dict  # output -> name -> allowance magnitude for its gradient
    rtol_v: float = RTOL
    rtol_g: float = RTOL
    skip: str | None = None  # why this row cannot be compared (non-finite, kink, out of range)
    gabs: dict | None = None  # exact family: output -> name -> sum of |terms| of the gradient (its allowance)


def torch_ref(g: rg.RGraph, values: dict, outputs: list[str]) -> Ref:
    import torch

    T: dict = {}
    for inp in g.inputs:
        T[inp.name] = torch.tensor(
            np.asarray(values[inp.name], dtype=np.float64), dtype=torch.float64, requires_grad=inp.grad
        )
    inputs = {i.name for i in g.inputs}
    skip = None

    def arg(a):
        return T[a] if isinstance(a, str) else torch.tensor(float(a), dtype=torch.float64)

    for n in g.nodes:
        a = [arg(x) for x in n.args]
        if n.op == "relu" and isinstance(n.args[0], str) and n.args[0] not in inputs:
            x = a[0].detach().numpy()
            if x.size and (np.abs(x) <= 1e-9 * max(1.0, float(np.abs(x).max()))).any():
                skip = "kink"
        y = _torch_op(torch, n.op, a, n.attrs)
        if not y.requires_grad:
            y = y.detach().requires_grad_(True)  # fed only by constants / grad: false inputs: a leaf, so it
        T[n.name] = y  # has its true gradient (what every node the output depends on must have)
    vals = {k: v.detach().numpy().copy() for k, v in T.items()}
    grads: dict = {}
    for o in outputs:
        loss = T[o].sum()
        names = [k for k, v in T.items() if v.requires_grad]
        if loss.requires_grad:
            gs = torch.autograd.grad(loss, [T[k] for k in names], allow_unused=True, retain_graph=True)
        else:
            gs = [None] * len(names)
        per = {}
        for k in T:
            if k in inputs and not g.input(k).grad:
                per[k] = None
            else:
                gk = gs[names.index(k)]
                per[k] = np.zeros(vals[k].shape) if gk is None else gk.numpy().copy()
        grads[o] = per
    ref = Ref(vals, grads, _ancestral(g, vals), {})
    for o in outputs:
        m = rg.magnitude(*grads[o].values())
        ref.gmag[o] = {k: m for k in T}
    finite = all(np.isfinite(v).all() for v in vals.values()) and all(
        v is None or np.isfinite(v).all() for per in grads.values() for v in per.values()
    )
    ref.skip = skip if finite else "nonfinite"
    return ref


def _torch_op(torch, op, a, attrs):
    if op == "add":
        return a[0] + a[1]
    if op == "sub":
        return a[0] - a[1]
    if op == "mul":
        return a[0] * a[1]
    if op == "div":
        return a[0] / a[1]
    if op == "pow":
        return torch.pow(a[0], a[1])
    if op == "neg":
        return -a[0]
    if op in ("exp", "log", "relu", "sigmoid", "tanh"):
        return getattr(torch, op)(a[0])
    if op == "matmul":
        return torch.matmul(a[0], a[1])
    if op == "affine":
        return torch.matmul(a[0], a[1]) + a[2]
    if op in ("sum", "mean"):
        x = a[0]
        if x.ndim == 0:
            return x + 0.0 if op == "sum" else x * 1.0  # a reduction over no axis is the identity
        axis = attrs.get("axis")
        dims = tuple(range(x.ndim)) if axis is None else (axis,) if isinstance(axis, int) else tuple(axis)
        f = torch.sum if op == "sum" else torch.mean
        return f(x, dim=dims, keepdim=bool(attrs.get("keepdims", False)))
    if op == "softmax_with_loss":
        x, t = a
        logp = torch.log_softmax(x, dim=-1)
        if t.ndim == x.ndim - 1:
            t = torch.nn.functional.one_hot(t.detach().long(), x.shape[-1]).to(torch.float64)
        n = x.shape[0] if x.ndim == 2 else 1
        return -(t * logp).sum() / n
    raise ValueError(op)


def _ancestral(g: rg.RGraph, vals: dict) -> dict:
    mags = {i.name: rg.magnitude(vals[i.name]) for i in g.inputs}
    for n in g.nodes:
        m = rg.magnitude(vals[n.name])
        for a in n.args:
            m = max(m, mags[a] if isinstance(a, str) else abs(float(a)))
        mags[n.name] = m
    return mags


def exact_ref(g: rg.RGraph, values: dict, outputs: list[str]) -> Ref:
    """mul / div / neg graphs, exactly: object arrays of Fractions; each result rounded once to float64."""

    def F(v):
        a = np.asarray(v, dtype=np.float64)
        out = np.empty(a.shape, dtype=object)
        for idx in np.ndindex(a.shape):
            out[idx] = Fraction(float(a[idx]))
        return out

    V = {i.name: F(values[i.name]) for i in g.inputs}
    consts = {}

    def arg(x):
        if isinstance(x, str):
            return V[x]
        consts.setdefault(x, F(x))
        return consts[x]

    for n in g.nodes:
        a = [arg(x) for x in n.args]
        if n.op == "mul":
            V[n.name] = _obj(a[0] * a[1])
        elif n.op == "div":
            V[n.name] = _obj(a[0] / a[1])
        else:
            V[n.name] = _obj(-a[0])
    grads, gabs, G_all, A_all = {}, {}, {}, {}
    for o in outputs:
        G = {k: _obj(np.zeros(np.shape(v), dtype=object) + Fraction(0)) for k, v in V.items()}
        A = {k: _obj(np.zeros(np.shape(v), dtype=object) + Fraction(0)) for k, v in V.items()}
        G[o] = _obj(np.ones(np.shape(V[o]), dtype=object) * Fraction(1))
        A[o] = _obj(np.ones(np.shape(V[o]), dtype=object) * Fraction(1))
        for n in reversed(g.nodes):
            d, da = G[n.name], A[n.name]
            args = n.args
            av = [arg(x) for x in args]
            if n.op == "mul":
                local = [av[1], av[0]]
            elif n.op == "div":
                local = [1 / av[1], -av[0] / (av[1] * av[1])]
            else:
                local = [np.asarray(Fraction(-1), dtype=object)]
            for x, lv in zip(args, local):
                if isinstance(x, str):
                    G[x] = _obj(G[x] + _sum_to(d * lv, np.shape(V[x])))
                    A[x] = _obj(A[x] + _sum_to(da * np.vectorize(abs, otypes=[object])(lv), np.shape(V[x])))
        grads[o] = {k: (None if k in {i.name for i in g.inputs if not i.grad} else _round(G[k])) for k in V}
        gabs[o] = {k: _round(A[k]) for k in V}
        G_all[o], A_all[o] = G, A

    def out_of_range(x) -> bool:  # nonzero but not a normal float64: the float computation cannot be exact
        return any(f != 0 and not NORMAL_MIN <= abs(f) <= NORMAL_MAX for f in _obj(x).flat)

    vals = {k: _round(v) for k, v in V.items()}
    bad = any(map(out_of_range, V.values())) or any(
        out_of_range(x) for per in list(G_all.values()) + list(A_all.values()) for x in per.values()
    )
    ref = Ref(vals, grads, {k: 0.0 for k in V}, {o: {k: 0.0 for k in V} for o in outputs}, gabs=gabs)
    ref.skip = "out of range" if bad else None
    return ref


def _sum_to(x, shape):
    x = _obj(x)
    while x.ndim > len(shape):
        x = _obj(x.sum(axis=0))
    for i, n in enumerate(shape):
        if n == 1 and x.shape[i] != 1:
            x = _obj(x.sum(axis=i, keepdims=True))
    return x.reshape(shape)


def _obj(x):
    """An object array (numpy gives back a bare Fraction for 0-d results)."""
    if isinstance(x, np.ndarray):
        return x
    out = np.empty((), dtype=object)
    out[()] = x
    return out


def _round(x):
    x = np.asarray(x, dtype=object)
    out = np.empty(x.shape, dtype=np.float64)
    for idx in np.ndindex(x.shape):
        f = x[idx]
        try:
            out[idx] = float(f)
        except OverflowError:
            out[idx] = math.inf if f > 0 else -math.inf
    return out


# --- comparing -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mismatch:
    source: str  # run | run_batch
    kind: str  # value | grad | grad-none | error | shape | missing
    name: str  # the node (or input) it shows at; for a gradient, d output / d name
    output: str | None
    row: int
    got: str
    want: str
    sig: tuple  # (source, kind, op, feature): the kind of failure


def ok(got, want, rtol, atol) -> bool:
    return rg.close(got, want, rtol, atol)


def _culprit_layer(tb) -> str | None:
    """The op of the layer whose forward/backward raised (from the traceback's frames)."""
    from cgcalc.core.base import Layer

    op = None
    for frame, _ in traceback.walk_tb(tb):
        s = frame.f_locals.get("self")
        if isinstance(s, Layer):
            op = type(s).op
    return op


class Checker:
    def __init__(self, g: rg.RGraph, exact: bool) -> None:
        self.g = g
        self.exact = exact
        self.by = {**{i.name: i for i in g.inputs}, **{n.name: n for n in g.nodes}}
        self.consumers = defaultdict(list)
        for n in g.nodes:
            for a in n.args:
                if isinstance(a, str):
                    self.consumers[a].append(n)
        self.order = [i.name for i in g.inputs] + [n.name for n in g.nodes]
        grad_in = {i.name for i in g.inputs if i.grad}
        self.depends = {}  # does a gradient flow into it from an input (cgcalc's has_grad)?
        for name in self.order:
            x = self.by[name]
            self.depends[name] = (
                name in grad_in
                if isinstance(x, rg.Input)
                else any(isinstance(a, str) and self.depends[a] for a in x.args)
            )

    # features: coarse, so that one bug is one kind of failure

    def feature(self, name: str) -> str:
        f = self._feature(name)
        return f"{f}, extreme magnitudes" if self.exact and f else "extreme magnitudes" if self.exact else f

    def _feature(self, name: str) -> str:
        x = self.by[name]
        if isinstance(x, rg.Input):
            return "input" + ("" if x.grad else " (grad: false)")
        shapes = [np.shape(self.ref_values[a]) if isinstance(a, str) else () for a in x.args]
        if x.op in ("matmul", "affine"):
            ra, rb = len(shapes[0]), len(shapes[1])
            return "operand ranks " + ("equal" if ra == rb else "differ") + (", N-D" if max(ra, rb) > 2 else "")
        if x.op == "softmax_with_loss":
            t = x.args[1]
            if isinstance(t, float):
                return "t a literal class index"
            tk = self.by[t]
            return "t " + (tk.kind if isinstance(tk, rg.Input) else "a node")
        if not self.depends[name]:
            return "fed only by constants / grad: false inputs"
        if x.op in rg.BINARY and len({s for s in shapes}) > 1:
            return "broadcasting"
        return ""

    def grad_sig(self, source: str, name: str, output: str, none_kind: str | None) -> tuple:
        cons = [c for c in self.consumers.get(name, []) if self.on_path(c.name, output)]
        x = self.by[name]
        if none_kind:
            kind = "grad-none"
            feat = none_kind
        else:
            kind = "grad"
            feat = "" if self.depends[name] else "of a node fed only by constants / grad: false inputs"
        if name == output:
            return (source, kind, "seed (the output itself)", self.feature(name) if isinstance(x, rg.Input) else feat)
        if feat.startswith("of a node fed only"):
            return (source, kind, "any op", feat)  # one bug, whatever consumes the node
        ops = "+".join(sorted({c.op for c in cons})) or "?"
        if not feat and len(cons) == 1:
            feat = self.feature(cons[0].name)
        elif self.exact and "extreme" not in feat:
            feat = f"{feat}, extreme magnitudes" if feat else "extreme magnitudes"
        return (source, kind, ops, feat)

    def on_path(self, name: str, output: str) -> bool:
        if name == output:
            return True
        return any(self.on_path(c.name, output) for c in self.consumers.get(name, []))

    def compare(self, graph: cgcalc.Graph, columns: dict, refs: list[Ref]) -> list[Mismatch]:
        g, out = self.g, []
        outputs = g.outputs
        n = len(refs)
        for i in range(n):
            ref = refs[i]
            if ref.skip:
                continue
            self.ref_values = ref.values
            try:
                r = graph.run(rg.row(columns, i), output=outputs)
            except Exception as e:
                out.append(
                    Mismatch(
                        "run",
                        "error",
                        "",
                        None,
                        i,
                        f"{type(e).__name__}: {e}",
                        "",
                        ("run", "error", _culprit_layer(e.__traceback__) or "?", type(e).__name__),
                    )
                )
                continue
            first_value = None
            for name in self.order:
                try:
                    got = r.value(name)
                except KeyError:
                    out.append(
                        Mismatch("run", "missing", name, None, i, "no such node", "", ("run", "missing", "names", ""))
                    )
                    continue
                want = ref.values[name]
                tol = self._vtol(ref, name, want)
                if not ok(got, want, ref.rtol_v, tol):
                    if first_value is None:
                        first_value = name
                        x = self.by[name]
                        op = x.op if isinstance(x, rg.Node) else "input"
                        out.append(
                            Mismatch(
                                "run",
                                "value",
                                name,
                                None,
                                i,
                                rg._show(got),
                                rg._show(want),
                                ("run", "value", op, self.feature(name)),
                            )
                        )
                elif (
                    isinstance(self.by[name], rg.Node)
                    and self.by[name].op == "softmax_with_loss"
                    and float(got) == 0
                    and math.copysign(1.0, float(got)) < 0
                ):
                    out.append(
                        Mismatch(
                            "run",
                            "value",
                            name,
                            None,
                            i,
                            "-0.0",
                            "+0.0",
                            ("run", "value", "softmax_with_loss", "a loss of 0 is -0.0 (1/loss = -inf)"),
                        )
                    )
            if first_value is not None:
                continue  # gradients of wrong values: not a separate failure
            for o in outputs:
                latest = None
                for name in reversed(self.order):
                    got, want = r.grad(name, o), ref.grads[o][name]
                    if (got is None) != (want is None):
                        what = "a gradient where there is none" if want is None else "None for a gradient"
                        out.append(
                            Mismatch(
                                "run",
                                "grad-none",
                                name,
                                o,
                                i,
                                rg._show(got) if got is not None else "None",
                                rg._show(want) if want is not None else "None",
                                self.grad_sig("run", name, o, what),
                            )
                        )
                        continue
                    if got is None:
                        continue
                    if not ok(got, want, ref.rtol_g, self._gtol(ref, o, name)):
                        if latest is None:
                            latest = name
                            out.append(
                                Mismatch(
                                    "run",
                                    "grad",
                                    name,
                                    o,
                                    i,
                                    rg._show(got),
                                    rg._show(want),
                                    self.grad_sig("run", name, o, None),
                                )
                            )
        # run_batch
        try:
            res = graph.run_batch(columns, output=outputs)
        except Exception as e:
            op = _culprit_layer(e.__traceback__) or "?"
            out.append(
                Mismatch(
                    "run_batch",
                    "error",
                    "",
                    None,
                    -1,
                    f"{type(e).__name__}: {e}",
                    "",
                    ("run_batch", "error", op, type(e).__name__),
                )
            )
            return out
        grad_inputs = [x.name for x in g.inputs if x.grad]
        for i in range(n):
            ref = refs[i]
            if ref.skip:
                continue
            self.ref_values = ref.values
            for o in res.outputs:
                got, want = res.outputs[o], ref.values[o]
                if np.shape(got)[:1] != (n,) or np.shape(got)[1:] != np.shape(want):
                    if self._const_only(o):
                        sig = ("run_batch", "shape", "any op", "output fed only by constants, without its row axis")
                    else:
                        at = self._first_wrong_batch_value(graph, columns, refs, i) or o
                        x = self.by[at]
                        sig = (
                            "run_batch",
                            "shape",
                            x.op if isinstance(x, rg.Node) else "input",
                            self.feature(at) or "wrong shape",
                        )
                    out.append(
                        Mismatch(
                            "run_batch",
                            "shape",
                            o,
                            None,
                            i,
                            f"shape {np.shape(got)}",
                            f"shape {(n, *np.shape(want))}",
                            sig,
                        )
                    )
                    continue
                if ok(got[i], want, ref.rtol_v, self._vtol(ref, o, want)):
                    if (
                        isinstance(self.by[o], rg.Node)
                        and self.by[o].op == "softmax_with_loss"
                        and float(got[i]) == 0
                        and math.copysign(1.0, float(got[i])) < 0
                    ):
                        out.append(
                            Mismatch(
                                "run_batch",
                                "value",
                                o,
                                None,
                                i,
                                "-0.0",
                                "+0.0",
                                ("run_batch", "value", "softmax_with_loss", "a loss of 0 is -0.0 (1/loss = -inf)"),
                            )
                        )
                else:
                    at = self._first_wrong_batch_value(graph, columns, refs, i) or o
                    x = self.by[at]
                    out.append(
                        Mismatch(
                            "run_batch",
                            "value",
                            o,
                            None,
                            i,
                            rg._show(got[i]),
                            rg._show(want),
                            ("run_batch", "value", x.op if isinstance(x, rg.Node) else "input", self.feature(at)),
                        )
                    )
            wrong_values = any(
                m.source == "run_batch" and m.kind in ("value", "shape") and m.row == i and m.got != "-0.0" for m in out
            )
            for o in outputs:
                per = res.grads.get(o, {})
                for x in grad_inputs:
                    want = ref.grads[o][x]
                    if x not in per:
                        out.append(
                            Mismatch(
                                "run_batch", "missing", x, o, i, "no column", "", ("run_batch", "missing", "grads", "")
                            )
                        )
                        continue
                    got = per[x]
                    if np.shape(got)[:1] != (n,) or np.shape(got)[1:] != np.shape(want):
                        out.append(
                            Mismatch(
                                "run_batch",
                                "shape",
                                x,
                                o,
                                i,
                                f"shape {np.shape(got)}",
                                f"shape {(n, *np.shape(want))}",
                                ("run_batch", "shape", "grad", ""),
                            )
                        )
                        continue
                    if not ok(got[i], want, ref.rtol_g, self._gtol(ref, o, x)):
                        if wrong_values or self._first_wrong_batch_value(graph, columns, refs, i):
                            continue  # gradients of wrong values: not a separate failure
                        out.append(
                            Mismatch(
                                "run_batch",
                                "grad",
                                x,
                                o,
                                i,
                                rg._show(got[i]),
                                rg._show(want),
                                self.grad_sig("run_batch", x, o, None),
                            )
                        )
        return out

    def _first_wrong_batch_value(self, graph, columns: dict, refs: list[Ref], i: int) -> str | None:
        """run_batch shows only the outputs: run it again with every node an output, and return the first
        node (in execution order) whose value in row i is wrong: that is where the batch goes wrong."""
        names = [n.name for n in self.g.nodes if "." not in n.name]  # inner expression nodes: not selectable
        try:
            res = graph.run_batch(columns, output=names)
        except Exception:
            return None
        ref = refs[i]
        for name in [n.name for n in self.g.nodes]:
            if name not in res.outputs:
                continue
            got = res.outputs[name]
            if np.shape(got) != (len(refs), *np.shape(ref.values[name])):
                if not self._const_only(name):  # (a node of constants only: a kind of its own)
                    return name
                continue
            if not ok(got[i], ref.values[name], ref.rtol_v, self._vtol(ref, name, ref.values[name])):
                return name
        return None

    def _const_only(self, name: str) -> bool:
        """A node computed from number literals only (no input at all)."""
        x = self.by[name]
        return isinstance(x, rg.Node) and all(not isinstance(a, str) or self._const_only(a) for a in x.args)

    def _vtol(self, ref: Ref, name: str, want) -> float:
        if self.exact:
            return 0.0
        return ATOL_REL * ref.vmag[name]

    def _gtol(self, ref: Ref, o: str, name: str):
        if self.exact:
            return RTOL * ref.gabs[o][name]  # an array: elementwise
        return ATOL_REL * ref.gmag[o][name]


# --- one graph -------------------------------------------------------------------------------------------------


@dataclass
class Case:
    g: rg.RGraph
    columns: dict
    exact: bool  # the exact (Fraction) family
    forms: dict = field(default_factory=dict)  # node name -> dict | expr, for rewriting


def evaluate(case: Case) -> tuple[list[Mismatch], str | None]:
    g, cols = case.g, case.columns
    try:
        graph = cgcalc.loads(g.text, json=g.json)
    except Exception as e:
        return [
            Mismatch(
                "load", "error", "", None, -1, f"{type(e).__name__}: {e}", "", ("load", "error", "?", type(e).__name__)
            )
        ], None
    n = len(next(iter(cols.values())))
    refs = []
    base = g.values()
    for i in range(n):
        vals = {**base, **rg.row(cols, i)}
        refs.append((exact_ref if case.exact else torch_ref)(g, vals, g.outputs))
    skips = [r.skip for r in refs if r.skip]
    if len(skips) == n:
        return [], skips[0]
    chk = Checker(g, case.exact)
    return chk.compare(graph, cols, refs), None


# --- shrinking -------------------------------------------------------------------------------------------------


def flat_text(g: rg.RGraph, forms: dict) -> str:
    """The graph written one node per line (inner expression nodes renamed y.1 -> y_1)."""
    lines = ["name: repro", "inputs:"]
    for i in g.inputs:
        v = rg._value_text(i.value)
        lines.append(f"  {i.name}: {v}" if i.grad else f"  {i.name}: {{value: {v}, grad: false}}")
    lines.append("nodes:")
    for n in g.nodes:
        args = [a if isinstance(a, str) else a for a in n.args]
        if forms.get(n.name, "expr") == "dict":
            ins = ", ".join(a if isinstance(a, str) else rg._num(a) for a in args)
            extra = "".join(", " + s for s in rg._attr_text(n.attrs, expr=False))
            lines.append(f"  {n.name}: {{op: {n.op}, in: [{ins}]{extra}}}")
        else:
            lines.append(f"  {n.name}: {rg._expr((n.op, args, n.attrs), _NoRandom(), True)}")
    lines.append(f"outputs: [{', '.join(g.outputs)}]")
    return "\n".join(lines) + "\n"


class _NoRandom:
    """For rg._expr: always the first (infix / unary minus) form."""

    def boolean(self, p=0.5):
        return True


def flatten(case: Case) -> Case:
    g = case.g
    forms = {name: form for name, form, _ in g.tops}
    rename = {n.name: n.name.replace(".", "_") for n in g.nodes if "." in n.name}
    nodes = [
        replace(
            n, name=rename.get(n.name, n.name), args=[rename.get(a, a) if isinstance(a, str) else a for a in n.args]
        )
        for n in g.nodes
    ]
    forms = {rename.get(k, k): v for k, v in forms.items()}
    h = rg.RGraph([replace(i) for i in g.inputs], nodes, list(g.outputs), json=False)
    h.text = flat_text(h, forms)
    return Case(h, dict(case.columns), case.exact, forms)


def rebuild(case: Case, inputs, nodes, outputs, columns) -> Case:
    h = rg.RGraph(inputs, nodes, outputs, json=False)
    # drop what no output needs
    need = set(outputs)
    for n in reversed(nodes):
        if n.name in need:
            need |= {a for a in n.args if isinstance(a, str)}
    h.nodes = [n for n in nodes if n.name in need]
    h.inputs = [i for i in inputs if i.name in need] or inputs[:1]
    cols = {k: v for k, v in columns.items() if k in {i.name for i in h.inputs}}
    if not cols:  # run_batch needs a column: the first input's file value in every row
        rows = len(next(iter(columns.values())))
        i0 = h.inputs[0]
        cols = {i0.name: np.stack([np.asarray(i0.value, dtype=np.float64)] * rows)}
    h.text = flat_text(h, case.forms)
    return Case(h, cols, case.exact, case.forms)


def shrink(case: Case, sig: tuple, budget: int = 300) -> tuple[Case, Mismatch]:
    """Greedy: accept any smaller graph (fewer nodes, outputs, rows, columns) that still fails where and how
    `sig` does (source and kind: run/run_batch, value/grad/...); the op it shows at may move, towards the
    node where it goes wrong. The caller groups the shrunk failures by their signatures."""

    def fails(c: Case | None):
        if c is None:
            return None
        try:
            ms, _ = evaluate(c)
        except Exception:
            return None
        same = [m for m in ms if m.sig[:2] == sig[:2]]
        exact = [m for m in same if m.sig == sig]
        return (exact or same or [None])[0]

    flat = flatten(case)
    best_m = fails(flat)
    if best_m is None:  # only in the original form (expression nesting, JSON): keep it as it is
        ms, _ = evaluate(case)
        return case, next(m for m in ms if m.sig[:2] == sig[:2])
    best = flat
    dead_free = rebuild(flat, flat.g.inputs, flat.g.nodes, flat.g.outputs, flat.columns)
    m = fails(dead_free)
    if m is not None:
        best, best_m = dead_free, m
    trials = 0
    progress = True
    while progress and trials < budget:
        progress = False
        b, g = best, best.g
        cands = []  # (function, arguments): each a smaller graph, made only when tried
        if len(g.outputs) > 1:
            for o in g.outputs:
                cands.append((rebuild, (b, g.inputs, g.nodes, [o], b.columns)))
        rows = _rows(b)
        if rows > 1:
            for i in range(rows):
                cands.append(
                    (rebuild, (b, g.inputs, g.nodes, g.outputs, {k: v[i : i + 1] for k, v in b.columns.items()}))
                )
        if len(b.columns) > 1:
            for k in b.columns:
                cands.append(
                    (rebuild, (b, g.inputs, g.nodes, g.outputs, {c: v for c, v in b.columns.items() if c != k}))
                )
        for n in g.nodes:
            if n.name in g.outputs:
                continue
            for grad in (True, False):
                cands.append((_node_to_input, (b, n, grad)))
        for make, args in cands:
            trials += 1
            c = make(*args)
            m = fails(c)
            if m is not None and (len(c.g.nodes), len(c.g.outputs), _rows(c), len(c.columns)) < (
                len(best.g.nodes),
                len(best.g.outputs),
                _rows(best),
                len(best.columns),
            ):
                best, best_m, progress = c, m, True
                break
            if trials >= budget:
                break
    return best, best_m


def _rows(c: Case) -> int:
    return len(next(iter(c.columns.values())))


def _node_to_input(case: Case, node: rg.Node, grad: bool) -> Case | None:
    """Node -> an input holding its value in each row (from the reference)."""
    g = case.g
    n_rows = _rows(case)
    base = g.values()
    per_row = []
    for i in range(n_rows):
        vals = {**base, **rg.row(case.columns, i)}
        ref = (exact_ref if case.exact else torch_ref)(g, vals, g.outputs)
        per_row.append(ref.values[node.name])
    file_ref = (exact_ref if case.exact else torch_ref)(g, base, g.outputs)
    v = file_ref.values[node.name]
    name = "v" + node.name.replace(".", "_")
    inp = rg.Input(name, tuple(np.shape(v)), grad, "real", 0.0, 0.0, value=float(v) if np.ndim(v) == 0 else v)
    nodes = [replace(m, args=[name if a == node.name else a for a in m.args]) for m in g.nodes if m is not node]
    cols = dict(case.columns)
    varies = any(not np.array_equal(per_row[0], p) for p in per_row[1:]) or not np.array_equal(per_row[0], v)
    if varies:
        cols[name] = np.stack([np.asarray(p, dtype=np.float64) for p in per_row])
    return rebuild(case, [*g.inputs, inp], nodes, list(g.outputs), cols)


# --- main ------------------------------------------------------------------------------------------------------


def _sig_text(sig: tuple) -> str:
    source, kind, op, feat = sig
    return f"{source}: {kind} at {op}" + (f" [{feat}]" if feat else "")


def hint(sig: tuple) -> str:
    source, kind, op, feat = sig
    if source == "run_batch" and ("matmul" in op or "affine" in op or "operand ranks" in feat):
        return "issue 10 item 1 (batch matmul/affine: row axis against a stack axis)"
    if source == "run_batch" and "literal class index" in feat:
        return "issue 10 item 2 (batch softmax_with_loss of a literal class index)"
    if kind == "grad" and "fed only by constants" in feat:
        return "issue 10 item 3 (gradient 0 for a node fed only by constants / grad: false inputs)"
    if kind == "grad-none" and "grad: false" in feat:
        return "issue 10 item 6 (a grad: false input as the selected output reports a gradient)"
    if "-0.0" in feat:
        return "issue 10 item 7 (softmax_with_loss -0.0)"
    if kind == "shape" and "fed only by constants" in feat:
        return "new (not in issue 10): run_batch output of a node fed only by constants has no row axis"
    if "div" in op and "extreme magnitudes" in feat:
        return "issue 10 item 4 (div's gradient -dout*a/(b*b): b*b under/overflows)"
    return ""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--graphs", type=int, default=3000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-nodes", type=int, default=8)
    p.add_argument("--rows", type=int, default=3, help="rows per graph (at most)")
    p.add_argument("--scale-share", type=float, default=0.15, help="share of mul/div/neg graphs at extreme magnitudes")
    p.add_argument("--spread", type=int, default=250, help="inputs of the exact family: magnitudes 1e-S..1e+S")
    p.add_argument("--report", type=Path, help="also write the report (Markdown) here")
    p.add_argument("--no-shrink", action="store_true")
    p.add_argument("--shrink-per-kind", type=int, default=4, help="examples of each kind of mismatch to shrink")
    a = p.parse_args(argv)

    import torch  # noqa: F401  (fail early, with the install hint of the docstring)

    t0 = time.time()
    counts = Counter()
    by_sig: dict[tuple, list] = defaultdict(list)  # sig -> [(graph id, Case, Mismatch)]
    ops_seen = Counter()
    failing_graphs = set()
    for k in range(a.graphs):
        src = rg.RandomSource((a.seed << 32) + k)
        exact = src.boolean(a.scale_share)
        g = (
            rg.scale_graph(src, max_nodes=min(a.max_nodes, 6), spread=a.spread)
            if exact
            else rg.random_graph(src, max_nodes=a.max_nodes, ops=rg.OPS)  # the ops torch_ref knows
        )
        cols = rg.random_rows(g, src, max_rows=a.rows)
        case = Case(g, cols, exact)
        counts["graphs"] += 1
        counts["exact family" if exact else "torch family"] += 1
        ops_seen.update(g.ops())
        try:
            ms, skip = evaluate(case)
        except Exception as e:  # a bug of this tester: say so, never hide it
            counts["tester errors"] += 1
            print(f"graph {k}: tester error {type(e).__name__}: {e}\n{g.text}", file=sys.stderr)
            traceback.print_exc()
            continue
        if skip:
            counts[f"skipped ({skip})"] += 1
            continue
        counts["compared"] += 1
        if ms:
            failing_graphs.add(k)
            for m in ms:
                counts["mismatches"] += 1
                if len(by_sig[m.sig]) < 50:
                    by_sig[m.sig].append((k, case, m))
                else:
                    by_sig[m.sig].append((k, None, None))
        if (k + 1) % 500 == 0:
            print(f"... {k + 1} graphs, {len(failing_graphs)} failing, {time.time() - t0:.0f} s", file=sys.stderr)
    counts["graphs with a mismatch"] = len(failing_graphs)

    # shrink a few of the smallest examples of each raw kind; group the shrunk failures by their kind
    final: dict[tuple, list] = defaultdict(list)  # shrunk sig -> [(size, graph id, Case, Mismatch, raw sig)]
    raw_to_final: dict[tuple, set] = defaultdict(set)
    for sig, lst in by_sig.items():
        examples = sorted(
            [(len(c.g.nodes), len(c.g.inputs), k, c, m) for k, c, m in lst if c is not None], key=lambda e: e[:3]
        )[: a.shrink_per_kind]
        for _, _, k, c, m in examples:
            c2, m2 = (c, m) if a.no_shrink else shrink(c, sig)
            final[m2.sig].append((len(c2.g.nodes) + len(c2.g.inputs), k, c2, m2, sig))
            raw_to_final[sig].add(m2.sig)
    elapsed = time.time() - t0

    out = []
    out.append(
        f"# cgcalc vs PyTorch {__import__('torch').__version__} float64 (and exact Fractions): "
        f"{a.graphs} graphs, seed {a.seed}\n"
    )
    out.append("counts: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + f"  ({elapsed:.0f} s)\n")
    out.append("ops in the graphs (graphs using each): " + ", ".join(f"{o} {ops_seen[o]}" for o in rg.OPS) + "\n")
    out.append(f"{len(by_sig)} kinds of mismatch as found; shrunk, {len(final)} distinct kinds of failure:\n")
    for sig, lst in sorted(by_sig.items(), key=lambda kv: kv[0]):
        graphs = sorted({k for k, _, _ in lst})
        out.append(
            f"- {_sig_text(sig)}: {len(graphs)} graphs, {len(lst)} mismatches -> shrunk to "
            + "; ".join(_sig_text(f) for f in sorted(raw_to_final[sig]))
        )
    for n_kind, (sig, lst) in enumerate(sorted(final.items(), key=lambda kv: (hint(kv[0]) == "", kv[0])), 1):
        size, k0, c0, m0, raw = min(lst, key=lambda e: e[:2])
        graphs = sorted({k for raw_sig in raw_to_final for k, _, _ in by_sig[raw_sig] if sig in raw_to_final[raw_sig]})
        out.append(f"\n## {n_kind}. {_sig_text(sig)}" + (f"  — {hint(sig)}" if hint(sig) else ""))
        out.append(
            f"seen in {len(graphs)} graphs (first: {graphs[:8]}; every graph of a kind of mismatch that "
            f"shrank to this); minimal repro (shrunk from graph {k0}, "
            f"{'exact-reference' if c0.exact else 'torch'} family):\n"
        )
        out.append("```yaml\n" + c0.g.text.rstrip() + "\n```")
        rows = [{k: v[i].tolist() for k, v in c0.columns.items()} for i in range(_rows(c0))]
        out.append(
            "rows (run_batch columns; as JSON Lines for `cgcalc batch`):\n```\n"
            + "\n".join(json.dumps(r) for r in rows)
            + "\n```"
        )
        what = m0.name if m0.kind not in ("grad", "grad-none") else f"d{m0.output}/d{m0.name}"
        out.append(
            f"{m0.source}, row {m0.row}, {what}: cgcalc {m0.got}  reference {m0.want}"
            if m0.kind != "error"
            else f"{m0.source}: {m0.got}"
        )
    text = "\n".join(out) + "\n"
    print(text)
    if a.report:
        a.report.write_text(text)
    return 1 if by_sig or counts["tester errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
