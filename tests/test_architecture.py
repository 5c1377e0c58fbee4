"""The import contract: one direction of imports, no cycles, and each third-party stack in its one place.

    cli ──► views, batch ──► api ──► whatif, fit ──► io ──► core ──► errors
    (and one way up, for notebooks: Graph's and Result's display methods call views/notebook.py; see DISPLAY)
    core:  vectorized, program ──► runtime ──► result ──► compiler ──► subplan ──► plan, expr, spec, registry ──►
           layers, nn_layers ──► base, kernels

Every import counts, also one inside a function (those are only ever for start-up time; they must still go
the right way). Read from the source with `ast`, so nothing is imported to check it.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import cgcalc

PACKAGE = Path(cgcalc.__file__).resolve().parent

# a module may import its own rank and below, never above; modules of equal rank in different packages
# (views and batch) may not import each other
RANK = {
    "errors": 0,
    "numbers": 0,
    "core": 1,
    "io": 2,
    # sweep, tornado, solve: computed on a compiled plan with core's run and run_batch (no file, no view), so
    # below api, whose Graph methods delegate to it; above io, whose parsers it may use
    "whatif": 2.5,
    # the training loop (cgcalc.fit) runs plans (core) and reads rows and writes graphs (io); api's Graph.fit
    # delegates to it, handing it the Graph, whose methods it calls (hessian), and `loads` for the trained one
    "fit": 2.5,
    # Graph.derive_text, hessian and hvp: derivative graphs (core) read back with the loads api hands it
    "derivatives": 2.5,
    "api": 3,
    "__init__": 3.5,
    "views": 4,
    "batch": 4,
    "cli": 5,
    "__main__": 6,
}
CORE_RANK = {
    "base": 0,
    "kernels": 0,
    "layers": 1,
    "nn_layers": 1,
    "shape_layers": 1,
    "prob_layers": 1,
    "conv_layers": 1,
    "conv_grad_layers": 1,
    "train_layers": 1,
    "math_layers": 1,
    "reduce_layers": 1,
    "index_layers": 1,
    "registry": 2,
    "spec": 2,
    "expr": 3,
    "plan": 3,
    "attr_values": 0,
    "rewrite": 2.9,  # the rules the derivative store simplifies with
    "terms": 3,  # the derivative store: ops of the registry, no plan
    "subplan": 3.5,
    "compiler": 4,
    "result": 4.5,
    "runtime": 5,
    "program": 5.5,
    "vectorized": 6,
    "derive": 6,
    "__init__": 7,
}
# third-party stacks and the modules allowed to import them (prefixes of dotted module names)
STACKS = {
    "typer": ("cgcalc.cli",),
    "click": ("cgcalc.cli",),
    "rich": ("cgcalc.cli", "cgcalc.views.render"),  # and render_trace, render_analysis (a prefix)
    "yaml": ("cgcalc.io.read",),
    "matplotlib": ("cgcalc.views.plot",),  # the optional `plot` extra: sweep --plot
    "pyarrow": (
        "cgcalc.io.arrow",
        "cgcalc.batch.dask_client",
        "cgcalc.batch.dask_cluster",
        "cgcalc.batch.dask_dataset",
        "cgcalc.batch.dask_worker",
    ),
    "dask": ("cgcalc.batch.dask_client", "cgcalc.batch.dask_cluster", "cgcalc.batch.dask_worker"),
    "distributed": ("cgcalc.batch.dask_client", "cgcalc.batch.dask_cluster", "cgcalc.batch.dask_worker"),
    "pandas": ("cgcalc.batch.dask_client", "cgcalc.batch.dask_cluster", "cgcalc.batch.dask_worker"),
}


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":  # a package is named as it is imported: cgcalc, cgcalc.core
            parts = parts[:-1]
        out[".".join(("cgcalc", *parts))] = path
    return out


def imports(name: str, path: Path) -> list[tuple[str, int, bool]]:
    """(imported module, line, at module level) for every import in the file; relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    top = set()  # module-level statements, also those inside a module-level `if` or `try`
    for stmt in tree.body:
        nested = ast.walk(stmt) if isinstance(stmt, ast.If | ast.Try) else [stmt]
        top |= {id(n) for n in nested if not isinstance(n, ast.FunctionDef | ast.ClassDef)}
    out = []
    known = modules()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno, id(node) in top) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1])
                mod = f"{base}.{node.module}" if node.module else base
            else:
                mod = node.module or ""
            for a in node.names:  # `from . import fastyaml` imports a module
                sub = f"{mod}.{a.name}"
                out.append((sub if sub in known else mod, node.lineno, id(node) in top))
    return out


def where(name: str) -> tuple[str, str]:
    """(part, module within it): cgcalc.core.runtime -> (core, runtime); cgcalc.api -> (api, '')."""
    parts = name.split(".")[1:]
    return (parts[0], parts[1] if len(parts) > 1 else "__init__") if parts else ("__init__", "")


