"""Max pooling (any window and stride, floor or ceil mode) and maxout, channels-last.

Both keep, per output element (per step, where pooling is separable), which candidate won
(a bool for two, else the smallest unsigned integer type that holds the count), chosen by
_select_max and routed back by _route, so the backward pass sends each gradient to exactly
one input, the first maximum in scan order, which is the correct subgradient at ties.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import backend
from ..autograd import Function
from .window import crop, pad_into, pool_output_size, sweep

__all__ = ["max_pool2d", "maxout", "index_dtype"]


def index_dtype(n):
    """Smallest unsigned integer dtype that holds the indices 0 .. n-1."""
    for dt in (np.uint8, np.uint16, np.uint32):
        if n - 1 <= np.iinfo(dt).max:
            return np.dtype(dt)
    raise ValueError(f"{n} window positions or pieces is too many (at most 2**32)")


def _along(ndim, axis, start, stop, step=1):
    """Index selecting start:stop:step along ``axis`` of an ndim-array."""
    sl = [slice(None)] * ndim
    sl[axis] = slice(start, stop, step)
    return tuple(sl)


def _select_max(parts, out, idx, xp):
    """out = elementwise max of ``parts`` (same-shape arrays); idx (if not None) = the first
    part holding it (a bool for two parts). A part takes over only where it is strictly
    greater than the maximum so far, so at ties the earliest part keeps it."""
    if len(parts) == 1:
        out[...] = parts[0]
        if idx is not None:
            idx[...] = 0
        return
    if idx is not None:
        xp.greater(parts[1], parts[0], out=idx)
    xp.maximum(parts[0], parts[1], out=out)
    for k, p in enumerate(parts[2:], 2):
        if idx is not None:
            xp.copyto(idx, idx.dtype.type(k), where=p > out)
        xp.maximum(out, p, out=out)


def _route(g, idx, n, parts, xp):
    """The adjoint of _select_max: part k (a view of the input gradient) gets g where idx
    picked k, else 0. Two parts: g * idx and its complement g - g * idx (both exact)."""
    if n == 1:
        parts[0][...] = g
        return
    if n == 2:
        xp.multiply(g, idx, out=parts[1])
        xp.subtract(g, parts[1], out=parts[0])
        return
    for k in range(n):
        xp.multiply(g, idx == k, out=parts[k])


class _AxisMax:
    """Sliding max along one axis of windows k = r * s with stride s, in two steps that
    share work between overlapping windows: the max of each block of s consecutive
    positions, then the max of r consecutive blocks (4/2 pooling: pairs, then pairs of
    pairs). First-maximum bookkeeping in each step gives the first maximum along the
    axis, so two such passes (columns, then rows) pick the first maximum of the 2-D
    window in row-major scan order, as the direct sweep does."""
    def __init__(self, axis, k, s, n_out):
        self.axis, self.s, self.r, self.n_out = axis, s, k // s, n_out
        self.nb = n_out - 1 + self.r  # blocks covered

    def shapes(self, shape):
        """(block maxima shape or None, output shape) for an input of ``shape``."""
        blocks = list(shape)
        blocks[self.axis] = self.nb
        out = list(shape)
        out[self.axis] = self.n_out
        return (tuple(blocks) if self.s > 1 and self.r > 1 else None), tuple(out)

    def forward(self, x, blocks, out, block_winners, window_winners, xp):
        a, s, r, nb, n = self.axis, self.s, self.r, self.nb, self.n_out
        idx_b, idx_w = block_winners, window_winners
        if s > 1:
            b = blocks if r > 1 else out
            full = self._full(x.shape[a])
            _select_max([x[_along(x.ndim, a, j, j + s * (full - 1) + 1, s)] for j in range(s)],
                        b[_along(x.ndim, a, 0, full)], _slice_or_none(idx_b, a, 0, full), xp)
            if full < nb:  # ceil mode: the last block hangs over the end, only its first positions exist
                rest = [x[_along(x.ndim, a, j, j + 1)] for j in range(s * full, x.shape[a])]
                _select_max(rest, b[_along(x.ndim, a, full, nb)], _slice_or_none(idx_b, a, full, nb), xp)
        else:
            b = x
        if r > 1:
            _select_max([b[_along(x.ndim, a, t, t + n)] for t in range(r)], out, idx_w, xp)
        elif s == 1:  # a window of one position along this axis
            out[...] = x

    def _full(self, length):
        """Blocks wholly inside an input of ``length`` (all nb, or one fewer in ceil mode,
        where the last window may hang fewer than s positions over the end)."""
        return min(self.nb, length // self.s)

    def backward(self, gy, in_shape, block_winners, window_winners, xp):
        a, s, r, nb, n = self.axis, self.s, self.r, self.nb, self.n_out
        idx_b, idx_w = block_winners, window_winners
        nd = gy.ndim
        gb = gy
        if r > 1:  # overlapping windows: a block's gradient sums over the windows it won
            shape = list(gy.shape)
            shape[a] = nb
            gb = xp.empty(shape, dtype=gy.dtype)
            parts = [xp.empty_like(gy) for _ in range(r)]
            _route(gy, idx_w, r, parts, xp)
            gb[_along(nd, a, 0, n)] = parts[0]
            gb[_along(nd, a, n, nb)] = 0
            for t in range(1, r):
                gb[_along(nd, a, t, t + n)] += parts[t]
        if s == 1:
            return gb
        g = xp.empty(in_shape, dtype=gy.dtype)
        full = self._full(in_shape[a])
        _route(gb[_along(nd, a, 0, full)], _slice_or_none(idx_b, a, 0, full), s,
               [g[_along(nd, a, j, j + s * (full - 1) + 1, s)] for j in range(s)], xp)
        if full < nb:
            last = _along(nd, a, full, nb)
            parts = [g[_along(nd, a, j, j + 1)] for j in range(s * full, in_shape[a])]
            _route(gb[last], _slice_or_none(idx_b, a, full, nb), len(parts), parts, xp)
        return g


def _slice_or_none(a, axis, start, stop):
    """a[..., start:stop, ...] along ``axis``, or None for a buffer a step does not use."""
    return None if a is None else a[_along(a.ndim, axis, start, stop)]


def _index(shape, n, xp):
    return xp.empty(shape, dtype=bool if n == 2 else index_dtype(n))


@dataclass
class _Step:
    """One _AxisMax step of separable pooling and its buffers: the block maxima, the output,
    and (when a graph is recorded) which position won each block and which block each window."""
    axis_max: _AxisMax
    in_shape: tuple
    blocks: object
    out: object
    block_winners: object
    window_winners: object

    def buffers(self):
        return self.blocks, self.out, self.block_winners, self.window_winners


POOL_PATHS = ("separable", "separable, padded", "sweep", "sweep, padded")   # MaxPool2d.path, each tested
MAXOUT_PATHS = ("one piece", "two pieces", "more pieces")                   # Maxout.path, each tested


class MaxPool2d(Function):
    """y (N, OH, OW, C) = max over each kh x kw window of x (N, H, W, C).

    Windows that are a whole number of strides long (4/2, 2/2, 3/1, ...) are pooled
    separably, columns then rows (_AxisMax); others by a sweep over the kh*kw window
    positions. Both send each output's gradient to the first maximum of its window in
    row-major scan order. After planning, ``path`` says which of POOL_PATHS was taken."""
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
        self.x_shape = x.shape
        return self.planned(x.shape, x.dtype, backend.get_array_module(x), self.recording)(x)

    def planned(self, x_shape, dtype, xp, record=False):
        """This pooling for inputs of ``x_shape`` (N, H, W, C): a function x -> y (N, OH, OW, C)
        whose buffers (the padded input, each step's maxima, and with ``record`` the winners that
        backward reads) are allocated here, once; each call overwrites them and returns the
        same output buffer. The op's forward plans once per call; ``tinyfit.predictor`` once."""
        N, H, W, C = x_shape
        kh, kw, sh, sw, p = self.kh, self.kw, self.sh, self.sw, self.pad
        OH = pool_output_size(H, kh, sh, p, self.ceil_mode)
        OW = pool_output_size(W, kw, sw, p, self.ceil_mode)
        Hp, Wp = (OH - 1) * sh + kh, (OW - 1) * sw + kw
        self.separable = kh % sh == 0 and kw % sw == 0 and kh * kw > 1
        if self.separable and p == 0:  # a last window hanging over the edge is handled there
            self.path = "separable"
            self.pad_shape = (N, min(H, Hp), min(W, Wp), C)
            steps = self._separable_steps(OH, OW, dtype, xp, record)
            return lambda x: self._separable_forward(x[:, :Hp, :Wp], steps, xp)
        # pad with -inf so padding never wins; the border is written once
        self.pad_shape = (N, Hp, Wp, C)
        xpad = xp.full(self.pad_shape, -np.inf, dtype=dtype) if p or Hp > H or Wp > W else None
        padded = (lambda x: pad_into(xpad, x, p)) if xpad is not None else (lambda x: x)
        self.path = ("separable" if self.separable else "sweep") + (", padded" if xpad is not None else "")
        if self.separable:
            steps = self._separable_steps(OH, OW, dtype, xp, record)
            return lambda x: self._separable_forward(padded(x), steps, xp)
        y = xp.empty((N, OH, OW, C), dtype=dtype)
        self.winners = xp.empty((N, OH, OW, C), dtype=index_dtype(kh * kw)) if record else None
        return lambda x, winners=self.winners: self._sweep_forward(padded(x), y, winners, xp)

    def _sweep_forward(self, xpad, y, winners, xp):
        """Any window: the max over the kh*kw window positions, each a strided view."""
        kh, kw, sh, sw = self.kh, self.kw, self.sh, self.sw
        OH, OW = y.shape[1:3]
        he, we = sweep(OH, sh), sweep(OW, sw)
        offsets = [divmod(k, kw) for k in range(kh * kw)]

        def window(xs, k):  # the inputs at window position k of every output
            i, j = offsets[k]
            return xs[:, i:i + he:sh, j:j + we:sw, :]

        def work(lo, hi):
            xs = xpad[lo:hi]
            _select_max([window(xs, k) for k in range(kh * kw)], y[lo:hi], _slice_or_none(winners, 0, lo, hi), xp)
        backend.batch_parallel(work, xpad.shape[0], xp, elements=xpad.size)
        return y

    def _separable_steps(self, OH, OW, dtype, xp, record):
        """The two _AxisMax steps (columns, then rows) of inputs of ``self.pad_shape``, with
        their buffers; kept in ``self.steps`` for backward."""
        steps, shape = [], self.pad_shape
        for st in (_AxisMax(2, self.kw, self.sw, OW), _AxisMax(1, self.kh, self.sh, OH)):
            blocks, out = st.shapes(shape)
            steps.append(_Step(st, shape, xp.empty(blocks, dtype=dtype) if blocks else None,
                               xp.empty(out, dtype=dtype),
                               _index(out if st.r == 1 else blocks, st.s, xp) if record and st.s > 1 else None,
                               _index(out, st.r, xp) if record and st.r > 1 else None))
            shape = out
        self.steps = steps
        return steps

    def _separable_forward(self, xpad, steps, xp):
        """Windows of whole strides: _AxisMax along the columns, then along the rows."""
        def work(lo, hi):
            x = xpad[lo:hi]
            for step in steps:
                step.axis_max.forward(x, *(_slice_or_none(b, 0, lo, hi) for b in step.buffers()), xp)
                x = step.out[lo:hi]
        backend.batch_parallel(work, xpad.shape[0], xp, elements=xpad.size)
        return steps[-1].out

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        p = self.pad
        g = self._separable_backward(gy, xp) if self.separable else self._sweep_backward(gy, xp)
        if p == 0 and g.shape == self.x_shape:
            return g
        return crop(g, p, self.x_shape, xp)

    def _separable_backward(self, gy, xp):
        out = xp.empty(self.pad_shape, dtype=gy.dtype)

        def work(lo, hi):
            g = gy[lo:hi]
            for step in reversed(self.steps):
                g = step.axis_max.backward(g, (hi - lo,) + step.in_shape[1:],
                                           _slice_or_none(step.block_winners, 0, lo, hi),
                                           _slice_or_none(step.window_winners, 0, lo, hi), xp)
            out[lo:hi] = g
        backend.batch_parallel(work, gy.shape[0], xp)
        return out

    def _sweep_backward(self, gy, xp):
        N = self.x_shape[0]
        kh, kw, sh, sw = self.kh, self.kw, self.sh, self.sw
        OH, OW = gy.shape[1:3]
        he, we = sweep(OH, sh), sweep(OW, sw)
        g = xp.zeros(self.pad_shape, dtype=gy.dtype)
        overlap = sh < kh or sw < kw

        def work(lo, hi):
            gs, gys, ids = g[lo:hi], gy[lo:hi], self.winners[lo:hi]
            part = xp.empty(gys.shape, dtype=gy.dtype)
            for k in range(kh * kw):
                i, j = divmod(k, kw)
                xp.multiply(gys, ids == k, out=part)
                if overlap:
                    gs[:, i:i + he:sh, j:j + we:sw, :] += part
                else:
                    gs[:, i:i + he:sh, j:j + we:sw, :] = part
        backend.batch_parallel(work, N, xp)
        return g


