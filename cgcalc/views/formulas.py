"""Each gradient's formula in the graph's own names, read off the simplified derivative graph:
∂price/∂apple = apple_num × tax. In terms of the inputs when that is short enough, else with the graph's
node names (past INLINE_LENGTH); beyond MAX_LENGTH characters, no formula (the derive command shows the whole graph)."""

from __future__ import annotations

from ..core.attr_values import FrozenMapping
from ..core.compiler import Plan
from ..core.derive import plan_terms
from ..core.index_layers import index_text
from ..core.registry import LAYERS
from ..core.terms import OP, Terms

MAX_LENGTH = 80
INLINE_LENGTH = 40  # a formula in the inputs' names up to this long; else with the graph's node names
TOO_LONG = "too long to show: see cgcalc derive"

# op -> (infix symbol, precedence); a higher precedence binds tighter
_INFIX = {"add": (" + ", 1), "sub": (" - ", 1), "mul": (" × ", 2), "div": (" / ", 2), "matmul": (" @ ", 2)}
_ATOM = 9


class _TooLong(Exception):
    pass


def formulas(plan: Plan, output: str | None = None, max_length: int = MAX_LENGTH) -> dict[str, str | None]:
    """name -> the formula of d output / d name, for every input and node (None: a `grad: false` input or an
    argmax; `0`:
    the output does not depend on it; TOO_LONG beyond max_length)."""
    output = output or plan.outputs[0]
    g, _, nodes = plan_terms(plan, limits=False)  # the textbook formulas: no where for pow's limits at x = 0
    g.gradients(nodes[output], [], every=True)
    out: dict[str, str | None] = {}
    for slot, name in enumerate(plan.names):
        if not plan.has_grad[slot]:
            out[name] = None
            continue
        t = g.adjoints.get(nodes[name])
        out[name] = "0" if t is None else _shortest(g, t, nodes, max_length)
    return out


def _shortest(g: Terms, t: int, nodes: dict[str, int], max_length: int) -> str:
    """The formula in the inputs' names, or failing that with node names, or TOO_LONG."""
    named = {}
    for n, term in nodes.items():
        if g.terms[term][OP] not in ("input", "const"):
            named.setdefault(term, n)
    for names, limit in (({}, min(INLINE_LENGTH, max_length)), (named, max_length)):
        try:
            return _Printer(g, names, limit).text(t)[0]
        except _TooLong:
            continue
    return TOO_LONG


class _Printer:
    def __init__(self, g: Terms, names: dict[int, str], max_length: int) -> None:
        self.g, self.names, self.max_length = g, names, max_length
        self.memo: dict[int, tuple[str, int]] = {}

    def text(self, t: int) -> tuple[str, int]:
        """(text, precedence) of term t."""
        got = self.memo.get(t)
        if got is None:
            got = self.memo[t] = self._text(t)
            if len(got[0]) > self.max_length:
                raise _TooLong
        return got

    def _wrapped(self, t: int, at_least: int) -> str:
        text, prec = self.text(t)
        return text if prec >= at_least else f"({text})"

    def _text(self, t: int) -> tuple[str, int]:
        op, args, attrs, _, x, name = self.g.terms[t]
        if op == "input":
            return name or "?", _ATOM
        if op == "const":
            text = str(int(x)) if x == int(x) and abs(x) < 1e16 else repr(x)
            return text, (_ATOM if x >= 0 else 3)
        if t in self.names:
            return self.names[t], _ATOM
        if op in _INFIX:
            symbol, prec = _INFIX[op]
            left = self._wrapped(args[0], prec + (op == "matmul"))  # (a / 2) @ W, not a / 2 @ W
            # a - (b - c), a / (b × c), a × (b / c): on the right, only the same associative op goes bare
            same = op in ("add", "mul") and self.g.terms[args[1]][OP] == op and args[1] not in self.names
            right = self._wrapped(args[1], prec + (not same))
            return left + symbol + right, prec
        if op == "neg":
            return "-" + self._wrapped(args[0], 3), 3
        if op == "pow":
            return f"{self._wrapped(args[0], 5)} ** {self._wrapped(args[1], 4)}", 4
        if op == "identity":
            return self.text(args[0])
        attrs = dict(attrs)
        if op == "transpose" and len(self.g.shape(args[0])) == 2:
            return self._wrapped(args[0], _ATOM) + ".T", _ATOM
        if op == "getitem":
            return f"{self._wrapped(args[0], _ATOM)}[{index_text(attrs['index'])}]", _ATOM
        inner = [self.text(a)[0] for a in args]
        defaults = LAYERS[op].attr_defaults
        inner += [f"{k}={_attr(v)}" for k, v in attrs.items() if v is not None and v != defaults.get(k)]
        return f"{op}({', '.join(inner)})", _ATOM


def _attr(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, FrozenMapping):  # a slice of getitem_grad's index
        return "{" + ", ".join(f"{k}: {_attr(x)}" for k, x in v) + "}"
    if isinstance(v, tuple):
        return "[" + ", ".join(map(_attr, v)) + "]"
    return str(v)
