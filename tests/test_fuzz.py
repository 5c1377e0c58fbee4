"""Fuzzing the command line with hostile and broken input (issue 5, "Hostile and broken input").

Hypothesis mutates the valid graphs in graphs/ (drops, duplicates and retypes keys, swaps and renames
names, truncates the text, inserts random bytes and characters, nests thousands deep, writes huge and
non-finite numbers, tags, aliases, several documents, ...) and draws random command lines; every file is
run IN-PROCESS through typer's CliRunner with `validate`, `run` (table, json, csv), `check`, `trace` and
`export`. The property, for every outcome (see `problems`):

- the exit code is 0, 1 or 2 (3 is cgcalc's "internal error", i.e. a bug); 1 only from `check` or `--strict`;
- nothing escapes the CLI as a Python exception, and neither "Traceback" nor "internal error" is printed;
- exit 2: stderr is exactly one line, `error: ...` (`validate` of several files: one such line per bad file),
  and nothing is printed on stdout;
- exit 0 or 1: stderr holds only `warning: ...` lines (and, for exit 1, at most one `error: ...` line);
- `--format json` output parses as strict JSON (RFC 8259: no bare NaN/Infinity);
- each example finishes within a few seconds (hypothesis' deadline, and an alarm for real hangs).

The bounded run here is part of CI (well under a minute); tests/fuzz_long.py runs the same properties
for as long as you like, reusing the strategies below (keep them importable, at module level).

Bugs found by fuzzing are kept below as plain reproducers marked xfail(strict=True); the fuzz properties
recognise those known failures (`KNOWN_BUGS`) and let them pass, so that the suite stays green while
anything new fails it. When a bug is fixed its xfail turns into an XPASS failure: then delete its
reproducer's xfail mark and its entry in KNOWN_BUGS.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from cli_helpers import Hang, time_limit
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from typer.testing import CliRunner

from cgcalc.cli.app import app

ROOT = Path(__file__).resolve().parent.parent
GRAPHS = ROOT / "graphs"
CLEAN_ENV = {
    "CGCALC_DEBUG": None,
    "CGCALC_MAX_ELEMENTS": None,
    "CGCALC_MAX_DEPTH": None,
    "CGCALC_MAX_FILE_BYTES": None,
    "NO_COLOR": "1",
    "COLUMNS": "100",
}

EXAMPLE_SECONDS = 10.0  # hard limit per example (SIGALRM): a hang fails instead of blocking the suite
DEADLINE = timedelta(seconds=5)  # hypothesis' deadline per example


# ==================================================================================================
# The documents: a tree that can say what a dict cannot (repeated keys, verbatim YAML/JSON text)
# ==================================================================================================


class Raw(str):
    """Text written verbatim into the YAML or JSON file: `1e309`, `.nan`, `!!python/...`, `&a [1]`, ..."""


class M(list):
    """A mapping as a list of (key, value) pairs, so that a key may appear twice."""


def to_tree(obj):
    if isinstance(obj, dict):
        return M((k, to_tree(v)) for k, v in obj.items())
    if isinstance(obj, list):
        return [to_tree(x) for x in obj]
    return obj


def _load_bases() -> dict[str, tuple[str, object]]:
    out = {}
    for p in sorted(GRAPHS.glob("*.yaml")):
        text = p.read_text(encoding="utf-8")
        out[p.name] = (text, to_tree(yaml.safe_load(text)))  # our own files: safe to construct
    return out


BASES = _load_bases()
BASE_NAMES = sorted(BASES)


def names_in(tree) -> list[str]:
    """The input and node names of a (mutated) graph document, for mutations that swap or reuse them."""
    found: list[str] = []
    if isinstance(tree, M):
        for k, v in tree:
            if k in ("inputs", "nodes") and isinstance(v, M):
                found.extend(str(n) for n, _ in v)
    return found or ["x"]


NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _scalar(v, flow: bool) -> str:
    if isinstance(v, Raw):
        return str(v)
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)  # inf, nan: cgcalc reads these as numbers in YAML
    s = str(v)
    if NAME_RE.match(s) and s not in ("true", "false", "null", "yes", "no", "on", "off", "y", "n"):
        return s
    if not flow and _plain_ok(s):
        return s
    return json.dumps(s, ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar


def _plain_ok(s: str) -> bool:
    """An expression such as `x ** 2 * y + exp(-x)` can stay plain in block context when YAML reads it back."""
    if not s or s != s.strip() or len(s) > 200 or any(c in s for c in "#:'\"\n\t\\{}[]&*!|>%`"):
        return False
    try:
        return yaml.safe_load(f"k: {s}\n") == {"k": s}
    except yaml.YAMLError:
        return False


def _flow(v) -> str:
    if isinstance(v, M):
        return "{" + ", ".join(f"{_flow_key(k)}: {_flow(x)}" for k, x in v) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_flow(x) for x in v) + "]"
    return _scalar(v, flow=True)


def _flow_key(k) -> str:
    return _flow(k) if isinstance(k, (list, M)) else _scalar(k, flow=True)


def emit_yaml(tree, block_depth: int = 2) -> str:
    """Block style for the top levels (as the example files are written), flow style below."""

    def block(v, depth: int, indent: str) -> list[str]:
        lines = []
        for k, x in v:
            key = _flow_key(k)
            if isinstance(x, M) and x and depth < block_depth:
                lines.append(f"{indent}{key}:")
                lines.extend(block(x, depth + 1, indent + "  "))
            elif (
                isinstance(x, list)
                and not isinstance(x, M)
                and x
                and depth < block_depth
                and all(not isinstance(i, (list, M)) for i in x)
                and len(x) < 4
            ):
                lines.append(f"{indent}{key}:")
                lines.extend(f"{indent}  - {_scalar(i, flow=False)}" for i in x)
            elif isinstance(x, (list, M)):
                lines.append(f"{indent}{key}: {_flow(x)}")
            else:
                lines.append(f"{indent}{key}: {_scalar(x, flow=False)}")
        return lines

    if isinstance(tree, M):
        return "\n".join(block(tree, 0, "")) + "\n"
    return _flow(tree) + "\n"


def emit_json(tree) -> str:
    def j(v) -> str:
        if isinstance(v, Raw):
            return str(v)
        if isinstance(v, M):
            return "{" + ", ".join(f"{jkey(k)}: {j(x)}" for k, x in v) + "}"
        if isinstance(v, list):
            return "[" + ", ".join(j(x) for x in v) + "]"
        if isinstance(v, float):
            return json.dumps(v)  # NaN, Infinity: Python's dialect, not strict JSON (cgcalc must cope)
        return json.dumps(v, ensure_ascii=False)

    def jkey(k) -> str:
        return json.dumps(k, ensure_ascii=False) if isinstance(k, str) and not isinstance(k, Raw) else j(k)

    return j(tree) + "\n"


# ==================================================================================================
# Strategies: hostile values, names, expressions, mutations, whole files
# ==================================================================================================

OPS = [
    "add",
    "affine",
    "div",
    "exp",
    "log",
    "matmul",
    "mean",
    "mul",
    "neg",
    "pow",
    "relu",
    "sigmoid",
    "softmax_with_loss",
    "sub",
    "sum",
    "tanh",
]


def nested(depth: int, open_: str, inner: str, close: str) -> str:
    return open_ * depth + inner + close * depth


DEPTHS = [10, 199, 200, 201, 999, 1000, 1001, 5000]

HOSTILE_NUMBER_TEXT = [
    "1e309",
    "-1e309",
    "1e-400",
    "-1e-400",
    ".nan",
    ".NaN",
    ".inf",
    "-.inf",
    "+.inf",
    "nan",
    "inf",
    "-inf",
    "NaN",
    "Infinity",
    "-Infinity",
    "1e308",
    "-1e308",
    "5e-324",
    "2.2250738585072014e-308",
    "0",
    "-0",
    "-0.0",
    "1" * 400,
    "-" + "9" * 400,
    "1" * 5000,
    "0." + "0" * 400 + "1",
    "1e99999999999999999999",
    "0x1F",
    "0o17",
    "0b101",
    "1_000",
    "1__0",
    "_1",
    "1_",
    "+.5",
    ".5",
    "5.",
    "1e",
    "1e+",
    "--1",
    "+-1",
    "1,5",
    "1.2.3",
    "12:30",
    "2001-12-14",
    "yes",
    "no",
    "on",
    "off",
    "~",
    "null",
    "true",
    "''",
    '""',
    "'1'",
    '"1"',
    '"NaN"',
    '"Infinity"',
    "!!float 1",
    "!!int 1",
    "!!str 1",
    "!!float .nan",
]
HOSTILE_RAW = (
    [
        "!!python/object/apply:os.system ['echo PWNED']",
        "!!python/name:os.system",
        "!!python/tuple [1, 2]",
        "!!python/object/new:os.system [echo PWNED]",
        "!!python/module:os",
        "!!binary aGVsbG8=",
        "!!set {a, b}",
        "!!omap [a: 1]",
        "!!timestamp 2001-12-14",
        "!custom 1",
        "!<tag:example.com,2000:x> 1",
        "!!map {a: 1}",
        "!!seq [1]",
        "&a 1",
        "*a",
        "*undefined",
        "&a [1, *a]",
        "&a [*a]",
        "&x {value: 1}",
        "[1, 2, 3]",
        "[[1, 2], [3]]",
        "[[1, 2], [3, 4]]",
        "[]",
        "[[]]",
        "[[], []]",
        "{}",
        "{value: [1, 2], grad: false}",
        "{value: 1}",
        "{grad: false}",
        "{value: 1, grad: maybe}",
        "{value: 1, grad: false, extra: 1}",
        "{op: mul, in: [x, x]}",
        "{op: sum, in: [x], axis: 1e309}",
        "{op: sum, in: [x], axis: [0, 0]}",
        "{op: sum, in: [x], axis: -1, keepdims: yes}",
        "{op: mean, in: [x], axis: 99}",
        "{<<: {op: neg}, in: [x]}",
        "<<",
        "? a",
        "- 1",
        "|\n  text",
        ">-\n  folded",
        "[" * 3 + "1",
        "{" * 3,
        "]",
        "}",
        "'unterminated",
        '"unterminated',
        "@x",
        "`x`",
        "%x",
        "#",
        "a: b: c",
        '"\\ud800"',
        '"\\x00"',
        '"a\\nb"',
        '"a\\rb"',
        '"\\e[31mred"',
        '"\\u202e"',
        '"\\t"',
    ]
    + [nested(d, "[", "1", "]") for d in DEPTHS]
    + [nested(d, "{a: ", "1", "}") for d in (10, 999, 1001)]
)

SPECIAL_CHARS = [
    "\x00",
    "\t",
    "\r",
    "\n",
    "\x0b",
    "\x0c",
    "\x1b",
    "\x7f",
    "\x85",
    "\xa0",
    "\u2028",
    "\u2029",
    "\ufeff",
    "\ufffd",
    "\ud7ff",
    "é",
    "λ",
    "∂",
    "日本",
    "💥",
    "\u0301",
    "\u202e",
]


def hostile_names() -> st.SearchStrategy[str]:
    return st.one_of(
        st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True),
        st.sampled_from(
            [
                "__import__",
                "__class__",
                "__builtins__",
                "os",
                "eval",
                "_",
                "a" * 1000,
                "x" * 100_000,
                "1x",
                "x-y",
                "x.y",
                "x y",
                "",
                " ",
                "é",
                "λx",
                "x\x00",
                "x\n",
                "x\t",
                "all",
                "input",
                "nodes",
                "inputs",
                "name",
                "None",
                "true",
                "null",
                "y.1",
                "price.1",
                "\udcff",
                "\U0001f4a5",
            ]
        ),
        st.text(max_size=12),
    )


def hostile_values(names: list[str] | None = None) -> st.SearchStrategy:
    names = names or ["x"]
    leaves = st.one_of(
        st.sampled_from(HOSTILE_NUMBER_TEXT).map(Raw),
        st.sampled_from(HOSTILE_RAW).map(Raw),
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(min_value=-(10**30), max_value=10**30),
        st.booleans(),
        st.none(),
        st.sampled_from(names),
        hostile_names(),
        expressions(names),
    )
    return st.recursive(
        leaves,
        lambda kids: st.one_of(
            st.lists(kids, max_size=4),
            st.lists(
                st.tuples(
                    st.one_of(st.sampled_from(["value", "grad", "op", "in", "axis", "keepdims"]), hostile_names()), kids
                ),
                max_size=3,
            ).map(M),
        ),
        max_leaves=6,
    )


BINOPS = ["+", "-", "*", "/", "**", "@", "//", "%", "==", "<", "and", ",", "="]
FUNCS = OPS + [
    "__import__",
    "eval",
    "exec",
    "open",
    "getattr",
    "print",
    "lambda",
    "Sum",
    "os.system",
    "sigmoid_",
    "x",
    "",
]
EXPR_NUMBERS = [
    "0",
    "1",
    "2",
    "0.5",
    "1e309",
    "1e-400",
    "1e308",
    "-1",
    "1_0",
    "1" * 400,
    ".5",
    "5.",
    "1e",
    "0x10",
    "nan",
    "inf",
]


def _special_expressions(names: list[str]) -> st.SearchStrategy[str]:
    x = names[0] if names else "x"
    d = st.sampled_from([2, 100, 199, 200, 201, 1000, 5000, 100_000])
    return st.one_of(
        d.map(lambda k: nested(k, "(", x, ")")),
        d.map(lambda k: nested(k, "(", f"{x} + 1", ")")),
        d.map(lambda k: "- " * k + x),
        d.map(lambda k: "-" * k + x),
        d.map(lambda k: nested(k, "exp(", x, ")")),
        d.map(lambda k: f"{x} ** " * k + "2"),
        d.map(lambda k: " + ".join([x] * k)),
        d.map(lambda k: nested(k, "sum(", x, ", axis=0)")),
        st.sampled_from(
            [
                "__import__('os').system('echo PWNED')",
                "__import__(os)",
                f"__import__({x})",
                "eval(x)",
                f"{x}.__class__",
                f"{x}[0]",
                f"{x} if {x} else {x}",
                "lambda: 1",
                "().__class__.__bases__",
                "open('/etc/passwd')",
                f"sum({x}, axis=1e309)",
                f"sum({x}, axis={'1' * 400})",
                f"sum({x}, axis=-1e309)",
                f"sum({x}, axis=[0, [1]])",
                f"sum({x}, axis=[{'[' * 50}",
                f"sum({x}, keepdims=1)",
                f"sum({x}, axis=0, axis=1)",
                f"sum(axis=0, {x})",
                f"sum({x}, nope=1)",
                f"mean({x}, axis=true)",
                f"softmax_with_loss({x}, {x})",
                f"affine({x}, {x}, {x})",
                f"matmul({x})",
                f"neg({x}, {x})",
                f"{x} @ {x} @ {x}",
                "",
                " ",
                "()",
                "(",
                ")",
                "1",
                "-1",
                f"{x}",
                "+",
                f"{x} +",
                f"+ {x}",
                f"{x} ** -{x}",
                f"{x} ** - - {x}",
                f"{x}(1)",
                "sum()",
                "exp(,)",
                f"exp({x},)",
                f"log({x}",
                "x $ y",
                f"{x} = 1",
                f"{x}; import os",
                "\u2212x",
                f"{x}\x00",
                f"{x}\n+ 1",
                f"{x} # comment",
            ]
        ),
    )


def expressions(names: list[str] | None = None) -> st.SearchStrategy[str]:
    names = list(names or ["x", "y"])
    leaf = st.one_of(
        st.sampled_from(names), st.sampled_from(EXPR_NUMBERS), hostile_names().filter(lambda s: len(s) < 50)
    )
    kwargs = st.lists(
        st.tuples(
            st.sampled_from(["axis", "keepdims", "foo", "axis"]),
            st.sampled_from(["0", "1", "-1", "true", "false", "[0, 1]", "[]", "1.5", "1e309", "x", "-", "[0, [1]]"]),
        ),
        max_size=2,
    )

    def call(t):
        f, args, kws = t
        return f"{f}({', '.join(list(args) + [f'{k}={v}' for k, v in kws])})"

    tree = st.recursive(
        leaf,
        lambda kids: st.one_of(
            st.tuples(kids, st.sampled_from(BINOPS), kids).map(lambda t: f"{t[0]} {t[1]} {t[2]}"),
            kids.map(lambda c: f"-{c}"),
            kids.map(lambda c: f"({c})"),
            st.tuples(st.sampled_from(FUNCS), st.lists(kids, max_size=3), kwargs).map(call),
        ),
        max_leaves=10,
    )
    return st.one_of(tree, tree, _special_expressions(names))


# --- mutations of a document tree ---------------------------------------------------------------------


def _paths(tree, path=()):
    """Every (container path) in the tree: () is the root; a path step is an index into a list or M."""
    yield path
    if isinstance(tree, M):
        for i, (_, v) in enumerate(tree):
            yield from _paths(v, path + (i,))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from _paths(v, path + (i,))


def _get(tree, path):
    for i in path:
        tree = tree[i][1] if isinstance(tree, M) else tree[i]
    return tree


def _set(tree, path, value):
    if not path:
        return value
    parent = _get(tree, path[:-1])
    i = path[-1]
    if isinstance(parent, M):
        parent[i] = (parent[i][0], value)
    else:
        parent[i] = value
    return tree


def _copy(tree):
    if isinstance(tree, M):
        return M((k, _copy(v)) for k, v in tree)
    if isinstance(tree, list):
        return [_copy(x) for x in tree]
    return tree


def _strings(tree, path=()):
    """Paths of the string leaves (names, expressions, ops)."""
    if isinstance(tree, M):
        for i, (_, v) in enumerate(tree):
            yield from _strings(v, path + (i,))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from _strings(v, path + (i,))
    elif isinstance(tree, str) and not isinstance(tree, Raw):
        yield path


def _rename_everywhere(tree, old: str, new):
    if isinstance(tree, M):
        return M((new if k == old else k, _rename_everywhere(v, old, new)) for k, v in tree)
    if isinstance(tree, list):
        return [_rename_everywhere(x, old, new) for x in tree]
    if isinstance(tree, str) and not isinstance(tree, Raw):
        return new if tree == old else re.sub(rf"\b{re.escape(old)}\b", lambda m: str(new), tree)
    return tree


MUTATIONS = [
    "drop",
    "duplicate",
    "retype",
    "rename_key",
    "rename_everywhere",
    "swap_names",
    "replace_name",
    "add_key",
    "expression",
    "wrap",
    "empty_container",
    "reorder",
]


@st.composite
def mutated_documents(draw, max_mutations: int = 4):
    """(base file name, mutated tree, mutation log)."""
    base = draw(st.sampled_from(BASE_NAMES))
    tree = _copy(BASES[base][1])
    log = []
    for _ in range(draw(st.integers(0, max_mutations))):
        names = names_in(tree)
        kind = draw(st.sampled_from(MUTATIONS))
        paths = list(_paths(tree))
        path = draw(st.sampled_from(paths))
        target = _get(tree, path)
        parent_path, idx = (path[:-1], path[-1]) if path else ((), None)
        parent = _get(tree, parent_path) if path else None
        if kind == "drop" and parent is not None:
            del parent[idx]
        elif kind == "duplicate" and parent is not None:
            item = parent[idx]
            if isinstance(parent, M) and draw(st.booleans()):
                item = (item[0], draw(hostile_values(names)))
            parent.insert(idx + 1, _copy(item))
        elif kind == "retype":
            tree = _set(tree, path, draw(hostile_values(names)))
        elif kind == "rename_key" and isinstance(parent, M):
            key = draw(
                st.one_of(
                    hostile_names(),
                    st.sampled_from(names),
                    st.sampled_from(
                        [
                            "name",
                            "nodes",
                            "inputs",
                            "outputs",
                            "op",
                            "in",
                            "value",
                            "grad",
                            "Nodes",
                            "input",
                            "output",
                            "axis",
                        ]
                    ),
                    st.sampled_from(HOSTILE_RAW + HOSTILE_NUMBER_TEXT).map(Raw),
                    st.lists(st.integers(0, 3), max_size=2),
                )
            )
            parent[idx] = (key, parent[idx][1])
        elif kind == "rename_everywhere":
            old = draw(st.sampled_from(names))
            new = draw(st.one_of(hostile_names(), st.sampled_from(names)))
            tree = _rename_everywhere(tree, old, new)
        elif kind == "swap_names":
            strs = list(_strings(tree))
            if len(strs) >= 2:
                a, b = draw(st.lists(st.sampled_from(strs), min_size=2, max_size=2))
                va, vb = _get(tree, a), _get(tree, b)
                tree = _set(_set(tree, a, vb), b, va)
        elif kind == "replace_name":
            strs = list(_strings(tree))
            if strs:
                tree = _set(tree, draw(st.sampled_from(strs)), draw(st.one_of(st.sampled_from(names), hostile_names())))
        elif kind == "add_key" and isinstance(target, M):
            target.insert(
                draw(st.integers(0, len(target))),
                (draw(st.one_of(hostile_names(), st.sampled_from(names))), draw(hostile_values(names))),
            )
        elif kind == "expression":
            tree = _set(tree, path, draw(expressions(names)))
        elif kind == "wrap":
            tree = _set(
                tree,
                path,
                draw(
                    st.sampled_from(
                        [
                            lambda v: [v],
                            lambda v: M([("value", v)]),
                            lambda v: M([("value", v), ("grad", False)]),
                            lambda v: M([("op", "neg"), ("in", [v])]),
                            lambda v: [v, v],
                        ]
                    )
                )(target),
            )
        elif kind == "empty_container":
            tree = _set(tree, path, draw(st.sampled_from([[], M(), None, "", Raw("~")])))
        elif kind == "reorder" and isinstance(target, list) and len(target) > 1:
            perm = draw(st.permutations(list(range(len(target)))))
            target[:] = [target[i] for i in perm]
        else:
            continue
        log.append((kind, path))
    if draw(st.integers(0, 19)) == 0:  # the document is not a mapping at all
        tree = draw(
            st.sampled_from(
                [
                    lambda t: [t],
                    lambda t: list(t) if isinstance(t, M) else [t],
                    lambda t: "just a scalar",
                    lambda t: 42,
                    lambda t: None,
                ]
            )
        )(tree)
        log.append(("top", ()))
    return base, tree, log


# --- text-level mutations -----------------------------------------------------------------------------


BREAKERS = [
    "\x00",
    "\t",
    "\r\n",
    "\r",
    "\ufeff",
    "\u2028",
    "\x85",
    "\xa0",
    ":",
    ": ",
    "- ",
    "-",
    "{",
    "}",
    "[",
    "]",
    ",",
    "&a ",
    "*a",
    "&a",
    "!!python/object/apply:os.system ['echo PWNED'] ",
    "!!",
    "%",
    "@",
    "`",
    "|",
    ">",
    "#",
    "'",
    '"',
    "\\",
    "---\n",
    "...\n",
    "? ",
    "<<: ",
    "\n  ",
    "\n",
    "  ",
    "\x1b[31m",
    "💥",
    "é",
]
BAD_UTF8 = [
    b"\xff",
    b"\xfe\xff",
    b"\xc3\x28",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\xc0\xaf",
    b"\x80",
    b"\xe2\x82",
    b"\x00",
    b"\xef\xbb\xbf",
]


@st.composite
def text_mutations(draw, data: bytes) -> bytes:
    n = draw(st.integers(0, 3))
    for _ in range(n):
        kind = draw(
            st.sampled_from(
                [
                    "truncate",
                    "insert_text",
                    "insert_bytes",
                    "delete",
                    "duplicate_line",
                    "swap_lines",
                    "flip_byte",
                    "prefix",
                    "suffix_doc",
                    "utf16",
                ]
            )
        )
        pos = draw(st.integers(0, len(data)))
        if kind == "truncate":
            data = data[:pos]
        elif kind == "insert_text":
            s = draw(st.one_of(st.sampled_from(BREAKERS), st.text(max_size=8), st.sampled_from(SPECIAL_CHARS)))
            data = data[:pos] + s.encode("utf-8", "surrogatepass") + data[pos:]
        elif kind == "insert_bytes":
            b = draw(st.one_of(st.sampled_from(BAD_UTF8), st.binary(min_size=1, max_size=8)))
            data = data[:pos] + b + data[pos:]
        elif kind == "delete":
            data = data[:pos] + data[pos + draw(st.integers(1, 20)) :]
        elif kind in ("duplicate_line", "swap_lines"):
            lines = data.split(b"\n")
            i = draw(st.integers(0, len(lines) - 1))
            j = draw(st.integers(0, len(lines) - 1))
            if kind == "duplicate_line":
                lines.insert(j, lines[i])
            else:
                lines[i], lines[j] = lines[j], lines[i]
            data = b"\n".join(lines)
        elif kind == "flip_byte" and data:
            i = min(pos, len(data) - 1)
            data = data[:i] + bytes([data[i] ^ draw(st.integers(1, 255))]) + data[i + 1 :]
        elif kind == "prefix":
            data = (
                draw(
                    st.sampled_from(
                        [
                            b"%YAML 1.1\n---\n",
                            b"%YAML 1.2\n---\n",
                            b"%YAML 9.9\n---\n",
                            b"---\n",
                            b"--- !!map\n",
                            b"--- !!python/object:os.system\n",
                            b"\xef\xbb\xbf",
                            b"%TAG ! tag:yaml.org,2002:python/\n---\n",
                            b"# comment\n",
                            b"\n\n\n",
                            b"  ",
                        ]
                    )
                )
                + data
            )
        elif kind == "suffix_doc":
            other = BASES[draw(st.sampled_from(BASE_NAMES))][0].encode()
            data = data + draw(st.sampled_from([b"\n---\n", b"\n...\n---\n", b"\n"])) + other
        elif kind == "utf16" and draw(st.integers(0, 4)) == 0:
            data = data.decode("utf-8", "replace").encode(draw(st.sampled_from(["utf-16", "utf-16-le", "utf-32"])))
    return data


def alias_bomb(levels: int, width: int = 10, op: str = "sum") -> str:
    lines = ["inputs:", "  a: &a [" + ", ".join(["1"] * width) + "]"]
    names = "abcdefghijklmnop"[:levels]
    for prev, name in zip(names, names[1:]):
        lines.append(f"  {name}: &{name} [" + ", ".join([f"*{prev}"] * width) + "]")
    lines += ["nodes:", f"  y: {{op: {op}, in: [{names[-1]}]}}"]
    return "\n".join(lines) + "\n"


# Hand-written hostile files (text, suffix); the fuzzer also draws from these.
SPECIAL_FILES: list[tuple[str, str]] = [
    ("", ".yaml"),
    ("", ".json"),
    ("# only a comment\n", ".yaml"),
    ("   \n\n\t\n", ".yaml"),
    ("---\n", ".yaml"),
    ("...\n", ".yaml"),
    ("---\n...\n", ".yaml"),
    ("- 1\n- 2\n", ".yaml"),
    ("[1, 2]", ".json"),
    ("42\n", ".yaml"),
    ("42", ".json"),
    ("just text\n", ".yaml"),
    ('"a string"', ".json"),
    ("null", ".json"),
    ("true\n", ".yaml"),
    ("~\n", ".yaml"),
    ("{}\n", ".yaml"),
    ("{}", ".json"),
    ("[]", ".json"),
    ("nodes:\n", ".yaml"),
    ("inputs:\nnodes:\n", ".yaml"),
    ("nodes: []\n", ".yaml"),
    ("nodes: {}\n", ".yaml"),
    ("nodes: 1\n", ".yaml"),
    ("inputs: {x: 1}\nnodes: {y: x*2}\n---\ninputs: {x: 2}\nnodes: {y: x*3}\n", ".yaml"),
    ("---\n---\n", ".yaml"),
    ("inputs: {x: 1}\nnodes: {y: x*2}\n---\n", ".yaml"),
    ("!!python/object/apply:os.system ['echo PWNED']\n", ".yaml"),
    ("inputs:\n  x: !!python/object/apply:os.system ['echo PWNED']\nnodes:\n  y: x*2\n", ".yaml"),
    ("inputs:\n  x: !!python/object/new:subprocess.Popen [['echo', 'PWNED']]\nnodes:\n  y: x*2\n", ".yaml"),
    ("inputs: !!python/name:os.system\nnodes:\n  y: x*2\n", ".yaml"),
    ("inputs:\n  x: 1\nnodes:\n  y: !!python/object/apply:builtins.eval ['1+1']\n", ".yaml"),
    ("inputs:\n  x: 1\nnodes:\n  y: __import__('os').system('echo PWNED')\n", ".yaml"),
    ("inputs:\n  x: 1\nnodes:\n  y: \"__import__('os').system('echo PWNED') + x\"\n", ".yaml"),
    ('{"inputs": {"x": 1}, "nodes": {"y": "__import__(\'os\').system(\'echo PWNED\')"}}', ".json"),
    ("inputs:\n  x: 1e309\n  y: -1e309\n  z: .nan\n  w: 1e-400\nnodes:\n  f: x * y + z / w\n", ".yaml"),
    ('{"inputs": {"x": 1e309, "y": -1e309, "z": NaN, "w": 1e-400}, "nodes": {"f": "x * y + z / w"}}', ".json"),
    ('{"inputs": {"x": Infinity, "y": -Infinity}, "nodes": {"f": "x + y"}}', ".json"),
    ("inputs:\n  x: " + nested(100_000, "[", "1", "]") + "\nnodes:\n  y: x * 2\n", ".yaml"),
    ('{"inputs": {"x": ' + nested(100_000, "[", "1", "]") + '}, "nodes": {"y": "x * 2"}}', ".json"),
    ("inputs:\n  x: " + nested(100_000, "{a: ", "1", "}") + "\nnodes:\n  y: x * 2\n", ".yaml"),
    ("inputs:\n  x: 1\nnodes:\n  y: " + nested(100_000, "(", "x", ")") + "\n", ".yaml"),
    ('inputs:\n  x: 1\nnodes:\n  y: "' + "- " * 100_000 + 'x"\n', ".yaml"),
    ('inputs:\n  x: 1\nnodes:\n  y: "' + "- " * 150 + 'x"\n', ".yaml"),
    ("inputs:\n  x: 1\nnodes:\n  y: " + " + ".join(["x"] * 2_000) + "\n", ".yaml"),
    ("inputs:\n  x: 1\nnodes:\n  y: " + "x" + " ** x" * 5000 + "\n", ".yaml"),
    ("inputs:\n  " + "x" * 100_000 + ": 1\nnodes:\n  y: " + "x" * 100_000 + " * 2\n", ".yaml"),
    (alias_bomb(9), ".yaml"),
    (alias_bomb(8), ".yaml"),
    (alias_bomb(3), ".yaml"),
    ("a: &a [*a]\n", ".yaml"),
    ("inputs:\n  x: &a [1, *a]\nnodes:\n  y: x*2\n", ".yaml"),
    ("base: &b {op: neg, in: [x]}\ninputs: {x: 1}\nnodes: {y: *b}\n", ".yaml"),
    ("inputs: {x: 1}\nnodes:\n  n: &n {op: neg, in: [x]}\n  m: *n\n", ".yaml"),
    ("inputs: {x: 1}\nnodes:\n  y: {<<: {op: neg}, in: [x]}\n", ".yaml"),
    ("inputs: {x: 1, x: 2}\nnodes: {y: x*2}\n", ".yaml"),
    ('{"inputs": {"x": 1, "x": 2}, "nodes": {"y": "x*2"}}', ".json"),
    ('{"inputs": {"x": ' + "1" * 400 + '}, "nodes": {"y": "x*2"}}', ".json"),
    ('{"inputs": {"x": ' + "1" * 5000 + '}, "nodes": {"y": "x*2"}}', ".json"),
    ('{"name": "\\ud800", "inputs": {"x": 1}, "nodes": {"y": "x*2"}}', ".json"),
    ("inputs:\n  x: 1\nnodes:\n  y: x*2\n\x00", ".yaml"),
    ("\ufeffinputs: {x: 1}\nnodes: {y: x*2}\n", ".yaml"),
    ("inputs:\n\tx: 1\nnodes:\n  y: x*2\n", ".yaml"),
]


@st.composite
def graph_files(draw):
    """(file bytes, suffix, description): a mutated example graph, a hostile hand-written file, or either
    with its text mutated."""
    source = draw(st.integers(0, 9))
    if source == 0:
        text, suffix = draw(st.sampled_from(SPECIAL_FILES))
        data, what = text.encode("utf-8", "surrogatepass"), "special"
    elif source == 1:
        base = draw(st.sampled_from(BASE_NAMES))
        data, suffix, what = BASES[base][0].encode(), ".yaml", f"text of {base}"
    else:
        base, tree, log = draw(mutated_documents())
        suffix = draw(st.sampled_from([".yaml", ".yaml", ".json", ".yml"]))
        text = emit_json(tree) if suffix == ".json" else emit_yaml(tree)
        data, what = text.encode("utf-8", "surrogatepass"), f"{base} mutated {log}"
    if draw(st.integers(0, 2)) == 0:
        data = draw(text_mutations(data))
        what += " + text mutations"
    return data, suffix, what


# --- command lines ----------------------------------------------------------------------------------------

FILE_COMMANDS: dict[str, list[str]] = {
    "validate": ["validate", "{F}"],
    "run": ["run", "{F}"],
    "run-json": ["run", "{F}", "--format", "json"],
    "run-csv": ["run", "{F}", "--format", "csv"],
    "run-strict-all": ["run", "{F}", "--strict", "--output", "all", "-f", "json"],
    "check": ["check", "{F}"],
    "check-json": ["check", "{F}", "--format", "json"],
    "trace": ["trace", "{F}"],
    "export-dot": ["export", "{F}"],
    "export-mermaid": ["export", "{F}", "--format", "mermaid"],
}
COMMAND_NAMES = list(FILE_COMMANDS)


def file_commands(min_size: int = 3) -> st.SearchStrategy[list[str]]:
    """Which commands to run on one fuzzed file: always validate and run --format json, then some more."""
    more = st.lists(
        st.sampled_from(COMMAND_NAMES[1:]), min_size=min_size - 1, max_size=len(COMMAND_NAMES) - 1, unique=True
    )
    return more.map(lambda xs: ["validate"] + sorted(set(xs) | {"run-json"}, key=COMMAND_NAMES.index))


FLOAT_TEXT = [
    "0",
    "-0",
    "1e-6",
    "1e-320",
    "5e-324",
    "1e300",
    "1e309",
    "-1",
    "nan",
    "inf",
    "-inf",
    "NaN",
    "1e",
    "x",
    "",
    " ",
    "0x10",
    "1_0",
    "\udcff",
    "1" * 400,
]
GRAPH_PATHS = [
    "apple",
    "two_layer_net",
    "neuron",
    "expressions",
    "json",
    "missing",
    "dir",
    "empty",
    "binary",
    "noext",
    "dotdir",
    "surrogate",
    "space name",
    "-",
    "",
    "bad",
]
OUT_PATHS = [
    "out.dot",
    "out.mmd",
    "out.txt",
    "missing/out.dot",
    "DIR",
    "out.svg",
    "out.png",
    "out.pdf",
    "",
    "out.DOT",
    "file/out.dot",
    ".",
    "\udcff.dot",
]


@st.composite
def cli_args(draw):
    """(args with placeholders, description). Placeholders: {G:<kind>} a graph path, {O:<kind>} an output path,
    made real in a fresh directory by `materialize`."""
    command = draw(st.sampled_from(["run", "run", "check", "trace", "export", "validate", "ops", "batch", "nope", ""]))
    args = [command] if command else []
    n_graphs = draw(st.integers(0, 3)) if command == "validate" else draw(st.sampled_from([0, 1, 1, 1, 1, 2]))
    graphs = [f"{{G:{draw(st.sampled_from(GRAPH_PATHS))}}}" for _ in range(n_graphs)]
    names = ["apple", "apple_num", "tax", "price", "x", "W1", "t", "loss", "y", "w", "b", "f", "g", "all", "y.1"]
    options: list[list[str]] = []
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(
            st.sampled_from(
                [
                    "set",
                    "set",
                    "output",
                    "format",
                    "precision",
                    "eps",
                    "rtol",
                    "atol",
                    "flag",
                    "sort",
                    "out",
                    "unknown",
                    "chunk",
                    "dangling",
                ]
            )
        )
        if kind == "set":
            name = draw(st.one_of(st.sampled_from(names), hostile_names().filter(lambda s: len(s) < 50)))
            value = draw(
                st.one_of(
                    st.sampled_from(HOSTILE_NUMBER_TEXT + HOSTILE_RAW[:40]),
                    st.text(max_size=10),
                    st.sampled_from(
                        [
                            "[1, 2, 3]",
                            "[[1, 2], [3, 4]]",
                            "[1e309]",
                            "[]",
                            "1",
                            "-3",
                            "[[1, 0], [0, 1]]",
                            "[0, 1]",
                            "\udcff",
                            "[1,",
                        ]
                    ),
                )
            )
            sep = draw(st.sampled_from(["=", "=", "", " = ", "=="]))
            options.append([draw(st.sampled_from(["--set", "-s"])), f"{name}{sep}{value}"])
        elif kind == "output":
            options.append(
                [
                    draw(st.sampled_from(["--output", "-O"])),
                    draw(st.one_of(st.sampled_from(names + ["", "ALL", "\udcff"]), hostile_names())),
                ]
            )
        elif kind == "format":
            options.append(
                [
                    draw(st.sampled_from(["--format", "-f"])),
                    draw(st.sampled_from(["table", "json", "csv", "dot", "mermaid", "xml", "", "JSON", "jsonl"])),
                ]
            )
        elif kind == "precision":
            options.append(
                [
                    draw(st.sampled_from(["--precision", "-p"])),
                    draw(st.one_of(st.integers(-10, 30).map(str), st.sampled_from(["1.5", "x", "", "1" * 30]))),
                ]
            )
        elif kind in ("eps", "rtol", "atol"):
            options.append([f"--{kind}", draw(st.sampled_from(FLOAT_TEXT))])
        elif kind == "flag":
            options.append(
                [
                    draw(
                        st.sampled_from(
                            ["--strict", "--full", "--all", "--step", "--help", "--skip-bad-rows", "-q", "--version"]
                        )
                    )
                ]
            )
        elif kind == "sort":
            options.append(["--sort", draw(st.sampled_from(["grad", "order", "GRAD", "x", ""]))])
        elif kind == "out":
            options.append([draw(st.sampled_from(["-o", "--out"])), f"{{O:{draw(st.sampled_from(OUT_PATHS))}}}"])
        elif kind == "unknown":
            options.append(
                [
                    draw(
                        st.sampled_from(
                            [
                                "--bogus",
                                "-z",
                                "--set=",
                                "--format=json",
                                "--precision=3",
                                "--",
                                "-",
                                "--debugx",
                                "---",
                                "--output=",
                            ]
                        )
                    )
                ]
            )
        elif kind == "chunk":
            options.append(["--chunk-rows", draw(st.sampled_from(["0", "-1", "1", "x"]))])
        else:
            options.append([draw(st.sampled_from(["--set", "--output", "--format", "--precision", "--eps", "-o"]))])
    items = [[g] for g in graphs] + options
    order = draw(st.permutations(list(range(len(items))))) if items else []
    for i in order:
        args.extend(items[i])
    return args


# ==================================================================================================
# Running and judging one command
# ==================================================================================================


@dataclass
class Outcome:
    args: list[str]
    exit_code: int
    stdout: str
    stderr: str
    exception: BaseException | None
    seconds: float  # CPU time of the thread that ran it (a busy machine does not make it slow)
    env: dict = field(default_factory=dict)
    wall: float = 0.0

    def show(self) -> str:
        return (
            f"cgcalc {' '.join(map(repr, self.args))}{' env ' + repr(self.env) if self.env else ''}\n"
            f"  exit {self.exit_code} in {self.seconds:.2f} s of CPU ({self.wall:.2f} s on the clock), "
            f"exception {self.exception!r}\n"
            f"  stderr: {self.stderr[:1500]!r}\n  stdout: {self.stdout[:500]!r}"
        )


def invoke(args: list[str], env: dict | None = None) -> Outcome:
    """One command, in-process, in a fresh empty working directory: a random command line may name a file
    relative to it (`export ... -o --set` writes a file called `--set`), and that must not land in the project."""
    runner = CliRunner(env={**CLEAN_ENV, **(env or {})})
    scratch = tempfile.mkdtemp(prefix="cgcalc-fuzz-cwd-")
    t, cpu = time.perf_counter(), time.thread_time()
    try:
        with contextlib.chdir(scratch):
            r = runner.invoke(app, args)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    seconds, wall = time.thread_time() - cpu, time.perf_counter() - t
    stdout = r.stdout_bytes.decode("utf-8", "backslashreplace")
    stderr = r.stderr_bytes.decode("utf-8", "backslashreplace")
    exc = None if isinstance(r.exception, SystemExit) else r.exception
    return Outcome(list(args), r.exit_code, stdout, stderr, exc, seconds, dict(env or {}), wall)


def invoke_limited(
    args: list[str], context: str = "", env: dict | None = None, seconds: float = EXAMPLE_SECONDS
) -> Outcome:
    """invoke() under an alarm: a hang becomes a FuzzFailure naming the command and the input."""
    try:
        with time_limit(seconds):
            return invoke(args, env)
    except Hang as e:
        raise FuzzFailure(f"hang: {e}\n{context}\ncgcalc {' '.join(map(repr, args))}") from None


# characters that break a line, or take over a terminal, when an error message echoes them raw
_LINE_BREAKERS = re.compile("[\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
_CONTROL = re.compile("[\x00-\x08\x0e-\x1b\x7f]")


def _json_strict(text: str):
    def refuse(c):
        raise ValueError(f"bare {c} is not RFC 8259 JSON")

    return json.loads(text, parse_constant=refuse)


def _format_of(args: list[str]) -> str | None:
    fmt = None
    for i, a in enumerate(args):
        if a in ("--format", "-f") and i + 1 < len(args):
            fmt = args[i + 1]
        elif a.startswith("--format="):
            fmt = a.split("=", 1)[1]
    return fmt


def problems(o: Outcome, n_graphs: int = 1) -> list[tuple[str, str]]:
    """Everything wrong with one outcome, as (code, message); empty when it keeps SPEC.md section 6."""
    out: list[tuple[str, str]] = []
    command = o.args[0] if o.args else ""
    if o.exception is not None:
        out.append(("exception", f"uncaught {type(o.exception).__name__}: {o.exception}"))
    if o.exit_code not in (0, 1, 2):
        out.append(("exit", f"exit code {o.exit_code}"))
    for stream, text in (("stderr", o.stderr), ("stdout", o.stdout)):
        if "Traceback" in text:
            out.append(("traceback", f"a traceback on {stream}"))
    if "internal error" in o.stderr:
        out.append(("internal", "an internal error"))
    if o.exit_code == 1 and not (command in ("check", "solve") or "--strict" in o.args):
        out.append(("exit1", "exit 1 without check, solve or --strict"))
    if command == "validate" and o.exit_code == 1:
        out.append(("exit1", "validate exits 0 or 2, not 1"))
    lines = o.stderr.split("\n")
    if o.stderr and lines[-1] != "":
        out.append(("newline", "stderr does not end with a newline"))
    lines = lines[:-1] if lines and lines[-1] == "" else lines
    errors = [ln for ln in lines if ln.startswith("error: ")]
    others = [ln for ln in lines if not ln.startswith(("error: ", "warning: "))]
    if others:
        out.append(("other-lines", f"stderr lines that are neither error: nor warning: {others[:3]!r}"))
    for ln in lines:
        if _LINE_BREAKERS.search(ln) or _CONTROL.search(ln):
            out.append(("control", f"a control character in a message: {ln[:200]!r}"))
            break
    # tables, traces, figures and JSON show a file's text escaped (batch echoes its rows' cells as given)
    if command != "batch" and (_LINE_BREAKERS.search(o.stdout) or _CONTROL.search(o.stdout)):
        out.append(("control", f"a control character on stdout: {o.stdout[:200]!r}"))
    if not o.args and o.exit_code in (0, 2) and o.stdout.lstrip().startswith("Usage:") and not o.stderr:
        pass  # plain `cgcalc`: the help, on stdout (no_args_is_help)
    elif o.exit_code == 2:
        # validate reports each bad file on its own line (after `--`, every argument is a file)
        allowed = max(1, n_graphs, len(o.args) - 1) if command == "validate" else 1
        if not errors or len(errors) > allowed or len(lines) != len(errors):
            out.append(("error-count", f"exit 2 wants exactly one error: line on stderr, got {len(lines)} lines"))
        if command != "validate" and o.stdout and "--help" not in o.args:
            out.append(("stdout-on-error", "exit 2 but something on stdout"))
    elif o.exit_code == 0 and errors:
        out.append(("error-on-0", "exit 0 with an error: line"))
    elif o.exit_code == 1 and len(errors) > 1:
        out.append(("errors-on-1", "exit 1 with more than one error: line"))
    if (
        o.exit_code in (0, 1)
        and command in ("run", "check", "sweep", "tornado", "solve")
        and _format_of(o.args) == "json"
        and "--help" not in o.args
    ):
        try:
            _json_strict(o.stdout)
        except ValueError as e:
            out.append(("json", f"--format json did not print strict JSON: {e}"))
    if o.seconds > EXAMPLE_SECONDS:
        out.append(("slow", f"took {o.seconds:.1f} s of CPU time"))
    return out


# --- bugs found by this fuzzer and not fixed yet --------------------------------------------------------
# Each excuses some problem codes, and only when its signature matches the outcome; any other problem
# in the same outcome still fails.


def _internal(o: Outcome, *texts: str) -> bool:
    """An internal error with one of these texts: exit 3 (exit 2 from `validate`, see KNOWN_BUGS)."""
    code = 2 if o.args[:1] == ["validate"] else 3
    return o.exit_code == code and o.exception is None and any(f"internal error: {t}" in o.stderr for t in texts)


INTERNAL = {"exit", "internal", "other-lines", "error-count"}


@dataclass(frozen=True)
class KnownBug:
    id: str
    what: str
    excuses: frozenset[str]
    matches: Callable[[Outcome], bool]


KNOWN_BUGS: list[KnownBug] = []  # all found so far are fixed; add new ones here while they are open


def known_bug(o: Outcome, found: list[tuple[str, str]]) -> KnownBug | None:
    codes = {code for code, _ in found}
    return next((b for b in KNOWN_BUGS if codes <= b.excuses and b.matches(o)), None)


# Counters the long script reads: how often each known bug was seen, and one outcome of each.
KNOWN_SEEN: dict[str, int] = {}
KNOWN_FIRST: dict[str, list[str]] = {}  # up to 5 outcomes of each, with different messages
_KNOWN_HEADS: dict[str, set[str]] = {}


class FuzzFailure(AssertionError):
    pass


def judge(o: Outcome, n_graphs: int = 1, context: str = "") -> None:
    found = problems(o, n_graphs)
    if not found:
        return
    bug = known_bug(o, found)
    if bug is not None:
        KNOWN_SEEN[bug.id] = KNOWN_SEEN.get(bug.id, 0) + 1
        samples = KNOWN_FIRST.setdefault(bug.id, [])
        head = re.sub(r"^error: [^:]*:(\d+:\d+:)?", "", o.stderr)[:40]
        heads = _KNOWN_HEADS.setdefault(bug.id, set())
        if len(samples) < 5 and head not in heads:
            heads.add(head)
            samples.append(f"{context[:1500]}\n{o.show()}")
        if currently_in_test_context():
            note(f"known bug {bug.id}: {o.show()}")
        return
    raise FuzzFailure(f"{'; '.join(m for _, m in found)}\n{context}\n{o.show()}")


# ==================================================================================================
# The properties (plain functions, so that tests/fuzz_long.py can run them under its own settings)
# ==================================================================================================

_warm = False


def warm_up() -> None:
    """Import numpy, rich, ... once, so that the first example's deadline measures cgcalc, not imports."""
    global _warm
    if not _warm:
        for cmd in FILE_COMMANDS.values():
            invoke([a.replace("{F}", str(GRAPHS / "two_layer_net.yaml")) for a in cmd])
        _warm = True


