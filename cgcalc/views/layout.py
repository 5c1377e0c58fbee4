"""A layered drawing of a graph without Graphviz, for the HTML page: inputs in the left column, each op one column
right of its rightmost input, outputs in the right column (as the book draws it). Edges that span several
columns pass through placeholder points, the order within each column is improved by a few barycentre sweeps
(Sugiyama's method, simplified), and the result is an SVG with the same ids and structure the page expects of
Graphviz's: a <g id="node_ID" class="node"> per node and a <g id="edge_K" class="edge"> per edge, the value
above each edge and the gradient below it in red, each node's total gradient (∂) beside it."""

from __future__ import annotations

from html import escape

from ..errors import clean

ROW = 78  # vertical distance between two nodes of a column, room for the labels above and below an edge
CHAR = 7.2  # width of a character at the labels' size (11px Helvetica), roughly
BOX_H, RADIUS = 32, 22
MARGIN = 24
MAX_SPAN = 6  # columns an edge may cross with placeholders (see layered)
SWEEPS = 8  # barycentre sweeps that order the columns (fewer for a large graph)


def _text_width(text: str, size: float = 11) -> float:
    return len(text) * CHAR * size / 11


def _radius(label: str) -> float:
    return max(RADIUS, max(_text_width(line, 14) for line in label.split("\n")) / 2 + 7)


def _size(kind: str, label: str) -> tuple[float, float]:
    if kind == "op":
        return 2 * _radius(label), 2 * _radius(label)
    if kind == "const":
        return _text_width(label, 13) + 8, 20
    return max(_text_width(label, 14) + 20, 48), BOX_H


Point = tuple[float, float]


def layered(nodes: list[tuple], edges: list[tuple]) -> tuple[dict[str, Point], dict[int, list[Point]]]:
    """Each node's centre by id, and each edge's points (its ends' centres, and a placeholder in every column it
    crosses) by the edge's index."""
    order = [n[0] for n in nodes]  # inputs, then ops in execution order, then constants and outputs
    rank, last = _ranks(order, {n[0]: n[1] for n in nodes}, edges)
    columns, chain = _columns(order, rank, last, edges)
    columns = _ordered(columns, chain)
    at = _centres(columns, _column_xs(nodes, edges, rank, columns))
    return {n: at[n] for n in order}, {k: [at[p] for p in points] for k, points in chain.items()}


def _ranks(order: list[str], kind: dict[str, str], edges: list[tuple]) -> tuple[dict[str, int], int]:
    """Each node's column, and the last column: inputs in the first, each op one right of its rightmost input, a
    constant one column left of its leftmost use, outputs in the last."""
    ins: dict[str, list[str]] = {n: [] for n in order}
    for src, dst, *_ in edges:
        ins[dst].append(src)
    rank: dict[str, int] = {}
    for n in order:  # ops come after their inputs in this order; constants and outputs are placed below
        if kind[n] == "input":
            rank[n] = 0
        elif kind[n] == "op":
            rank[n] = 1 + max((rank[s] for s in ins[n] if s in rank), default=0)
    last = max(rank.values(), default=0) + 1
    for src, dst, *_ in edges:
        if kind[src] == "const":
            rank[src] = min(rank.get(src, last), rank[dst] - 1)
    for n in order:
        if kind[n] == "output":
            rank[n] = last
    return rank, last


def _columns(order: list[str], rank: dict[str, int], last: int, edges: list[tuple]) -> tuple[list[list], dict]:
    """The columns of nodes and placeholders (an edge over several columns gets one in each column it crosses),
    and each edge's chain of points, by the edge's index."""
    columns: list[list] = [[] for _ in range(last + 1)]
    for n in order:
        columns[rank[n]].append(n)
    chain: dict[int, list] = {}
    for k, (src, dst, *_) in enumerate(edges):
        # an edge over a few columns gets a placeholder in each; a longer one (an input every layer uses, say)
        # is drawn straight across, so that the placeholders stay in proportion to the graph
        span = range(rank[src] + 1, rank[dst]) if rank[dst] - rank[src] <= MAX_SPAN else range(0)
        points = [src] + [("edge", k, r) for r in span] + [dst]
        chain[k] = points
        for p in points[1:-1]:
            columns[p[2]].append(p)
    return columns, chain


def _ordered(columns: list[list], chain: dict[int, list]) -> list[list]:
    """The columns reordered to cross fewer edges: each point moved to the mean position of its neighbours in the
    column before, then after, alternately (SWEEPS times)."""
    columns = [list(col) for col in columns]
    left: dict = {}  # each point's neighbours in the column before
    right: dict = {}
    for points in chain.values():
        for a, b in zip(points, points[1:]):
            right.setdefault(a, []).append(b)
            left.setdefault(b, []).append(a)
    pos = {p: i for col in columns for i, p in enumerate(col)}
    sweeps = SWEEPS if len(pos) <= 2000 else 2
    for sweep in range(sweeps):  # alternately by the column before and the column after
        neighbours = left if sweep % 2 == 0 else right
        cols = columns[1:] if sweep % 2 == 0 else columns[-2::-1]
        for col in cols:
            keyed = []
            for i, p in enumerate(col):
                near = neighbours.get(p)
                keyed.append((sum(pos[q] for q in near) / len(near) if near else pos[p], i, p))
            keyed.sort(key=lambda t: (t[0], t[1]))
            col[:] = [p for _, _, p in keyed]
            for i, p in enumerate(col):
                pos[p] = i
    return columns


