"""`cgcalc schema`: the JSON Schema (draft 2020-12) of a graph file, generated from the op registry, so that an
editor (yaml-language-server, VS Code) completes op names and attributes and flags a typo'd op or key as it is
typed. It says what cgcalc's own checks say about the file's form; cgcalc still has the last word (names that
refer to nothing, cycles, shapes)."""

from __future__ import annotations

from typing import Any

from ..core.registry import LAYERS

DRAFT = "https://json-schema.org/draft/2020-12/schema"
NAME = "^[A-Za-z_][A-Za-z0-9_]*$"
# a number as YAML 1.1 readers (PyYAML) leave it, text: 1e-3, .inf, nan (cgcalc reads these as numbers)
NUMBER_TEXT = (
    r"^[-+]?(([0-9][0-9_]*(\.[0-9_]*)?|\.[0-9][0-9_]*)([eE][-+]?[0-9]+)?|\.?[iI]nf(inity)?|\.?INF|\.?[nN]a[nN]|\.?NAN)$"
)

_INT_LIST = {"type": "array", "items": {"type": "integer"}}
# attributes by name, where the default does not tell the type (None)
_ATTRIBUTES: dict[str, dict[str, Any]] = {
    "axis": {"anyOf": [{"type": "integer"}, {**_INT_LIST, "minItems": 1}, {"type": "null"}]},
    "shape": {"type": "array", "items": {"type": "integer", "minimum": -1}, "maxItems": 32},
    "axes": {"anyOf": [_INT_LIST, {"type": "null"}]},
    "classes": {"type": "integer", "minimum": 1},
    "index": {
        "description": "getitem's: one item per indexed axis (see: cgcalc ops getitem)",
        "anyOf": [{"$ref": "#/$defs/index_item"}, {"type": "array", "items": {"$ref": "#/$defs/index_item"}}],
    },
}
# an item of getitem's index: a whole number, a slice, or "..."
_INDEX_ITEM = {
    "anyOf": [
        {"type": "integer"},
        {"const": "..."},
        {
            "type": "object",
            "properties": {k: {"type": ["integer", "null"]} for k in ("start", "stop", "step")},
            "additionalProperties": False,
        },
    ]
}


def _attribute(name: str, default: Any) -> dict[str, Any]:
    if isinstance(default, bool):
        return {"type": "boolean", "default": default}
    if isinstance(default, int):
        return {"type": "integer", "default": default}
    return dict(_ATTRIBUTES.get(name, {}))  # an attribute the table does not know: any value


def _op_rule(op: str, cls) -> dict[str, Any]:
    """if op is this one, then: exactly its number of inputs, and only its attributes."""
    ref = {"$ref": "#/$defs/ref"}
    array = {"type": "array", "items": ref, "minItems": cls.arity}
    if not cls.variadic:
        array["maxItems"] = cls.arity
    ins: dict[str, Any] = {"anyOf": [ref, array]} if cls.arity == 1 else array
    least = "at least " if cls.variadic else ""
    ins["description"] = f"{least}{cls.arity} input{'s' * (cls.arity != 1)}: names of inputs or nodes, or numbers"
    props: dict[str, Any] = {"op": {"const": op, "description": cls.forward_rule}, "in": ins}
    for name, default in cls.attr_defaults.items():
        props[name] = _attribute(name, default)
    return {
        "if": {"properties": {"op": {"const": op}}, "required": ["op"]},
        "then": {"properties": props, "additionalProperties": False},
    }


# a table, not a procedure: the schema document as one literal (its parts named first), read whole as JSON Schema
# is; so it may pass ~60 lines (issue 11)
def graph_schema() -> dict[str, Any]:
    """The schema of a graph file, YAML or JSON (the same document)."""
    number = {"anyOf": [{"type": "number"}, {"type": "string", "pattern": NUMBER_TEXT}]}
    array = {"type": "array", "items": {"anyOf": [{"$ref": "#/$defs/number"}, {"$ref": "#/$defs/array"}]}}
    value = {"anyOf": [{"$ref": "#/$defs/number"}, {"$ref": "#/$defs/array"}]}
    constant = {
        "type": "object",
        "properties": {
            "value": {**value, "description": "a number or a rectangular nested list of numbers"},
            "grad": {"type": "boolean", "description": "false: shown, but takes no gradient (labels, say)"},
        },
        "required": ["value"],
        "additionalProperties": False,
    }
    node = {
        "type": "object",
        "properties": {
            "op": {"enum": list(LAYERS), "description": "the op: see `cgcalc ops`"},
            "in": {"description": "the op's inputs: names of inputs or nodes, or numbers"},
        },
        "required": ["op", "in"],
        "allOf": [_op_rule(op, cls) for op, cls in LAYERS.items()],
    }
    expression = {
        "type": "string",
        "minLength": 1,
        "description": "an expression: numbers, names, + - * / ** @, unary -, parentheses, calls of op names, x[0, 1:3] and x.T",
    }
    names = {"type": "string", "pattern": NAME}
    schema = {
        "$schema": DRAFT,
        "title": "cgcalc graph file",
        "description": "A computational graph for cgcalc: inputs (the leaves), nodes (ops or expressions), outputs.",
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "default: the file's stem"},
            "description": {"type": "string"},
            "inputs": {
                "type": ["object", "null"],
                "description": "name -> a number, a nested list (an array), or {value: ..., grad: false}",
                "propertyNames": {"pattern": NAME},
                "additionalProperties": {"anyOf": [value, constant]},
            },
            "nodes": {
                "type": "object",
                "description": "name -> {op: NAME, in: [...], attributes} or an expression string, in any order",
                "propertyNames": {"pattern": NAME},
                "minProperties": 1,
                "additionalProperties": {"anyOf": [expression, node]},
            },
            "outputs": {
                "description": "the output names (default: the last node); the first is differentiated",
                "anyOf": [names, {"type": "array", "items": names, "minItems": 1}],
            },
        },
        "required": ["nodes"],
        "additionalProperties": False,
        "$defs": {
            "index_item": _INDEX_ITEM,
            "number": number,
            "array": array,
            "ref": {
                "anyOf": [
                    {"type": "number"},
                    {"type": "string", "anyOf": [{"pattern": NAME}, {"pattern": NUMBER_TEXT}]},
                ]
            },
        },
    }
    return schema