def check_graph_file(base_dir: Path, data: bytes, suffix: str, commands: list[str], what: str = "") -> None:
    """Property 1: a fuzzed graph file under every chosen command."""
    d = Path(tempfile.mkdtemp(dir=base_dir))
    try:
        path = d / f"graph{suffix}"
        path.write_bytes(data)
        context = f"file {path.name} ({what}): {data[:3000]!r}{' ...' if len(data) > 3000 else ''}"
        for name in commands:
            args = [str(path) if a == "{F}" else a for a in FILE_COMMANDS[name]]
            o = invoke_limited(args, context)
            judge(o, 1, context)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def materialize(args: list[str], d: Path) -> list[str]:
    """Turn the placeholders of `cli_args` into real paths under the fresh directory d."""
    (d / "DIR").mkdir()
    (d / "file").write_text("not a directory\n")
    out = []
    for a in args:
        m = re.fullmatch(r"\{([GO]):(.*)\}", a)
        if not m:
            out.append(a)
            continue
        kind, name = m.groups()
        if kind == "O":
            out.append(str(d) if name == "." else ("" if not name else str(d / name)))
            continue
        if name in ("apple", "two_layer_net", "neuron", "expressions"):
            out.append(str(GRAPHS / f"{name}.yaml"))
        elif name == "json":
            p = d / "apple.json"
            p.write_text(json.dumps(yaml.safe_load((GRAPHS / "apple.yaml").read_text())))
            out.append(str(p))
        elif name == "missing":
            out.append(str(d / "missing.yaml"))
        elif name == "dir":
            out.append(str(d / "DIR"))
        elif name == "dotdir":
            (d / "graph.yaml.d").mkdir(exist_ok=True)
            out.append(str(d / "graph.yaml.d"))
        elif name == "empty":
            (d / "empty.yaml").write_bytes(b"")
            out.append(str(d / "empty.yaml"))
        elif name == "binary":
            (d / "binary.yaml").write_bytes(bytes(range(256)) * 4)
            out.append(str(d / "binary.yaml"))
        elif name == "noext":
            (d / "graph").write_text((GRAPHS / "apple.yaml").read_text())
            out.append(str(d / "graph"))
        elif name == "surrogate":
            out.append(str(d / "\udcff.yaml"))
        elif name == "space name":
            (d / "a b.yaml").write_text((GRAPHS / "reuse.yaml").read_text())
            out.append(str(d / "a b.yaml"))
        elif name == "bad":
            (d / "bad.yaml").write_text("inputs: {x: 1}\nnodes: {y: {op: nope, in: [x]}}\n")
            out.append(str(d / "bad.yaml"))
        else:
            out.append(name)  # "-" or ""
    return out


