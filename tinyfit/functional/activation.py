"""ReLU, dropout, and softmax / log-softmax with temperature (along the last axis)."""
from __future__ import annotations

import numpy as np

from .. import backend
from .. import random as _random
from ..autograd import Function

__all__ = ["relu", "dropout", "softmax", "log_softmax", "check_temperature", "soften"]


def check_temperature(T):
    if not np.isscalar(T) or not np.isfinite(T) or T <= 0:
        raise ValueError(f"temperature must be a finite number > 0, got {T!r}; the paper uses tau=3.")
    return float(T)


def soften(x, T):
    """x / T in x's dtype (no copy when T == 1): the logits a temperature softmax sees."""
    return x / x.dtype.type(T) if T != 1 else x


class ReLU(Function):
    def forward(self, x):
        self.mask = x > 0
        return x * self.mask

    def backward(self, gy):
        return gy * self.mask


class Dropout(Function):
    """Inverted dropout: zero each element with probability p, scale the rest by 1/(1-p)."""
    def __init__(self, p, rng):
        self.p, self.rng = p, rng

    def forward(self, x):
        xp = backend.get_array_module(x)
        keep = _random.uniform_like(self.rng, xp, x.shape, x.dtype) >= self.p
        self.scale = keep * x.dtype.type(1.0 / (1.0 - self.p))
        return x * self.scale

    def backward(self, gy):
        return gy * self.scale


def _log_softmax(z, xp):
    z = z - z.max(axis=-1, keepdims=True)
    return z - xp.log(xp.exp(z).sum(axis=-1, keepdims=True))


class Softmax(Function):
    """y = softmax(x / T) over the last axis."""
    def __init__(self, T=1.0):
        self.T = check_temperature(T)

    def forward(self, x):
        xp = backend.get_array_module(x)
        z = soften(x, self.T)
        e = xp.exp(z - z.max(axis=-1, keepdims=True))
        self.y = e / e.sum(axis=-1, keepdims=True)
        return self.y

    def backward(self, gy):
        y = self.y
        return y * (gy - (gy * y).sum(axis=-1, keepdims=True)) / y.dtype.type(self.T)


class LogSoftmax(Function):
    """y = log softmax(x / T) over the last axis (stable for large logits)."""
    def __init__(self, T=1.0):
        self.T = check_temperature(T)

    def forward(self, x):
        xp = backend.get_array_module(x)
        z = soften(x, self.T)
        self.y = _log_softmax(z, xp)
        return self.y

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        p = xp.exp(self.y)
        return (gy - p * gy.sum(axis=-1, keepdims=True)) / gy.dtype.type(self.T)


def relu(x):
    return ReLU()(x)


def check_dropout(p):
    """The drop probability ``p``, checked: a number in [0, 1)."""
    if not np.isscalar(p) or not 0 <= p < 1:
        raise ValueError(f"dropout probability must be in [0, 1), got {p!r}")
    return float(p)


def dropout(x, p=0.5, training=True, rng=None):
    """Drop with probability ``p`` when training; identity otherwise."""
    check_dropout(p)
    if not training or p == 0:
        return x
    return Dropout(p, rng or _random.default_generator())(x)


def softmax(x, T=1.0):
    return Softmax(T)(x)


def log_softmax(x, T=1.0):
    return LogSoftmax(T)(x)
