"""Stride-1 convolution by kernel rows, for padded layers (conv2d's ``algorithm='rows'``).

im2col copies every input pixel kh*kw times, padding included, and its GEMMs multiply
the padding's zeros. Here the windows are copied along the width only, into a
row-major-first ("H-major") layout in which the rows of the input that kernel row i
reads, for every image, form one contiguous matrix:

* xw: (H, N*OW, kw*C_in)   -- xw[h, (n, ow), (j, c)] = x[n, h, ow + j - pad, c]
                              (zero where the column falls in the padding); kw times
                              the input, not kh*kw
* y:  (OH, N*OW, C_out)    -- y[oh] = sum over kernel rows i of xw[oh + i - pad] @ W[i]

Kernel row i contributes only to the output rows whose input row oh + i - pad lies in
the image (window.inside), so the padded rows are never multiplied: for the teacher's
8x8 pad-3 layer on 10x10 maps, 56 of the 72 (output row, kernel row) pairs. The weight
gradient is the same sum transposed (one GEMM per kernel row) and the input gradient
one GEMM per kernel row (kw*C_in columns at once), summed over the kernel rows, whose kw
column blocks are then added into the input. The output and gradients are returned as
NHWC views of the H-major arrays.
"""
from __future__ import annotations

from .. import backend
from .window import conv_output_size, inside


def rows_buffers(x_shape, w_shape, pad, dtype, xp):
    """The arrays rows_forward fills for x (N, H, W, C) and W (kh, kw, C, C_out): xt (H, N,
    W + 2 pad, C), the input H-major and padded in width (zeros: only its interior is ever
    written, so a reused xt keeps its padding), xw (H, N, OW, kw, C) and y (OH, N*OW, C_out)."""
    N, H, W, C = x_shape
    kh, kw, _, C_out = w_shape
    OH, OW = conv_output_size(H, kh, 1, pad), conv_output_size(W, kw, 1, pad)
    return (xp.zeros((H, N, W + 2 * pad, C), dtype=dtype), xp.empty((H, N, OW, kw, C), dtype=dtype),
            xp.empty((OH, N * OW, C_out), dtype=dtype))


def row_windows(x, kw, pad, xp, xt, xw):
    """x (N, H, W, C) -> xw (H, N*OW, kw*C), OW = W + 2 pad - kw + 1, through the buffers
    xt and xw of ``rows_buffers``."""
    N, H, W, C = x.shape
    OW = xw.shape[2]
    xt_x = x.transpose(1, 0, 2, 3)

    def work(lo, hi):
        xt[:, lo:hi, pad:pad + W] = xt_x[:, lo:hi]
        s = xt.strides
        part = xt[:, lo:hi]
        win = xp.lib.stride_tricks.as_strided(part, (H, hi - lo, OW, kw, C), (s[0], s[1], s[2], s[2], s[3]))
        xw[:, lo:hi] = win
    backend.batch_parallel(work, N, xp, elements=xw.size)
    return xw.reshape(H, N * OW, kw * C)


def row_pairs(kh, OH, H, pad):
    """(kernel row i, first output row, last output row + 1, first input row) for each
    kernel row that reaches the image, the widest first."""
    rows = [(i,) + inside(i, OH, H, 1, pad) for i in range(kh)]
    rows = [r for r in rows if r[1] < r[2]]
    return sorted(rows, key=lambda r: r[1] - r[2])


def _sum_row_products(out, terms, xp):
    """out (R, M, K) = the sum of the terms (a (r*M, k), B (k, K), rows): a @ B goes to
    out[rows] (r rows); rows no term reaches are 0. The first term writes, the others add,
    the adds split over threads along M."""
    if not terms:
        out[...] = 0
    for n, (a, B, rows) in enumerate(terms):
        if n == 0:
            xp.matmul(a, B, out=out[rows].reshape(-1, out.shape[2]))
            out[:rows.start] = 0
            out[rows.stop:] = 0
            continue
        part = (a @ B).reshape(rows.stop - rows.start, out.shape[1], out.shape[2])

        def add(lo, hi, part=part, rows=rows):
            out[rows, lo:hi] += part[:, lo:hi]
        backend.batch_parallel(add, out.shape[1], xp, elements=part.size)
    return out


