"""conv2d and im2col: gradient checks, nested-loop references, the adjoint identity."""
import numpy as np
import pytest
from hypothesis import find, given, settings, strategies as st

import tinyfit.functional as F
from tinyfit import gradcheck
from tinyfit.functional.conv import FORWARD_PATHS, INPUT_GRAD_PATHS, one_by_one
from helpers import T, arr, np_

seeds = st.integers(0, 2 ** 32 - 1)


def conv_reference(x, W, b, stride, pad):
    """Direct convolution with explicit loops: x (N,H,W,C), W (kh,kw,C,O)."""
    N, H, Wd, C = x.shape
    kh, kw, _, O = W.shape
    xp = np.zeros((N, H + 2 * pad, Wd + 2 * pad, C))
    xp[:, pad:pad + H, pad:pad + Wd] = x
    OH, OW = (H + 2 * pad - kh) // stride + 1, (Wd + 2 * pad - kw) // stride + 1
    y = np.zeros((N, OH, OW, O))
    for n in range(N):
        for oh in range(OH):
            for ow in range(OW):
                for o in range(O):
                    s = b[o]
                    for i in range(kh):
                        for j in range(kw):
                            for c in range(C):
                                s += xp[n, oh * stride + i, ow * stride + j, c] * W[i, j, c, o]
                    y[n, oh, ow, o] = s
    return y


@st.composite
def conv_cases(draw):
    k = draw(st.integers(1, 4))
    pad = draw(st.integers(0, 2))
    stride = draw(st.integers(1, 3))
    H = draw(st.integers(max(1, k - 2 * pad), 8))
    Wd = draw(st.integers(max(1, k - 2 * pad), 8))
    return dict(N=draw(st.integers(1, 3)), C=draw(st.integers(1, 3)), O=draw(st.integers(1, 4)),
                H=H, W=Wd, k=k, pad=pad, stride=stride)


ALGORITHMS = st.sampled_from(["auto", "im2col", "rows"])


def as_drawn(case, algorithm):
    """The case a draw of (conv_cases, ALGORITHMS) runs: kernel rows take stride 1 only."""
    return dict(case, stride=1) if algorithm == "rows" else case


def drawn_plan(case, algorithm):
    c = as_drawn(case, algorithm)
    plan = F.conv_plan((c["N"], c["H"], c["W"], c["C"]), (c["k"], c["k"], c["C"], c["O"]), c["stride"], c["pad"],
                       algorithm)
    assert plan.forward in FORWARD_PATHS and plan.input_grad in INPUT_GRAD_PATHS, plan
    return plan


BIAS = st.booleans()


@given(case=conv_cases(), seed=seeds, noncontig=st.booleans(), bias=BIAS, algorithm=ALGORITHMS)
def test_conv2d_matches_reference_and_gradcheck(device, case, seed, noncontig, bias, algorithm):
    """Both algorithms (im2col and kernel rows, the latter stride 1 only) on every case."""
    rng = np.random.default_rng(seed)
    c = as_drawn(case, algorithm)
    x = arr(rng, (c["N"], c["H"], c["W"], c["C"]), noncontig)
    W = arr(rng, (c["k"], c["k"], c["C"], c["O"]), noncontig)
    b = arr(rng, (c["O"],)) if bias else np.zeros(c["O"])
    tx, tW, tb = T(x, device), T(W, device), T(b, device)
    args = [tx, tW, tb] if bias else [tx, tW]
    f = lambda x, W, b=None: F.conv2d(x, W, b, c["stride"], c["pad"], algorithm)
    np.testing.assert_allclose(np_(f(*args)), conv_reference(x, W, b, c["stride"], c["pad"]), rtol=1e-10, atol=1e-12)
    assert gradcheck(f, args)


