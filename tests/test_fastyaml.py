"""The fast YAML reader must read exactly what PyYAML reads, for every text it accepts (else it declines)."""

from __future__ import annotations

import json
from pathlib import Path
from unittest import mock

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cgcalc
from cgcalc.io import fastyaml

GRAPHS = Path(__file__).resolve().parent.parent / "graphs"


def composed_text_tree(text: str):
    """PyYAML's reading of the text, every scalar as its text (cgcalc reads scalars itself)."""

    def walk(n, quoted_ok: bool = False):
        if n.id == "mapping":
            keys = [k.value for k, _ in n.value]
            assert len(set(keys)) == len(keys)
            return {k.value: walk(v) for k, v in n.value}
        if n.id == "sequence":
            return [walk(x) for x in n.value]
        # a quoted scalar only as the top-level name or description (cgcalc's own output writes them so)
        assert n.style in ((None, "", '"') if quoted_ok else (None, "")), "fastyaml accepted a quoted or block scalar"
        assert n.tag in {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null")}
        return n.value

    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root.id != "mapping":
        return walk(root)
    assert len({k.value for k, _ in root.value}) == len(root.value)
    return {k.value: walk(v, k.value in ("name", "description")) for k, v in root.value}


def composed_marked_tree(text: str):
    """PyYAML's reading of the text with the line and column of every value, as fastyaml.read_marked gives it."""

    def walk(n):
        pos = (n.start_mark.line + 1, n.start_mark.column + 1)
        if n.id == "mapping":
            return ("mapping", pos, [(walk(k), walk(v)) for k, v in n.value])
        if n.id == "sequence":
            return ("sequence", pos, [walk(x) for x in n.value])
        return ("scalar", pos, n.value, n.style or None)

    return walk(yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))


def marked_tree(n):
    if n.id == "mapping":
        return ("mapping", n.pos, [(marked_tree(k), marked_tree(v)) for k, v in n.value])
    if n.id == "sequence":
        return ("sequence", n.pos, [marked_tree(x) for x in n.value])
    return ("scalar", n.pos, n.value, n.style)


def test_every_example_graph_reads_the_same_both_ways() -> None:
    for path in sorted(GRAPHS.glob("*.yaml")):
        text = path.read_text()
        read = fastyaml.read(text)
        assert read is not None, f"{path.name} should be in the fast subset"
        assert read[0] == composed_text_tree(text), path.name
        assert marked_tree(fastyaml.read_marked(text)) == composed_marked_tree(text), path.name
        fast = cgcalc.loads(text, file=str(path)).plan
        with mock.patch.object(fastyaml, "read", return_value=None):
            full = cgcalc.loads(text, file=str(path)).plan
        assert list(fast.inputs) == list(full.inputs)  # the fast reading keeps each input's line and column
        assert (fast.names, fast.steps, fast.constants, fast.shapes) == (
            full.names,
            full.steps,
            full.constants,
            full.shapes,
        )
        assert (fast.spec.name, fast.spec.description, fast.outputs) == (
            full.spec.name,
            full.spec.description,
            full.outputs,
        )
        # and each node's (but for the inner nodes of an expression, which only PyYAML's reading places)
        top = [st for st in full.steps if "." not in st.name]
        assert [fast.pos_of(st) for st in top] == [full.pos_of(st) for st in top]


# pieces of text that a graph file may hold, tricky ones included
_word = st.text(alphabet="abcxyz_019", min_size=1, max_size=6).filter(lambda s: not s[0].isdigit())
_scalar = st.one_of(
    _word,
    st.sampled_from(
        [
            "1",
            "-2.5",
            "1e-3",
            "2E2",
            ".inf",
            "-.inf",
            ".nan",
            "yes",
            "null",
            "~",
            "true",
            "0x1F",
            "a * b",
            "-x ** 2",
            "sigmoid(x @ W + b)",
            "a:b",
            "a: b",
            "a #b",
            "a#b",
            "'q'",
            '"q"',
            "&a x",
            "*a",
            "!!str 2",
            "- x",
            "-x",
            "? x",
            "?x",
            "x,y",
            "[a]",
            "{a: 1}",
            "a\tb",
            "%x",
            "@x",
            "`x",
            "|",
            ">",
            "it's",
            "a  b",
            "x:",
            ":x",
            "#",
            "a]",
            "}",
        ]
    ),
)


# double-quoted text with the escapes YAML and JSON share, and with those only YAML has (fastyaml declines)
_quoted = st.lists(
    st.sampled_from(
        ["a", " ", "é", "#", " #", ": ", "'", '\\"', "\\\\", "\\n", "\\t", "\\/", "\\u00e9", "\\x41", "\\0"]
    ),
    max_size=5,
).map(lambda parts: '"' + "".join(parts) + '"')