def _column_xs(nodes: list[tuple], edges: list[tuple], rank: dict[str, int], columns: list[list]) -> list[float]:
    """Each column's x: as far right as the widest node before it and the widest label leaving it ask."""
    kind = {n[0]: n[1] for n in nodes}
    label = {n[0]: n[2] for n in nodes}
    widths = [
        max((_size(kind[p], label[p])[0] if isinstance(p, str) else 0) for p in col) if col else 0 for col in columns
    ]
    gap = [0.0] * len(columns)
    for src, _dst, value, grad, *_ in edges:
        r = rank[src]
        gap[r] = max(gap[r], _text_width(value), _text_width(grad))
    xs, x = [], MARGIN
    for r in range(len(columns)):
        x += widths[r] / 2
        xs.append(x)
        x += widths[r] / 2 + max(gap[r], 40) + 36
    return xs


def _centres(columns: list[list], xs: list[float]) -> dict:
    """Each point's centre: its column's x, and ROW apart down the column, each column centred on the tallest."""
    height = max(len(col) for col in columns)
    at: dict = {}
    for r, col in enumerate(columns):
        top = (height - len(col)) * ROW / 2
        for i, p in enumerate(col):
            at[p] = (xs[r], MARGIN + 30 + top + i * ROW + ROW / 2)
    return at


def _e(text: str) -> str:
    """A file's text as SVG text or an attribute value: control characters escaped, markup too."""
    return escape(clean(text), quote=True)


def svg(nodes: list[tuple], edges: list[tuple], title: str) -> str:
    """The drawing as an SVG document (text escaped: a file's names and description are data here, never markup)."""
    at, paths = layered(nodes, edges)
    kind = {n[0]: n[1] for n in nodes}
    size = {n[0]: _size(n[1], n[2]) for n in nodes}
    width = max((x for x, _ in at.values()), default=0) + 140
    height = max((y for _, y in at.values()), default=0) + 60
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="Helvetica,Arial,sans-serif">',
        f'<g class="graph"><text x="{width / 2:.1f}" y="22" text-anchor="middle" font-size="14">{_e(title)}</text>',
    ]
    for k, edge in enumerate(edges):
        out += _edge_svg(k, edge, paths[k], kind, size)
    for node in nodes:
        out += _node_svg(node, at[node[0]])
    out.append("</g></svg>")
    return "\n".join(out)


def _edge_svg(k: int, edge: tuple, path: list[Point], kind: dict, size: dict) -> list[str]:
    """An edge: a curve through its points from border to border, its arrowhead, its value above and its gradient
    below (grey when no gradient flows back along it)."""
    src, dst, value, grad, *_ = edge
    points = list(path)
    (x0, y0), (x1, y1) = points[0], points[-1]
    x0 += size[src][0] / 2
    x1 -= size[dst][0] / 2 + 2
    points[0], points[-1] = (x0, y0), (x1, y1)
    d = f"M{x0:.1f},{y0:.1f}"
    for (ax, ay), (bx, by) in zip(points, points[1:]):
        mid = (ax + bx) / 2
        d += f" C{mid:.1f},{ay:.1f} {mid:.1f},{by:.1f} {bx:.1f},{by:.1f}"
    # the labels a third of the way along the first stretch: edges into one node crowd near its end
    (ax, ay), (bx, by) = points[0], points[1]
    lx, ly = ax + (bx - ax) * 0.35, ay + (by - ay) * 0.35**2 * (3 - 2 * 0.35)
    grey = not grad and kind[src] != "const"
    colour = "gray" if grey else "black"
    out = [f'<g id="edge_{k}" class="edge">', f'<path fill="none" stroke="{colour}" d="{d}"/>']
    out.append(
        f'<polygon fill="{colour}" stroke="{colour}" points="{x1 + 2:.1f},{y1:.1f} {x1 - 7:.1f},{y1 - 4:.1f} '
        f'{x1 - 7:.1f},{y1 + 4:.1f}"/>'
    )
    out.append(
        f'<text x="{lx:.1f}" y="{ly - 6:.1f}" text-anchor="middle" font-size="11" fill="{colour}">{_e(value)}</text>'
    )
    if grad:
        out.append(
            f'<text x="{lx:.1f}" y="{ly + 14:.1f}" text-anchor="middle" font-size="11" fill="red">{_e(grad)}</text>'
        )
    out.append("</g>")
    return out


def _node_svg(node: tuple, centre: Point) -> list[str]:
    """A node: an op's circle, an input's box (an output's bold), a constant's bare text; its label, one line under
    another; its total gradient (∂) below on the left."""
    nid, k, text, name, total = node
    x, y = centre
    w, h = _size(k, text)
    out = [f'<g id="node_{nid}" class="node"><title>{_e(name)}</title>']
    if k == "op":
        r = w / 2
        out.append(f'<ellipse fill="none" stroke="black" cx="{x:.1f}" cy="{y:.1f}" rx="{r:.1f}" ry="{r:.1f}"/>')
    elif k in ("input", "output"):
        bold = ' stroke-width="2"' if k == "output" else ""
        out.append(
            f'<polygon fill="none" stroke="black"{bold} points="{x - w / 2:.1f},{y - h / 2:.1f} '
            f'{x + w / 2:.1f},{y - h / 2:.1f} {x + w / 2:.1f},{y + h / 2:.1f} {x - w / 2:.1f},{y + h / 2:.1f}"/>'
        )
    size = 13 if k == "const" else 14
    lines = text.split("\n")
    for i, line in enumerate(lines):
        dy = (i - (len(lines) - 1) / 2) * 14 + 5
        out.append(f'<text x="{x:.1f}" y="{y + dy:.1f}" text-anchor="middle" font-size="{size}">{_e(line)}</text>')
    if total:
        out.append(
            f'<text x="{x - w / 2 - 4:.1f}" y="{y + h / 2 + 14:.1f}" text-anchor="start" font-size="11" '
            f'fill="red">∂ {_e(total)}</text>'
        )
    out.append("</g>")
    return out
