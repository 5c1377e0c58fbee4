"""The expression form of a node: `sigmoid(x @ W + b)` -> nodes. Parsed by a tokenizer and a Pratt
parser with Python's precedence; nothing is ever evaluated. `x[0, 1:3]` is a getitem node whose `index` is
written as the mapping form writes it ([0, {start: 1, stop: 3}]), and `x.T` a transpose.

Inner operations become their own nodes, named after the node the expression defines: `price.1`,
`price.2`, ... in evaluation order (left to right, innermost first); the last operation takes the name
itself. The dot keeps these names apart from any name a user can write.
"""

from __future__ import annotations

import math
import re
import sys

from ..errors import GraphError
from ..numbers import parse_number
from .spec import NodeSpec, Pos

_TOKEN = re.compile(
    r"\s*(?:(?P<num>(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>\*\*|\.\.\.|[-+*/@(),=\[\]:.]))"
)
# binding power and op of each binary operator (Python's: ** > unary - > * / @ > + -)
_BINARY = {
    "+": (10, "add"),
    "-": (10, "sub"),
    "*": (20, "mul"),
    "/": (20, "div"),
    "@": (20, "matmul"),
    "**": (40, "pow"),
}
_UNARY = 30


class _Parser:
    def __init__(self, text: str, where: str, pos: Pos, file: str | None, max_depth: int) -> None:
        self.text, self.where, self.pos, self.file, self.max_depth = text, where, pos, file, max_depth
        self.toks: list[tuple[str, str, int]] = []  # (kind, text, offset)
        i = 0
        while True:
            m = _TOKEN.match(text, i)
            if not m or m.end() == i:
                rest = text[i:].lstrip()
                if not rest:
                    break
                raise self.err(f"unexpected character '{rest[0]}'", len(text) - len(rest))
            kind = m.lastgroup
            self.toks.append((kind, m.group(kind), m.start(kind)))
            i = m.end()
        self.toks.append(("end", "", len(text.rstrip())))
        self.i = 0

    def err(self, msg: str, offset: int) -> GraphError:
        line = col = None
        if self.pos:
            line, col = self.pos
            if "\n" not in self.text[:offset]:
                col += offset
        return GraphError(f"bad expression for {self.where}: {msg}", file=self.file, line=line, col=col)

    def number(self, text: str, offset: int) -> float:
        x = parse_number(text)
        if x is None:  # the tokenizer takes any run of digits and _: 1__0 is not a number
            raise self.err(f"bad number '{text}'", offset)
        return x

    def peek(self):
        return self.toks[self.i]

    def take(self):
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def expect(self, text: str):
        tok = self.take()
        if tok[1] != text:
            raise self.err(f"expected '{text}', found {_show(tok)}", tok[2])
        return tok

    def parse(self):
        tree = self.expr(0, 0)
        tok = self.peek()
        if tok[0] != "end":
            raise self.err(f"unexpected {_show(tok)}", tok[2])
        return tree

    def expr(self, min_bp: int, depth: int):
        if depth > self.max_depth:
            raise self.err(f"nested more than {self.max_depth} deep (raise it with CGCALC_MAX_DEPTH)", self.peek()[2])
        left = self.prefix(depth)
        while True:
            kind, text, off = self.peek()
            if kind != "op" or text not in _BINARY:
                return left
            bp, op = _BINARY[text]
            if bp < min_bp:
                return left
            self.take()
            # ** is right-associative and its right side may start with a unary minus
            right = self.expr(_UNARY if op == "pow" else bp + 1, depth + 1)
            left = ("op", op, [left, right], {}, off)

    def prefix(self, depth: int):
        kind, text, off = self.take()
        if kind == "num":
            return ("num", self.number(text, off), off)
        if text in ("-", "+"):
            operand = self.expr(_UNARY, depth + 1)
            if text == "+":
                return operand
            if operand[0] == "num":
                return ("num", -operand[1], off)
            return ("op", "neg", [operand], {}, off)
        if kind == "name":
            atom = self.call(text, off, depth) if self.peek()[1] == "(" else ("name", text, off)
        elif text == "(":
            atom = self.expr(0, depth + 1)
            self.expect(")")
        else:
            raise self.err(f"unexpected {_show((kind, text, off))}", off)
        return self.postfix(atom)

    def postfix(self, atom):
        """x[...] and x.T after a name, a call or a parenthesis, binding tighter than any operator (Python's)."""
        while self.peek()[1] in ("[", "."):
            _, text, off = self.take()
            if text == ".":
                kind, attr, aoff = self.take()
                if attr != "T" or kind != "name":
                    shown = f"'.{attr}'" if kind == "name" else _show((kind, attr, aoff))
                    raise self.err(f"expected .T (the transpose) after '.', found {shown}", aoff)
                atom = ("op", "transpose", [atom], {}, off)
            else:
                atom = ("op", "getitem", [atom], {"index": self.index(off)}, off)
        return atom

    def index(self, off: int) -> list:
        """What x[...] holds, as getitem's `index` attribute: whole numbers, slices a:b:c as mappings, '...'."""
        items: list = []
        while True:
            tok = self.peek()
            if tok[1] == "..." and "..." in items:
                raise self.err("an index can have only one '...'", tok[2])
            items.append(self.take()[1] if tok[1] == "..." else self.index_item())
            if self.peek()[1] != ",":
                break
            self.take()
            if self.peek()[1] == "]":
                break  # x[0,] is x[0], as in Python
        self.expect("]")
        return items

    def index_item(self):
        start = self.whole()
        if self.peek()[1] != ":":
            if start is None:
                raise self.err(
                    f"expected an index (a whole number, a:b:c or ...), found {_show(self.peek())}", self.peek()[2]
                )
            return start
        self.take()
        item = {"start": start, "stop": self.whole()}
        if self.peek()[1] == ":":
            self.take()
            tok = self.peek()
            item["step"] = self.whole()
            if item["step"] == 0:
                raise self.err("a slice's step must not be 0", tok[2])
        return {k: v for k, v in item.items() if v is not None}

    def whole(self) -> int | None:
        """A whole number written in an index (a sign allowed), or None when none is written there."""
        kind, text, off = self.peek()
        sign = 1
        if text in ("-", "+"):
            sign = -1 if text == "-" else 1
            self.take()
            kind, text, off = self.peek()
        elif kind != "num":
            return None
        if kind != "num" or "." in text or "e" in text.lower():
            shown = _show((kind, text, off))
            raise self.err(f"an index is a whole number written out (x[0], x[1:3]), found {shown}", off)
        self.take()
        digits = text.replace("_", "")
        if len(digits) > 15:
            raise self.err(f"index {text} is too large", off)
        self.number(text, off)  # 1__0 is not a number
        return sign * int(digits)

    def call(self, fname: str, off: int, depth: int):
        self.expect("(")
        args, kwargs = [], {}
        while self.peek()[1] != ")":
            kind, text, aoff = self.peek()
            if kind == "name" and self.toks[self.i + 1][1] == "=":
                self.i += 2
                kwargs[text] = self.literal()
            else:
                if kwargs:
                    raise self.err("a positional input after a keyword attribute", aoff)
                args.append(self.expr(0, depth + 1))
            if self.peek()[1] != ",":
                break
            self.take()
        self.expect(")")
        return ("op", fname, args, kwargs, off)

    def literal(self):
        """An attribute value: a number, true/false, or a [list] of integers."""
        kind, text, off = self.take()
        sign = 1
        if text == "-":
            sign, (kind, text, off) = -1, self.take()
        if kind == "num":
            x = sign * self.number(text, off)
            whole = math.isfinite(x) and x == int(x) and "." not in text and "e" not in text.lower()
            return int(x) if whole else x
        if kind == "name" and text in ("true", "True", "false", "False") and sign == 1:
            return text in ("true", "True")
        if text == "[" and sign == 1:
            items = []
            while self.peek()[1] != "]":
                items.append(self.literal())
                if self.peek()[1] != ",":
                    break
                self.take()
            self.expect("]")
            return items
        raise self.err(f"expected a number, true/false or a [list], found {_show((kind, text, off))}", off)