def rows_forward(x, W, b, pad, buffers=None):
    """y (N, OH, OW, C_out) as a view of the H-major result; and xw for the backward pass.
    buffers: ``rows_buffers``' arrays for x's shape, reused (None: new ones)."""
    xp = backend.get_array_module(x)
    kh, kw, C_in, C_out = W.shape
    N, H, Wd, _ = x.shape
    OH, OW = conv_output_size(H, kh, 1, pad), conv_output_size(Wd, kw, 1, pad)
    xt, xw, y = buffers or rows_buffers(x.shape, W.shape, pad, x.dtype, xp)
    xw = row_windows(x, kw, pad, xp, xt, xw)
    W3 = W.reshape(kh, kw * C_in, C_out)
    y = _sum_row_products(y,
                          [(xw[h0:h0 + o1 - o0].reshape(-1, kw * C_in), W3[i], slice(o0, o1))
                           for i, o0, o1, h0 in row_pairs(kh, OH, H, pad)], xp)
    if b is not None:
        def bias(lo, hi):
            y[:, lo:hi] += b
        backend.batch_parallel(bias, N * OW, xp, elements=y.size)
    return y.reshape(OH, N, OW, C_out).transpose(1, 0, 2, 3), xw


def rows_weight_grad(xw, gyt, W_shape, pad, H):
    """dL/dW (kh, kw, C_in, C_out) from xw and gyt (OH, N*OW, C_out), gy in H-major order."""
    xp = backend.get_array_module(gyt)
    kh, kw, C_in, C_out = W_shape
    gW = xp.zeros((kh, kw * C_in, C_out), dtype=gyt.dtype)
    for i, o0, o1, h0 in row_pairs(kh, gyt.shape[0], H, pad):
        xp.matmul(xw[h0:h0 + o1 - o0].reshape(-1, kw * C_in).T, gyt[o0:o1].reshape(-1, C_out), out=gW[i])
    return gW.reshape(W_shape)


def rows_input_grad(gyt, W, x_shape, pad):
    """dL/dx (N, H, W, C_in) (a view of an H-major array) from gyt (OH, N*OW, C_out): the
    adjoint of rows_forward. Per kernel row one GEMM gy @ W[i]^T (kw*C_in columns at once),
    summed into the window gradient gxw (H, N*OW, kw*C_in) by contiguous adds (the widest
    kernel row writes, the others add); then the kw column blocks of gxw are added into the
    input columns they came from (padding left out)."""
    xp = backend.get_array_module(gyt)
    kh, kw, C_in, C_out = W.shape
    N, H, Wd, _ = x_shape
    OH, OW = gyt.shape[0], conv_output_size(Wd, kw, 1, pad)
    W3t = W.reshape(kh, kw * C_in, C_out).transpose(0, 2, 1)  # (kh, C_out, kw*C_in)
    gxw = _sum_row_products(xp.empty((H, N * OW, kw * C_in), dtype=gyt.dtype),
                            [(gyt[o0:o1].reshape(-1, C_out), W3t[i], slice(h0, h0 + o1 - o0))
                             for i, o0, o1, h0 in row_pairs(kh, OH, H, pad)], xp)
    g5 = gxw.reshape(H, N, OW, kw, C_in)
    gt = xp.zeros((H, N, Wd, C_in), dtype=gyt.dtype)
    cols = [(j,) + inside(j, OW, Wd, 1, pad) for j in range(kw)]

    def fold(lo, hi):
        for j, w0a, w1a, x0 in cols:
            if w0a < w1a:
                gt[:, lo:hi, x0:x0 + w1a - w0a] += g5[:, lo:hi, w0a:w1a, j]
    backend.batch_parallel(fold, N, xp)
    return gt.transpose(1, 0, 2, 3)
