"""Step hooks: the GradientRecorder records what a direct computation gives, and training
with it gives the same weights as without."""
import numpy as np

from tinyfit.fitnets import train_backprop
from tinyfit.hooks import GradientRecorder, activation_scales, layer_norms
from tiny import spec, tiny_data, tiny_student


def test_recorded_norms_equal_a_direct_computation_and_change_nothing():
    data = tiny_data()
    raw = []

    def copy_grads(info):
        raw.append({n: p.grad.astype(np.float64).copy() for n, p in info.modules["model"].named_parameters()})
        weights.append({n: p.data.astype(np.float64).copy() for n, p in info.modules["model"].named_parameters()})
    weights = []

    rec = GradientRecorder(probe=data.x_val[:8], every=2)
    with_hook = tiny_student(np.random.default_rng(2))
    losses = []
    result = train_backprop(with_hook, data, spec(2), np.random.default_rng(4), progress=False,
                            step_hooks=[rec, copy_grads, lambda info: losses.append(info.loss)])
    # an epoch's recorded training loss is the mean of its steps' losses (4 steps per epoch)
    for e, h in enumerate(result.history):
        assert np.isclose(h["train_loss"], np.mean(losses[4 * e:4 * e + 4]), rtol=1e-6)
    plain = tiny_student(np.random.default_rng(2))
    train_backprop(plain, data, spec(2), np.random.default_rng(4), progress=False)
    a, b = with_hook.state_dict(), plain.state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)  # the recorder only reads
    assert len(rec.records) == len(raw) == 2 * 4  # 64 examples, batches of 16, 2 epochs
    for r, g in zip(rec.records, raw):
        for layer in ("h0", "h1", "h2", "y"):
            direct = np.sqrt(sum((v ** 2).sum() for n, v in g.items() if n.startswith(layer + ".")))
            assert np.isclose(r["grad"][layer], direct, rtol=1e-12)
    for t in range(len(raw) - 1):  # each step's update: the next step's weights minus this step's
        a, b = weights[t + 1], weights[t]
        direct = np.sqrt(sum(((a[n] - b[n]) ** 2).sum() for n in a if n.startswith("h1.")))
        assert np.isclose(rec.records[t]["update"]["h1"], direct, rtol=1e-6)
    assert "update" not in rec.records[-1]  # the last step's update happens after the last hook call
    assert [("act" in r) for r in rec.records[:4]] == [True, False, True, False]
    # the first record sees the initial weights: its scales are those of the whole probe
    first = activation_scales(tiny_student(np.random.default_rng(2)), data.x_val[:8])
    assert all(np.isclose(rec.records[0]["act"][k], v, rtol=1e-12) for k, v in first.items())
    assert [(r["epoch"], r["step"]) for r in rec.records[:5]] == [(1, 0), (1, 1), (1, 2), (1, 3), (2, 0)]


def test_activation_scales_and_layer_norms_by_hand():
    model = tiny_student(np.random.default_rng(0))
    x = np.random.default_rng(1).random((5, 8, 8, 1), dtype=np.float32)
    scales = activation_scales(model, x)
    h = x
    import tinyfit as tf
    with tf.no_grad():
        for name in ("h0", "h1", "h2"):
            h = model[name](tf.Tensor(h)).data
            assert np.isclose(scales[name], np.sqrt((h.astype(np.float64) ** 2).mean()))
    norms = layer_norms({"model": model}, "data")
    w = model["h0"].state_dict()
    assert np.isclose(norms["h0"], np.sqrt(sum((v.astype(np.float64) ** 2).sum() for v in w.values())))
    assert model.training  # the mode is restored