def check_cli_args(base_dir: Path, args: list[str]) -> None:
    """Property 2: a random command line."""
    d = Path(tempfile.mkdtemp(dir=base_dir))
    try:
        real = materialize(args, d)
        n_graphs = sum(1 for a in args if a.startswith("{G:"))
        o = invoke_limited(real, "random command line")
        judge(o, n_graphs, "random command line")
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ==================================================================================================
# The bounded CI run
# ==================================================================================================

SETTINGS = dict(
    deadline=DEADLINE,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
    print_blob=True,
)


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory) -> Path:
    warm_up()
    return tmp_path_factory.mktemp("fuzz")


@settings(max_examples=100, **SETTINGS)
@given(f=graph_files(), commands=file_commands())
def test_fuzzed_graph_files(fuzz_dir, f, commands):
    data, suffix, what = f
    check_graph_file(fuzz_dir, data, suffix, commands, what)


@settings(max_examples=200, **SETTINGS)
@given(args=cli_args())
def test_random_command_lines(fuzz_dir, args):
    check_cli_args(fuzz_dir, args)


@pytest.mark.parametrize("index", range(len(SPECIAL_FILES)))
def test_hostile_files(fuzz_dir, index):
    """Every hand-written hostile file, under every command (not left to chance)."""
    text, suffix = SPECIAL_FILES[index]
    check_graph_file(fuzz_dir, text.encode("utf-8", "surrogatepass"), suffix, COMMAND_NAMES, f"SPECIAL_FILES[{index}]")