def edges() -> list[tuple[str, str, int, bool]]:
    known = modules()
    out = []
    for name, path in known.items():
        for target, line, top in imports(name, path):
            if target.startswith("cgcalc") and target != name:
                while target not in known and "." in target:
                    target = target.rsplit(".", 1)[0]
                out.append((name, target, line, top))
    return out


# The one way up: a notebook asks an object itself how to show it (Result._repr_html_, Graph._repr_svg_, g.draw(),
# g.trace()), and showing is the views' job. So the API's Graph and the core's Result may import views/notebook.py
# (that module only), inside those methods (never at module level: `import cgcalc` stays light).
DISPLAY = {("cgcalc.api", "cgcalc.views.notebook"), ("cgcalc.core.result", "cgcalc.views.notebook")}


def test_every_import_goes_one_way():
    wrong = []
    for src, dst, line, top in edges():
        if (src, dst) in DISPLAY and not top:
            continue
        (ps, ms), (pd, md) = where(src), where(dst)
        if ps == pd:
            if ps == "core" and CORE_RANK.get(md, 0) > CORE_RANK.get(ms, 0):
                wrong.append(f"{src}:{line} imports {dst} (inside core: {ms} is below {md})")
            continue
        if RANK[pd] > RANK[ps] or (RANK[pd] == RANK[ps] and pd != ps):
            wrong.append(f"{src}:{line} imports {dst} ({ps} may not import {pd})")
    assert not wrong, "\n".join(dict.fromkeys(wrong))


def test_no_import_cycles():
    graph: dict[str, set[str]] = {}
    for src, dst, _, top in edges():
        if (src, dst) in DISPLAY and not top:  # run only when a notebook shows an object: everything is loaded then
            continue
        graph.setdefault(src, set()).add(dst)
    # iterative DFS, three colours
    colour: dict[str, int] = {}
    for start in sorted(graph):
        if colour.get(start):
            continue
        stack = [(start, iter(sorted(graph.get(start, ()))))]
        path = [start]
        colour[start] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                colour[node] = 2
                stack.pop()
                path.pop()
            elif colour.get(nxt) == 1:
                cycle = path[path.index(nxt) :] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            elif not colour.get(nxt):
                colour[nxt] = 1
                path.append(nxt)
                stack.append((nxt, iter(sorted(graph.get(nxt, ())))))


def test_each_third_party_stack_is_imported_in_its_one_place():
    wrong = []
    for name, path in modules().items():
        for target, line, _ in imports(name, path):
            allowed = STACKS.get(target.split(".")[0])
            if allowed is not None and not name.startswith(allowed):
                wrong.append(f"{name}:{line} imports {target}")
    assert not wrong, "\n".join(dict.fromkeys(wrong))


def test_the_core_imports_numpy_only_inside_functions():
    # a graph of scalars never imports numpy; `import cgcalc` stays fast
    wrong = [
        f"{name}:{line}"
        for name, path in modules().items()
        if name.startswith(("cgcalc.core", "cgcalc.api", "cgcalc.fit"))
        for target, line, top in imports(name, path)
        if target.split(".")[0] == "numpy" and top
    ]
    assert not wrong, wrong


# Size (issue 11): no function over ~60 lines unless it is a table, no module over ~400, in the whole package.
MAX_FUNCTION_LINES, MAX_MODULE_LINES = 60, 400
# functions that are a table (one row per line), allowed to be longer, each with the reason
TABLES: dict[str, str] = {
    "views/schema.py:graph_schema": "one literal: the JSON schema document of a graph file",
}


def test_functions_and_modules_stay_small():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > MAX_MODULE_LINES:
            wrong.append(f"{rel}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES and f"{rel}:{node.name}" not in TABLES:
                    wrong.append(f"{rel}:{node.lineno} {node.name}() is {length} lines")
    assert not wrong, "\n".join(wrong)


def test_the_checker_sees_a_wrong_way_import(tmp_path, monkeypatch):
    # the contract test itself must be able to fail: a core module importing the cli is caught
    fake = tmp_path / "cgcalc"
    (fake / "core").mkdir(parents=True)
    (fake / "cli").mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "core" / "__init__.py").write_text("")
    (fake / "cli" / "__init__.py").write_text("")
    (fake / "core" / "runtime.py").write_text("def f():\n    from ..cli import main\n")
    (fake / "cli" / "main.py").write_text("from ..core import runtime\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    with pytest.raises(AssertionError, match="core may not import cli"):
        test_every_import_goes_one_way()
    with pytest.raises(pytest.fail.Exception, match="import cycle"):
        (fake / "cli" / "__init__.py").write_text("from . import main\n")
        (fake / "core" / "runtime.py").write_text("from ..cli import main\n")
        test_no_import_cycles()
