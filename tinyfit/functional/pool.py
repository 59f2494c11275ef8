"""Max pooling (any window and stride, floor or ceil mode) and maxout, channels-last.

Both keep, per output element, the index of the winning input (uint8) so the
backward pass sends each gradient to exactly one input, the first maximum in
scan order, which is the correct subgradient at ties.
"""
from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..autograd import Function

__all__ = ["max_pool2d", "maxout", "pool_output_size"]


def pool_output_size(size, k, stride, pad=0, ceil_mode=False):
    """Output length of a pooling window ``k``/``stride`` over ``size`` (+2*pad).

    ceil mode lets the last window hang over the edge (as the paper's code does)
    but never start beyond the input: ceil((size + 2 pad - k) / stride) + 1.
    """
    span = size + 2 * pad - k
    if span < 0:
        raise ValueError(
            f"pooling window {k} is larger than the padded input {size + 2 * pad}; "
            "use a smaller window or pool an earlier, larger feature map.")
    if not ceil_mode:
        return span // stride + 1
    out = math.ceil(span / stride) + 1
    if (out - 1) * stride >= size + pad:  # last window would start in the right padding
        out -= 1
    return out


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
        if p or Hp > H or Wp > W:  # pad with -inf so padding never wins
            xpad = xp.full((N, Hp, Wp, C), -np.inf, dtype=x.dtype)
            h, w = min(H, Hp - p), min(W, Wp - p)
            xpad[:, p:p + h, p:p + w, :] = x[:, :h, :w, :]
        else:
            xpad = x
        he, we = sh * (OH - 1) + 1, sw * (OW - 1) + 1
        y = xpad[:, 0:he:sh, 0:we:sw, :].copy()
        idx = xp.zeros(y.shape, dtype=np.uint8)
        better = xp.empty(y.shape, dtype=bool)
        # branch-free updates: masked copies are slow on random masks
        for k in range(1, kh * kw):
            i, j = divmod(k, kw)
            v = xpad[:, i:i + he:sh, j:j + we:sw, :]
            xp.greater(v, y, out=better)
            xp.maximum(y, v, out=y)
            idx = xp.where(better, np.uint8(k), idx)
        self.idx, self.x_shape, self.pad_shape = idx, x.shape, (N, Hp, Wp, C)
        return y

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        N, H, W, C = self.x_shape
        kh, kw, sh, sw, p = self.kh, self.kw, self.sh, self.sw, self.pad
        OH, OW = gy.shape[1:3]
        he, we = sh * (OH - 1) + 1, sw * (OW - 1) + 1
        g = xp.zeros(self.pad_shape, dtype=gy.dtype)
        overlap = sh < kh or sw < kw
        hit = xp.empty(gy.shape, dtype=bool)
        part = xp.empty(gy.shape, dtype=gy.dtype)
        for k in range(kh * kw):
            i, j = divmod(k, kw)
            xp.equal(self.idx, k, out=hit)
            xp.multiply(gy, hit, out=part)
            if overlap:
                g[:, i:i + he:sh, j:j + we:sw, :] += part
            else:
                g[:, i:i + he:sh, j:j + we:sw, :] = part
        if g.shape == self.x_shape:
            return g
        h, w = min(H, self.pad_shape[1] - p), min(W, self.pad_shape[2] - p)
        out = xp.zeros(self.x_shape, dtype=gy.dtype) if (h, w) != (H, W) else None
        if out is None:
            return xp.ascontiguousarray(g[:, p:p + H, p:p + W, :])
        out[:, :h, :w, :] = g[:, p:p + h, p:p + w, :]
        return out


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
        # branch-free: elementwise maximum, and the winning piece's index
        y = xp.maximum(xg[..., 0], xg[..., 1])
        idx = xp.greater(xg[..., 1], xg[..., 0]).view(np.uint8) if p == 2 else \
            xp.greater(xg[..., 1], xg[..., 0]).astype(np.uint8)
        for k in range(2, p):
            v = xg[..., k]
            idx = xp.where(v > y, np.uint8(k), idx)
            xp.maximum(y, v, out=y)
        self.idx = idx
        return y

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        p = self.pieces
        if p == 1:
            return gy.reshape(self.x_shape)
        g = xp.empty(gy.shape + (p,), dtype=gy.dtype)
        for k in range(p):
            xp.multiply(gy, self.idx == k, out=g[..., k])
        return g.reshape(self.x_shape)


def max_pool2d(x, kernel, stride=None, pad=0, ceil_mode=False):
    """Max pooling of NHWC ``x``; stride defaults to the kernel (non-overlapping)."""
    return MaxPool2d(kernel, stride, pad, ceil_mode)(x)


def maxout(x, pieces):
    """Maxout over the last (channel) axis: groups of ``pieces`` consecutive channels."""
    return Maxout(pieces)(x)