@pytest.mark.parametrize("base", BASE_NAMES)
@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_example_graphs_pass_untouched(fuzz_dir, base, suffix):
    """The unmutated examples (and their JSON twins) are valid: exit 0 everywhere, no error line."""
    tree = BASES[base][1]
    data = (emit_json(tree) if suffix == ".json" else BASES[base][0]).encode()
    d = Path(tempfile.mkdtemp(dir=fuzz_dir))
    (d / f"g{suffix}").write_bytes(data)
    for name in COMMAND_NAMES:
        o = invoke([str(d / f"g{suffix}") if a == "{F}" else a for a in FILE_COMMANDS[name]])
        assert not problems(o), o.show()
        assert o.exit_code == 0 or name == "run-strict-all", o.show()


def test_nothing_from_a_file_is_executed(fuzz_dir, capfd):
    """`!!python/...` tags and `__import__` are refused, and nothing ran (no PWNED, no file written)."""
    marker = fuzz_dir / "pwned"
    texts = [
        f"!!python/object/apply:os.system ['touch {marker}']\n",
        f"inputs:\n  x: !!python/object/apply:os.system ['touch {marker}']\nnodes:\n  y: x*2\n",
        f"inputs:\n  x: 1\nnodes:\n  y: \"__import__('os').system('touch {marker}')\"\n",
        f"inputs:\n  x: 1\nnodes:\n  y: {{op: \"__import__('os').system('touch {marker}')\", in: [x]}}\n",
    ]
    for i, text in enumerate(texts):
        p = fuzz_dir / f"exec{i}.yaml"
        p.write_text(text)
        for cmd in ("validate", "run", "trace"):
            o = invoke([cmd, str(p)])
            assert o.exit_code == 2 and not problems(o), o.show()
    assert not marker.exists()
    assert "PWNED" not in capfd.readouterr().out


