"""Cross-entropy, soft cross-entropy, the hint loss and the KD loss: values and gradients."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinyfit.functional as F
from tinyfit import gradcheck
from fake_device import DeviceArray, on_device
from helpers import T, arr, np_
from tinyfit.backend import DeviceError

seeds = st.integers(0, 2 ** 32 - 1)


def log_softmax_ref(x, t=1.0):
    z = x / t
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def test_cross_entropy_hand_computed():
    x = T(np.array([[0.0, 0.0], [np.log(3.0), 0.0]]))
    # -log(1/2) and -log(1/4), averaged
    assert np.isclose(np_(F.cross_entropy(x, np.array([0, 1]))), (np.log(2) + np.log(4)) / 2)


@given(n=st.integers(1, 5), k=st.integers(2, 6), T_=st.floats(0.5, 5), seed=seeds, noncontig=st.booleans())
def test_cross_entropy_and_soft_cross_entropy(device, n, k, T_, seed, noncontig):
    rng = np.random.default_rng(seed)
    x = arr(rng, (n, k), noncontig)
    labels = rng.integers(0, k, n)
    q = rng.random((n, k))
    q /= q.sum(-1, keepdims=True)
    tx, tq = T(x, device), T(q, device)
    lab = T(labels, device, requires_grad=False).data
    ref = -log_softmax_ref(x, T_)[np.arange(n), labels].mean()
    assert np.isclose(np_(F.cross_entropy(tx, lab, T_)), ref, rtol=1e-12)
    assert gradcheck(lambda x: F.cross_entropy(x, lab, T_), [tx])
    assert np.isclose(np_(F.soft_cross_entropy(tx, tq, T_)), -(q * log_softmax_ref(x, T_)).sum() / n, rtol=1e-12)
    assert gradcheck(lambda x, q: F.soft_cross_entropy(x, q, T_), [tx, tq])


def test_labels_out_of_range_are_rejected():
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\].*\[0, 3\]"):
        F.cross_entropy(T(np.zeros((2, 3))), np.array([0, 3]))


@given(n=st.integers(1, 3), h=st.integers(1, 4), w=st.integers(1, 4), c=st.integers(1, 3), seed=seeds,
       reduction=st.sampled_from(["paper", "code"]))
def test_hint_loss(device, n, h, w, c, seed, reduction):
    rng = np.random.default_rng(seed)
    a, b = arr(rng, (n, h, w, c)), arr(rng, (n, h, w, c))
    ta, tb = T(a, device), T(b, device)
    d2 = (a - b) ** 2
    ref = 0.5 * d2.sum() / n if reduction == "paper" else 0.5 * d2.sum(axis=2).mean()
    assert np.isclose(np_(F.hint_loss(ta, tb, reduction)), ref, rtol=1e-12)
    assert gradcheck(lambda a, b: F.hint_loss(a, b, reduction), [ta, tb])


def test_hint_loss_hand_computed_and_shape_error():
    a = T(np.zeros((2, 1, 1, 2)))
    b = T(np.array([[[[1.0, 2.0]]], [[[0.0, 3.0]]]]))
    # per example: 1/2 (1 + 4) and 1/2 (0 + 9); batch mean = 3.5
    assert np.isclose(np_(F.hint_loss(a, b)), 3.5)
    with pytest.raises(ValueError, match=r"\(2, 1, 1, 2\) vs teacher hint \(2, 2, 2, 2\)"):
        F.hint_loss(a, T(np.zeros((2, 2, 2, 2))))


def test_kd_loss_hand_computed():
    s = np.array([[1.0, 0.0, -1.0]])
    t = np.array([[2.0, 0.5, 0.0]])   # not s + constant: the softened outputs differ, KL > 0
    lam, tau = 4.0, 3.0
    hard = -log_softmax_ref(s)[0, 0]
    pt = np.exp(log_softmax_ref(t, tau))
    soft = -(pt * log_softmax_ref(s, tau)).sum()
    got = np_(F.kd_loss(T(s), np.array([0]), t, lam, tau))
    assert np.isclose(got, hard + lam * soft, rtol=1e-12)
    # tau^2 and KL options
    kl = soft + (pt * np.log(pt)).sum()
    assert kl > 1e-3
    got = np_(F.kd_loss(T(s), np.array([0]), t, lam, tau, soft="kl", tau_squared=True))
    assert np.isclose(got, hard + lam * tau ** 2 * kl, rtol=1e-12)
    # the official code's quirk: student softened at tau=1 in the soft term
    soft1 = -(pt * log_softmax_ref(s, 1.0)).sum()
    assert np.isclose(np_(F.kd_loss(T(s), np.array([0]), t, lam, tau, student_tau=1.0)), hard + lam * soft1)


@given(n=st.integers(1, 4), k=st.integers(2, 5), lam=st.floats(0, 5), tau=st.floats(0.5, 5), seed=seeds)
def test_kd_loss_gradcheck_and_minimum_at_teacher(device, n, k, lam, tau, seed):
    rng = np.random.default_rng(seed)
    s, t = arr(rng, (n, k)), arr(rng, (n, k))
    labels = T(rng.integers(0, k, n), device, requires_grad=False).data
    ts, tt = T(s, device), T(t, device, requires_grad=False)
    assert gradcheck(lambda s: F.kd_loss(s, labels, tt, lam, tau), [ts])
    # with the KL soft term alone (no hard term influence), the loss is minimal at a match
    kl_at = lambda z: float(np_(F.kd_loss(T(z, device), labels, tt, 1.0, tau, soft="kl"))) \
        - float(np_(F.cross_entropy(T(z, device), labels)))
    assert abs(kl_at(t)) < 1e-10
    assert kl_at(t + arr(rng, (n, k)) * 0.5) >= -1e-12
    # the soft-target gradient vanishes when the student matches the teacher
    z = T(t.copy(), device)
    (F.kd_loss(z, labels, tt, lam, tau) - F.cross_entropy(z, labels)).backward()
    np.testing.assert_allclose(np_(z.grad), 0, atol=1e-12)


@pytest.mark.parametrize("lam", [-1.0, float("nan")])
def test_kd_rejects_negative_lambda(lam):
    with pytest.raises(ValueError, match="lambda must be a finite number >= 0"):
        F.kd_loss(T(np.zeros((1, 2))), np.array([0]), np.zeros((1, 2)), lam)


def test_every_loss_error_says_what_it_expected():
    x = T(np.zeros((2, 3)))
    for call, message in [
        (lambda: F.cross_entropy(x, np.array([0, 1, 2])), "labels must have shape (2,) to match the logits' batch, "
                                                          "got (3,)"),
        (lambda: F.cross_entropy(x, np.array([0.0, 1.0])), "labels must be integers (class indices), got dtype "
                                                           "float64"),
        (lambda: F.cross_entropy(T(np.zeros(3)), np.array([0])), "cross_entropy expects logits (N, K), got shape (3,)"),
        (lambda: F.soft_cross_entropy(x, T(np.zeros((2, 4)))), "soft_cross_entropy expects logits and targets of one "
                                                               "shape (N, K), got (2, 3) and (2, 4)"),
        (lambda: F.soft_cross_entropy(T(np.zeros(3)), T(np.zeros(3))),
         "soft_cross_entropy expects logits and targets of one shape (N, K), got (3,) and (3,)"),
        (lambda: F.hint_loss(x, x, "mean"), "hint loss reduction must be 'paper' or 'code', got 'mean'"),
        (lambda: F.KDTerm(soft="l2"), "soft must be 'ce' or 'kl', got 'l2'"),
    ]:
        with pytest.raises(ValueError) as e:
            call()
        assert str(e.value) == message


def test_the_defaults_and_scalings_of_the_kd_loss_by_hand():
    s = np.array([[1.0, 0.0, -1.0], [0.5, 0.2, 0.1]])
    t = np.array([[2.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
    y = np.array([0, 2])
    hard = -log_softmax_ref(s)[np.arange(2), y].mean()
    pt = np.exp(log_softmax_ref(t, 3.0))
    soft = -(pt * log_softmax_ref(s, 3.0)).sum(-1).mean()
    # the paper's tau (3) and soft cross-entropy by default; labels may come as a Tensor
    assert np.isclose(np_(F.kd_loss(T(s), T(y, requires_grad=False), T(t), 1.0)), hard + soft, rtol=1e-12)
    assert np.isclose(np_(F.cross_entropy(T(s), y)), hard, rtol=1e-12)
    assert np.isclose(np_(F.soft_cross_entropy(T(s), T(pt))), -(pt * log_softmax_ref(s)).sum(-1).mean(), rtol=1e-12)
    # a weight of 1 keeps the soft term; a scale multiplies it; tau^2 only when asked
    term = F.KDTerm(3.0, tau_squared=True)
    assert np.isclose(np_(term.loss(T(s), y, term.targets(T(t)), 2.0)), hard + 2.0 * 9.0 * soft, rtol=1e-12)
    assert np.isclose(np_(F.kd_loss_targets(T(s), y, pt, 1.0, 3.0, scale=4.0)), hard + 4.0 * soft, rtol=1e-12)
    assert np.isclose(np_(F.kd_loss_targets(T(s), y, pt, 0.0, 3.0)), hard, rtol=1e-12)
    assert np.isclose(np_(F.kd_loss_targets(T(s), y, pt, 0.5, 3.0)), hard + 0.5 * soft, rtol=1e-12)   # scale 1


@given(n=st.integers(1, 3), k=st.integers(2, 4), T_=st.floats(0.5, 3), seed=seeds)
def test_soft_cross_entropy_gradient_for_targets_of_any_total(n, k, T_, seed):
    """The formula holds for targets that are not distributions (a sum other than 1)."""
    rng = np.random.default_rng(seed)
    tx, tq = T(arr(rng, (n, k))), T(rng.random((n, k)) * 3)
    assert gradcheck(lambda x, q: F.soft_cross_entropy(x, q, T_), [tx, tq])


def test_hint_loss_code_reduction_by_hand_on_an_odd_width():
    # (1, 2, 3, 1): the code's mean over N, H, C of the sum over W: 1/2 (1 + 4 + 9 + 0 + 1 + 1) / 2
    a = T(np.array([[[[1.0], [2.0], [3.0]], [[0.0], [1.0], [-1.0]]]]))
    assert np.isclose(np_(F.hint_loss(a, T(np.zeros((1, 2, 3, 1))), "code")), 0.5 * 16 / 2)
    b = T(np.zeros((1, 2, 3, 1)), requires_grad=False)
    F.hint_loss(a, b, "code").backward()
    assert b.grad is None and np.allclose(np_(a.grad), np_(a) / 2)


def test_the_kd_loss_keeps_float32_training_in_float32():
    rng = np.random.default_rng(0)
    s = T(rng.standard_normal((4, 3)).astype(np.float32))
    t = rng.standard_normal((4, 3)).astype(np.float32)
    for soft in ("ce", "kl"):
        loss = F.kd_loss(s, np.array([0, 1, 2, 0]), t, 0.5, soft=soft)
        assert loss.data.dtype == np.float32, soft


def test_on_a_device_the_losses_stay_there_and_refuse_a_mix(fake_device):
    rng = np.random.default_rng(0)
    s, t = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    y = np.array([0, 1, 2, 0])
    q = np.exp(log_softmax_ref(t, 3.0))
    on_host = {"ce": F.cross_entropy(T(s), y), "soft": F.soft_cross_entropy(T(s), T(q), 3.0),
               "kl": F.kd_loss_targets(T(s), y, q, 0.5, 3.0, soft="kl")}
    x = T(on_device(s))
    on_dev = {"ce": F.cross_entropy(x, on_device(y)), "soft": F.soft_cross_entropy(x, T(on_device(q)), 3.0),
              "kl": F.kd_loss_targets(x, on_device(y), on_device(q), 0.5, 3.0, soft="kl")}
    for name, loss in on_dev.items():   # computed on the device (no host copy: labels unchecked there)
        assert isinstance(loss.data, DeviceArray), name
        assert np.allclose(np.asarray(loss.data).view(np.ndarray), on_host[name].data, rtol=1e-12), name
    with pytest.raises(DeviceError, match="on different devices"):
        F.cross_entropy(x, y)
    with pytest.raises(DeviceError, match="on different devices"):
        F.cross_entropy(T(s), on_device(y))
    with pytest.raises(DeviceError, match="on different devices"):
        F.soft_cross_entropy(x, T(q))
    with pytest.raises(DeviceError, match="on different devices"):
        F.soft_cross_entropy(T(s), T(on_device(q)))
