"""2-D convolution, channels-last (NHWC): the op (Conv2d, conv2d) and its im2col algorithm.

Padded stride-1 layers use the kernel-rows algorithm of conv_rows.py instead (no work on
padding rows); ``conv2d(..., algorithm=)`` picks one explicitly.

im2col layouts (why channels-last: the im2col copy moves whole contiguous channel rows,
and the GEMM output *is* the NHWC result, so no transpose is needed):

* x:   (N, H, W, C_in)
* W:   (kh, kw, C_in, C_out)  -- reshaped for free to (kh*kw*C_in, C_out)
* b:   (C_out,)
* col: (N*OH*OW, kh*kw*C_in + 1)  -- kh*kw times the input's memory, and a column of
                                   ones that folds the bias into the GEMM
* y:   (N, OH, OW, C_out)     -- y = col @ [W; b]

With the bias folded in, the bias gradient is the last row of the weight-gradient GEMM
col^T @ gy, so neither the bias add nor the bias-gradient sum is a separate pass.

The input gradient is the adjoint of im2col applied to gy @ W^T, computed one
kernel offset at a time: each offset's product is added into the shifted, strided
window of the input it came from, the padding left out (deterministic, no
scatter-add, runs unchanged on CuPy, and the kh*kw-times-larger column gradient is
never built). Heavily padded stride-1 layers, whose output is larger than their
input, take it as a convolution of gy with the flipped kernel instead.
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import backend
from ..autograd import Function
from .conv_rows import row_pairs, rows_buffers, rows_forward, rows_input_grad, rows_weight_grad
from .window import conv_output_size, inside, pad_to, sweep

__all__ = ["im2col", "im2col_k_major", "conv2d", "conv_output_size", "ConvPlan", "conv_plan"]

ALGORITHMS = ("auto", "im2col", "rows")
FORWARD_PATHS = ("im2col", "im2col-k-major", "rows")       # what conv_plan can choose, each tested
INPUT_GRAD_PATHS = ("offsets", "rows", "flipped")


@dataclass(frozen=True)
class ConvPlan:
    """How conv2d computes one layer, decided once from its shapes (``conv_plan``).

    forward: 'rows' (conv_rows.py), 'im2col', or 'im2col-k-major' (one input channel: the
    column matrix built transposed). input_grad: 'rows', 'offsets' (one GEMM per kernel
    offset, added where it lands inside the input) or 'flipped' (a convolution of gy with
    the flipped kernel, when the output has at least twice the input's positions).
    gemms: {'forward' | 'weight grad' | 'input grad': [(a shape, b shape, a transposed)]},
    the matrix products one training step of the layer performs."""
    forward: str
    input_grad: str
    gemms: dict


def conv_plan(x_shape, w_shape, stride=1, pad=0, algorithm="auto", bias=True):
    """The ConvPlan of a convolution of x (N, H, W, C_in) with W (kh, kw, C_in, C_out):
    'auto' takes kernel rows for padded stride-1 layers (no work on padding rows), im2col
    otherwise."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"conv2d algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    if algorithm == "rows" and stride != 1:
        raise ValueError(f"conv2d algorithm='rows' needs stride 1, got stride={stride}; use 'im2col'")
    N, H, Wd, C = x_shape
    kh, kw, _, O = w_shape
    OH, OW = conv_output_size(H, kh, stride, pad), conv_output_size(Wd, kw, stride, pad)
    rows = algorithm == "rows" or (algorithm == "auto" and stride == 1 and pad > 0)
    flipped = stride == 1 and kh == kw and OH * OW >= 2 * H * Wd
    g = {"forward": [], "weight grad": [], "input grad": []}
    if rows:  # one GEMM per kernel row over the output rows it reaches
        for _, o0, o1, _ in row_pairs(kh, OH, H, pad):
            m = (o1 - o0) * N * OW
            g["forward"].append(((m, kw * C), (kw * C, O), False))
            g["weight grad"].append(((m, kw * C), (m, O), True))
            if not flipped:
                g["input grad"].append(((m, O), (O, kw * C), False))
    else:  # the bias folded in as a column of ones
        m, k = N * OH * OW, kh * kw * C + bool(bias)
        if C == 1:
            g["forward"].append(((k, m), (k, O), True))
            g["weight grad"].append(((k, m), (m, O), False))
        else:
            g["forward"].append(((m, k), (k, O), False))
            g["weight grad"].append(((m, k), (m, O), True))
        if not flipped:
            reach = sum(1 for i in range(kh) for j in range(kw)
                        if _reaches(inside(i, OH, H, stride, pad)) and _reaches(inside(j, OW, Wd, stride, pad)))
            g["input grad"] += [((m, O), (O, C), False)] * reach
    if flipped:
        g["input grad"].append(((N * H * Wd, kh * kw * O), (kh * kw * O, C), False))
    return ConvPlan("rows" if rows else "im2col-k-major" if C == 1 else "im2col",
                    "flipped" if flipped else "rows" if rows else "offsets", g)


def one_by_one(kh, kw, stride, pad):
    """A 1x1 kernel at stride 1 without padding: the input (N*H*W, C) is its own column matrix
    (no im2col copy, unless the bias column is folded in) and gy @ W^T its input gradient."""
    return kh == kw == 1 and stride == 1 and pad == 0


def _reaches(span):
    return span[0] < span[1]


def _check(x_shape, kh, kw, stride, pad, C_w=None):
    if len(x_shape) != 4:
        raise ValueError(f"conv2d expects NHWC input (N, H, W, C), got shape {x_shape}")
    N, H, W, C = x_shape
    if stride < 1 or pad < 0:
        raise ValueError(f"conv2d needs stride >= 1 and pad >= 0, got stride={stride}, pad={pad}")
    if kh > H + 2 * pad or kw > W + 2 * pad:
        raise ValueError(
            f"conv2d kernel {kh}x{kw} is larger than the padded input {H + 2 * pad}x{W + 2 * pad} "
            f"(input {H}x{W}, pad {pad}); use a smaller kernel, more padding or a larger input.")
    if C_w is not None and C_w != C:
        raise ValueError(
            f"conv2d: input has {C} channels (shape {x_shape}, NHWC) but the weight expects {C_w}; "
            "check the layer's in_channels and that images are channels-last (N, H, W, C).")
    return conv_output_size(H, kh, stride, pad), conv_output_size(W, kw, stride, pad)


def im2col(x, kh, kw, stride=1, pad=0, ones=False, out=None):
    """x (N, H, W, C) -> col (N*OH*OW, kh*kw*C), rows ordered (n, oh, ow), columns (i, j, c);
    with ``ones`` one more column, of ones (N*OH*OW, kh*kw*C + 1). out: a buffer of col's
    shape to fill (None: a new one).

    The windows are a strided view of x (no copy), copied into the column matrix
    in one pass per batch chunk (contiguous runs of kw*C values when stride is 1).
    """
    xp = backend.get_array_module(x)
    OH, OW = _check(x.shape, kh, kw, stride, pad)
    N, _, _, C = x.shape
    K = kh * kw * C
    if one_by_one(kh, kw, stride, pad) and not ones:
        return xp.ascontiguousarray(x).reshape(N * OH * OW, C)
    if pad:
        x = pad_to(x, pad, (x.shape[1] + 2 * pad, x.shape[2] + 2 * pad), 0, xp)
    x = xp.ascontiguousarray(x)
    sn, sh, sw, sc = x.strides
    win = xp.lib.stride_tricks.as_strided(x, (N, OH, OW, kh, kw, C),
                                          (sn, sh * stride, sw * stride, sh, sw, sc))
    col = xp.empty((N, OH, OW, K + ones), dtype=x.dtype) if out is None else out.reshape(N, OH, OW, K + ones)
    windows = col[..., :K].reshape(N, OH, OW, kh, kw, C)  # a view, also with the ones column

    def work(lo, hi):
        windows[lo:hi] = win[lo:hi]
        if ones:
            col[lo:hi, ..., K] = 1
    backend.batch_parallel(work, N, xp, elements=col.size)
    return col.reshape(N * OH * OW, K + ones)


def im2col_k_major(x, kh, kw, stride=1, pad=0, ones=False, out=None):
    """x (N, H, W, 1) -> colT (kh*kw (+1 with ``ones``), N*OH*OW): im2col transposed, for an
    input with one channel. Row (i, j) is the image shifted by (i, j), copied in runs of a
    whole output row; im2col's own rows would be copied in runs of kw values. ``colT.T`` is
    the column matrix, and ``colT @ gy`` (the weight gradient) is faster than ``col.T @ gy``.
    out: a buffer of colT's shape to fill (None: a new one)."""
    xp = backend.get_array_module(x)
    OH, OW = _check(x.shape, kh, kw, stride, pad)
    N, _, _, C = x.shape
    if C != 1:
        raise ValueError(f"im2col_k_major takes one input channel, got {C} (shape {x.shape}); use im2col")
    if pad:
        x = pad_to(x, pad, (x.shape[1] + 2 * pad, x.shape[2] + 2 * pad), 0, xp)
    img = x[..., 0]
    he, we = sweep(OH, stride), sweep(OW, stride)
    colT = xp.empty((kh * kw + ones, N, OH, OW), dtype=x.dtype) if out is None else out.reshape(-1, N, OH, OW)

    def work(lo, hi):
        for i in range(kh):
            for j in range(kw):
                colT[i * kw + j, lo:hi] = img[lo:hi, i:i + he:stride, j:j + we:stride]
        if ones:
            colT[-1, lo:hi] = 1
    backend.batch_parallel(work, N, xp, elements=colT.size)
    return colT.reshape(kh * kw + ones, N * OH * OW)


def _input_grad(gy2, W, x_shape, stride, pad):
    """dL/dx (N, H, W, C_in) from gy2 (N*OH*OW, C_out): im2col^T(gy2 @ W^T).

    One kernel offset at a time, each offset's (N*OH*OW, C_in) product is added into the
    input positions it came from, padding left out (so the kh*kw-times-larger column
    gradient is never built)."""
    xp = backend.get_array_module(gy2)
    kh, kw, C_in, C_out = W.shape
    N, H, Wd, _ = x_shape
    OH, OW = conv_output_size(H, kh, stride, pad), conv_output_size(Wd, kw, stride, pad)
    if one_by_one(kh, kw, stride, pad):
        return (gy2 @ W[0, 0].T).reshape(x_shape)
    g = xp.zeros(x_shape, dtype=gy2.dtype)
    Wt = W.transpose(0, 1, 3, 2)  # (kh, kw, C_out, C_in)
    buf = xp.empty((gy2.shape[0], C_in), dtype=gy2.dtype)
    buf4 = buf.reshape(N, OH, OW, C_in)
    for i in range(kh):
        oh0, oh1, h0 = inside(i, OH, H, stride, pad)
        for j in range(kw):
            ow0, ow1, w0 = inside(j, OW, Wd, stride, pad)
            if oh0 >= oh1 or ow0 >= ow1:
                continue
            xp.matmul(gy2, Wt[i, j], out=buf)
            rows = slice(h0, h0 + (oh1 - oh0 - 1) * stride + 1, stride)
            cols = slice(w0, w0 + (ow1 - ow0 - 1) * stride + 1, stride)

            def add(lo, hi, rows=rows, cols=cols, src=(slice(oh0, oh1), slice(ow0, ow1))):
                g[lo:hi, rows, cols, :] += buf4[lo:hi, src[0], src[1], :]
            backend.batch_parallel(add, N, xp)
    return g


def _input_grad_transposed(gy, W, x_shape, pad):
    """Stride 1: dL/dx = conv(gy, W flipped in space with C_in and C_out swapped), gy padded
    by kh - 1 - pad (cropped where that is negative): one im2col and one GEMM."""
    xp = backend.get_array_module(gy)
    kh, kw, C_in, C_out = W.shape
    q = kh - 1 - pad
    if q < 0:
        gy = gy[:, -q:gy.shape[1] + q, -q:gy.shape[2] + q, :]
    Wf = xp.ascontiguousarray(W[::-1, ::-1].transpose(0, 1, 3, 2)).reshape(kh * kw * C_out, C_in)
    return (im2col(gy, kh, kw, 1, max(q, 0)) @ Wf).reshape(x_shape)


class Conv2d(Function):
    """y (N, OH, OW, C_out) = conv(x (N, H, W, C_in), W (kh, kw, C_in, C_out)) + b (C_out,).

    ``algorithm``: 'im2col' (any stride; see above), 'rows' (stride 1; conv_rows.py: no
    work on padded rows, a kw- rather than kh*kw-times copy of the input) or 'auto';
    ``conv_plan`` decides, once per call, how the forward pass and the input gradient are
    computed."""
    ALGORITHMS = ALGORITHMS

    def __init__(self, stride=1, pad=0, algorithm="auto"):
        self.stride, self.pad = int(stride), int(pad)
        if algorithm not in ALGORITHMS:
            raise ValueError(f"conv2d algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
        if algorithm == "rows" and self.stride != 1:
            raise ValueError(f"conv2d algorithm='rows' needs stride 1, got stride={stride}; use 'im2col'")
        self.algorithm = algorithm

    def forward(self, x, W, b=None):
        if W.ndim != 4:
            raise ValueError(f"conv2d weight must be (kh, kw, C_in, C_out), got shape {W.shape}")
        C_out = W.shape[3]
        if b is not None and b.shape != (C_out,):
            raise ValueError(f"conv2d bias must have shape ({C_out},) (one per output channel), got {b.shape}")
        self.W, self.x_shape, self.bias = W, x.shape, b is not None
        self.plan, run = self.planned(x.shape, W.shape, self.bias, x.dtype, backend.get_array_module(x))
        return run(x, W, b)

    def output_shape(self, x_shape, w_shape):
        """(N, OH, OW, C_out) of x (N, H, W, C_in) convolved with W (kh, kw, C_in, C_out)."""
        OH, OW = _check(x_shape, w_shape[0], w_shape[1], self.stride, self.pad, w_shape[2])
        return x_shape[0], OH, OW, w_shape[3]

    def planned(self, x_shape, w_shape, bias, dtype, xp):
        """This convolution for x of ``x_shape`` and W of ``w_shape``: (its ConvPlan, a function
        (x, W, b) -> y) whose buffers (column matrix, weights with the bias row, output) are
        allocated here, once; each call overwrites them. The op's forward plans once per
        call; ``tinyfit.predictor`` once."""
        kh, kw, C_in, C_out = w_shape
        N = x_shape[0]
        OH, OW = _check(x_shape, kh, kw, self.stride, self.pad, C_in)
        plan = conv_plan(x_shape, w_shape, self.stride, self.pad, self.algorithm, bias)
        if plan.forward == "rows":
            buffers = rows_buffers(x_shape, w_shape, self.pad, dtype, xp)

            def rows(x, W, b):
                y, self.xw = rows_forward(x, W, b, self.pad, buffers)
                return y
            return plan, rows
        K, s, p = kh * kw * C_in, self.stride, self.pad
        if plan.forward == "im2col-k-major":
            colT = xp.empty((K + bias, N * OH * OW), dtype=dtype)
            columns = lambda x: im2col_k_major(x, kh, kw, s, p, ones=bias, out=colT).T
        else:
            col = None if one_by_one(kh, kw, s, p) and not bias else \
                xp.empty((N * OH * OW, K + bias), dtype=dtype)
            columns = lambda x: im2col(x, kh, kw, s, p, ones=bias, out=col)
        W2 = xp.empty((K + bias, C_out), dtype=dtype) if bias else None
        y = xp.empty((N * OH * OW, C_out), dtype=dtype)

        def gemm(x, W, b):
            self.col = columns(x)
            if bias:
                W2[:K] = W.reshape(K, C_out)
                W2[K] = b
            xp.matmul(self.col, W2 if bias else W.reshape(K, C_out), out=y)
            return y.reshape(N, OH, OW, C_out)
        return plan, gemm

    def backward(self, gy):
        W, plan = self.W, self.plan
        kh, kw, C_in, C_out = W.shape
        want_x, want_W = self.needs_grad[0], self.needs_grad[1]
        want_b = self.bias and self.needs_grad[2]
        gx = gW = gb = None
        if want_x and plan.input_grad == "flipped":
            gx = _input_grad_transposed(gy, W, self.x_shape, self.pad)
            want_x = False
        if plan.forward == "rows":
            xp = backend.get_array_module(gy)
            N, OH, OW, _ = gy.shape
            gyt = xp.ascontiguousarray(gy.transpose(1, 0, 2, 3)).reshape(OH, N * OW, C_out)
            if want_W:
                gW = rows_weight_grad(self.xw, gyt, W.shape, self.pad, self.x_shape[1])
            if want_b:
                gb = gyt.reshape(-1, C_out).sum(axis=0)
            if want_x:
                gx = rows_input_grad(gyt, W, self.x_shape, self.pad)
            return gx, gW, gb
        gy2 = gy.reshape(-1, C_out)
        if want_W or want_b:  # with the bias folded in, its gradient is the last row
            gWb = self.col.T @ gy2
            K = kh * kw * C_in
            gW = gWb[:K].reshape(W.shape) if want_W else None
            gb = gWb[K].copy() if want_b else None
        if want_x:
            gx = _input_grad(gy2, W, self.x_shape, self.stride, self.pad)
        return gx, gW, gb


def conv2d(x, W, b=None, stride=1, pad=0, algorithm="auto"):
    """Convolve NHWC ``x`` with ``W`` (kh, kw, C_in, C_out); see the module docstring."""
    f = Conv2d(stride, pad, algorithm)
    return f(x, W) if b is None else f(x, W, b)