def test_raised_depth_limit_is_still_an_error_not_a_crash(fuzz_dir):
    """CGCALC_MAX_DEPTH raised: deep parentheses either compile or are refused, never a RecursionError.
    (At most 250 deep here: deeper is the known bug, see test_bug_recursion_with_raised_depth_limit.)"""
    for depth in (50, 199, 201, 250):
        p = fuzz_dir / f"deep{depth}.yaml"
        p.write_text("inputs:\n  x: 1\nnodes:\n  y: " + nested(depth, "(", "x + 1", ")") + "\n")
        o = invoke(["run", str(p), "-f", "json"], env={"CGCALC_MAX_DEPTH": "100000"})
        assert not problems(o) and o.exit_code == 0, o.show()
        o = invoke(["run", str(p)], env={"CGCALC_MAX_DEPTH": "100"})
        assert not problems(o) and o.exit_code == (0 if depth < 100 else 2), o.show()


# ==================================================================================================
# Bugs the fuzzer found, kept as plain reproducers (all fixed; a new one gets an xfail mark and a KNOWN_BUGS entry)
# ==================================================================================================


def _write(d: Path, name: str, text: str | bytes) -> str:
    p = d / name
    p.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return str(p)


def _assert_one_error_line(o: Outcome) -> None:
    assert o.exception is None, o.show()
    assert "internal error" not in o.stderr and "Traceback" not in o.stderr, o.show()
    assert o.exit_code == 2, o.show()
    assert o.stdout == "", o.show()
    assert o.stderr.startswith("error: ") and o.stderr.count("\n") == 1 and o.stderr.endswith("\n"), o.show()
    assert not _CONTROL.search(o.stderr) and not _LINE_BREAKERS.search(o.stderr), o.show()


