"""Issue 13 benchmark: conv2d forward + backward against the book's own im2col Convolution layer, on the same data.

    python tests/benchmarks/bench_conv.py [--quick] [--runs N]

x (10, 3, 28, 28), W (30, 3, 5, 5), b (30,), stride 1, pad 0; backward from dout = ones (the gradient of sum(y)).
Targets (medians of interleaved runs, in this process):
  - cgcalc's Conv2d layer, forward then backward, as the runtime calls it: <= 1.2x the book-style baseline;
  - a whole `Graph.run()` of `y: conv2d(x, W, b)` (values and every gradient, with the runtime's checks around
    the layer: inputs copied, non-finite values looked for, results made read-only): <= 1.2x the baseline too.
The baseline is written here in the style of the book's common/util.py and common/layers.py: im2col filling a
6-D array one filter offset at a time and copying it transposed, np.dot, col2im adding the offsets back.
Reports; always exits 0.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Report, fmt_s, interleaved, median, timed  # noqa: E402

import cgcalc  # noqa: E402
from cgcalc.core.registry import LAYERS  # noqa: E402

# --- the baseline: the book's im2col, col2im and Convolution, as the book writes them -------------------------


def book_im2col(data, fh, fw, stride=1, pad=0):
    n, c, h, w = data.shape
    oh, ow = (h + 2 * pad - fh) // stride + 1, (w + 2 * pad - fw) // stride + 1
    img = np.pad(data, [(0, 0), (0, 0), (pad, pad), (pad, pad)], "constant")
    col = np.zeros((n, c, fh, fw, oh, ow))
    for y in range(fh):
        for x in range(fw):
            col[:, :, y, x, :, :] = img[:, :, y : y + stride * oh : stride, x : x + stride * ow : stride]
    return col.transpose(0, 4, 5, 1, 2, 3).reshape(n * oh * ow, -1)


def book_col2im(col, shape, fh, fw, stride=1, pad=0):
    n, c, h, w = shape
    oh, ow = (h + 2 * pad - fh) // stride + 1, (w + 2 * pad - fw) // stride + 1
    col = col.reshape(n, oh, ow, c, fh, fw).transpose(0, 3, 4, 5, 1, 2)
    img = np.zeros((n, c, h + 2 * pad + stride - 1, w + 2 * pad + stride - 1))
    for y in range(fh):
        for x in range(fw):
            img[:, :, y : y + stride * oh : stride, x : x + stride * ow : stride] += col[:, :, y, x, :, :]
    return img[:, :, pad : h + pad, pad : w + pad]


class BookConvolution:
    def __init__(self, W, b, stride=1, pad=0):
        self.W, self.b, self.stride, self.pad = W, b, stride, pad

    def forward(self, x):
        fn, c, fh, fw = self.W.shape
        n, c, h, w = x.shape
        oh = 1 + int((h + 2 * self.pad - fh) / self.stride)
        ow = 1 + int((w + 2 * self.pad - fw) / self.stride)
        self.x = x
        self.col = book_im2col(x, fh, fw, self.stride, self.pad)
        self.col_W = self.W.reshape(fn, -1).T
        out = np.dot(self.col, self.col_W) + self.b
        return out.reshape(n, oh, ow, -1).transpose(0, 3, 1, 2)

    def backward(self, dout):
        fn, c, fh, fw = self.W.shape
        dout = dout.transpose(0, 2, 3, 1).reshape(-1, fn)
        self.db = np.sum(dout, axis=0)
        self.dW = np.dot(self.col.T, dout).transpose(1, 0).reshape(fn, c, fh, fw)
        dcol = np.dot(dout, self.col_W.T)
        return book_col2im(dcol, self.x.shape, fh, fw, self.stride, self.pad)


def book_step(x, W, b):
    layer = BookConvolution(W, b)
    y = layer.forward(x)
    dx = layer.backward(np.ones(y.shape))
    return y, dx, layer.dW, layer.db


# --- ours ----------------------------------------------------------------------------------------------------


def layer_step(x, W, b):
    cls = LAYERS["conv2d"]
    lay = cls.layout([x.shape, W.shape, b.shape], cls.attr_defaults)
    layer = cls(**lay.attrs)
    y = layer.forward(x, W, b)
    return (y, *layer.backward(np.ones(y.shape)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--runs", type=int, default=None)
    args = ap.parse_args()
    runs = args.runs or (7 if args.quick else 31)
    rng = np.random.default_rng(0)
    x, W, b = rng.standard_normal((10, 3, 28, 28)), rng.standard_normal((30, 3, 5, 5)), rng.standard_normal(30)
    report = Report("issue 13: conv2d forward + backward, x (10, 3, 28, 28), W (30, 3, 5, 5)")

    # the same numbers first: what is timed computes what the book's layer computes
    book, ours = book_step(x, W, b), layer_step(x, W, b)
    for name, a, e in zip(("y", "dx", "dW", "db"), ours, book):
        np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-10, err_msg=name)

    base_times: list[float] = []

    def add(target: str, f) -> None:
        mine, base = interleaved(timed(f), timed(lambda: book_step(x, W, b)), runs, warmup=2)
        base_times.extend(base)
        ratio = median(mine) / median(base)
        report.row(target, fmt_s(median(mine)), fmt_s(median(base)), ratio, "<= 1.2x", ratio <= 1.2)

    add("Conv2d layer: forward + backward", lambda: layer_step(x, W, b))

    doc = {"inputs": {"x": x.tolist(), "W": W.tolist(), "b": b.tolist()}, "nodes": {"y": "conv2d(x, W, b)"}}
    g = cgcalc.loads(json.dumps(doc), json=True)
    r = g.run()
    np.testing.assert_allclose(r.grad("x"), book[1], rtol=1e-12, atol=1e-10)
    add("Graph.run() of y: conv2d(x, W, b), every gradient", g.run)
    report.note(f"baseline over all its runs: median {fmt_s(median(base_times))}; numpy {np.__version__}")
    report.finish()


if __name__ == "__main__":
    main()
