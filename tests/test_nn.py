"""Modules: state_dict / load round trip, spec() / build round trip, parameter counts,
to() on a model, train / eval mode switching."""
import numpy as np
import pytest

import tinyfit as tf
from tinyfit.models import mnist_student, mnist_teacher, thin_student
from tinyfit.fitnets import error_rate
from tinyfit.nn import Conv2d, Dropout, Flatten, Linear, MaxoutConv2d, Sequential, build, eval_layers, eval_outputs
from tiny import tiny_data, tiny_teacher


def small(rng):
    return Sequential([
        ("d0", Dropout(0.5)),
        ("h0", MaxoutConv2d(in_channels=2, channels=3, pieces=2, kernel=3, pad=1, pool=2, pool_stride=2,
                            ceil_mode=True, init="glorot", max_norm=1.0, rng=rng)),
        ("c1", Conv2d(in_channels=3, out_channels=4, kernel=2, init="glorot", rng=rng)),
        ("flat", Flatten()),
        ("y", Linear(in_features=4 * 2 * 2, out_features=5, init="glorot", rng=rng)),
    ], input_shape=(6, 6, 2))


def test_state_dict_round_trip_copies():
    a, b = small(np.random.default_rng(0)), small(np.random.default_rng(1))
    state = a.state_dict()
    assert list(state) == [n for n, _ in a.named_parameters()]
    b.load_state_dict(state)
    for (n, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        assert np.array_equal(p.data, q.data) and p.data is not q.data, n
    state["y.W"][...] = 7.0  # the state is a copy: changing it changes neither model
    assert not np.any(a["y"].W.data == 7.0) and not np.any(b["y"].W.data == 7.0)
    with pytest.raises(ValueError, match="missing: y.b"):
        b.load_state_dict({k: v for k, v in state.items() if k != "y.b"})


@pytest.mark.parametrize("make", [small, lambda rng: mnist_student(rng=rng), lambda rng: mnist_teacher(rng=rng),
                                  lambda rng: thin_student(5, 7, rng=rng)])
def test_spec_build_round_trip(make):
    model = make(np.random.default_rng(0))
    again = build(model.spec())
    assert again.spec() == model.spec()
    again.load_state_dict(model.state_dict())
    x = np.random.default_rng(1).random((3,) + model.input_shape, dtype=np.float32)
    np.testing.assert_array_equal(eval_outputs(again, x), eval_outputs(model, x))


def test_parameter_counts():
    m = small(np.random.default_rng(0))
    weights = 3 * 3 * 2 * 6 + 2 * 2 * 3 * 4 + 16 * 5
    biases = 6 + 4 + 5
    assert m.num_parameters(weights_only=True) == weights
    assert m.num_parameters() == weights + biases
    assert mnist_student().num_parameters(weights_only=True) == 35_992
    assert mnist_teacher().num_parameters(weights_only=True) == 418_416


def test_to_cpu_keeps_arrays_and_clears_grads():
    m = small(np.random.default_rng(0))
    for p in m.parameters():
        p.grad = np.ones_like(p.data)
    before = [p.data for p in m.parameters()]
    assert m.to("cpu") is m and m.device == "cpu"
    assert all(p.data is b for p, b in zip(m.parameters(), before))  # no copy on the same device
    assert all(p.grad is None for p in m.parameters())
    with pytest.raises(tf.DeviceError, match="'cpu' or 'cuda'"):
        m.to("tpu")


def test_train_and_eval_modes_reach_every_layer():
    m = small(np.random.default_rng(0))
    assert all(layer.training for layer in m.modules())
    assert m.eval() is m and not any(layer.training for layer in m.modules())
    x = tf.Tensor(np.ones((2, 6, 6, 2), np.float32))
    np.testing.assert_array_equal(m(x).data, m(x).data)  # eval: dropout off, deterministic
    m.train()
    assert all(layer.training for layer in m.modules())
    m["d0"].rng = np.random.default_rng(3)
    assert not np.array_equal(m(x).data, m(x).data)  # train: dropout masks differ per call


def test_eval_layers_is_one_pass_of_eval_outputs():
    """Several layers' outputs from one pass equal eval_outputs layer by layer, in batches that
    do not divide the data; the model's output is the None entry; the mode is restored."""
    model = mnist_teacher(rng=np.random.default_rng(0))
    x = np.random.default_rng(1).random((7, 28, 28, 1), dtype=np.float32)
    out = eval_layers(model, x, [None, "h1", "h0"], batch_size=3)
    assert set(out) == {None, "h1", "h0"} and model.training
    np.testing.assert_array_equal(out[None], eval_outputs(model, x, batch_size=3))
    for name in ("h0", "h1"):
        np.testing.assert_array_equal(out[name], eval_outputs(model, x, until=name, batch_size=3))
    assert eval_layers(model, x, ["h1"])["h1"].shape == (7, 4, 4, 48)


def test_eval_layers_gives_each_asked_layer_from_one_pass():
    from tinyfit.models import mnist_teacher
    from tinyfit.nn import eval_layers, eval_outputs
    model = mnist_teacher(rng=np.random.default_rng(0), init="glorot")
    x = np.random.default_rng(1).random((7, 28, 28, 1), dtype=np.float32)
    for names in ([None, "h1"], ["h0", "h2"], ["h1", None, "h0"], ["h2"]):
        got = eval_layers(model, x, names, batch_size=3)
        assert sorted(got, key=str) == sorted(names, key=str)
        for n in names:
            np.testing.assert_array_equal(got[n], eval_outputs(model, x, until=n, batch_size=3))
    assert model.training  # the mode is restored


def test_evaluation_is_deterministic_and_dropout_free():
    teacher = tiny_teacher(np.random.default_rng(0))
    x = tiny_data().x_val
    teacher.train()
    a = tf.nn.eval_outputs(teacher, x)
    b = tf.nn.eval_outputs(teacher, x)
    np.testing.assert_array_equal(a, b)  # no dropout masks in evaluation
    assert teacher.training  # and the mode is restored
    manual = teacher.eval()(tf.Tensor(x)).data  # the same as an explicit eval-mode pass
    np.testing.assert_array_equal(a, manual)
    teacher.train()
    assert not np.array_equal(teacher(tf.Tensor(x)).data, manual)  # training mode does drop
    err = error_rate(teacher, x, tiny_data().y_val)
    assert err == error_rate(teacher, x, tiny_data().y_val) and teacher.training