@pytest.mark.parametrize(
    "args",
    [
        ["run", "{apple}", "--precision", "-5"],
        ["run", "{apple}", "--format", "xml"],
        ["run", "{apple}", "--bogus"],
        ["run"],
        ["check", "{apple}", "--eps", "x"],
        ["run", "{apple}", "--set"],
    ],
)
def test_bug_usage_errors_are_one_line(args):
    o = invoke([str(GRAPHS / "apple.yaml") if a == "{apple}" else a for a in args])
    _assert_one_error_line(o)


@pytest.mark.parametrize(
    "text",
    [
        '"na\\nme": x\ninputs: {x: 1}\nnodes: {y: x*2}\n',  # unknown key 'na<newline>me'
        'inputs: {x: 1}\nnodes:\n  y: {op: "ne\\ng", in: [x]}\n',  # unknown op 'ne<newline>g'
        'inputs: {x: "1\\n2"}\nnodes: {y: x*2}\n',  # bad number "1<newline>2"
        'inputs: {"\\e[2J": 1}\nnodes: {y: x*2}\n',  # bad input name: ESC [2J clears the terminal
    ],
)
def test_bug_error_messages_echo_raw_text(tmp_path, text):
    o = invoke(["validate", _write(tmp_path, "g.yaml", text)])
    _assert_one_error_line(o)