def im2col_reference(x, k, stride, pad):
    """Loop im2col: rows (n, oh, ow), columns (i, j, c)."""
    N, H, W, C = x.shape
    xp = np.zeros((N, H + 2 * pad, W + 2 * pad, C))
    xp[:, pad:pad + H, pad:pad + W] = x
    OH, OW = (H + 2 * pad - k) // stride + 1, (W + 2 * pad - k) // stride + 1
    rows = [xp[n, oh * stride:oh * stride + k, ow * stride:ow * stride + k, :].ravel()
            for n in range(N) for oh in range(OH) for ow in range(OW)]
    return np.array(rows)


def col2im_reference(col, x_shape, k, stride, pad):
    """The adjoint of im2col: every column entry added back to the input position it came from."""
    N, H, W, C = x_shape
    OH, OW = (H + 2 * pad - k) // stride + 1, (W + 2 * pad - k) // stride + 1
    xp = np.zeros((N, H + 2 * pad, W + 2 * pad, C))
    col = col.reshape(N, OH, OW, k, k, C)
    for n in range(N):
        for oh in range(OH):
            for ow in range(OW):
                xp[n, oh * stride:oh * stride + k, ow * stride:ow * stride + k, :] += col[n, oh, ow]
    return xp[:, pad:pad + H, pad:pad + W]


@pytest.mark.parametrize("part,path", [("forward", p) for p in FORWARD_PATHS]
                         + [("input_grad", p) for p in INPUT_GRAD_PATHS])
def test_the_generated_cases_reach_every_path_the_conv_plan_can_choose(part, path):
    """A path no draw of the test above can reach would go untested: find one draw for each."""
    find(st.tuples(conv_cases(), ALGORITHMS), lambda d: getattr(drawn_plan(*d), part) == path,
         settings=settings(max_examples=5000, database=None))


@pytest.mark.parametrize("with_bias", [False, True])
def test_the_generated_cases_reach_the_one_by_one_shortcut(with_bias):
    """1x1, stride 1, no padding: the input is its own column matrix (without a bias column)
    and gy @ W^T the input gradient, each a path of its own."""
    def shortcut(d):
        case, algorithm, bias = d
        c = as_drawn(case, algorithm)
        return (drawn_plan(case, algorithm).forward == "im2col" and bias == with_bias
                and one_by_one(c["k"], c["k"], c["stride"], c["pad"]))
    find(st.tuples(conv_cases(), ALGORITHMS, BIAS), shortcut, settings=settings(max_examples=5000, database=None))


@given(case=conv_cases(), seed=seeds, noncontig=st.booleans())
def test_im2col_matches_loops_and_its_adjoint(device, case, seed, noncontig):
    """im2col against a loop reference; <im2col(x), r> == <x, col2im(r)>, the identity the
    conv input gradient (per-offset adds into the padded input) relies on."""
    rng = np.random.default_rng(seed)
    c = case
    x = arr(rng, (c["N"], c["H"], c["W"], c["C"]), noncontig)
    col = np_(F.im2col(T(x, device).data, c["k"], c["k"], c["stride"], c["pad"]))
    np.testing.assert_array_equal(col, im2col_reference(x, c["k"], c["stride"], c["pad"]))
    # the bias column the convolution folds into its GEMM
    col1 = np_(F.im2col(T(x, device).data, c["k"], c["k"], c["stride"], c["pad"], ones=True))
    np.testing.assert_array_equal(col1, np.hstack([col, np.ones((col.shape[0], 1))]))
    if c["C"] == 1:  # the transposed layout first layers use
        from tinyfit.functional.conv import im2col_k_major
        colT = np_(im2col_k_major(T(x, device).data, c["k"], c["k"], c["stride"], c["pad"], ones=True))
        np.testing.assert_array_equal(colT, col1.T)
    r = rng.standard_normal(col.shape)
    back = col2im_reference(r, x.shape, c["k"], c["stride"], c["pad"])
    assert np.isclose((col * r).sum(), (x * back).sum(), rtol=1e-10)


def test_kernel_larger_than_padded_input_is_a_clear_error():
    with pytest.raises(ValueError, match=r"kernel 5x5 is larger than the padded input 4x4"):
        F.conv2d(T(np.ones((1, 2, 2, 1))), T(np.ones((5, 5, 1, 2))), pad=1)


