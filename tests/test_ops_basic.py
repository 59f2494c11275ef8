"""Gradient and forward checks of elementwise, reduction and shape ops."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinyfit.functional as F
from tinyfit import gradcheck
from helpers import T, arr, np_

shapes = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)
seeds = st.integers(0, 2 ** 32 - 1)

BINARY = {
    "add": (F.add, np.add), "sub": (F.sub, np.subtract),
    "mul": (F.mul, np.multiply), "div": (F.div, np.divide),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@given(shape=shapes, seed=seeds, bcast=st.booleans(), noncontig=st.booleans())
def test_binary_ops(device, name, shape, seed, bcast, noncontig):
    rng = np.random.default_rng(seed)
    op, ref = BINARY[name]
    a = arr(rng, shape, noncontig)
    bshape = shape[-1:] if bcast else shape
    b = arr(rng, bshape) + (3.0 if name == "div" else 0.0)  # keep divisors away from 0
    ta, tb = T(a, device), T(b, device)
    np.testing.assert_allclose(np_(op(ta, tb)), ref(a, b), rtol=1e-12)
    assert gradcheck(op, [ta, tb])


UNARY = {
    "neg": (F.neg, np.negative, 0.0), "exp": (F.exp, np.exp, 0.0),
    "log": (F.log, np.log, None), "sqrt": (F.sqrt, np.sqrt, None),
    "relu": (F.relu, lambda a: np.maximum(a, 0), 0.0),
    "pow3": (lambda x: F.pow(x, 3), lambda a: a ** 3, 0.0),
    "pow_half": (lambda x: F.pow(x, 0.5), np.sqrt, None),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@given(shape=shapes, seed=seeds, noncontig=st.booleans())
def test_unary_ops(device, name, shape, seed, noncontig):
    rng = np.random.default_rng(seed)
    op, ref, shift = UNARY[name]
    # relu: tie-free values away from the kink at 0
    a = arr(rng, shape, noncontig, tie_free=(name == "relu"))
    a = np.abs(a) + 0.5 if shift is None else a + shift  # None: positive domain only
    if name == "relu":
        a = a + 0.0033  # values are multiples of 0.005: never exactly 0
    ta = T(a, device)
    np.testing.assert_allclose(np_(op(ta)), ref(a), rtol=1e-12)
    assert gradcheck(op, [ta])


@given(n=st.integers(1, 5), k=st.integers(1, 5), m=st.integers(1, 5), seed=seeds, noncontig=st.booleans())
def test_matmul_and_linear(device, n, k, m, seed, noncontig):
    rng = np.random.default_rng(seed)
    a, b, c = arr(rng, (n, k), noncontig), arr(rng, (k, m), noncontig), arr(rng, (m,))
    ta, tb, tc = T(a, device), T(b, device), T(c, device)
    np.testing.assert_allclose(np_(F.matmul(ta, tb)), a @ b, rtol=1e-12)
    np.testing.assert_allclose(np_(F.linear(ta, tb, tc)), a @ b + c, rtol=1e-12)
    assert gradcheck(F.matmul, [ta, tb])
    assert gradcheck(F.linear, [ta, tb, tc])


def test_matmul_shape_mismatch_names_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\) @ \(4, 5\)"):
        F.matmul(T(np.ones((2, 3))), T(np.ones((4, 5))))


@given(shape=st.lists(st.integers(1, 4), min_size=2, max_size=4).map(tuple), seed=seeds, noncontig=st.booleans())
def test_reshape_transpose_flatten(device, shape, seed, noncontig):
    rng = np.random.default_rng(seed)
    a = arr(rng, shape, noncontig)
    perm = tuple(rng.permutation(len(shape)))
    ta = T(a, device)
    np.testing.assert_array_equal(np_(F.transpose(ta, perm)), a.transpose(perm))
    np.testing.assert_array_equal(np_(F.reshape(ta, (-1,))), a.reshape(-1))
    np.testing.assert_array_equal(np_(F.flatten(ta)), a.reshape(shape[0], -1))
    assert gradcheck(lambda x: F.transpose(x, perm), [ta])
    assert gradcheck(lambda x: F.reshape(x, (-1,)), [ta])
    assert gradcheck(lambda x: ta.T * 1.0, [ta])


def _axis_strategy(ndim):
    return st.one_of(st.none(), st.integers(-ndim, ndim - 1),
                     st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).map(tuple))


@given(data=st.data(), shape=shapes, seed=seeds, keepdims=st.booleans(), noncontig=st.booleans())
def test_reductions(device, data, shape, seed, keepdims, noncontig):
    rng = np.random.default_rng(seed)
    axis = data.draw(_axis_strategy(len(shape)))
    a = arr(rng, shape, noncontig, tie_free=True)
    ta = T(a, device)
    for op, ref in ((F.sum, np.sum), (F.mean, np.mean), (F.max, np.max)):
        np.testing.assert_allclose(np_(op(ta, axis, keepdims)), ref(a, axis=axis, keepdims=keepdims), rtol=1e-12)
        assert gradcheck(lambda x, op=op: op(x, axis, keepdims), [ta])


def test_max_sends_gradient_to_one_element_at_ties():
    x = T(np.array([[1.0, 3.0, 3.0]]))
    F.max(x, axis=1).sum().backward()
    np.testing.assert_array_equal(x.grad, [[0, 1, 0]])


@given(shape=shapes, seed=seeds)
def test_broadcast_to(device, shape, seed):
    rng = np.random.default_rng(seed)
    a = arr(rng, (1,) + shape[1:])
    target = (3,) + shape[1:]
    ta = T(a, device)
    np.testing.assert_array_equal(np_(F.broadcast_to(ta, target)), np.broadcast_to(a, target))
    assert gradcheck(lambda x: F.broadcast_to(x, target), [ta])


@given(data=st.data(), shape=st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple), seed=seeds)
def test_getitem_slices(device, data, shape, seed):
    rng = np.random.default_rng(seed)
    index = []
    for s in shape:
        start = data.draw(st.integers(0, s - 1))
        stop = data.draw(st.integers(start + 1, s))
        step = data.draw(st.integers(1, 2))
        index.append(slice(start, stop, step))
    if data.draw(st.booleans()):
        index[0] = data.draw(st.integers(0, shape[0] - 1))
    index = tuple(index)
    a = arr(rng, shape)
    ta = T(a, device)
    np.testing.assert_array_equal(np_(ta[index]), a[index])
    assert gradcheck(lambda x: x[index], [ta])


@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple), seed=seeds, n=st.integers(1, 3),
       data=st.data())
def test_concatenate(device, shape, seed, n, data):
    rng = np.random.default_rng(seed)
    axis = data.draw(st.integers(0, len(shape) - 1))
    parts = []
    for _ in range(n):
        s = list(shape)
        s[axis] = data.draw(st.integers(1, 3))
        parts.append(arr(rng, tuple(s)))
    ts = [T(p, device) for p in parts]
    np.testing.assert_array_equal(np_(F.concatenate(ts, axis)), np.concatenate(parts, axis))
    assert gradcheck(lambda *xs: F.concatenate(xs, axis), ts)


def test_gradcheck_catches_a_wrong_gradient():
    from tinyfit import Function, GradcheckError

    class BadSquare(Function):
        def forward(self, x):
            self.x = x
            return x * x

        def backward(self, gy):
            return gy * self.x  # should be 2x

    x = T(np.random.default_rng(0).standard_normal(5))
    with pytest.raises(GradcheckError, match="input 0"):
        gradcheck(lambda a: BadSquare()(a), [x])


def test_gradcheck_demands_float64():
    with pytest.raises(ValueError, match="float64"):
        gradcheck(F.exp, [T(np.ones(3, np.float32))])


@given(shape=shapes, seed=seeds, c=st.floats(-3, 3).filter(lambda v: abs(v) > 0.1))
def test_ops_with_python_scalars(device, shape, seed, c):
    rng = np.random.default_rng(seed)
    a = np.abs(arr(rng, shape)) + 0.5
    ta = T(a, device)
    cases = [(lambda x: x * c, a * c), (lambda x: c * x, c * a), (lambda x: x + c, a + c),
             (lambda x: c + x, c + a), (lambda x: x - c, a - c), (lambda x: c - x, c - a),
             (lambda x: x / c, a / c), (lambda x: c / x, c / a)]
    for f, ref in cases:
        np.testing.assert_allclose(np_(f(ta)), ref, rtol=1e-12)
        assert gradcheck(f, [ta])