def _show(tok) -> str:
    return "end of expression" if tok[0] == "end" else f"'{tok[1]}'"


def lower(spec: NodeSpec, file: str | None, max_depth: int) -> list[NodeSpec]:
    """The nodes an expression node stands for, in evaluation order; the last one is `spec.name`."""
    return _nodes(spec, _tree(spec, file, max_depth))


def _tree(spec: NodeSpec, file: str | None, max_depth: int) -> tuple:
    """The expression's parse tree, which has at least one operation."""
    p = _Parser(spec.expr or "", f"node '{spec.name}'", spec.expr_pos, file, max_depth)
    if not (spec.expr or "").strip():
        raise p.err("it is empty", 0)
    # the parser recurses about twice per level of nesting: make room for the depth allowed
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 3 * max_depth + 200))
    try:
        tree = p.parse()
    except RecursionError:
        raise p.err("nested too deep for this Python (lower CGCALC_MAX_DEPTH)", 0) from None
    finally:
        sys.setrecursionlimit(limit)
    if tree[0] != "op":
        shown = spec.expr.strip()
        raise p.err(f"'{shown}' has no operation; put a constant under 'inputs', or use the name directly", 0)
    return tree


def _nodes(spec: NodeSpec, tree: tuple) -> list[NodeSpec]:
    """The tree's operations as nodes, innermost first, each located at its operator in the file."""
    newline = spec.expr.find("\n")  # past the first line break, an offset cannot be a column

    def at(off: int) -> Pos:
        if spec.expr_pos is None:
            return None
        line, col = spec.expr_pos
        return (line, col + off) if newline < 0 or off <= newline else (line, col)

    nodes: list[NodeSpec] = []
    # post-order walk with an explicit stack: `a + a + ... + a` 100,000 terms long is 100,000 deep
    stack: list[tuple[tuple, bool]] = [(tree, False)]
    results: list = []  # a Ref (name or constant) per finished subtree, with its offset
    while stack:
        item, visited = stack.pop()
        if item[0] in ("num", "name"):
            results.append((item[1], item[2]))
        elif not visited:
            stack.append((item, True))
            stack.extend((arg, False) for arg in reversed(item[2]))
        else:
            _, op, args, kwargs, off = item
            refs = results[len(results) - len(args) :] if args else []
            del results[len(results) - len(args) :]
            root = not stack
            name = spec.name if root else f"{spec.name}.{len(nodes) + 1}"
            nodes.append(
                NodeSpec(
                    name,
                    op,
                    tuple(r for r, _ in refs),
                    dict(kwargs),
                    pos=spec.pos if root else at(off),
                    op_pos=at(off),
                    in_pos=tuple(at(o) for _, o in refs),
                    attr_pos=at(off),
                )
            )
            results.append((name, off))
    return nodes
