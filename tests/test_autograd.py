import gc
import weakref

import numpy as np
import pytest

import tinyfit as tf
import tinyfit.functional as F
from tinyfit import Tensor, no_grad


def test_deep_chain_backprops_without_recursion_error():
    x = Tensor(np.array(1.0), requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.backward()
    assert np.isclose(x.grad, 1.0001 ** 10_000)


def test_gradients_accumulate_over_backward_calls_and_within_a_graph():
    x = Tensor(np.array([2.0, 3.0]), requires_grad=True)
    (x * x).sum().backward()            # d/dx x^2 = 2x
    (x + x).sum().backward()            # x used twice: 1 + 1
    np.testing.assert_allclose(x.grad, 2 * np.array([2.0, 3.0]) + 2)


def test_diamond_graph_is_visited_in_generation_order():
    x = Tensor(np.array(3.0), requires_grad=True)
    a = x * 2
    b = a * a          # depends on a twice
    c = a + b
    c.backward()
    # c = 2x + 4x^2 -> 2 + 8x
    assert np.isclose(x.grad, 2 + 8 * 3.0)


def test_graph_is_freed_after_backward_unless_retained():
    x = Tensor(np.ones(3), requires_grad=True)
    y = (x * 2).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad, 4 * np.ones(3))
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()


def test_saved_arrays_are_released_after_backward():
    x = Tensor(np.ones((100, 100)), requires_grad=True)
    y = F.relu(x)
    saved = weakref.ref(y.creator.mask)
    y.sum().backward()
    gc.collect()
    assert saved() is None


def test_no_grad_records_nothing():
    x = Tensor(np.ones(3), requires_grad=True)
    with no_grad():
        y = x * 2
    assert y.creator is None and not y.requires_grad
    assert tf.is_grad_enabled()


def test_broadcasting_gradients_sum_back_to_shape():
    a = Tensor(np.ones((4, 3)), requires_grad=True)
    b = Tensor(np.ones((3,)), requires_grad=True)
    c = Tensor(np.ones((4, 1)), requires_grad=True)
    (a * b + c).sum().backward()
    np.testing.assert_allclose(b.grad, [4, 4, 4])
    np.testing.assert_allclose(c.grad, [[3]] * 4)
    assert a.grad.shape == (4, 3)


def test_backward_of_non_scalar_needs_a_gradient():
    x = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(ValueError, match="scalar"):
        (x * 2).backward()
    (x * 2).backward(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(x.grad, [2, 4, 6])


def test_scalars_keep_float32():
    x = Tensor(np.ones(3, np.float32), requires_grad=True)
    y = (x * 0.5 + 1) / 3.0 - 2
    assert y.dtype == np.float32


def test_retain_grad_keeps_intermediate_grad():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    h = (x * 3).retain_grad()
    (h * h).sum().backward()
    np.testing.assert_allclose(h.grad, 2 * 3 * np.array([1.0, 2.0]))


def test_a_retained_intermediate_accumulates_over_two_backward_calls():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    h = (x * 3).retain_grad()
    y = (h * h).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(h.grad, 2 * (2 * 3 * np.array([1.0, 2.0])))  # dy/dh = 2h, twice
    np.testing.assert_allclose(x.grad, 2 * (2 * 9 * np.array([1.0, 2.0])))  # dy/dx = 18x, twice


def test_nested_no_grad_blocks_restore_the_outer_state():
    x = Tensor(np.ones(2), requires_grad=True)
    with no_grad():
        with no_grad():
            assert not tf.is_grad_enabled()
        assert not tf.is_grad_enabled()  # still inside the outer block
        assert (x * 2).creator is None
    assert tf.is_grad_enabled() and (x * 2).creator is not None
    try:
        with no_grad():
            raise KeyError("inside")
    except KeyError:
        pass
    assert tf.is_grad_enabled()  # restored on an exception too


# -- composite graphs: each op's gradient is checked alone elsewhere; here whole graphs are, end to
# end, against central differences (shared subexpressions, branches of different depth, constants
# joining deep nodes, reductions broadcast back, several outputs)
from hypothesis import given, settings, strategies as st  # noqa: E402

_UNARY = (lambda a: F.exp(a * 0.3), lambda a: -a, lambda a: a * 2.5 + 1.0, lambda a: F.sqrt(a * a + 1.0),
          lambda a: F.sum(a, axis=0, keepdims=True) + a, lambda a: a / (F.exp(a * 0.1) + 1.0))
_BINARY = (lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a * b, lambda a, b: a / (b * b + 1.0))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.integers(2, 3),
       st.lists(st.tuples(st.booleans(), st.integers(0, 5), st.integers(0, 99), st.integers(0, 99)),
                min_size=1, max_size=12),
       st.integers(1, 3), st.integers(0, 2 ** 31))
def test_random_composite_graphs_backprop_like_central_differences(rows, cols, n_in, program, n_out, seed):
    rng = np.random.default_rng(seed)
    xs = [Tensor(rng.normal(size=(rows, cols)), requires_grad=True) for _ in range(n_in)]

    def fn(*inputs):
        pool = list(inputs)
        for binary, op, i, j in program:   # operands drawn from every node so far: shared, uneven depths
            a, b = pool[i % len(pool)], pool[j % len(pool)]
            pool.append(_BINARY[op % len(_BINARY)](a, b) if binary else _UNARY[op](a))
        outs = pool[-n_out:]
        return tuple(o * float(k + 1) for k, o in enumerate(outs)) if n_out > 1 else outs[0]

    assert tf.gradcheck(fn, xs, seed=seed % 1000, directions=2)


def test_a_fixed_graph_with_a_shared_deep_node_and_a_constant_join():
    x = Tensor(np.array([[0.3, -1.2], [2.0, 0.5]]), requires_grad=True)
    y = Tensor(np.array([[1.5, 0.1], [-0.4, 0.8]]), requires_grad=True)

    def fn(x, y):
        deep = x
        for _ in range(5):
            deep = F.exp(deep * 0.2) * y
        shallow = x * y
        return deep * shallow + (deep + 3.0) / (shallow * shallow + 1.0), F.sum(deep, axis=1, keepdims=True) - x
    assert tf.gradcheck(fn, [x, y], directions=3)
