"""The marked reading of a JSON text (io/marks.py): what an error in a JSON graph is located with, since json.loads
keeps no positions. Every value must stand where PyYAML's reading of the same text (JSON is YAML) places it."""

from __future__ import annotations

import json

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cgcalc.io import marks

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_text = st.text(alphabet=st.characters(max_codepoint=0xFFFF, exclude_categories=("Cs",)), max_size=5)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**20), 10**20) | st.floats(allow_nan=False) | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=25,
)


def composed(n):
    pos = (n.start_mark.line + 1, n.start_mark.column + 1)
    if n.id == "mapping":
        return ("mapping", pos, [(composed(k), composed(v)) for k, v in n.value])
    if n.id == "sequence":
        return ("sequence", pos, [composed(x) for x in n.value])
    return ("scalar", pos, n.value, n.style or None)


def marked(n, lines):
    pos = lines.pos(n.pos)
    if n.id == "mapping":
        return ("mapping", pos, [(marked(k, lines), marked(v, lines)) for k, v in n.value])
    if n.id == "sequence":
        return ("sequence", pos, [marked(x, lines) for x in n.value])
    return ("scalar", pos, n.value, n.style)


@PROPERTY
@given(value=_json, indent=st.sampled_from([None, 0, 1, 4]), compact=st.booleans())
def test_the_marked_reading_of_json_places_every_value_where_pyyaml_does(value, indent, compact):
    text = json.dumps(value, indent=indent, separators=(",", ":") if compact else None)
    root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    assert marked(marks.json_marked(text), marks.Lines(text)) == composed(root)


@pytest.mark.parametrize(
    ("text", "pos"),
    [("a\r\nb", (2, 1)), ("a\rb", (2, 1)), ("a\x85b", (2, 1)), ("a\u2028\u2029b", (3, 1)), ("\n\nab", (3, 2))],
)
def test_lines_count_line_breaks_as_yaml_does(text, pos):
    assert marks.Lines(text).pos(text.index("b")) == pos
