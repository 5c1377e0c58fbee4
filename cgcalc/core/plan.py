"""A compiled graph: the Plan (slots, steps, constants, shapes), and what is checked on its shapes before anything
runs (shape inference, the memory limit)."""

from __future__ import annotations

from typing import Any, NamedTuple

from ..errors import GraphError, ShapeError
from .base import Layer, Layout, fmt_shape
from .spec import GraphSpec, InputSpec


class Step(NamedTuple):
    """One node, ready to run: its layer class, argument slots, attributes and gradient needs."""

    slot: int
    name: str
    op: str
    cls: type[Layer]
    args: tuple[int, ...]  # slots of its inputs (names or constants)
    attrs: dict
    needs: tuple[bool, ...]  # which inputs take a gradient


class Plan:
    """Slots: the inputs (file order), then the nodes (execution order), then the constants. Never changed once
    made (a plain class, not a dataclass: ~0.5 ms less start-up)."""

    __slots__ = (
        "spec",
        "names",
        "index",
        "inputs",
        "steps",
        "constants",
        "shapes",
        "layouts",
        "has_grad",
        "outputs",
        "lines",
    )

    def __init__(
        self,
        spec: GraphSpec,
        names: tuple[str, ...],
        index: dict[str, int],
        inputs: tuple[InputSpec, ...],
        steps: tuple[Step, ...],
        constants: tuple[float, ...],
        shapes: tuple[tuple[int, ...], ...],
        has_grad: tuple[bool, ...],
        outputs: tuple[str, ...],
        lines: Any = None,
    ) -> None:
        self.spec = spec
        self.names = names  # of inputs and nodes, by slot
        self.index = index
        self.inputs = inputs
        self.steps = steps
        self.constants = constants  # values of slots n_named, n_named + 1, ...
        self.shapes = shapes  # per input and node, with the file's values
        self.layouts: tuple[Layout | None, ...] | None = None  # per step, with the file's values (see infer)
        self.has_grad = has_grad  # per input and node: does it take a gradient? (every node; a grad-true input)
        self.outputs = outputs
        self.lines = lines  # each step's (line, column) as two arrays (0: unknown); None: none known (JSON)

    def pos_of(self, st: Step):
        """Where a step's node is written: (line, column), or None."""
        if self.lines is not None:
            i = st.slot - len(self.inputs)
            line, col = self.lines[0][i], self.lines[1][i]
            return (line, col) if line else None
        return None

    @property
    def n_named(self) -> int:
        return len(self.names)

    def infer_shapes(self, input_shapes: list[tuple[int, ...]]) -> list[tuple[int, ...]]:
        """Every slot's shape, given the inputs' shapes (raises ShapeError located at the node)."""
        return self.infer(input_shapes)[0]

    def infer(self, input_shapes: list[tuple[int, ...]]) -> tuple[list[tuple[int, ...]], tuple[Layout | None, ...]]:
        """Every slot's shape and every step's Layout (None where the layer sees its inputs as they are: an
        elementwise op without attributes on inputs of one shape), given the inputs' shapes. Raises ShapeError
        located at the node, or when the values and gradients would not fit in memory."""
        shapes = list(input_shapes) + [()] * len(self.steps) + [()] * len(self.constants)
        layouts: list[Layout | None] = []
        for st in self.steps:
            arg_shapes = [shapes[a] for a in st.args]
            if st.cls.elementwise and not st.attrs and arg_shapes.count(arg_shapes[0]) == len(arg_shapes):
                shapes[st.slot] = arg_shapes[0]  # the common case, and every node of a graph of scalars
                layouts.append(None)
                continue
            try:
                lay = st.cls.layout(arg_shapes, st.attrs)
            except ShapeError as e:
                args = ", ".join(f"{self.label(a)} {fmt_shape(shapes[a])}" for a in st.args)
                pos = self.pos_of(st) or (None, None)
                raise ShapeError(
                    f"node '{st.name}' ({st.op}): {e.message} [{args}]",
                    file=self.spec.file,
                    line=pos[0],
                    col=pos[1],
                    node=st.name,
                ) from None
            shapes[st.slot] = lay.out
            layouts.append(lay)
        if not all(not sh for sh in shapes):
            self.check_memory(shapes)
        return shapes, tuple(layouts)

    def check_memory(self, shapes: list[tuple[int, ...]], rows: int = 1) -> None:
        """Refuse, before anything runs, a graph whose values and gradients would not fit in the memory limit
        (a 480 KB file can ask for (40000, 1) @ (1, 40000): 12.8 GB a node)."""
        sizes = [_size(sh) for sh in shapes[: self.n_named]]
        need = 16 * rows * sum(sizes)  # float64 values and their gradients
        limit = memory_limit()
        if need <= limit[0]:
            return
        big = max(range(len(sizes)), key=sizes.__getitem__)
        where = ""
        pos = (None, None)
        if big >= len(self.inputs):
            st = self.steps[big - len(self.inputs)]
            pos = self.pos_of(st) or pos
        where = f"'{self.names[big]}' alone {fmt_shape(shapes[big])}: {_bytes(16 * rows * sizes[big])}"
        per = f" for {rows:,} rows" if rows > 1 else ""
        raise ShapeError(
            f"the graph needs about {_bytes(need)} for its values and gradients{per} ({where}), over the limit "
            f"of {_bytes(limit[0])} ({limit[1]}); set CGCALC_MAX_MEMORY (bytes, or e.g. 32G) to raise it",
            file=self.spec.file,
            line=pos[0],
            col=pos[1],
            node=self.names[big] if big >= len(self.inputs) else None,
        )

    def label(self, slot: int) -> str:
        """A slot's name, or a constant's value as written."""
        if slot < len(self.names):
            return self.names[slot]
        return fmt_const(self.constants[slot - len(self.names)])


def _size(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _bytes(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.3g} {unit}" if unit != "bytes" else f"{int(n)} bytes"
        n /= 1000
    return ""


_memory_limit: list = []


def memory_limit() -> tuple[int, str]:
    """(bytes, where the figure comes from): CGCALC_MAX_MEMORY, else half of this machine's memory."""
    import os

    text = os.environ.get("CGCALC_MAX_MEMORY")
    if text is not None:
        units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
        t = text.strip().upper().removesuffix("B")
        scale = units.get(t[-1:], 1)
        try:
            n = int(t[:-1] if t[-1:] in units else t) * scale
        except ValueError:
            raise GraphError(
                f"CGCALC_MAX_MEMORY must be a number of bytes (e.g. 8000000000 or 8G), got {text!r}"
            ) from None
        return n, "CGCALC_MAX_MEMORY"
    if not _memory_limit:
        try:
            total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            total = 16 << 30
        _memory_limit.append((total // 2, "half of this machine's memory"))
    return _memory_limit[0]


def fmt_const(x: float) -> str:
    return str(int(x)) if x == x and abs(x) < 1e16 and x == int(x) else repr(x)
