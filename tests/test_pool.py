"""max pooling and maxout: gradient checks on tie-free inputs, loop references, errors."""
import math

import numpy as np
import pytest
from hypothesis import find, given, settings, strategies as st

import tinyfit.functional as F
from tinyfit import gradcheck
from tinyfit.functional.pool import MAXOUT_PATHS, POOL_PATHS, Maxout, MaxPool2d
from helpers import T, arr, np_

seeds = st.integers(0, 2 ** 32 - 1)


def pool_reference(x, k, s, pad, ceil_mode):
    """Loop max pooling; windows are clipped to the input (padding never wins).
    k and s are ints or (rows, cols) pairs."""
    N, H, W, C = x.shape
    (kh, kw), (sh, sw) = [(v, v) if np.isscalar(v) else tuple(v) for v in (k, s)]

    def out(n, k, s):
        span = n + 2 * pad - k
        o = (math.ceil(span / s) if ceil_mode else span // s) + 1
        if ceil_mode and (o - 1) * s >= n + pad:
            o -= 1
        return o
    OH, OW = out(H, kh, sh), out(W, kw, sw)
    y = np.empty((N, OH, OW, C))
    for oh in range(OH):
        for ow in range(OW):
            h0, w0 = oh * sh - pad, ow * sw - pad
            win = x[:, max(h0, 0):min(h0 + kh, H), max(w0, 0):min(w0 + kw, W), :]
            y[:, oh, ow, :] = win.max(axis=(1, 2))
    return y


@st.composite
def pool_cases(draw):
    """Square or not: windows and strides are drawn per axis (one axis may overlap, the other not)."""
    square = draw(st.booleans())
    kh = draw(st.integers(1, 4))
    kw = kh if square else draw(st.integers(1, 4))
    sh = draw(st.integers(1, 4))
    sw = sh if square else draw(st.integers(1, 4))
    pad = draw(st.integers(0, min(kh, kw) // 2))
    H = draw(st.integers(max(1, kh - 2 * pad), 9))
    W = draw(st.integers(max(1, kw - 2 * pad), 9))
    k = kh if square else (kh, kw)
    s = sh if square else (sh, sw)
    return dict(N=draw(st.integers(1, 2)), C=draw(st.integers(1, 3)), H=H, W=W, k=k, s=s, pad=pad,
                ceil=draw(st.booleans()))


def drawn_pool_path(c):
    op = MaxPool2d(c["k"], c["s"], c["pad"], c["ceil"])
    op.planned((c["N"], c["H"], c["W"], c["C"]), np.float64, np)
    assert op.path in POOL_PATHS, op.path
    return op.path


@pytest.mark.parametrize("path", POOL_PATHS)
def test_the_generated_cases_reach_every_pooling_path(path):
    """A path no draw of pool_cases can reach would go untested: find one draw for each."""
    find(pool_cases(), lambda c: drawn_pool_path(c) == path, settings=settings(max_examples=5000, database=None))


MAXOUT_PIECES = st.integers(1, 4)


@pytest.mark.parametrize("path", MAXOUT_PATHS)
def test_the_generated_cases_reach_every_maxout_path(path):
    def drawn(pieces):
        op = Maxout(pieces)
        op.planned((2, 3 * pieces), np.float64, np)
        assert op.path in MAXOUT_PATHS, op.path
        return op.path
    find(MAXOUT_PIECES, lambda p: drawn(p) == path, settings=settings(max_examples=500, database=None))


@given(case=pool_cases(), seed=seeds, noncontig=st.booleans())
def test_max_pool2d_matches_reference_and_gradcheck(device, case, seed, noncontig):
    rng = np.random.default_rng(seed)
    c = case
    x = arr(rng, (c["N"], c["H"], c["W"], c["C"]), noncontig, tie_free=True)
    tx = T(x, device)
    f = lambda x: F.max_pool2d(x, c["k"], c["s"], c["pad"], c["ceil"])
    np.testing.assert_array_equal(np_(f(tx)), pool_reference(x, c["k"], c["s"], c["pad"], c["ceil"]))
    assert gradcheck(f, [tx])


@given(k=st.integers(16, 20), s=st.integers(1, 3), seed=seeds)
def test_pool_windows_of_more_than_256_positions(device, k, s, seed):
    """Winner indices need more than 8 bits here (e.g. max_pool2d(x, 17, 3))."""
    rng = np.random.default_rng(seed)
    H = k + rng.integers(0, 5)
    x = arr(rng, (1, H, H, 2), False, tie_free=True)
    tx = T(x, device)
    f = lambda x: F.max_pool2d(x, k, s)
    np.testing.assert_array_equal(np_(f(tx)), pool_reference(x, k, s, 0, False))
    f(tx).sum().backward()
    g = np_(tx.grad) if device == "cpu" else tx.grad.get()
    # every output sends its gradient to the input that holds its window's maximum
    ref = np.zeros_like(x)
    y = pool_reference(x, k, s, 0, False)
    for oh in range(y.shape[1]):
        for ow in range(y.shape[2]):
            for c in range(2):
                win = x[0, oh * s:oh * s + k, ow * s:ow * s + k, c]
                i, j = np.unravel_index(np.argmax(win), win.shape)
                ref[0, oh * s + i, ow * s + j, c] += 1
    np.testing.assert_array_equal(g, ref)
    assert gradcheck(f, [tx])


@pytest.mark.parametrize("k,s,n,pad,size", [
    (4, 2, 9, 0, 4),    # last window hangs one past the edge
    (4, 2, 10, 0, 4),   # last window ends exactly at the edge
    (3, 2, 6, 1, 4),    # last window starts at the last input row, ends in the padding
    (2, 2, 5, 0, 3),
    (2, 2, 3, 1, 2),    # a third window would start in the right padding: dropped
    (3, 3, 7, 1, 3),
])
def test_ceil_mode_boundary(device, k, s, n, pad, size):
    """The last ceil-mode window starts exactly at the padded edge, or would start in the right
    padding and is dropped: sizes, values and gradients against the loop reference."""
    rng = np.random.default_rng(n * 10 + k)
    x = arr(rng, (2, n, n, 2), False, tie_free=True)
    tx = T(x, device)
    f = lambda x: F.max_pool2d(x, k, s, pad, True)
    ref = pool_reference(x, k, s, pad, True)
    assert F.pool_output_size(n, k, s, pad, True) == size
    assert f(tx).shape == ref.shape == (2, size, size, 2)
    np.testing.assert_array_equal(np_(f(tx)), ref)
    assert gradcheck(f, [tx])


def first_max_routing(x, gy, k, s, pad, ceil_mode):
    """Loop reference of the pooling gradient: each output's gradient goes to the first
    maximum of its window in row-major scan order (padding never wins)."""
    (kh, kw), (sh, sw) = [(v, v) if np.isscalar(v) else tuple(v) for v in (k, s)]
    N, H, W, C = x.shape
    g = np.zeros_like(x)
    for n in range(N):
        for oh in range(gy.shape[1]):
            for ow in range(gy.shape[2]):
                for c in range(C):
                    best = None
                    for i in range(kh):
                        for j in range(kw):
                            h, w = oh * sh - pad + i, ow * sw - pad + j
                            if 0 <= h < H and 0 <= w < W and (best is None or x[n, h, w, c] > x[best + (c,)]):
                                best = (n, h, w)
                    g[best + (c,)] += gy[n, oh, ow, c]
    return g


@given(case=pool_cases(), seed=seeds)
def test_pool_ties_route_to_the_first_maximum(device, case, seed):
    """Inputs of three distinct values (ties everywhere, like blank image borders): the
    separable path (window a whole number of strides) and the sweep both send each
    gradient to the first maximum in scan order; the integer gradients make the
    comparison exact whatever the order of the sums."""
    c = case
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 3, (c["N"], c["H"], c["W"], c["C"])).astype(np.float64)
    tx = T(x, device)
    y = F.max_pool2d(tx, c["k"], c["s"], c["pad"], c["ceil"])
    np.testing.assert_array_equal(np_(y), pool_reference(x, c["k"], c["s"], c["pad"], c["ceil"]))
    gy = rng.integers(1, 5, y.shape).astype(np.float64)
    (y * T(gy, device, requires_grad=False)).sum().backward()
    g = np_(tx.grad) if device == "cpu" else tx.grad.get()
    np.testing.assert_array_equal(g, first_max_routing(x, gy, c["k"], c["s"], c["pad"], c["ceil"]))


def test_paper_pooling_sizes():
    # 4x4 / stride 2 ceil-mode pooling, as in the reference's tables
    for n, ceil_out, floor_out in [(21, 10, 9), (22, 10, 10), (9, 4, 3)]:
        assert F.pool_output_size(n, 4, 2, ceil_mode=True) == ceil_out
        assert F.pool_output_size(n, 4, 2, ceil_mode=False) == floor_out


def test_pool_gradient_goes_to_one_element_at_ties():
    x = T(np.ones((1, 2, 2, 1)))
    F.max_pool2d(x, 2).sum().backward()
    assert x.grad.sum() == 1 and x.grad[0, 0, 0, 0] == 1


def test_pool_window_larger_than_input():
    with pytest.raises(ValueError, match="window 4 is larger than the padded input 3"):
        F.max_pool2d(T(np.ones((1, 3, 3, 1))), 4)


@given(pieces=MAXOUT_PIECES, groups=st.integers(1, 4), lead=st.lists(st.integers(1, 3), min_size=1, max_size=3),
       seed=seeds, noncontig=st.booleans())
def test_maxout_matches_reference_and_gradcheck(device, pieces, groups, lead, seed, noncontig):
    rng = np.random.default_rng(seed)
    shape = tuple(lead) + (groups * pieces,)
    x = arr(rng, shape, noncontig, tie_free=True)
    tx = T(x, device)
    ref = x.reshape(tuple(lead) + (groups, pieces)).max(axis=-1)
    np.testing.assert_array_equal(np_(F.maxout(tx, pieces)), ref)
    assert gradcheck(lambda x: F.maxout(x, pieces), [tx])


@given(pieces=st.integers(2, 4), groups=st.integers(1, 4), rows=st.integers(1, 9), seed=seeds)
def test_maxout_ties_go_to_the_first_piece(device, pieces, groups, rows, seed):
    """Three distinct values, so ties everywhere: each group's gradient goes to its first
    maximal piece (integer gradients: the comparison is exact)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 3, (rows, groups * pieces)).astype(np.float64)
    gy = rng.integers(1, 5, (rows, groups)).astype(np.float64)
    ref = np.zeros_like(x)
    for r in range(rows):
        for c in range(groups):
            ref[r, c * pieces + int(np.argmax(x[r, c * pieces:(c + 1) * pieces]))] = gy[r, c]
    tx = T(x, device)
    y = F.maxout(tx, pieces)
    np.testing.assert_array_equal(np_(y), x.reshape(rows, groups, pieces).max(axis=-1))
    (y * T(gy, device, requires_grad=False)).sum().backward()
    g = np_(tx.grad) if device == "cpu" else tx.grad.get()
    np.testing.assert_array_equal(g, ref)


@given(pieces=st.integers(257, 300), seed=seeds)
def test_maxout_with_more_than_256_pieces(device, pieces, seed):
    rng = np.random.default_rng(seed)
    x = arr(rng, (2, 2 * pieces), False, tie_free=True)
    tx = T(x, device)
    np.testing.assert_array_equal(np_(F.maxout(tx, pieces)), x.reshape(2, 2, pieces).max(axis=-1))
    F.maxout(tx, pieces).sum().backward()
    g = np_(tx.grad) if device == "cpu" else tx.grad.get()
    ref = (x.reshape(2, 2, pieces) == x.reshape(2, 2, pieces).max(axis=-1, keepdims=True)).reshape(x.shape)
    np.testing.assert_array_equal(g, ref.astype(g.dtype))
    assert gradcheck(lambda x: F.maxout(x, pieces), [tx])


def test_index_dtype_follows_the_count():
    from tinyfit.functional.pool import index_dtype
    assert [index_dtype(n) for n in (2, 256, 257, 65536, 65537)] == \
        [np.uint8, np.uint8, np.uint16, np.uint16, np.uint32]


def test_maxout_tie_sends_gradient_to_first_piece():
    x = T(np.array([[2.0, 2.0, 1.0, 5.0]]))
    F.maxout(x, 2).sum().backward()
    np.testing.assert_array_equal(x.grad, [[1, 0, 0, 1]])


def test_maxout_pieces_must_divide_channels():
    with pytest.raises(ValueError, match="5 channels.*pieces=2"):
        F.maxout(T(np.ones((2, 5))), 2)


def test_padded_pool_whose_padded_size_equals_the_input_size():
    # pad 1 with a 2x2 window, stride 3, on a 2x2 input: the padded buffer is 2x2 too
    x = T(np.array([[[[1.0], [2.0]], [[3.0], [4.0]]]]))
    y = F.max_pool2d(x, 2, 3, pad=1)
    assert np_(y).ravel().tolist() == [1.0]
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.ravel(), [1, 0, 0, 0])


@pytest.mark.parametrize("k,s,pad,n,m", [(3, 2, 1, 6, 7), (3, 2, 1, 8, 8), (3, 2, 0, 7, 6), (5, 3, 2, 9, 7),
                                         (3, 1, 1, 5, 4), (4, 2, 0, 9, 10), (2, 2, 0, 5, 5)])
def test_ceil_mode_pooling_on_fixed_tie_heavy_cases(device, k, s, pad, n, m):
    """Fixed cases beside the random ones, ceil mode with windows hanging over the edge: the
    sweep path (window not a whole number of strides) and the separable one, values against
    the loop reference and every gradient to the first maximum of its window."""
    rng = np.random.default_rng(k * 100 + s * 10 + n)
    x = rng.integers(0, 3, (2, n, m, 2)).astype(np.float64)
    tx = T(x, device)
    y = F.max_pool2d(tx, k, s, pad, True)
    np.testing.assert_array_equal(np_(y), pool_reference(x, k, s, pad, True))
    gy = rng.integers(1, 5, y.shape).astype(np.float64)
    (y * T(gy, device, requires_grad=False)).sum().backward()
    g = np_(tx.grad) if device == "cpu" else tx.grad.get()
    np.testing.assert_array_equal(g, first_max_routing(x, gy, k, s, pad, True))
