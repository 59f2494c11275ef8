"""Elementwise arithmetic, reductions and shape ops.

Each op is a Function subclass (forward and backward side by side) plus a
lower-case function that users call. Shapes follow NumPy broadcasting; the
backward of a broadcasting op sums the gradient back to each input's shape.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd import Function, Tensor, as_tensor

__all__ = [
    "add", "sub", "mul", "div", "neg", "pow", "exp", "log", "sqrt", "matmul",
    "reshape", "transpose", "sum", "mean", "max", "broadcast_to", "getitem",
    "concatenate", "sum_to", "linear", "flatten",
]


def sum_to(g, shape):
    """Sum array ``g`` down to ``shape`` (the adjoint of broadcasting)."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, s in enumerate(shape) if s == 1 and g.shape[i + lead] != 1)
    g = g.sum(axis=axes, keepdims=True)
    if lead:
        g = g.reshape(g.shape[lead:])
    return g


def _pair(a, b):
    if isinstance(a, Tensor):
        return a, as_tensor(b, like=a)
    b = as_tensor(b)
    return as_tensor(a, like=b), b


class Add(Function):
    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a + b

    def backward(self, gy):
        sa, sb = self.shapes
        return (sum_to(gy, sa) if self.needs_grad[0] else None,
                sum_to(gy, sb) if self.needs_grad[1] else None)


class Sub(Function):
    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a - b

    def backward(self, gy):
        sa, sb = self.shapes
        return (sum_to(gy, sa) if self.needs_grad[0] else None,
                sum_to(-gy, sb) if self.needs_grad[1] else None)


class Mul(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, gy):
        a, b = self.a, self.b
        return (sum_to(gy * b, a.shape) if self.needs_grad[0] else None,
                sum_to(gy * a, b.shape) if self.needs_grad[1] else None)


