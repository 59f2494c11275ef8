"""The paper's MNIST teacher (a maxout convnet) and thin, deep FitNet student.

Both follow the paper and its official code (docs/fitnets.md). ``pieces='code'`` uses the
official code's piece counts (4 in the upper layers), ``pieces='paper'`` the
paper's text (2 everywhere). ``pooling='ceil'`` is the code's pooling size rule;
'floor' changes only the teacher's map sizes. Images are NHWC (N, 28, 28, 1).
Biases are tied (one per channel); the official code used one per position.
"""
from __future__ import annotations

from functools import partial

import numpy as np

from .autograd import Tensor, no_grad
from .functional.window import conv_output_size
from .nn import Conv2d, Dropout, Flatten, Linear, MaxoutConv2d, Sequential

__all__ = ["mnist_teacher", "mnist_student", "thin_student", "thin_guided", "thin_width", "multiplications",
           "TEACHER_HINT", "STUDENT_GUIDED", "describe"]

TEACHER_HINT = "h1"     # the teacher's middle layer
STUDENT_GUIDED = "h3"   # the student's middle layer
NORM_LOW, NORM_HIGH = 0.9, 1.9365


def _check(pieces, pooling):
    if pieces not in ("code", "paper"):
        raise ValueError(f"pieces must be 'code' (official code's counts) or 'paper' (2 everywhere), got {pieces!r}")
    if pooling not in ("ceil", "floor"):
        raise ValueError(f"pooling must be 'ceil' or 'floor', got {pooling!r}")
    return pooling == "ceil"


def mnist_teacher(pieces="code", pooling="ceil", init=0.005, rng=None):
    """Maxout teacher: 48x2 (k8, pool 4/2) -> 48x2 (k8 pad 3, pool 4/2) -> 24x4 (k5 pad 3,
    pool 2/2) -> softmax. Dropout: inputs keep 0.8, hidden keep 0.5 (active in train mode)."""
    ceil = _check(pieces, pooling)
    p2 = 4 if pieces == "code" else 2
    size = {True: 3, False: 2}[ceil]  # h2 output side: 4->6->3 (ceil) or 3->5->2 (floor)
    conv = partial(MaxoutConv2d, ceil_mode=ceil, init=init, rng=rng)
    return Sequential([
        ("d0", Dropout(0.2)),
        ("h0", conv(in_channels=1, channels=48, pieces=2, kernel=8, pool=4, pool_stride=2, max_norm=NORM_LOW)),
        ("d1", Dropout(0.5)),
        ("h1", conv(in_channels=48, channels=48, pieces=2, kernel=8, pad=3, pool=4, pool_stride=2, max_norm=NORM_HIGH)),
        ("d2", Dropout(0.5)),
        ("h2", conv(in_channels=48, channels=24, pieces=p2, kernel=5, pad=3, pool=2, pool_stride=2,
                    max_norm=NORM_HIGH)),
        ("d3", Dropout(0.5)),
        ("flat", Flatten()),
        ("y", Linear(in_features=24 * size * size, out_features=10, init=init, max_norm=NORM_HIGH, rng=rng)),
    ], input_shape=(28, 28, 1))


def mnist_student(pieces="code", pooling="ceil", init=0.005, rng=None):
    """FitNet student: 16x2 k5 -> 16x2 k3 pool 4/2 -> 16x2 k5 pad 3 -> 16x2 k3 pool 4/2 (guided)
    -> 12x4 k3 pad 3 -> 12x4 k3 pool 2/2 -> softmax (108 -> 10). No dropout."""
    ceil = _check(pieces, pooling)
    p = 4 if pieces == "code" else 2
    conv = partial(MaxoutConv2d, ceil_mode=ceil, init=init, rng=rng)
    return Sequential([
        ("h0", conv(in_channels=1, channels=16, pieces=2, kernel=5, max_norm=NORM_LOW)),
        ("h1", conv(in_channels=16, channels=16, pieces=2, kernel=3, pool=4, pool_stride=2, max_norm=NORM_LOW)),
        ("h2", conv(in_channels=16, channels=16, pieces=2, kernel=5, pad=3, max_norm=NORM_HIGH)),
        ("h3", conv(in_channels=16, channels=16, pieces=2, kernel=3, pool=4, pool_stride=2, max_norm=NORM_HIGH)),
        ("h4", conv(in_channels=16, channels=12, pieces=p, kernel=3, pad=3, max_norm=NORM_HIGH)),
        ("h5", conv(in_channels=12, channels=12, pieces=p, kernel=3, pool=2, pool_stride=2, max_norm=NORM_HIGH)),
        ("flat", Flatten()),
        ("y", Linear(in_features=12 * 3 * 3, out_features=10, init=init, max_norm=NORM_HIGH, rng=rng)),
    ], input_shape=(28, 28, 1))