@pytest.mark.parametrize("char", ["\x01", "\x7f", "\x00"])
def test_bug_control_character_in_yaml(tmp_path, char):
    o = invoke(["validate", _write(tmp_path, "g.yaml", f"inputs:\n  x: 1\nnodes:\n  y: x{char} * 2\n")])
    _assert_one_error_line(o)
    assert o.stderr.startswith(f"error: {tmp_path / 'g.yaml'}:4:"), o.show()  # line 4, and a column


def test_bug_json_error_hidden_by_yaml_reader(tmp_path):
    text = '{"description": "\u0094", "inputs": {"x": 1}, "nodes": {"y": "x * 2"}, "outputs": ["z"]}'  # raw U+0094
    o = invoke(["validate", _write(tmp_path, "g.json", text)])
    _assert_one_error_line(o)
    assert "output 'z'" in o.stderr, o.show()


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ('{"name": "\\ud800", "inputs": {"x": 1}, "nodes": {"y": "x*2"}}', ["run"]),
        ('{"name": "\\ud800", "inputs": {"x": 1}, "nodes": {"y": "x*2"}}', ["run", "-f", "json"]),
        ('{"name": "\\ud800", "inputs": {"x": 1}, "nodes": {"y": "x*2"}}', ["export"]),
        ('{"description": "\\ud800", "inputs": {"x": 1}, "nodes": {"y": "x*2"}}', ["run"]),
        ('{"description": "\\ud800", "inputs": {"x": 1}, "nodes": {"y": "x*2"}}', ["export"]),
    ],
)
def test_bug_lone_surrogate_in_json_graph(tmp_path, text, command):
    o = invoke([command[0], _write(tmp_path, "g.json", text), *command[1:]])
    assert not problems(o), o.show()