def test_channel_mismatch_names_both():
    with pytest.raises(ValueError, match="3 channels.*expects 1"):
        F.conv2d(T(np.ones((1, 5, 5, 3))), T(np.ones((3, 3, 1, 2))))


def test_algorithm_errors_name_the_value():
    with pytest.raises(ValueError, match="algorithm must be one of.*'fft'"):
        F.conv2d(T(np.ones((1, 5, 5, 1))), T(np.ones((3, 3, 1, 2))), algorithm="fft")
    with pytest.raises(ValueError, match="'rows' needs stride 1, got stride=2"):
        F.conv2d(T(np.ones((1, 5, 5, 1))), T(np.ones((3, 3, 1, 2))), stride=2, algorithm="rows")
    with pytest.raises(ValueError, match=r"bias must have shape \(2,\)"):
        F.conv2d(T(np.ones((1, 5, 5, 1))), T(np.ones((3, 3, 1, 2))), T(np.ones(3)))


@given(k=st.integers(1, 5), pad=st.integers(0, 3), H=st.integers(1, 9), seed=seeds)
def test_the_two_algorithms_agree_in_float32(k, pad, H, seed):
    """Padded stride-1 layers go to the rows algorithm: outputs and all gradients agree with
    im2col's to float32 rounding (the sums run in another order)."""
    from hypothesis import assume
    assume(H + 2 * pad >= k)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((3, H, H + 1, 4)).astype(np.float32)
    W = rng.standard_normal((k, k, 4, 6)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    outs = []
    for algorithm in ("im2col", "rows"):
        tx, tW, tb = T(x), T(W), T(b)
        y = F.conv2d(tx, tW, tb, 1, pad, algorithm)
        (y * y).sum().backward()
        outs.append([np_(y), tx.grad, tW.grad, tb.grad])
    for a, r in zip(*outs):
        np.testing.assert_allclose(a, r, rtol=1e-4, atol=1e-4 * float(np.abs(r).max() + 1))


@pytest.mark.parametrize("shape,w_shape,stride,pad,forward,input_grad", [
    ((2, 9, 8, 1), (5, 5, 1, 4), 1, 0, "im2col-k-major", "offsets"),   # a one-channel first layer
    ((2, 7, 6, 3), (3, 3, 3, 4), 1, 0, "im2col", "offsets"),
    ((2, 7, 6, 3), (3, 3, 3, 4), 2, 1, "im2col", "offsets"),            # strided and padded
    ((2, 4, 4, 3), (5, 5, 3, 2), 1, 3, "rows", "flipped"),              # output 6x6 >= 2 x input 4x4
    ((2, 6, 6, 2), (3, 3, 2, 3), 1, 1, "rows", "rows"),
    ((2, 3, 3, 2), (3, 3, 2, 4), 1, 3, "rows", "flipped"),              # heavy padding: the student's h4
    ((1, 4, 4, 2), (1, 1, 2, 3), 1, 0, "im2col", "offsets"),            # 1x1
])
def test_every_branch_of_the_conv_plan_on_a_fixed_case(device, shape, w_shape, stride, pad, forward, input_grad):
    """Fixed cases beside the random ones: each path conv_plan can choose, forward against the
    loop reference and backward by gradcheck, whatever hypothesis happens to draw."""
    plan = F.conv_plan(shape, w_shape, stride, pad)
    assert (plan.forward, plan.input_grad) == (forward, input_grad)
    rng = np.random.default_rng(sum(shape) + sum(w_shape))
    x, W, b = arr(rng, shape), arr(rng, w_shape), arr(rng, (w_shape[3],))
    args = [T(x, device), T(W, device), T(b, device)]
    f = lambda x, W, b: F.conv2d(x, W, b, stride, pad)
    np.testing.assert_allclose(np_(f(*args)), conv_reference(x, W, b, stride, pad), rtol=1e-10, atol=1e-12)
    assert gradcheck(f, args)