def describe(model, name):
    """One line: parameter counts (weights only, the paper's convention, and with biases)."""
    return (f"{name}: {model.num_parameters(weights_only=True):,} weights "
            f"({model.num_parameters():,} parameters with biases)")


def thin_guided(n_conv):
    """Name of the guided (middle) layer of ``thin_student(n_conv, ...)``."""
    return f"h{(n_conv - 1) // 2}"


def thin_student(n_conv, width, pieces=2, pooling="ceil", init=0.005, rng=None):
    """A thin maxout student with ``n_conv`` conv layers of ``width`` channels (x ``pieces``),
    all 3x3 with padding 1, then the softmax: the depth family of the paper's Fig. 2, for MNIST.

    Every depth has the same map sizes: 4x4/2 pooling after layer ``(n_conv - 1) // 2 // 2``
    (28 -> 13) and after the middle (guided) layer ``(n_conv - 1) // 2`` (13 -> 6), 2x2/2
    pooling after the last (6 -> 3); the classifier sees 3 x 3 x width. So the guided map is
    6x6 and the regressor to the teacher's 4x4 hint is a 3x3 conv at every depth. Max-norms
    as in the MNIST student (0.9 up to the first pooling, 1.9365 above)."""
    if not isinstance(n_conv, (int, np.integer)) or n_conv < 3:
        raise ValueError(f"n_conv must be an integer >= 3 (two poolings and a last layer), got {n_conv!r}")
    if not isinstance(width, (int, np.integer)) or width < 1:
        raise ValueError(f"width must be a positive integer, got {width!r}")
    ceil = _check("code", pooling)
    g = (n_conv - 1) // 2
    first_pool = g // 2
    layers, c_in = [], 1
    for i in range(n_conv):
        pool = (4, 2) if i in (first_pool, g) else (2, 2) if i == n_conv - 1 else (None, None)
        norm = NORM_LOW if i <= first_pool else NORM_HIGH
        layers.append((f"h{i}", MaxoutConv2d(in_channels=c_in, channels=width, pieces=pieces, kernel=3, pad=1,
                                             pool=pool[0], pool_stride=pool[1], ceil_mode=ceil, init=init,
                                             max_norm=norm, rng=rng)))
        c_in = width
    side = 3
    layers += [("flat", Flatten()),
               ("y", Linear(in_features=width * side * side, out_features=10, init=init, max_norm=NORM_HIGH, rng=rng))]
    return Sequential(layers, input_shape=(28, 28, 1))


def multiplications(model, until=None):
    """Multiplications per example of the conv and linear layers of a Sequential, up to and
    including layer ``until`` (one forward pass of a dummy example traces the map sizes): the
    paper's cost measure."""
    x = Tensor(np.zeros((1,) + tuple(model.input_shape), np.float32))
    total = 0
    with no_grad():
        for name in model.layer_names if until is None else model.names_until(until):
            layer = model[name]
            y = layer(x)
            for m in layer.modules():
                if isinstance(m, Conv2d):  # the first op of its layer: it sees the layer's input
                    kh, kw, cin, cout = m.W.shape
                    oh = conv_output_size(x.shape[1], kh, m.stride, m.pad)
                    ow = conv_output_size(x.shape[2], kw, m.stride, m.pad)
                    total += oh * ow * kh * kw * cin * cout
                elif isinstance(m, Linear):
                    total += m.W.shape[0] * m.W.shape[1]
            x = y
    return int(total)


def thin_width(n_conv, target, pieces=2):
    """The width of ``thin_student(n_conv, width)`` whose multiplication count is closest to
    ``target``; returns (width, count)."""
    best = None
    for w in range(1, 257):
        n = multiplications(thin_student(n_conv, w, pieces, rng=np.random.default_rng(0)))
        if best is None or abs(n - target) < abs(best[1] - target):
            best = (w, n)
        if n > target:
            break
    return best
