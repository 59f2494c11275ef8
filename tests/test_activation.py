"""relu, dropout, softmax and log-softmax with temperature."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinyfit.functional as F
from tinyfit import Tensor, gradcheck
from helpers import T, arr, np_

seeds = st.integers(0, 2 ** 32 - 1)
temps = st.floats(0.1, 20.0)


def softmax_ref(x, t):
    z = x / t
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


@given(n=st.integers(1, 4), k=st.integers(1, 6), T_=temps, scale=st.sampled_from([1.0, 100.0, 1000.0]),
       seed=seeds, noncontig=st.booleans())
def test_softmax_and_log_softmax(device, n, k, T_, scale, seed, noncontig):
    rng = np.random.default_rng(seed)
    x = arr(rng, (n, k), noncontig, scale=scale)  # large logits must not overflow
    tx = T(x, device)
    p = np_(F.softmax(tx, T_))
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p, softmax_ref(x, T_), rtol=1e-10, atol=1e-300)
    np.testing.assert_allclose(np_(F.log_softmax(tx, T_)), x / T_ - (x / T_).max(-1, keepdims=True)
                               - np.log(np.exp(x / T_ - (x / T_).max(-1, keepdims=True)).sum(-1, keepdims=True)),
                               rtol=1e-10, atol=1e-10)
    if scale == 1.0:  # the numerical derivative is meaningful at moderate logits
        assert gradcheck(lambda x: F.softmax(x, T_), [tx])
        assert gradcheck(lambda x: F.log_softmax(x, T_), [tx])


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf")])
def test_non_positive_temperature_is_rejected(bad):
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        F.softmax(T(np.ones((1, 3))), bad)


@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple), p=st.floats(0.0, 0.9), seed=seeds)
def test_dropout_is_seeded_scaled_and_gradchecked(device, shape, p, seed):
    x = arr(np.random.default_rng(seed), shape)
    tx = T(x, device)
    y1 = np_(F.dropout(tx, p, rng=np.random.default_rng(seed)))
    y2 = np_(F.dropout(tx, p, rng=np.random.default_rng(seed)))
    np.testing.assert_array_equal(y1, y2)
    kept = y1 != 0
    np.testing.assert_allclose(y1[kept], x[kept] / (1 - p), rtol=1e-12)
    # a fixed mask: re-seed inside so every evaluation drops the same elements
    assert gradcheck(lambda x: F.dropout(x, p, rng=np.random.default_rng(seed)), [tx])
    np.testing.assert_array_equal(np_(F.dropout(tx, p, training=False)), x)


def test_dropout_rate_is_about_p():
    x = Tensor(np.ones(100_000, np.float32))
    y = F.dropout(x, 0.3, rng=np.random.default_rng(1)).data
    assert abs((y == 0).mean() - 0.3) < 0.01
    assert y.dtype == np.float32


def test_dropout_on_a_device_reuses_one_generator_and_follows_the_host_rng(monkeypatch):
    """On CuPy, dropout masks come from one device generator made once and reseeded from the
    stage's host generator per call (stand-in device module; the real one runs in test_parity)."""
    from tinyfit import random as R

    made = []

    class FakeRandomState:
        def __init__(self, seed, method=None):
            made.append(method)
            self.rng = None

        def seed(self, s):
            self.rng = np.random.default_rng(s)

        def random_sample(self, shape, dtype):
            return self.rng.random(shape, dtype=dtype)

    class FakeXp:
        class random:
            RandomState = FakeRandomState

        class cuda:
            class curand:
                CURAND_RNG_PSEUDO_PHILOX4_32_10 = "philox"
    monkeypatch.setattr(R, "_device_generators", {})
    draws = []
    for _ in range(2):
        host = np.random.default_rng(7)
        draws.append([R.uniform_like(host, FakeXp, (3, 4), np.float32) for _ in range(4)])
    assert made == ["philox"]  # one generator for all eight calls
    for a, b in zip(*draws):   # same host state -> same samples (what exact resume needs)
        assert a.dtype == np.float32 and np.array_equal(a, b)
    assert not np.array_equal(draws[0][0], draws[0][1])
