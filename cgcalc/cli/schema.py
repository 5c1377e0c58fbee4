"""`cgcalc schema`: the graph file's JSON Schema, for editors."""

from __future__ import annotations

import json
import sys

from .common import _errors, app


@app.command()
def schema() -> None:
    """The JSON Schema (draft 2020-12) of a graph file, from the op registry: completion and checks in editors."""
    from ..views.schema import graph_schema

    with _errors():
        sys.stdout.write(json.dumps(graph_schema(), indent=2, ensure_ascii=False) + "\n")
