"""The torch table of tests/test_index_ops.py: indexing (x[0], x[:, 1], x[1:3], x[::-1], x[..., 0]), x.T,
transpose, concat and stack, alone and in the formulas people write with them, run by torch in float64. For
each case: the output, and for loss = sum(w * tanh(out)) the gradient with respect to every input and the
Hessian-vector product H v (torch.autograd.grad twice, create_graph=True). The inputs, w and v are drawn here
(numpy, a seed per case) and stored with the results, so the test needs no torch:

    /work/torchvenv/bin/python tests/torch_tables/make_index_ops.py

rewrites index_ops.json next to this file. torch has no negative slice step: those cases flip instead.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

# (cgcalc's expression, the same in torch, the inputs' shapes)
CASES = [
    ("x[0]", lambda x: x[0], {"x": (3, 4)}),
    ("x[:, 1]", lambda x: x[:, 1], {"x": (3, 4)}),
    ("x[1:3]", lambda x: x[1:3], {"x": (4, 2)}),
    ("x[-1]", lambda x: x[-1], {"x": (3, 4)}),
    ("x[::2]", lambda x: x[::2], {"x": (5, 3)}),
    ("x[..., 0]", lambda x: x[..., 0], {"x": (2, 3, 4)}),
    ("x[0, -1]", lambda x: x[0, -1], {"x": (3, 4)}),
    ("x[1:, ::-1]", lambda x: torch.flip(x[1:], dims=[1]), {"x": (3, 4)}),
    ("x[-2:, 1, ::2]", lambda x: x[-2:, 1, ::2], {"x": (3, 4, 5)}),
    ("x[::-2, ..., 1:3]", lambda x: torch.flip(x, dims=[0])[::2, ..., 1:3], {"x": (5, 2, 4)}),
    ("x[1] * x[2:]", lambda x: x[1] * x[2:], {"x": (5,)}),
    ("x.T @ y", lambda x, y: x.T @ y, {"x": (3, 2), "y": (3, 4)}),
    ("(x * y).T[1]", lambda x, y: (x * y).T[1], {"x": (2, 3), "y": (2, 3)}),
    ("transpose(x, axes=[1, 2, 0])", lambda x: x.permute(1, 2, 0), {"x": (2, 3, 4)}),
    ("concat(x, y)", lambda x, y: torch.cat([x, y]), {"x": (2, 3), "y": (1, 3)}),
    ("concat(x, y, z, axis=-1)", lambda x, y, z: torch.cat([x, y, z], dim=-1), {"x": (2, 1), "y": (2, 3), "z": (2, 2)}),
    ("stack(x, y)", lambda x, y: torch.stack([x, y]), {"x": (3,), "y": (3,)}),
    (
        "stack(x, y, z, axis=-1)",
        lambda x, y, z: torch.stack([x, y, z], dim=-1),
        {"x": (2, 3), "y": (2, 3), "z": (2, 3)},
    ),
    ("stack(a, b, a * b)", lambda a, b: torch.stack([a, b, a * b]), {"a": (), "b": ()}),
    (
        "concat(x[:, 1:], y.T, axis=1)[::-1, 0]",
        lambda x, y: torch.flip(torch.cat([x[:, 1:], y.T], dim=1), dims=[0])[:, 0],
        {"x": (3, 3), "y": (2, 3)},
    ),
    (
        "sum(stack(x[0], x[-1]) ** 2, axis=0) @ x.T",
        lambda x: (torch.stack([x[0], x[-1]]) ** 2).sum(dim=0) @ x.T,
        {"x": (3, 4)},
    ),
]


def case(k: int, expr: str, f, shapes: dict) -> dict:
    rng = np.random.default_rng(k)
    xs = {n: rng.uniform(-1.5, 1.5, s) for n, s in shapes.items()}
    ts = {n: torch.tensor(v, dtype=torch.float64, requires_grad=True) for n, v in xs.items()}
    out = f(**ts)
    w = rng.uniform(-1, 1, tuple(out.shape))
    v = {n: rng.uniform(-1, 1, s) for n, s in shapes.items()}
    loss = (torch.tensor(w) * torch.tanh(out)).sum()
    grads = torch.autograd.grad(loss, list(ts.values()), create_graph=True)
    dot = sum((g * torch.tensor(v[n])).sum() for g, n in zip(grads, ts))
    hv = torch.autograd.grad(dot, list(ts.values()))
    return {
        "expr": expr,
        "inputs": {n: x.tolist() for n, x in xs.items()},
        "w": w.tolist(),
        "v": {n: x.tolist() for n, x in v.items()},
        "out": out.detach().numpy().tolist(),
        "grad": {n: g.detach().numpy().tolist() for n, g in zip(ts, grads)},
        "hvp": {n: h.numpy().tolist() for n, h in zip(ts, hv)},
    }


def main() -> None:
    table = {"torch": torch.__version__, "cases": [case(k, *c) for k, c in enumerate(CASES)]}
    path = Path(__file__).with_name("index_ops.json")
    path.write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
    print(f"{path}: {len(CASES)} cases, torch {torch.__version__}")


if __name__ == "__main__":
    main()