class Div(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a / b

    def backward(self, gy):
        a, b = self.a, self.b
        ga = sum_to(gy / b, a.shape) if self.needs_grad[0] else None
        gb = sum_to(-gy * a / (b * b), b.shape) if self.needs_grad[1] else None
        return ga, gb


class ScaleShift(Function):
    """a * c + d for Python numbers c, d (no array is made for the constants)."""
    def __init__(self, c=1.0, d=0.0):
        self.c, self.d = c, d

    def forward(self, a):
        t = a.dtype.type
        y = a * t(self.c) if self.c != 1 else a.copy()
        if self.d:
            y += t(self.d)
        return y

    def backward(self, gy):
        return gy * gy.dtype.type(self.c) if self.c != 1 else gy


class Neg(Function):
    def forward(self, a):
        return -a

    def backward(self, gy):
        return -gy


class Pow(Function):
    """x ** c for a constant exponent c."""
    def __init__(self, c):
        self.c = c

    def forward(self, a):
        self.a = a
        return a ** self.c

    def backward(self, gy):
        c = self.c
        return gy * (c * self.a ** (c - 1))


class Exp(Function):
    def forward(self, a):
        self.y = backend.get_array_module(a).exp(a)
        return self.y

    def backward(self, gy):
        return gy * self.y


class Log(Function):
    def forward(self, a):
        self.a = a
        return backend.get_array_module(a).log(a)

    def backward(self, gy):
        return gy / self.a


class Sqrt(Function):
    def forward(self, a):
        self.y = backend.get_array_module(a).sqrt(a)
        return self.y

    def backward(self, gy):
        return gy / (2 * self.y)


class MatMul(Function):
    """(n, k) @ (k, m) -> (n, m): 2-D operands only (reshape a batch of matrices first)."""
    def forward(self, a, b):
        if a.ndim < 1 or b.ndim < 1 or a.shape[-1] != b.shape[0 if b.ndim == 1 else -2]:
            raise ValueError(
                f"matmul shapes do not match: {a.shape} @ {b.shape}; the last axis of the "
                "first operand must equal the second-to-last axis of the second.")
        if a.ndim != 2 or b.ndim != 2:
            raise ValueError(f"matmul takes 2-D operands here, got {a.shape} @ {b.shape}; reshape first.")
        self.a, self.b = a, b
        return a @ b

    def backward(self, gy):
        ga = gy @ self.b.T if self.needs_grad[0] else None
        gb = self.a.T @ gy if self.needs_grad[1] else None
        return ga, gb


class Reshape(Function):
    def __init__(self, shape):
        self.shape = shape

    def forward(self, a):
        self.in_shape = a.shape
        return a.reshape(self.shape)

    def backward(self, gy):
        return gy.reshape(self.in_shape)


class Transpose(Function):
    def __init__(self, axes=None):
        self.axes = axes

    def forward(self, a):
        return a.transpose(self.axes)

    def backward(self, gy):
        if self.axes is None:
            return gy.transpose()
        return gy.transpose(np.argsort(self.axes))


def _norm_axis(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axis = (axis,) if isinstance(axis, int) else tuple(axis)
    return tuple(a % ndim for a in axis)


def _expand(g, in_shape, axes):
    """Re-insert reduced axes of size 1 so ``g`` broadcasts against the input."""
    shape = tuple(1 if i in axes else s for i, s in enumerate(in_shape))
    return g.reshape(shape)


class Sum(Function):
    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, a):
        self.in_shape = a.shape
        return a.sum(axis=self.axis, keepdims=self.keepdims)

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        axes = _norm_axis(self.axis, len(self.in_shape))
        return xp.broadcast_to(_expand(gy, self.in_shape, axes), self.in_shape)


class Mean(Sum):
    def forward(self, a):
        self.in_shape = a.shape
        return a.mean(axis=self.axis, keepdims=self.keepdims)

    def backward(self, gy):
        axes = _norm_axis(self.axis, len(self.in_shape))
        n = int(np.prod([self.in_shape[i] for i in axes]))
        return super().backward(gy / n)


class Max(Function):
    """Max over axes; the gradient goes to one maximal element per reduction (the first)."""
    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, a):
        xp = backend.get_array_module(a)
        axes = _norm_axis(self.axis, a.ndim)
        self.in_shape = a.shape
        # move reduced axes last and flatten them so argmax picks one winner
        keep = [i for i in range(a.ndim) if i not in axes]
        moved = a.transpose(keep + list(axes))
        flat = moved.reshape(moved.shape[:len(keep)] + (-1,))
        self.arg = flat.argmax(axis=-1)
        self.perm = keep + list(axes)
        y = xp.take_along_axis(flat, self.arg[..., None], axis=-1)[..., 0]
        if self.keepdims:
            y = _expand(y, a.shape, axes)
        return y

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        axes = _norm_axis(self.axis, len(self.in_shape))
        keep_shape = tuple(self.in_shape[i] for i in range(len(self.in_shape)) if i not in axes)
        red = int(np.prod([self.in_shape[i] for i in axes]))
        onehot = xp.arange(red) == self.arg[..., None]
        g = (onehot * gy.reshape(keep_shape + (1,))).reshape(tuple(self.in_shape[i] for i in self.perm))
        return g.transpose(np.argsort(self.perm))


class BroadcastTo(Function):
    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, a):
        self.in_shape = a.shape
        return backend.get_array_module(a).broadcast_to(a, self.shape)

    def backward(self, gy):
        return sum_to(gy, self.in_shape)


class GetItem(Function):
    """Basic indexing (ints, slices, Ellipsis, None)."""
    def __init__(self, index):
        self.index = index

    def forward(self, a):
        self.in_shape, self.dtype = a.shape, a.dtype
        return a[self.index]

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        g = xp.zeros(self.in_shape, dtype=gy.dtype)
        g[self.index] = gy
        return g


class Concatenate(Function):
    def __init__(self, axis=0):
        self.axis = axis

    def forward(self, *arrays):
        xp = backend.get_array_module(*arrays)
        self.sizes = [a.shape[self.axis] for a in arrays]
        return xp.concatenate(arrays, axis=self.axis)

    def backward(self, gy):
        bounds = np.cumsum(self.sizes)[:-1]
        xp = backend.get_array_module(gy)
        parts = xp.split(gy, bounds, axis=self.axis)
        return tuple(p if need else None for p, need in zip(parts, self.needs_grad))


class Linear(Function):
    """y = x @ W + b with x (N, in), W (in, out), b (out,) or None."""
    def forward(self, x, W, b=None):
        if x.ndim != 2 or W.ndim != 2 or x.shape[1] != W.shape[0]:
            raise ValueError(
                f"linear: input of shape {x.shape} does not match weight {W.shape}; expected "
                f"(N, {W.shape[0]}) inputs (flatten the features first).")
        self.x, self.W = x, W
        y = x @ W
        if b is not None:
            y += b
        return y

    def backward(self, gy):
        gx = gy @ self.W.T if self.needs_grad[0] else None
        gW = self.x.T @ gy if self.needs_grad[1] else None
        if len(self.needs_grad) == 3:
            return gx, gW, gy.sum(axis=0) if self.needs_grad[2] else None
        return gx, gW