class Maxout(Function):
    """y (..., C) = max over each group of ``pieces`` consecutive channels of x (..., C*pieces).
    After planning, ``path`` says which of MAXOUT_PATHS was taken."""
    def __init__(self, pieces):
        if not isinstance(pieces, (int, np.integer)) or pieces < 1:
            raise ValueError(f"maxout pieces must be a positive integer, got {pieces!r}")
        self.pieces = int(pieces)

    def _grouped(self, a, C):
        """a (..., C*pieces) as (..., C, pieces)."""
        return a.reshape(a.shape[:-1] + (C, self.pieces))

    def forward(self, x):
        self.x_shape = x.shape
        return self.planned(x.shape, x.dtype, backend.get_array_module(x), self.recording)(x)

    def planned(self, x_shape, dtype, xp, record=False):
        """This maxout for inputs of ``x_shape``: a function x -> y whose output (and with
        ``record`` the winners that backward reads) is allocated here, once; each call
        overwrites it. The op's forward plans once per call; ``tinyfit.predictor`` once."""
        p = self.pieces
        if x_shape[-1] % p:
            raise ValueError(
                f"maxout: {x_shape[-1]} channels (last axis of shape {x_shape}) cannot be split "
                f"into groups of pieces={p}; the channel count must be a multiple of pieces.")
        self.winners = None
        self.path = MAXOUT_PATHS[min(p, 3) - 1]
        if p == 1:
            return lambda x: x.copy()
        C = x_shape[-1] // p
        y = xp.empty(tuple(x_shape[:-1]) + (C,), dtype=dtype)
        # which piece won: a bool for 2 pieces, else an index (ties go to the first piece)
        winners = xp.empty(y.shape, dtype=bool if p == 2 else index_dtype(p)) if record else None
        self.winners = winners

        def run(x):
            xg = self._grouped(x, C)

            def work(lo, hi):
                xs = xg[lo:hi]
                _select_max([xs[..., k] for k in range(p)], y[lo:hi], None if winners is None else winners[lo:hi],
                            xp)
            if x.ndim > 1:
                backend.batch_parallel(work, x.shape[0], xp, elements=x.size)
            else:
                work(0, None)
            return y
        return run

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        p = self.pieces
        if p == 1:
            return gy.reshape(self.x_shape)
        g = self._grouped(xp.empty(self.x_shape, dtype=gy.dtype), gy.shape[-1])

        def work(lo, hi):
            gs = g[lo:hi]
            _route(gy[lo:hi], self.winners[lo:hi], p, [gs[..., k] for k in range(p)], xp)
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
