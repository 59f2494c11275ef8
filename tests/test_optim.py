"""Optimiser updates and the max-norm projection against hand-computed values (float64),
the momentum ramp, the epoch the lambda schedule receives, and deterministic evaluation."""
import numpy as np
import pytest

from tinyfit.fitnets import StageSpec
from tinyfit.nn import Conv2d, Linear, Parameter
from tinyfit.optim import SGD, Adam, RMSProp, apply_max_norm


def param(values):
    return Parameter(np.array(values, dtype=np.float64))


def run(opt, p, grads):
    out = []
    for g in grads:
        p.grad = np.array(g, dtype=np.float64)
        opt.step()
        out.append(p.data.copy())
    return out


def test_sgd_with_momentum_two_steps():
    p = param([1.0, -2.0])
    a, b = run(SGD([p], lr=0.1, momentum=0.5), p, [[1.0, 2.0], [3.0, -1.0]])
    # v1 = -0.1 g1; p1 = p0 + v1; v2 = 0.5 v1 - 0.1 g2; p2 = p1 + v2
    np.testing.assert_allclose(a, [0.9, -2.2], rtol=0, atol=1e-15)
    np.testing.assert_allclose(b, [0.9 + (-0.05 - 0.3), -2.2 + (-0.1 + 0.1)], rtol=0, atol=1e-15)


def test_momentum_ramp_reaches_its_final_value_at_the_saturate_epoch():
    opt = SGD([param([0.0])], lr=0.1, momentum=0.5)
    [hook] = StageSpec("sgd", 0.1, 0.5, 0.7, 5).epoch_hooks(opt)
    seen = []
    for epoch in range(1, 8):
        hook(epoch)
        seen.append(opt.momentum)
    np.testing.assert_allclose(seen, [0.5, 0.55, 0.6, 0.65, 0.7, 0.7, 0.7], rtol=0, atol=1e-15)


def test_rmsprop_official_variant_two_steps_and_the_eps_floor():
    p = param([1.0, 1.0])
    opt = RMSProp([p], lr=0.01, decay=0.9, eps=1e-5)
    a, b = run(opt, p, [[2.0, 1e-7], [-1.0, 1e-7]])
    ms1 = 0.1 * np.array([4.0, 1e-14])
    # eps is a floor on sqrt(ms), not added to it: the tiny gradient divides by 1e-5
    np.testing.assert_allclose(a, [1 - 0.01 * 2 / np.sqrt(0.4), 1 - 0.01 * 1e-7 / 1e-5], rtol=1e-13)
    ms2 = 0.9 * ms1 + 0.1 * np.array([1.0, 1e-14])
    np.testing.assert_allclose(b, a - 0.01 * np.array([-1.0, 1e-7]) / np.maximum(np.sqrt(ms2), 1e-5), rtol=1e-13)
    assert b[0] > a[0]  # square root taken: a plain ms denominator would give a different step


def test_adam_two_steps_with_bias_correction():
    p = param([0.5])
    a, b = run(Adam([p], lr=0.1, betas=(0.9, 0.999), eps=1e-8), p, [[2.0], [1.0]])
    # step 1: m_hat = g, v_hat = g^2 -> step of lr * g / (|g| + eps)
    np.testing.assert_allclose(a, [0.5 - 0.1 * 2 / (2 + 1e-8)], rtol=1e-14)
    m = 0.9 * 0.2 + 0.1 * 1.0
    v = 0.999 * 0.004 + 0.001 * 1.0
    np.testing.assert_allclose(b, a - 0.1 * (m / (1 - 0.81)) / (np.sqrt(v / (1 - 0.999 ** 2)) + 1e-8), rtol=1e-14)


def test_max_norm_on_conv_filters_and_linear_columns():
    conv = Conv2d(in_channels=2, out_channels=3, kernel=2, max_norm=1.0, rng=np.random.default_rng(0))
    conv.astype(np.float64)
    conv.W.data[...] = 0.0
    conv.W.data[..., 0] = 1.0    # filter 0: norm sqrt(2*2*2) = 2.83 -> scaled to 1
    conv.W.data[0, 0, 0, 1] = 0.5  # filter 1: norm 0.5 -> unchanged
    apply_max_norm([conv.W])
    norms = np.sqrt((conv.W.data ** 2).sum(axis=(0, 1, 2)))
    np.testing.assert_allclose(norms, [1.0, 0.5, 0.0], atol=1e-15)
    lin = Linear(in_features=3, out_features=2, max_norm=2.0, rng=np.random.default_rng(0)).astype(np.float64)
    lin.W.data[...] = [[3.0, 0.1], [4.0, 0.1], [0.0, 0.1]]  # column 0: norm 5 -> 2; column 1 kept
    apply_max_norm([lin.W])
    np.testing.assert_allclose(lin.W.data[:, 0], [1.2, 1.6, 0.0], atol=1e-15)
    np.testing.assert_allclose(lin.W.data[:, 1], [0.1, 0.1, 0.1], atol=1e-15)


@pytest.mark.parametrize("cls", [SGD, RMSProp, Adam])
def test_parameters_without_gradients_are_left_alone(cls):
    p, q = param([1.0]), param([2.0])
    q.grad = np.array([1.0])
    cls([p, q], lr=0.1).step()
    assert p.data[0] == 1.0 and q.data[0] != 2.0


def test_a_step_updates_then_projects_by_hand():
    """RMSProp's update first, then max-norm on the updated weights (the official order): worked
    out by hand for one 2-element column with a norm limit it crosses only after the update."""
    from tinyfit.nn import Parameter
    from tinyfit.optim import RMSProp
    p = Parameter(np.array([[0.6], [0.6]], np.float64))
    p.max_norm, p.norm_axes = 1.0, (0,)
    p.grad = np.array([[-1.0], [-1.0]])
    RMSProp([p], lr=0.1, decay=0.9, eps=1e-5).step()
    # ms = 0.1 * 1 = 0.1; update = 0.1 * 1 / sqrt(0.1) = 0.316228 -> 0.916228 each, norm 1.29574 > 1
    # -> scaled to norm 1: 0.707107 each. Projecting first (norm 0.849 < 1: unchanged) would leave 0.916
    assert np.allclose(p.data, [[2 ** -0.5], [2 ** -0.5]], atol=1e-6)