# ---- user-facing functions ------------------------------------------------
def _num(v):
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def add(a, b):
    if isinstance(a, Tensor) and _num(b):
        return ScaleShift(1.0, b)(a)
    if isinstance(b, Tensor) and _num(a):
        return ScaleShift(1.0, a)(b)
    return Add()(*_pair(a, b))


def sub(a, b):
    if isinstance(a, Tensor) and _num(b):
        return ScaleShift(1.0, -b)(a)
    if isinstance(b, Tensor) and _num(a):
        return ScaleShift(-1.0, a)(b)
    return Sub()(*_pair(a, b))


def mul(a, b):
    if isinstance(a, Tensor) and _num(b):
        return ScaleShift(b)(a)
    if isinstance(b, Tensor) and _num(a):
        return ScaleShift(a)(b)
    return Mul()(*_pair(a, b))


def div(a, b):
    if isinstance(a, Tensor) and _num(b):
        return ScaleShift(1.0 / b)(a)
    return Div()(*_pair(a, b))
def neg(a): return Neg()(a)
def pow(a, c):
    if isinstance(c, Tensor):
        raise TypeError("pow takes a constant exponent (a Python number); use exp(c * log(a)) for a tensor exponent")
    return Pow(c)(a)
def exp(a): return Exp()(a)
def log(a): return Log()(a)
def sqrt(a): return Sqrt()(a)
def matmul(a, b): return MatMul()(*_pair(a, b))
def reshape(a, shape): return Reshape(tuple(shape))(a)
def transpose(a, axes=None): return Transpose(None if axes is None else tuple(axes))(a)
def sum(a, axis=None, keepdims=False): return Sum(axis, keepdims)(a)
def mean(a, axis=None, keepdims=False): return Mean(axis, keepdims)(a)
def max(a, axis=None, keepdims=False): return Max(axis, keepdims)(a)
def broadcast_to(a, shape): return BroadcastTo(shape)(a)
def getitem(a, index): return GetItem(index)(a)
def concatenate(tensors, axis=0): return Concatenate(axis)(*tensors)
def flatten(x):
    """(N, ...) -> (N, prod(...))."""
    return reshape(x, (x.shape[0], -1))


def linear(x, W, b=None):
    """x (N, in) @ W (in, out) + b (out,)."""
    return Linear()(x, W) if b is None else Linear()(x, W, b)


def _install_operators():
    T = Tensor
    T.__add__ = lambda a, b: add(a, b)
    T.__radd__ = lambda a, b: add(b, a)
    T.__sub__ = lambda a, b: sub(a, b)
    T.__rsub__ = lambda a, b: sub(b, a)
    T.__mul__ = lambda a, b: mul(a, b)
    T.__rmul__ = lambda a, b: mul(b, a)
    T.__truediv__ = lambda a, b: div(a, b)
    T.__rtruediv__ = lambda a, b: div(b, a)
    T.__neg__ = lambda a: neg(a)
    T.__pow__ = lambda a, c: pow(a, c)
    T.__matmul__ = lambda a, b: matmul(a, b)
    T.__getitem__ = lambda a, i: getitem(a, i)
    one = lambda args: len(args) == 1 and isinstance(args[0], (tuple, list))  # x.reshape((2, 3)) or (2, 3)
    T.reshape = lambda a, *shape: reshape(a, shape[0] if one(shape) else shape)
    T.transpose = lambda a, *axes: transpose(a, axes[0] if one(axes) else (axes or None))
    T.T = property(lambda a: transpose(a))
    T.sum = lambda a, axis=None, keepdims=False: sum(a, axis, keepdims)
    T.mean = lambda a, axis=None, keepdims=False: mean(a, axis, keepdims)
    T.max = lambda a, axis=None, keepdims=False: max(a, axis, keepdims)
    T.exp = lambda a: exp(a)
    T.log = lambda a: log(a)
    T.sqrt = lambda a: sqrt(a)


_install_operators()
