"""Window geometry shared by convolution and pooling (channels-last maps (N, H, W, C)):
output sizes, the extent a strided window sweep covers, the outputs a kernel offset
reaches inside the input, padding and cropping.
"""
from __future__ import annotations

import math

__all__ = ["conv_output_size", "pool_output_size", "sweep", "inside", "pad_to", "pad_into", "crop"]


def conv_output_size(size, k, stride, pad):
    """Output length of a convolution: floor((size + 2 pad - k) / stride) + 1."""
    return (size + 2 * pad - k) // stride + 1


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


def sweep(out, stride):
    """Length of the slice ``start:start + sweep(out, stride):stride`` that yields the ``out``
    positions of one kernel offset."""
    return stride * (out - 1) + 1


def inside(k, n_out, size, stride, pad):
    """Outputs [lo, hi) whose kernel offset ``k`` lands inside the input (not the padding),
    and the input index of the first: output o reads input o*stride + k - pad."""
    lo = max(0, -((k - pad) // stride))
    hi = min(n_out, (size - 1 + pad - k) // stride + 1)
    return lo, hi, lo * stride + k - pad


def pad_to(x, pad, shape, value, xp):
    """x (N, H, W, C) placed at offset (pad, pad) of a new (N, Hp, Wp, C) buffer filled with
    ``value``; the rows and columns of x beyond the buffer are dropped."""
    N, H, W, C = x.shape
    return pad_into(xp.full((N, shape[0], shape[1], C), value, dtype=x.dtype), x, pad)


def pad_into(out, x, pad):
    """``pad_to`` into an existing buffer ``out`` (N, Hp, Wp, C) whose border already holds the
    padding value: only x's part is written. Returns out."""
    H, W = x.shape[1:3]
    h, w = min(H, out.shape[1] - pad), min(W, out.shape[2] - pad)
    out[:, pad:pad + h, pad:pad + w, :] = x[:, :h, :w, :]
    return out


def crop(g, pad, shape, xp):
    """The adjoint of ``pad_to``: g (N, Hp, Wp, C) -> (N, H, W, C) = shape; positions of x
    that ``pad_to`` dropped get zeros."""
    N, H, W, C = shape
    h, w = min(H, g.shape[1] - pad), min(W, g.shape[2] - pad)
    if (h, w) == (H, W):
        return xp.ascontiguousarray(g[:, pad:pad + H, pad:pad + W, :])
    out = xp.zeros(shape, dtype=g.dtype)
    out[:, :h, :w, :] = g[:, pad:pad + h, pad:pad + w, :]
    return out