def test_bug_surrogate_in_set_value():
    o = invoke(["run", str(GRAPHS / "apple.yaml"), "--set", "apple=\udcff"])  # shell: --set $'apple=\xff'
    _assert_one_error_line(o)


@pytest.mark.parametrize(
    "text",
    [
        '{"inputs": {"x": 1%s}, "nodes": {"y": "x*2"}}' % ("0" * 400),
        '{"inputs": {"x": [1, 1%s]}, "nodes": {"y": "x*2"}}' % ("0" * 400),
        '{"inputs": {"x": 1}, "nodes": {"y": {"op": "mul", "in": ["x", 1%s]}}}' % ("0" * 400),
    ],
)
def test_bug_huge_json_integer(tmp_path, text):
    o = invoke(["run", _write(tmp_path, "g.json", text)])
    assert o.exit_code in (0, 2) and not problems(o), o.show()  # the YAML twin gives inf (exit 0, a warning)


@pytest.mark.parametrize("command", ["run", "validate"])
def test_bug_infinite_axis_in_expression(tmp_path, command):
    o = invoke([command, _write(tmp_path, "g.yaml", "inputs: {x: [1, 2]}\nnodes:\n  y: sum(x, axis=1e309)\n")])
    _assert_one_error_line(o)  # as `{op: sum, in: [x], axis: 1e309}` does


def test_bug_validate_hides_internal_errors(tmp_path):
    o = invoke(["validate", _write(tmp_path, "g.yaml", "inputs: {x: [1, 2]}\nnodes:\n  y: sum(x, axis=1e309)\n")])
    assert "internal error" not in o.stderr or o.exit_code == 3, o.show()


def test_export_into_a_missing_directory(tmp_path):
    """Found by this fuzzer, fixed since: a clear error."""
    o = invoke(["export", str(GRAPHS / "apple.yaml"), "-o", str(tmp_path / "missing" / "out.dot")])
    _assert_one_error_line(o)


def test_bug_export_onto_a_directory(tmp_path):
    o = invoke(["export", str(GRAPHS / "apple.yaml"), "-o", str(tmp_path)])
    _assert_one_error_line(o)


def test_bug_check_with_an_empty_array_input(tmp_path):
    o = invoke(["check", _write(tmp_path, "g.yaml", "inputs:\n  x: []\nnodes:\n  y: x * 2\n")])
    assert o.exit_code in (0, 2) and not problems(o), o.show()  # run, trace, export and check -f json cope


def test_bug_recursion_with_raised_depth_limit(tmp_path):
    p = _write(tmp_path, "g.yaml", "inputs:\n  x: 1\nnodes:\n  y: " + nested(500, "(", "x + 1", ")") + "\n")
    o = invoke(["validate", p], env={"CGCALC_MAX_DEPTH": "1000"})
    assert o.exit_code in (0, 2) and not problems(o), o.show()


@pytest.mark.parametrize("opt", [["--eps", "nan"], ["--eps", "inf"], ["--rtol", "nan"], ["--atol", "nan"]])
def test_bug_check_non_finite_tolerances(opt):
    o = invoke(["check", str(GRAPHS / "apple.yaml"), *opt])
    _assert_one_error_line(o)


def test_bug_check_hangs_on_a_large_input(tmp_path):
    p = _write(tmp_path, "g.yaml", alias_bomb(5))  # 10**5 ones, well under CGCALC_MAX_ELEMENTS
    o = invoke_limited(["check", p], seconds=3.0)
    assert not problems(o), o.show()


def test_the_time_limit_stops_a_busy_loop_and_a_blocked_wait():
    # the hang detector itself: CPU time for a loop, the clock (10x) for a wait that uses none
    import time

    with pytest.raises(Hang, match="CPU time"), time_limit(0.2):
        while True:
            pass
    start = time.monotonic()
    with pytest.raises(Hang, match="on the clock"), time_limit(0.05):
        time.sleep(5)
    assert time.monotonic() - start < 2
