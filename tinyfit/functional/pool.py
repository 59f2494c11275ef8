"""Max pooling (any window and stride, floor or ceil mode) and maxout, channels-last.

Both keep, per output element, the index of the winning input (the smallest unsigned
integer type that holds the window size or piece count) so the backward pass sends each
gradient to exactly one input, the first maximum in scan order, which is the correct
subgradient at ties.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd import Function
from .window import crop, first_max_index, pad_to, pool_output_size, sweep

__all__ = ["max_pool2d", "maxout", "index_dtype"]


def index_dtype(n):
    """Smallest unsigned integer dtype that holds the indices 0 .. n-1."""
    for dt in (np.uint8, np.uint16, np.uint32):
        if n - 1 <= np.iinfo(dt).max:
            return np.dtype(dt)
    raise ValueError(f"{n} window positions or pieces is too many (at most 2**32)")


class MaxPool2d(Function):
    """y (N, OH, OW, C) = max over each kh x kw window of x (N, H, W, C)."""
    def __init__(self, kernel, stride=None, pad=0, ceil_mode=False):
        self.kh, self.kw = (kernel, kernel) if np.isscalar(kernel) else tuple(kernel)
        stride = stride if stride is not None else (self.kh, self.kw)
        self.sh, self.sw = (stride, stride) if np.isscalar(stride) else tuple(stride)
        self.pad, self.ceil_mode = int(pad), bool(ceil_mode)
        if min(self.kh, self.kw, self.sh, self.sw) < 1 or self.pad < 0:
            raise ValueError(f"max_pool2d needs kernel >= 1, stride >= 1, pad >= 0; got "
                             f"kernel={kernel}, stride={stride}, pad={pad}")
        if self.pad * 2 > min(self.kh, self.kw):
            raise ValueError(f"max_pool2d pad={pad} must be at most half the window {kernel}")

    def forward(self, x):
        if x.ndim != 4:
            raise ValueError(f"max_pool2d expects NHWC input (N, H, W, C), got shape {x.shape}")
        xp = backend.get_array_module(x)
        N, H, W, C = x.shape
        kh, kw, sh, sw, p = self.kh, self.kw, self.sh, self.sw, self.pad
        OH = pool_output_size(H, kh, sh, p, self.ceil_mode)
        OW = pool_output_size(W, kw, sw, p, self.ceil_mode)
        Hp, Wp = (OH - 1) * sh + kh, (OW - 1) * sw + kw
        # pad with -inf so padding never wins
        xpad = pad_to(x, p, (Hp, Wp), -np.inf, xp) if p or Hp > H or Wp > W else x
        he, we = sweep(OH, sh), sweep(OW, sw)
        y = xp.empty((N, OH, OW, C), dtype=x.dtype)
        idx = xp.zeros((N, OH, OW, C), dtype=index_dtype(kh * kw)) if self.recording else None
        offsets = [divmod(k, kw) for k in range(kh * kw)]

        def window(xs, k):  # the inputs at window position k of every output
            i, j = offsets[k]
            return xs[:, i:i + he:sh, j:j + we:sw, :]

        def work(lo, hi):
            xs, ys = xpad[lo:hi], y[lo:hi]
            ys[...] = window(xs, 0)
            for k in range(1, kh * kw):
                xp.maximum(ys, window(xs, k), out=ys)
            if idx is not None:  # the first window position holding the max wins
                first_max_index(idx[lo:hi], ys, lambda k: window(xs, k), kh * kw, xp)
        backend.batch_parallel(work, N, xp)
        self.idx, self.x_shape, self.pad_shape = idx, x.shape, (N, Hp, Wp, C)
        return y

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        N = self.x_shape[0]
        kh, kw, sh, sw, p = self.kh, self.kw, self.sh, self.sw, self.pad
        OH, OW = gy.shape[1:3]
        he, we = sweep(OH, sh), sweep(OW, sw)
        g = xp.zeros(self.pad_shape, dtype=gy.dtype)
        overlap = sh < kh or sw < kw

        def work(lo, hi):
            gs, gys, ids = g[lo:hi], gy[lo:hi], self.idx[lo:hi]
            part = xp.empty(gys.shape, dtype=gy.dtype)
            for k in range(kh * kw):
                i, j = divmod(k, kw)
                xp.multiply(gys, ids == k, out=part)
                if overlap:
                    gs[:, i:i + he:sh, j:j + we:sw, :] += part
                else:
                    gs[:, i:i + he:sh, j:j + we:sw, :] = part
        backend.batch_parallel(work, N, xp)
        if p == 0 and g.shape == self.x_shape:
            return g
        return crop(g, p, self.x_shape, xp)


class Maxout(Function):
    """y (..., C) = max over each group of ``pieces`` consecutive channels of x (..., C*pieces)."""
    def __init__(self, pieces):
        if not isinstance(pieces, (int, np.integer)) or pieces < 1:
            raise ValueError(f"maxout pieces must be a positive integer, got {pieces!r}")
        self.pieces = int(pieces)

    def forward(self, x):
        xp = backend.get_array_module(x)
        p = self.pieces
        if x.shape[-1] % p:
            raise ValueError(
                f"maxout: {x.shape[-1]} channels (last axis of shape {x.shape}) cannot be split "
                f"into groups of pieces={p}; the channel count must be a multiple of pieces.")
        self.x_shape = x.shape
        xg = x.reshape(x.shape[:-1] + (x.shape[-1] // p, p))
        if p == 1:
            self.idx = None
            return xg[..., 0].copy()
        y = xp.empty(xg.shape[:-1], dtype=x.dtype)
        # which piece won: a bool for 2 pieces, else an index (ties go to the first piece)
        idx = None
        if self.recording:
            idx = xp.empty(y.shape, dtype=bool if p == 2 else index_dtype(p))

        def work(lo, hi):
            xs, ys = xg[lo:hi], y[lo:hi]
            xp.maximum(xs[..., 0], xs[..., 1], out=ys)
            if idx is None:
                for k in range(2, p):
                    xp.maximum(ys, xs[..., k], out=ys)
                return
            ids = idx[lo:hi]
            if p == 2:
                xp.greater(xs[..., 1], xs[..., 0], out=ids)
                return
            ids[...] = 0
            for k in range(2, p):
                xp.maximum(ys, xs[..., k], out=ys)
            first_max_index(ids, ys, lambda k: xs[..., k], p, xp)
        if x.ndim > 1:
            backend.batch_parallel(work, x.shape[0], xp)
        else:
            work(0, None)
        self.idx = idx
        return y

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        p = self.pieces
        if p == 1:
            return gy.reshape(self.x_shape)
        g = xp.empty(gy.shape + (p,), dtype=gy.dtype)

        def work(lo, hi):
            gs, gys, ids = g[lo:hi], gy[lo:hi], self.idx[lo:hi]
            if p == 2:
                xp.multiply(gys, ~ids, out=gs[..., 0])
                xp.multiply(gys, ids, out=gs[..., 1])
                return
            for k in range(p):
                xp.multiply(gys, ids == k, out=gs[..., k])
        if gy.ndim > 0:
            backend.batch_parallel(work, gy.shape[0], xp)
        else:
            work(0, None)
        return g.reshape(self.x_shape)


def max_pool2d(x, kernel, stride=None, pad=0, ceil_mode=False):
    """Max pooling of NHWC ``x``; stride defaults to the kernel (non-overlapping)."""
    return MaxPool2d(kernel, stride, pad, ceil_mode)(x)


def maxout(x, pieces):
    """Maxout over the last (channel) axis: groups of ``pieces`` consecutive channels."""
    return Maxout(pieces)(x)
