"""Graph's second-order methods, on derivative graphs (each built once per Graph, in its cache): the text of the
derivative file (`derive_text`), the Hessian of scalar or array inputs and the Hessian-vector product. Handed
the plan, the cache and `load_json` (api.loads of a graph cgcalc wrote), as fit is handed the Graph: this
module sits below api."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .core.base import fmt_shape
from .core.compiler import Plan
from .core.derive import checked, derive, element_labels, hvp_terms, layout
from .core.runtime import Session, _frozen, gc_paused, input_values, shape_of
from .core.vectorized import run_batch
from .errors import UsageError, suggest
from .io.graph_text import terms_text


def hessian(
    plan: Plan,
    cache: dict,
    load_json: Callable,
    overrides: Mapping[str, Any] | None = None,
    wrt: Sequence[str] | None = None,
    output: str | None = None,
) -> tuple[list[str], Any]:
    """Graph.hessian: (labels, the (n, n) matrix)."""
    import numpy as np

    wrt, output = checked(plan, wrt, output, what="a Hessian")
    same_shapes(plan, overrides, "a Hessian")
    shapes = [plan.shapes[plan.index[w]] for w in wrt]
    if not any(shapes) and len(wrt) <= 100:
        # scalars: one forward run of the order-2 derivative graph gives every entry
        key = ("order 2", tuple(wrt), output)
        d2 = cache.get(key) or cache.setdefault(
            key, load_json(derive_text(plan, plan.spec.name, wrt, output, 2, "json"))
        )
        s = Session(d2.plan, overrides)
        with s.errstate():
            s.forward()
        flat = [float(s.values[d2.plan.index[o]]) for o in d2.outputs]
        return list(wrt), np.array(flat).reshape(len(wrt), len(wrt))
    hv, vs, wrt = hvp_graph(plan, cache, load_json, wrt, output)
    shapes = [plan.shapes[plan.index[w]] for w in wrt]
    labels = element_labels(wrt, shapes)
    n = len(labels)
    eye = np.eye(n)
    columns, start = {}, 0
    for v, shape in zip(vs, shapes):
        size = int(np.prod(shape, dtype=np.int64))
        columns[v] = eye[:, start : start + size].reshape((n, *shape))
        start += size
    base = input_values(plan, overrides)  # the point: the file's values, or the overrides'
    for i, inp in enumerate(plan.inputs):
        columns[inp.name] = np.broadcast_to(np.asarray(base[i], dtype=np.float64), (n, *np.shape(base[i])))
    out = run_batch(hv.plan, columns, list(hv.outputs[:1]), grads=False)  # forward: the values are H e_i
    h = np.concatenate([np.asarray(out.outputs[o]).reshape(n, -1) for o in hv.outputs], axis=1)
    return labels, h


def hvp(
    plan: Plan,
    cache: dict,
    load_json: Callable,
    vector: Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
    wrt: Sequence[str] | None = None,
    output: str | None = None,
) -> dict[str, Any]:
    """Graph.hvp: input -> (H v) for that input."""
    same_shapes(plan, overrides, "a Hessian-vector product")
    hv, vs, wrt = hvp_graph(plan, cache, load_json, wrt, output)
    extra = [name for name in vector if name not in wrt]
    if extra:
        raise UsageError(
            f"the vector names '{extra[0]}', which is not among the inputs differentiated with respect to"
            + suggest(extra[0], wrt)
        )
    values = dict(overrides or {})
    values.update({v: vector[w] for v, w in zip(vs, wrt) if w in vector})
    s = Session(hv.plan, values)
    with s.errstate():
        s.forward()  # forward only: the values are H v
    return {w: _frozen(s.values[hv.plan.index[o]]) for w, o in zip(wrt, hv.outputs)}


def derive_text(
    plan: Plan,
    name: str,
    wrt: Sequence[str] | None = None,
    output: str | None = None,
    order: int = 1,
    fmt: str = "yaml",
) -> str:
    """The text of the derivative graph file (YAML or JSON)."""

    wrt, output = checked(plan, wrt, output, order)
    with gc_paused():  # tens of thousands of terms that form no cycles, as loading does
        lay = layout(plan, derive(plan, wrt, output, order), output, wrt, order)
        header = f"cgcalc derive{' --order ' + str(order) if order > 1 else ''} of {plan.spec.file or name}"
        return terms_text(lay, fmt, header)


def same_shapes(plan: Plan, overrides: Mapping[str, Any] | None, what: str) -> None:
    """Derivative graphs are built for the file's shapes: an override of another shape is refused, never
    computed with the file's shapes silently."""
    if not overrides:
        return

    values = input_values(plan, overrides)
    for i, inp in enumerate(plan.inputs):
        if shape_of(values[i]) != inp.shape:
            raise UsageError(
                f"{what} is computed at the file's shapes: '{inp.name}' is {fmt_shape(inp.shape)} in the file, "
                f"{fmt_shape(shape_of(values[i]))} here; write the new value in the file (or a copy of it)"
            )


def hvp_graph(
    plan: Plan, cache: dict, load_json: Callable, wrt: Sequence[str] | None, output: str | None
) -> tuple[Any, list[str], list[str]]:
    """The graph of the Hessian-vector product, its vector inputs (by wrt) and the checked wrt."""

    wrt, output = checked(plan, wrt, output, what="a Hessian")
    key = (tuple(wrt), output)
    built = cache.get(key)
    if built is None:
        with gc_paused():
            d, vs = hvp_terms(plan, wrt, output)
            text = terms_text(layout(plan, d, output, wrt, 2, vs), "json")
        hv = load_json(text, f"{plan.spec.name}-hvp")
        built = cache[key] = (hv, [n for n, _ in vs], wrt)
    return built
