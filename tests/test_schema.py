"""`cgcalc schema`: the graph file's JSON Schema, generated from the op registry. Every example graph is valid
under it; a typo'd op, key or attribute and a wrong number of inputs are not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from cli_helpers import cli

from cgcalc.core.registry import LAYERS
from cgcalc.core.spec import TOP_KEYS

jsonschema = pytest.importorskip("jsonschema")

ROOT = Path(__file__).resolve().parent.parent
GRAPH_FILES = sorted((ROOT / "graphs").glob("*.yaml")) + sorted((ROOT / "graphs").glob("*.json"))


@pytest.fixture(scope="module")
def schema() -> dict:
    r = cli("schema")
    assert r.exit_code == 0 and r.stderr == "", r.stderr
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def validator(schema):
    cls = jsonschema.validators.validator_for(schema)
    assert cls is jsonschema.Draft202012Validator
    cls.check_schema(schema)
    return cls(schema)


def errors(validator, doc) -> list[str]:
    return [e.message for e in validator.iter_errors(doc)]


def test_the_schema_is_draft_2020_12_and_names_every_op_and_top_key(schema):
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(schema["properties"]) == set(TOP_KEYS)
    node = schema["properties"]["nodes"]["additionalProperties"]["anyOf"][1]
    assert node["properties"]["op"]["enum"] == list(LAYERS)
    rules = {r["if"]["properties"]["op"]["const"]: r["then"] for r in node["allOf"]}
    assert set(rules) == set(LAYERS)
    for op, cls in LAYERS.items():
        assert set(rules[op]["properties"]) == {"op", "in", *cls.attr_defaults}


@pytest.mark.parametrize("path", GRAPH_FILES, ids=lambda p: p.name)
def test_every_example_graph_is_valid(validator, path):
    doc = json.loads(path.read_text()) if path.suffix == ".json" else yaml.safe_load(path.read_text())
    assert errors(validator, doc) == []


BASE = {"inputs": {"x": [1.0, 2.0], "lr": "1e-3"}, "nodes": {"y": {"op": "sum", "in": ["x"], "axis": 0}}}


def _with(**node) -> dict:
    return {**BASE, "nodes": {"y": node}}


@pytest.mark.parametrize(
    ("doc", "why"),
    [
        (_with(op="summ", **{"in": ["x"]}), "a typo'd op"),
        (_with(op="sum", **{"in": ["x"]}, axes=0), "a typo'd attribute"),
        (_with(op="mul", **{"in": ["x"]}), "one input where mul takes two"),
        (_with(op="affine", **{"in": ["x", "x"]}), "two inputs where affine takes three"),
        (_with(op="sum", inputs=["x"]), "a typo'd key (inputs for in)"),
        (_with(op="sum", **{"in": ["x"]}, keepdims="yes"), "keepdims as text"),
        ({**BASE, "output": ["y"]}, "a typo'd top-level key"),
        ({**BASE, "inputs": {"x": {"value": 1.0, "grads": False}}}, "a typo'd key of a constant"),
        ({**BASE, "inputs": {"2x": 1.0}}, "a name starting with a digit"),
        ({**BASE, "inputs": {"x": "one"}}, "text where a number belongs"),
        ({"inputs": {"x": 1.0}}, "no nodes"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_mistakes_are_rejected(validator, doc, why):
    assert errors(validator, BASE) == []
    assert errors(validator, doc), why


def test_cgcalc_agrees_with_the_schema_on_the_mistakes(tmp_path):
    # the schema says what cgcalc's own checks say: each of these files is refused by cgcalc too
    for i, node in enumerate(["{op: summ, in: [x]}", "{op: sum, in: [x], axes: 0}", "{op: mul, in: [x]}"]):
        path = tmp_path / f"g{i}.yaml"
        path.write_text(f"inputs: {{x: [1.0, 2.0]}}\nnodes:\n  y: {node}\n")
        assert cli("validate", path).exit_code == 2


def test_forms_cgcalc_accepts_are_valid(validator):
    doc = {
        "name": "forms",
        "inputs": {"x": 2, "W": [[1, 2], [3, 4]], "t": {"value": [0, 1], "grad": False}, "big": ".inf", "n": None},
        "nodes": {
            "a": "x * 2",
            "b": {"op": "neg", "in": "x"},
            "c": {"op": "pow", "in": ["x", 2]},
            "d": {"op": "mean", "in": ["W"], "axis": [0, 1], "keepdims": True},
            "e": {"op": "reshape", "in": ["W"], "shape": [-1]},
            "f": {"op": "softmax", "in": ["W"], "axis": -1},
        },
        "outputs": "a",
    }
    doc["inputs"].pop("n")
    assert errors(validator, doc) == []


def test_shell_completion_completes_commands_and_choices(tmp_path):
    # what `cgcalc --install-completion` installs: the shell calls cgcalc back with _CGCALC_COMPLETE set
    import os
    import subprocess
    import sys

    script = tmp_path / "cgcalc"
    script.write_text(f"#!{sys.executable}\nimport sys\nfrom cgcalc.cli.app import main\nsys.exit(main())\n")
    script.chmod(0o755)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}

    def complete(words: str) -> list[str]:
        e = {**env, "_CGCALC_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(len(words.split()))}
        if not words.endswith(" "):
            e["COMP_CWORD"] = str(len(words.split()) - 1)
        proc = subprocess.run([str(script)], env=e, capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.split()

    assert complete("cgcalc sch") == ["schema"]
    assert complete("cgcalc export g.yaml --format ") == ["dot", "mermaid", "html"]
    shown = subprocess.run(
        [str(script), "--show-completion", "bash"], env=env, capture_output=True, text=True, timeout=60
    )
    assert "_CGCALC_COMPLETE=complete_bash" in shown.stdout
