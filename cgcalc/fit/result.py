"""What a fit returns (FitResult: the curve, the parameters before and after, the log, the trained graph), and
Diverged, the error of a loss gone NaN or infinite."""

from __future__ import annotations

from typing import Any

from ..errors import CgcalcError


class Diverged(CgcalcError):
    """The loss became NaN or infinite: the run stops there (exit 1 from the CLI). `result` holds what was done
    until then (its params are those the bad loss was computed at)."""

    def __init__(self, message: str, step: int, result: FitResult) -> None:
        super().__init__(message)
        self.step = step
        self.result = result


class FitResult:
    """What a fit did: the loss curve, the parameters before and after, the log, the trained graph."""

    def __init__(self, **kw: Any) -> None:
        self.graph_name: str = kw["graph_name"]
        self.output: str = kw["output"]  # the output minimized
        self.optimizer: str = kw["optimizer"]
        self.lr: float = kw["lr"]
        self.per: str = kw["per"]  # "step" or "epoch": what each entry of `losses` is
        self.steps: int = kw["steps"]  # updates made
        self.epochs: int | None = kw["epochs"]  # epochs completed (None without rows)
        self.rows: int | None = kw["rows"]
        self.batch_size: int | None = kw["batch_size"]
        self.seed: int | None = kw["seed"]
        self.mode: str = kw["mode"]  # "inputs" (no rows), "rows" (one sample per run), "batch" (rows stacked)
        self.losses: list[float] = kw["losses"]
        self.log_names: list[str] = kw["log_names"]  # the log's columns: step or epoch, then every output
        self.log: list[tuple] = kw["log"]
        self.before: dict[str, Any] = kw["before"]  # the parameters' values at the start
        self.params: dict[str, Any] = kw["params"]  # and at the end
        self.outputs: dict[str, Any] = kw.get("outputs") or {}  # every output at the trained parameters
        self.interrupted: bool = kw.get("interrupted", False)
        self._plan = kw["plan"]
        self._values = kw["values"]  # every input's value but the parameters': what the trained file keeps
        self._loads = kw["loads"]
        self._graph = None

    def to_dict(self) -> dict:
        """The JSON of `cgcalc fit --format json` (numbers as floats, arrays as nested lists)."""
        from ..core.runtime import to_plain

        return {
            "graph": self.graph_name,
            "output": self.output,
            "optimizer": self.optimizer,
            "steps": self.steps,
            "loss": list(self.losses),
            "params": {k: to_plain(v) for k, v in self.params.items()},
            "outputs": {k: to_plain(v) for k, v in self.outputs.items()},
        }

    def document(self) -> dict:
        """The trained graph as a graph file's values: the same schema, the parameters' new values."""
        from .data import trained_document

        return trained_document(self._plan, {**self._values, **self.params})

    def to_text(self, fmt: str = "yaml", header: str = "") -> str:
        """The trained graph file's text ("yaml" or "json"); floats in full (shortest round-trip) precision."""
        from ..io.graph_text import to_text

        return to_text(self.document(), fmt, header)

    @property
    def graph(self):
        """The trained Graph (the graph with the parameters' new values), built when first asked for."""
        if self._graph is None:
            self._graph = self._loads(self.to_text("json"))
        return self._graph

    def __repr__(self) -> str:
        last = f"{self.losses[-1]:.6g}" if self.losses else "-"
        return f"<FitResult {self.graph_name!r}: {self.optimizer}, {self.steps} steps, loss {last}>"