def test_no_update_is_recorded_across_a_stage_boundary():
    """The last step of one stage and the first of the next are different optimisations (stage 2
    starts from other weights): the difference of their weights is not an update."""
    from types import SimpleNamespace
    from tinyfit.nn import Linear
    layer = Linear(in_features=2, out_features=2, rng=np.random.default_rng(0))
    rec = GradientRecorder()

    def step(stage, shift):
        for p in layer.parameters():
            p.grad = np.ones_like(p.data)
        rec(SimpleNamespace(stage=stage, epoch=1, step=0, loss=1.0, modules={"model": layer}))
        for p in layer.parameters():
            p.data = p.data + shift
    step("stage1", 0.5)       # this step's update moves every weight by 0.5 ...
    step("stage1", 3.0)
    step("fitnet", 0.0)       # ... but the 3.0 before the stage boundary is not stage 1's update
    n = sum(p.data.size for p in layer.parameters())
    assert np.isclose(rec.records[0]["update"]["model"], 0.5 * np.sqrt(n))
    assert "update" not in rec.records[1] and "update" not in rec.records[2]


def _grads(module, value=1.0):
    for p in module.parameters():
        p.grad = np.full_like(p.data, value)
    return module


def test_layers_are_named_by_the_stack_they_sit_in():
    """A stack of layers under the trained network's own name gives its layers' names; under
    another name, 'name/layer'; a module of one layer (a regressor) is one layer."""
    import pytest
    from tinyfit.nn import Linear, Sequential
    rng = np.random.default_rng(0)
    two = lambda: Sequential([("a", Linear(in_features=2, out_features=2, rng=rng)),
                              ("b", Linear(in_features=2, out_features=2, rng=rng))])
    one = Sequential([("only", Linear(in_features=2, out_features=3, rng=rng))])
    modules = {"student": _grads(two()), "teacher": _grads(two(), 2.0), "regressor": _grads(one, 3.0)}
    norms = layer_norms(modules)   # the gradients by default
    assert list(norms) == ["a", "b", "teacher/a", "teacher/b", "regressor"]
    assert np.isclose(norms["a"], np.sqrt(6)) and np.isclose(norms["teacher/b"], 2 * np.sqrt(6))
    assert np.isclose(norms["regressor"], 3 * np.sqrt(9))
    assert list(layer_norms({"model": _grads(two())})) == ["a", "b"]
    # a parameter without a gradient is skipped, not the rest of its module
    first = next(iter(modules["student"].parameters()))
    first.grad = None
    assert np.isclose(layer_norms(modules)["a"], np.sqrt(2)) and "b" in layer_norms(modules)
    for bad in (0, -1, 1.5, "2"):
        with pytest.raises(ValueError, match=f"^every must be a positive number of steps, got {bad!r}$"):
            GradientRecorder(every=bad)


def test_a_record_holds_the_step_the_gradients_and_the_weights():
    from types import SimpleNamespace
    from tinyfit.nn import Linear, Sequential
    net = Sequential([("h0", Linear(in_features=4, out_features=3, rng=np.random.default_rng(0))),
                      ("y", Linear(in_features=3, out_features=2, rng=np.random.default_rng(1)))])
    probe = np.random.default_rng(2).random((5, 4), dtype=np.float32)
    rec = GradientRecorder(probe)   # every step by default
    for step in range(2):
        rec(SimpleNamespace(stage="backprop", epoch=1, step=step, loss=0.5 + step, modules={"model": _grads(net, 0.1)}))
    # a recorder on modules without the network has nothing to probe
    regressor = _grads(Linear(in_features=2, out_features=2, rng=np.random.default_rng(3)))
    GradientRecorder(probe)(SimpleNamespace(stage="s", epoch=1, step=0, loss=0.0, modules={"regressor": regressor}))
    r = rec.records[0]
    assert set(r) == {"stage", "epoch", "step", "loss", "grad", "weight", "act", "update"}
    assert (r["stage"], r["epoch"], r["step"], r["loss"]) == ("backprop", 1, 0, 0.5) and "act" in rec.records[1]
    assert r["weight"] == layer_norms({"model": net}, "data") and r["grad"] == layer_norms({"model": net})
    assert r["weight"] != r["grad"]
