"""CuPy vs NumPy: every op's forward and backward agree on host-drawn inputs
(float64 to 1e-10, float32 to 1e-4 relative); and a model's initial weights are
identical on both devices. Skipped without a GPU."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinyfit.functional as F
from tinyfit import Tensor, backend

pytestmark = pytest.mark.skipif(not backend.cupy_available(), reason="CuPy with a CUDA device is not available")

TOL = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=1e-4, atol=1e-5)}

OPS = {
    "conv2d": (lambda x, W, b: F.conv2d(x, W, b, 2, 1), [(2, 7, 6, 3), (3, 3, 3, 4), (4,)]),
    "conv2d_s1": (lambda x, W: F.conv2d(x, W, None, 1, 0), [(2, 6, 6, 2), (3, 3, 2, 5)]),
    "conv2d_rows": (lambda x, W, b: F.conv2d(x, W, b, 1, 2, "rows"), [(2, 5, 6, 3), (4, 4, 3, 4), (4,)]),
    "conv2d_flipped": (lambda x, W, b: F.conv2d(x, W, b, 1, 3), [(2, 3, 3, 2), (3, 3, 2, 4), (4,)]),
    "max_pool2d": (lambda x: F.max_pool2d(x, 4, 2, 0, True), [(2, 9, 9, 3)]),
    "max_pool2d_sweep": (lambda x: F.max_pool2d(x, 3, 2, 1, True), [(2, 8, 7, 3)]),
    "maxout2": (lambda x: F.maxout(x, 2), [(3, 4, 4, 6)]),
    "maxout3": (lambda x: F.maxout(x, 3), [(5, 9)]),
    "softmax": (lambda x: F.softmax(x, 3.0), [(4, 10)]),
    "log_softmax": (lambda x: F.log_softmax(x, 0.5), [(4, 10)]),
    "linear": (F.linear, [(4, 6), (6, 3), (3,)]),
    "hint_loss": (F.hint_loss, [(2, 3, 3, 4), (2, 3, 3, 4)]),
    "soft_ce": (lambda x, q: F.soft_cross_entropy(x, F.softmax(q), 2.0), [(4, 5), (4, 5)]),
    "elementwise": (lambda a, b: F.exp(a) * b - F.sqrt(F.exp(b)) / (F.exp(a) + 1.0), [(3, 4), (3, 4)]),
    "reductions": (lambda a: F.max(a, 1) + F.mean(a, 1) + F.sum(a, 1), [(3, 5)]),
    "shape": (lambda a: F.concatenate([F.transpose(a, (1, 0)), a[1:3].T], 1).reshape(-1), [(4, 3)]),
}


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(seed=st.integers(0, 2 ** 32 - 1))
def test_cupy_matches_numpy(name, dtype, seed):
    fn, shapes = OPS[name]
    rng = np.random.default_rng(seed)
    host = [(rng.permutation(int(np.prod(s))).reshape(s) * 0.01 + rng.random(s) * 1e-3).astype(dtype)
            for s in shapes]  # tie-free, so max-like ops pick the same winner
    outs, grads = [], []
    for device in ("cpu", "cuda"):
        xs = [Tensor(backend.to_device(h, device), requires_grad=True) for h in host]
        y = fn(*xs)
        gy = np.random.default_rng(seed + 1).standard_normal(y.shape).astype(dtype)
        y.backward(backend.to_device(gy, device))
        outs.append(y.numpy())
        grads.append([backend.to_numpy(x.grad) for x in xs])
    np.testing.assert_allclose(outs[1], outs[0], **TOL[dtype])
    for gc, gg in zip(grads[0], grads[1]):
        np.testing.assert_allclose(gg, gc, **TOL[dtype])


def test_initial_weights_identical_on_both_devices():
    from tinyfit.models import mnist_student
    cpu = mnist_student(rng=np.random.default_rng(0))
    gpu = mnist_student(rng=np.random.default_rng(0)).to("cuda")
    assert gpu.device == "cuda"
    for (n, a), (_, b) in zip(cpu.state_dict().items(), gpu.state_dict().items()):
        assert np.array_equal(a, b), n


def test_a_training_step_copies_three_logged_scalars_to_the_host_and_nothing_to_the_device():
    """As tinyfit.training.fit logs a step: the loss, the finiteness check and the batch
    error are read on the host; nothing is uploaded."""
    import cupy
    import tinyfit as tf
    from tinyfit.models import mnist_student
    from tinyfit.optim import RMSProp
    from tinyfit.training import all_finite
    from transfers import TransferCounter
    rng = np.random.default_rng(0)
    model = mnist_student(rng=rng).to("cuda")
    opt = RMSProp(model.parameters())
    x = backend.to_device(rng.random((128, 28, 28, 1), dtype=np.float32), "cuda")
    y = backend.to_device(rng.integers(0, 10, 128), "cuda")
    steps = 5
    with TransferCounter() as tc:
        for name in ("get", "item", "__float__", "__int__", "__bool__"):
            tc.wrap(cupy.ndarray, name, "to_host")
        for name in ("asarray", "array"):
            tc.wrap(cupy, name, "to_device", only_host_args=True)
        for _ in range(steps):
            opt.zero_grad()
            out = model(tf.Tensor(x))
            loss = F.cross_entropy(out, y)
            loss.backward()
            lv = float(loss.data)
            all_finite(lv, opt.params)
            float((out.data.argmax(axis=1) != y).mean())
            opt.step()
    assert tc.counts == {"to_host": 3 * steps, "to_device": 0}
