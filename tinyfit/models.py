"""The paper's MNIST teacher (a maxout convnet) and thin, deep FitNet student.

Both follow ../shared/fitnets_reference.md, section 2. ``pieces='code'`` uses the
official code's piece counts (4 in the upper layers), ``pieces='paper'`` the
paper's text (2 everywhere). ``pooling='ceil'`` is the code's pooling size rule;
'floor' changes only the teacher's map sizes. Images are NHWC (N, 28, 28, 1).
Biases are tied (one per channel); the official code used one per position.
"""
from __future__ import annotations

from .nn import Dropout, Flatten, Linear, MaxoutConv2d, Sequential

__all__ = ["mnist_teacher", "mnist_student", "TEACHER_HINT", "STUDENT_GUIDED", "describe"]

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
    return Sequential([
        ("d0", Dropout(0.2)),
        ("h0", MaxoutConv2d(1, 48, 2, 8, 0, 4, 2, ceil, init, NORM_LOW, rng)),
        ("d1", Dropout(0.5)),
        ("h1", MaxoutConv2d(48, 48, 2, 8, 3, 4, 2, ceil, init, NORM_HIGH, rng)),
        ("d2", Dropout(0.5)),
        ("h2", MaxoutConv2d(48, 24, p2, 5, 3, 2, 2, ceil, init, NORM_HIGH, rng)),
        ("d3", Dropout(0.5)),
        ("flat", Flatten()),
        ("y", Linear(24 * size * size, 10, init, NORM_HIGH, rng=rng)),
    ], input_shape=(28, 28, 1))


def mnist_student(pieces="code", pooling="ceil", init=0.005, rng=None):
    """FitNet student: 16x2 k5 -> 16x2 k3 pool 4/2 -> 16x2 k5 pad 3 -> 16x2 k3 pool 4/2 (guided)
    -> 12x4 k3 pad 3 -> 12x4 k3 pool 2/2 -> softmax (108 -> 10). No dropout."""
    ceil = _check(pieces, pooling)
    p = 4 if pieces == "code" else 2
    return Sequential([
        ("h0", MaxoutConv2d(1, 16, 2, 5, 0, None, None, ceil, init, NORM_LOW, rng)),
        ("h1", MaxoutConv2d(16, 16, 2, 3, 0, 4, 2, ceil, init, NORM_LOW, rng)),
        ("h2", MaxoutConv2d(16, 16, 2, 5, 3, None, None, ceil, init, NORM_HIGH, rng)),
        ("h3", MaxoutConv2d(16, 16, 2, 3, 0, 4, 2, ceil, init, NORM_HIGH, rng)),
        ("h4", MaxoutConv2d(16, 12, p, 3, 3, None, None, ceil, init, NORM_HIGH, rng)),
        ("h5", MaxoutConv2d(12, 12, p, 3, 0, 2, 2, ceil, init, NORM_HIGH, rng)),
        ("flat", Flatten()),
        ("y", Linear(12 * 3 * 3, 10, init, NORM_HIGH, rng=rng)),
    ], input_shape=(28, 28, 1))


def describe(model, name):
    """One line: parameter counts (weights only, the paper's convention, and with biases)."""
    return (f"{name}: {model.num_parameters(weights_only=True):,} weights "
            f"({model.num_parameters():,} parameters with biases)")
