"""max pooling and maxout: gradient checks on tie-free inputs, loop references, errors."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinyfit.functional as F
from tinyfit import gradcheck
from helpers import T, arr, np_

seeds = st.integers(0, 2 ** 32 - 1)


def pool_reference(x, k, s, pad, ceil_mode):
    """Loop max pooling; windows are clipped to the input (padding never wins)."""
    N, H, W, C = x.shape

    def out(n):
        span = n + 2 * pad - k
        o = (math.ceil(span / s) if ceil_mode else span // s) + 1
        if ceil_mode and (o - 1) * s >= n + pad:
            o -= 1
        return o
    OH, OW = out(H), out(W)
    y = np.empty((N, OH, OW, C))
    for oh in range(OH):
        for ow in range(OW):
            h0, w0 = oh * s - pad, ow * s - pad
            win = x[:, max(h0, 0):min(h0 + k, H), max(w0, 0):min(w0 + k, W), :]
            y[:, oh, ow, :] = win.max(axis=(1, 2))
    return y


@st.composite
def pool_cases(draw):
    k = draw(st.integers(1, 4))
    s = draw(st.integers(1, 4))
    pad = draw(st.integers(0, k // 2))
    H = draw(st.integers(max(1, k - 2 * pad), 9))
    W = draw(st.integers(max(1, k - 2 * pad), 9))
    return dict(N=draw(st.integers(1, 2)), C=draw(st.integers(1, 3)), H=H, W=W, k=k, s=s, pad=pad,
                ceil=draw(st.booleans()))


@given(case=pool_cases(), seed=seeds, noncontig=st.booleans())
def test_max_pool2d_matches_reference_and_gradcheck(device, case, seed, noncontig):
    rng = np.random.default_rng(seed)
    c = case
    x = arr(rng, (c["N"], c["H"], c["W"], c["C"]), noncontig, tie_free=True)
    tx = T(x, device)
    f = lambda x: F.max_pool2d(x, c["k"], c["s"], c["pad"], c["ceil"])
    np.testing.assert_array_equal(np_(f(tx)), pool_reference(x, c["k"], c["s"], c["pad"], c["ceil"]))
    assert gradcheck(f, [tx])


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


@given(pieces=st.integers(1, 4), groups=st.integers(1, 4), lead=st.lists(st.integers(1, 3), min_size=1, max_size=3),
       seed=seeds, noncontig=st.booleans())
def test_maxout_matches_reference_and_gradcheck(device, pieces, groups, lead, seed, noncontig):
    rng = np.random.default_rng(seed)
    shape = tuple(lead) + (groups * pieces,)
    x = arr(rng, shape, noncontig, tie_free=True)
    tx = T(x, device)
    ref = x.reshape(tuple(lead) + (groups, pieces)).max(axis=-1)
    np.testing.assert_array_equal(np_(F.maxout(tx, pieces)), ref)
    assert gradcheck(lambda x: F.maxout(x, pieces), [tx])


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
