"""`cgcalc trace`: backprop step by step, as the book explains it. Pure data out; render.py draws it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..core.attr_values import file_attrs
from ..core.compiler import Plan
from ..core.index_layers import index_text
from ..core.runtime import Session, backward, check_outputs
from ..io.graph_text import flow_value


@dataclass(frozen=True, slots=True)
class ForwardStep:
    name: str
    op: str
    args: tuple[tuple[str | None, Any], ...]  # (name, value) of each input; no name for a constant
    value: Any
    attrs: str = ""  # the attributes the file gives (not the defaults): `axis=0`, getitem's `[1:, 0]`


@dataclass(frozen=True, slots=True)
class Pass:
    """What one backward step hands to one of its inputs."""

    to: str
    via: str | None  # the input the local derivative equals, for mul (d a = dout × b)
    local: Any  # the local derivative (a number for scalars; None when it is a Jacobian)
    grad: Any  # upstream x local: what is passed
    total: Any  # the input's gradient so far, after adding this (differs from grad when accumulated)
    accumulated: bool


@dataclass(frozen=True, slots=True)
class BackwardStep:
    name: str
    op: str
    rule: str
    upstream: Any
    passes: tuple[Pass, ...]


@dataclass(frozen=True, slots=True)
class Trace:
    graph: str
    output: str
    inputs: tuple[tuple[str, Any], ...]
    forward: tuple[ForwardStep, ...]
    seed: Any
    backward: tuple[BackwardStep, ...]
    grads: tuple[tuple[str, Any], ...]  # every input's final gradient
    warnings: tuple[str, ...] = ()  # the first NaN or inf a node produced, as `run` reports it

    def __str__(self) -> str:
        from .steps import trace_text

        return trace_text(self)

    def _repr_html_(self) -> str:  # a notebook shows the step list
        from .steps import trace_html

        return trace_html(self)

    def _repr_pretty_(self, p, cycle: bool) -> None:  # IPython's text: the step list, not the dataclass
        p.text(str(self))


def trace(plan: Plan, overrides: Mapping[str, Any] | None = None, output: str | None = None) -> Trace:
    (out,) = check_outputs(plan, [output] if output else None)
    s = Session(plan, overrides)
    values = s.values
    with s.errstate():
        layers = s.forward()
        warnings = tuple(s.nonfinite())
        fwd = tuple(
            ForwardStep(
                st.name,
                st.op,
                tuple((plan.names[a] if a < plan.n_named else None, values[a]) for a in st.args),
                values[st.slot],
                attrs_text(st),
            )
            for st in plan.steps
        )
        out_slot = plan.index[out]
        flows: dict = {}
        grads = backward(plan, values, layers, s.layouts, out_slot, flows)  # every step's upstream: its total
        seed = _full(grads[out_slot], values[out_slot])
        running: list = [None] * plan.n_named  # each input's gradient so far, in backward's order
        steps = []
        for i in range(len(plan.steps) - 1, -1, -1):
            st = plan.steps[i]
            g = grads[st.slot]
            if g is None or True not in st.needs:
                continue
            scalar = all(type(values[a]) is float for a in st.args) and type(g) is float
            locals_ = layers[i].backward(1.0) if scalar else (None,) * len(st.args)
            passes = []
            for j, (a, loc) in enumerate(zip(st.args, locals_)):
                d = flows.get((i, j))
                if d is None:
                    continue
                old = running[a]
                running[a] = d if old is None else old + d
                via = plan.label(st.args[1 - j]) if st.op == "mul" else None
                passes.append(
                    Pass(plan.label(a), via, loc, _full(d, values[a]), _full(running[a], values[a]), old is not None)
                )
            steps.append(BackwardStep(st.name, st.op, st.cls.backward_rule, _full(g, values[st.slot]), tuple(passes)))
    n_in = len(plan.inputs)
    return Trace(
        plan.spec.name,
        out,
        tuple((plan.names[i], values[i]) for i in range(n_in)),
        fwd,
        seed,
        tuple(steps),
        tuple(
            (
                plan.names[i],
                None if not plan.inputs[i].grad else _full(0.0 if grads[i] is None else grads[i], values[i]),
            )
            for i in range(n_in)
        ),
        warnings,
    )


def _full(g, like):
    """A gradient as the user reads it: the seed's float 1 (which stands for an array of ones) spread out."""
    if type(g) is not float or type(like) is float:
        return g
    import numpy as np

    return np.full(like.shape, g)


def attrs_text(st: Any) -> str:
    """A step's attributes as the file gives them, defaults left out: `axis=0, keepdims=true`; getitem's index
    as Python writes it, `[1:, 0]`."""
    if not st.attrs:
        return ""
    attrs = file_attrs(st.cls, st.attrs)
    index = attrs.pop("index", None) if st.op in ("getitem", "getitem_grad") else None
    parts = [f"[{index_text(index)}]"] if index is not None else []
    return ", ".join(parts + [f"{k}={flow_value(v)}" for k, v in attrs.items()])
