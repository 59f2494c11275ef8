"""The predictor (tinyfit.predictor): the autograd forward's outputs, bit for bit, without the
autograd layer; buffers reused across calls; following the model's weights; clear errors."""
import threading

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinyfit as tf
import tinyfit.functional as F
from tinyfit.checkpoint import load_model, save_model
from tinyfit.models import mnist_student, mnist_teacher
from tinyfit.nn import Conv2d, Dropout, Flatten, Linear, MaxoutConv2d, Sequential, eval_outputs
from tinyfit.optim import RMSProp
from tinyfit.predictor import Predictor


def _images(n, shape=(28, 28, 1), seed=1, dtype=np.float32):
    return np.random.default_rng(seed).random((n,) + shape).astype(dtype)


@pytest.mark.parametrize("make", [mnist_student, mnist_teacher])
def test_the_paper_networks_give_the_autograd_outputs_bit_for_bit(make):
    model = make(rng=np.random.default_rng(0), init="glorot")
    x = _images(70)
    p = Predictor(model, batch_size=32)            # two full batches and a shorter one
    first, again = p.logits(x), p.logits(x)        # planned, then the buffers reused
    want = eval_outputs(model, x, batch_size=32)
    assert first.dtype == want.dtype == np.float32
    assert np.array_equal(first, want) and np.array_equal(again, want)
    assert first is not again and not np.shares_memory(first, again)    # results are the caller's
    assert np.array_equal(p.predict(x), want.argmax(axis=1))
    assert np.array_equal(model.predict(x, batch_size=32), want.argmax(axis=1))
    times = p.layer_times(x[:32], reps=2)
    assert [n for n, _ in times] == model.layer_names and all(ms > 0 for _, ms in times)


def test_it_follows_the_models_weights_and_leaves_its_mode_alone():
    model = mnist_student(rng=np.random.default_rng(0), init="glorot")
    x, y = _images(16), np.arange(16) % 10
    p = model.predictor(8)
    before = p.logits(x)
    model.train()
    opt = RMSProp(model.parameters())
    opt.zero_grad()
    F.cross_entropy(model(tf.Tensor(x)), y).backward()
    opt.step()
    after = p.logits(x)
    assert model.training                          # the predictor never switches the model's mode
    assert not np.array_equal(before, after) and np.array_equal(after, eval_outputs(model, x, batch_size=8))
    fresh = mnist_student(rng=np.random.default_rng(5), init="glorot")
    model.load_state_dict(fresh.state_dict())      # loaded into: the loaded weights
    assert np.array_equal(p.logits(x), eval_outputs(fresh, x, batch_size=8))


def test_probabilities_are_the_softmax_of_the_logits():
    model = mnist_teacher(rng=np.random.default_rng(2), init="glorot")
    x = _images(5)
    z = eval_outputs(model, x).astype(np.float64)
    for T in (1.0, 4.0):
        q = np.exp(z / T - (z / T).max(axis=1, keepdims=True))
        q /= q.sum(axis=1, keepdims=True)
        got = model.predict_proba(x, T=T)
        assert got.shape == (5, 10) and np.allclose(got, q, rtol=1e-5, atol=1e-7)
        assert np.allclose(got.sum(axis=1), 1, atol=1e-6)


def test_a_model_file_predicts_through_the_predictor(tmp_path):
    model = mnist_student(rng=np.random.default_rng(3), init="glorot")
    save_model(tmp_path / "m.model.npz", model)
    loaded, x = load_model(tmp_path / "m.model.npz"), _images(9)
    assert np.array_equal(loaded.predict(x), eval_outputs(model, x).argmax(axis=1))
    assert isinstance(loaded.predictor(), Predictor) and loaded.predictor() is loaded.predictor()


def test_a_model_that_has_predicted_can_be_copied_and_pickled():
    import copy
    import pickle
    model = mnist_student(rng=np.random.default_rng(7), init="glorot")
    x = _images(3)
    want = model.predict(x)
    for twin in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert np.array_equal(twin.predict(x), want) and twin.predictor() is not model.predictor()


def test_concurrent_callers_get_their_own_answers():
    model = mnist_student(rng=np.random.default_rng(4), init="glorot")
    p = Predictor(model, 16)
    inputs = [_images(16 + k, seed=k) for k in range(6)]
    want = [eval_outputs(model, x, batch_size=16) for x in inputs]
    got = [None] * len(inputs)

    def work(k):
        for _ in range(3):
            got[k] = p.logits(inputs[k])
    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(np.array_equal(g, w) for g, w in zip(got, want))


@st.composite
def _networks(draw):
    """A small Sequential of every layer kind the predictor plans, with random geometry."""
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    size, c = draw(st.integers(5, 9)), draw(st.integers(1, 3))
    layers, shape = [("d0", Dropout(0.3))], (size, size, c)
    k, pad = draw(st.integers(1, 3)), draw(st.integers(0, 2))
    pieces, ch = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    pool = draw(st.sampled_from([None, (2, 2), (3, 2), (2, 1), (3, 3)]))
    layers.append(("h0", MaxoutConv2d(c, ch, pieces, k, pad=pad, pool=pool and pool[0], pool_stride=pool and pool[1],
                                      ceil_mode=draw(st.booleans()), init="glorot", rng=rng)))
    h = size + 2 * pad - k + 1
    if pool:
        h = F.pool_output_size(h, pool[0], pool[1], 0, layers[-1][1].ceil_mode)
    stride = draw(st.integers(1, 2))
    kc = draw(st.integers(1, min(2, h)))
    layers.append(("c1", Conv2d(ch, 2, kc, stride=stride, pad=draw(st.integers(0, 1)), init="glorot",
                                bias=draw(st.booleans()), rng=rng)))
    h = F.conv_output_size(h, kc, stride, layers[-1][1].pad)
    layers += [("flat", Flatten()), ("y", Linear(2 * h * h, 4, init="glorot", rng=rng))]
    return Sequential(layers, input_shape=shape), draw(st.integers(1, 7)), draw(st.integers(1, 4))


@settings(max_examples=40, deadline=None)
@given(_networks())
def test_random_networks_give_the_autograd_outputs_bit_for_bit(net):
    model, n, batch = net
    x = _images(n, model.input_shape, seed=n, dtype=model.parameters()[0].data.dtype)
    p = Predictor(model, batch)
    want = eval_outputs(model, x, batch_size=batch)
    assert np.array_equal(p.logits(x), want) and np.array_equal(p.logits(x), want)


def test_bad_input_is_refused_with_what_to_do():
    model = mnist_student(rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"inputs of shape \(N, 28, 28, 1\).*got \(3, 28, 28\)"):
        Predictor(model).logits(np.zeros((3, 28, 28), np.float32))
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        Predictor(model, 0)
    with pytest.raises(TypeError, match="needs a Sequential built with an input shape"):
        Predictor(Sequential([("flat", Flatten())]))
    assert Predictor(model).logits(np.zeros((0, 28, 28, 1), np.float32)).shape == (0, 10)


def test_a_layer_it_does_not_plan_runs_through_its_own_forward():
    class Square(tf.nn.Module):
        def __init__(self):
            super().__init__()
            self.config = {}

        def forward(self, x):
            return x * x
    rng = np.random.default_rng(6)
    model = Sequential([("flat", Flatten()), ("sq", Square()), ("y", Linear(12, 3, init="glorot", rng=rng))],
                       input_shape=(2, 3, 2))
    x = _images(4, (2, 3, 2))
    assert np.array_equal(Predictor(model).logits(x), eval_outputs(model, x))