@st.composite
def _document(draw) -> str:
    lines = []
    if draw(st.booleans()):
        lines.append("# a comment")
    # the name: a plain scalar, or double-quoted as cgcalc writes it (json.dumps: any text, escapes included)
    lines.append(f"name: {draw(st.one_of(_scalar, st.text(max_size=8).map(json.dumps), _quoted))}")
    lines.append("inputs:")
    indent = " " * draw(st.integers(1, 4))
    for _ in range(draw(st.integers(1, 4))):
        value = draw(st.one_of(_scalar, st.lists(_scalar, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]")))
        lines.append(f"{indent}{draw(_word)}: {value}" + draw(st.sampled_from(["", "  # note", " #x"])))
    lines.append("nodes:")
    for _ in range(draw(st.integers(1, 4))):
        refs = ", ".join(draw(st.lists(_scalar, max_size=3)))
        value = draw(
            st.sampled_from(
                [
                    f"{{op: {draw(_scalar)}, in: [{refs}]}}",
                    draw(_scalar),
                    f"{{op: sum, in: [{refs}], axis: {draw(_scalar)}}}",
                ]
            )
        )
        lines.append(f"{indent}{draw(_word)}: {value}")
    if draw(st.booleans()):
        lines.append(f"outputs: [{', '.join(draw(st.lists(_word, min_size=1, max_size=2)))}]")
    return "\n".join(lines) + draw(st.sampled_from(["\n", "", "\r\n"]))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_document())
def test_whatever_the_fast_reader_accepts_pyyaml_reads_the_same(text: str) -> None:
    read = fastyaml.read(text)
    marked = fastyaml.read_marked(text)
    if read is None:
        assert marked is None
        return  # declined: PyYAML reads it (and reports any error)
    assert read[0] == composed_text_tree(text)
    assert marked_tree(marked) == composed_marked_tree(text)  # every value where PyYAML places it


@pytest.mark.parametrize("char", ["\x85", "\u2028", "\u2029", "\r", "\x01", "\x7f"])
def test_a_comment_with_a_line_break_or_control_character_is_left_to_pyyaml(char: str) -> None:
    # YAML takes a lone CR, NEL, LS and PS as line breaks (in `# a<LS>b: 1` the key b is not in the comment, and
    # every line after it counts one more) and refuses control characters anywhere (found by comparing cgcalc
    # with its previous version on fuzzed files)
    text = f"# one{char}x: 2\ninputs:\n  x: 1\nnodes:\n  y: x * 2\n"
    assert fastyaml.read(text) is None and fastyaml.read_marked(text) is None


def test_a_tab_in_a_comment_is_read() -> None:
    text = "# one\ttwo\ninputs:\n  x: 1  \nnodes:\n  y: x * 2\n"
    assert fastyaml.read(text)[0] == composed_text_tree(text)


@pytest.mark.parametrize(
    "text",
    [
        "inputs:\n  W: [[1, 2],\n      [3, 4]]\n  b: [1,\n   2]\nnodes:\n  y: {op: affine,\n    in: [x, W, b]}\n",
        "name: g\r\ninputs:\r\n  x: 1\r\nnodes:\r\n  y: x * 2\r\noutputs: [y]\r\n",
        "inputs:\n    x: {value: [1, 2], grad: false}\nnodes:\n    y: {op: sum, in: [x], axis: 0, keepdims: true}\n",
    ],
)
def test_the_marked_reading_places_values_on_continued_lines(text: str) -> None:
    assert marked_tree(fastyaml.read_marked(text)) == composed_marked_tree(text)


def test_what_cgcalc_writes_is_read_the_fast_way() -> None:
    # derive and fit -o write `name:` and `description:` double-quoted (JSON's syntax): PyYAML took 2.6 s for
    # a 34,000-node derivative file that the fast reader takes in 0.6
    for path in sorted(GRAPHS.glob("*.yaml")):
        text = cgcalc.load(path).derive_text()
        read = fastyaml.read(text)
        assert read is not None, path.name
        assert read[0] == composed_text_tree(text), path.name
        assert marked_tree(fastyaml.read_marked(text)) == composed_marked_tree(text), path.name


@pytest.mark.parametrize(
    "value", ['"a\\u0041"', '"a\\x41"', '"a\\/b"', '"a" "b"', '"a', '"a" b', '"a\\0"', "'a'", '"a\\\n"']
)
def test_a_quoted_name_in_escapes_only_yaml_reads_is_left_to_pyyaml(value: str) -> None:
    text = f"name: {value}\ninputs:\n  x: 1\nnodes:\n  y: x * 2\n"
    assert fastyaml.read(text) is None and fastyaml.read_marked(text) is None


def test_what_fit_writes_is_read_the_fast_way_and_the_same() -> None:
    # fit -o keeps a node's expression: written plain where the fast reader and PyYAML read it back the same
    # (quoted only where they would not: a number, `true`, `a: b`, `a #b`...)
    from cgcalc.fit.data import trained_document
    from cgcalc.io.graph_text import to_text

    for path in sorted(GRAPHS.glob("*.yaml")):
        g = cgcalc.load(path)
        text = to_text(trained_document(g.plan, {}))
        assert fastyaml.read(text) is not None, path.name
        back = cgcalc.loads(text).plan
        assert (back.names, back.steps, back.constants) == (g.plan.names, g.plan.steps, g.plan.constants), path.name


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="xy12 .*+-#:,()[]{}\"'!&?|>~e", min_size=1, max_size=12))
def test_an_expression_written_plain_reads_back_as_itself(text: str) -> None:
    from cgcalc.io.read import reads_back_plain

    if reads_back_plain(text):
        assert yaml.safe_load(f"key: {text}\n") == {"key": text}
        assert fastyaml.read(f"key: {text}\n")[0] == {"key": text}
