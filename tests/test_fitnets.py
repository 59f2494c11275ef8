"""FitNets pieces: lambda schedule, regressor rule, stage 1 freezing, stage 2 initialisation,
model constructors, and bad-input errors of the training loop."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinyfit as tf
from tinyfit import gradcheck
from tinyfit.fitnets import (Constant, KDConfig, LinearDecay, StageSpec, conv_regressor, init_from_stage1,
                             make_regressor, regressor_kernel, train_backprop, train_hints, train_kd, train_teacher)
from tinyfit.models import mnist_student, mnist_teacher
from tinyfit.nn import eval_outputs
from tinyfit.training import FitConfig, NonFiniteError
from tiny import spec, tiny_data, tiny_student, tiny_teacher


def test_lambda_schedule_matches_the_official_code():
    s = LinearDecay(4.0, 0.0, 5, 150)
    assert [s(e) for e in (1, 2, 3, 4)] == [4.0] * 4
    assert round(s(5), 4) == 3.9726
    assert round(s(50), 4) == 2.7397
    assert s(150) == 0.0 and s(151) == 0.0 and s(500) == 0.0
    assert all(s(e) >= s(e + 1) for e in range(1, 200))
    assert Constant(2.5)(77) == 2.5


@pytest.mark.parametrize("bad", [dict(start=-1.0), dict(final=-0.5), dict(start=np.inf), dict(final=np.nan),
                                 dict(start_epoch=10, saturate=5), dict(start_epoch=0)])
def test_lambda_schedule_rejects_bad_values(bad):
    with pytest.raises(ValueError, match=r"^(lambda values must be finite and >= 0, got start=|need 1 <= start_epoch "
                                         r"<= saturate, got )"):
        LinearDecay(**bad)
    with pytest.raises(ValueError, match="lambda must be a finite number >= 0"):
        Constant(-1.0)
    with pytest.raises(ValueError, match="schedule must be a callable epoch -> lambda, got 3"):
        KDConfig(schedule=3)


def test_lambda_schedule_defaults_and_edges():
    # the official code's MNIST values (docs/fitnets.md): 4 decaying to 0 from epoch 5 to 150
    assert vars(LinearDecay()) == vars(LinearDecay(4.0, 0.0, 5, 150))
    # the final value exactly at the saturation epoch, not start - step * n rounded
    assert LinearDecay(4.0, 0.3, 1, 7)(7) == 0.3
    assert Constant(0.0)(1) == 0.0 and Constant(0.5)(9) == 0.5


def test_kd_settings_describe_every_field_and_any_schedule():
    kd = KDConfig(tau=2.0, schedule=Constant(1.5), soft="kl", tau_squared=True, student_tau=1.0)
    assert kd.describe() == {"tau": 2.0, "schedule": {"type": "Constant", "value": 1.5}, "soft": "kl",
                             "tau_squared": True, "student_tau": 1.0}

    class Slotted:   # a schedule without a __dict__ is described by its repr
        __slots__ = ()

        def __call__(self, epoch):
            return 1.0

        def __repr__(self):
            return "Slotted()"
    assert KDConfig(schedule=Slotted()).describe()["schedule"] == {"type": "Slotted", "repr": "Slotted()"}


def test_the_auxiliary_classifier_reads_the_guided_maps_with_the_given_settings():
    from tinyfit.fitnets import aux_classifier
    head = aux_classifier((4, 4, 3), classes=5, init=0.3, max_norm=1.5, rng=np.random.default_rng(0))
    assert head.layer_names == ["flat", "y"] and head.input_shape == (4, 4, 3)
    assert head.y.W.shape == (48, 5) and head.y.W.max_norm == 1.5
    assert 0.05 < float(np.abs(head.y.W.data).max()) <= 0.3   # U(-0.3, 0.3), not the default 0.05
    again = aux_classifier((4, 4, 3), classes=5, init=0.3, max_norm=1.5, rng=np.random.default_rng(0))
    assert np.array_equal(head.y.W.data, again.y.W.data)      # drawn from the generator given
    plain = aux_classifier((2, 2, 1), rng=np.random.default_rng(0))   # 10 classes, U(-0.05, 0.05)
    assert plain.y.W.shape == (4, 10) and float(np.abs(plain.y.W.data).max()) <= 0.05


@given(gh=st.integers(1, 12), gw=st.integers(1, 12), hh=st.integers(1, 12), hw=st.integers(1, 12),
       cg=st.integers(1, 5), ch=st.integers(1, 5))
def test_regressor_kernel_rule(gh, gw, hh, hw, cg, ch):
    if hh > gh or hw > gw:
        with pytest.raises(ValueError, match=r"hint map .* is larger than the student's guided map"):
            regressor_kernel((gh, gw, cg), (hh, hw, ch))
        return
    kh, kw = regressor_kernel((gh, gw, cg), (hh, hw, ch))
    assert (kh, kw) == (gh - hh + 1, gw - hw + 1)
    if kh == kw:
        r = conv_regressor((gh, gw, cg), (hh, hw, ch), pieces=2, rng=np.random.default_rng(0))
        out = r(tf.Tensor(np.zeros((2, gh, gw, cg), np.float32)))
        assert out.shape == (2, hh, hw, ch)


def test_regressor_for_the_paper_models():
    s, t = mnist_student(rng=np.random.default_rng(0)), mnist_teacher(rng=np.random.default_rng(0))
    r = make_regressor(s, "h3", t, "h1", (28, 28, 1), pieces=2)
    assert (r.guided_shape, r.hint_shape, r.kernel) == ((4, 4, 16), (4, 4, 48), 1)
    tf_floor = mnist_teacher(pooling="floor", rng=np.random.default_rng(0))
    r = make_regressor(s, "h3", tf_floor, "h1", (28, 28, 1))
    assert (r.hint_shape, r.kernel) == ((3, 3, 48), 2)
    # a hint layer larger than the guided one cannot be regressed
    with pytest.raises(ValueError, match=r"hint map \(10, 10, 48\).*guided map \(4, 4, 16\)"):
        make_regressor(s, "h3", t, "h0", (28, 28, 1))


def test_regressor_gradcheck():
    r = conv_regressor((4, 4, 3), (3, 3, 2), pieces=2, rng=np.random.default_rng(0)).astype(np.float64)
    x = tf.Tensor(np.random.default_rng(1).standard_normal((2, 4, 4, 3)), requires_grad=True)
    assert gradcheck(lambda x, *ps: r(x), [x] + r.parameters())


def test_parameter_counts_match_the_reference():
    assert mnist_teacher("code").num_parameters(weights_only=True) == 418_416
    assert mnist_student("code").num_parameters(weights_only=True) == 35_992
    assert abs(mnist_teacher("paper").num_parameters(weights_only=True) - 361_000) < 1_000
    assert abs(mnist_student("paper").num_parameters(weights_only=True) - 30_000) < 100


def test_stage1_changes_only_lower_student_layers_and_regressor():
    data = tiny_data()
    teacher, student = tiny_teacher(np.random.default_rng(1)), tiny_student(np.random.default_rng(2))
    reg = make_regressor(student, "h1", teacher, "h0", (8, 8, 1), rng=np.random.default_rng(3))
    t0, s0, r0 = teacher.state_dict(), student.state_dict(), reg.state_dict()
    hints = eval_outputs(teacher, data.x_train, until="h0", batch_size=500)
    train_hints(student, "h1", reg, hints, data, spec(2), np.random.default_rng(4), progress=False)
    t1, s1, r1 = teacher.state_dict(), student.state_dict(), reg.state_dict()
    assert all(np.array_equal(t0[k], t1[k]) for k in t0)
    for k in s0:
        changed = not np.array_equal(s0[k], s1[k])
        assert changed == k.startswith(("h0.", "h1.")), k
    assert all(not np.array_equal(r0[k], r1[k]) for k in r0)


def test_stage2_starts_from_stage1_weights_with_fresh_upper_layers():
    s1 = tiny_student(np.random.default_rng(5))
    fresh = tiny_student(np.random.default_rng(6))
    before = fresh.state_dict()
    s2 = init_from_stage1(fresh, s1, "h1")
    a, b = s1.state_dict(), s2.state_dict()
    for k in b:
        if k.startswith(("h0.", "h1.")):
            assert np.array_equal(a[k], b[k])
        else:
            assert np.array_equal(before[k], b[k])
            assert k.endswith(".b") or not np.array_equal(a[k], b[k])  # biases start at 0 in both
    s1["h0"].conv.W.data[...] = 0  # a copy, not shared storage
    assert not np.array_equal(s2["h0"].conv.W.data, 0)


def test_teacher_training_learns_the_tiny_problem():
    data = tiny_data()
    t = tiny_teacher(np.random.default_rng(1))
    r = train_teacher(t, data, spec(15, "sgd", 0.1), np.random.default_rng(0), progress=False)
    assert r.best_val < 0.3  # chance is 2/3
    assert r.best_epoch >= 1 and len(r.history) == r.epochs_run


def test_bad_batch_sizes_are_rejected():
    data = tiny_data()
    for bs, msg in ((0, "batch_size must be a positive integer"), (1000, "larger than the 64 training")):
        s = spec(1)
        s.fit.batch_size = bs
        with pytest.raises(ValueError, match=msg):
            train_backprop(tiny_student(np.random.default_rng(0)), data, s, np.random.default_rng(0), progress=False)


def test_non_finite_loss_stops_with_stage_epoch_and_step(tmp_path):
    data = tiny_data()
    bad = tf.data.Split(data.x_train.copy(), data.y_train, data.x_val, data.y_val, data.x_test, data.y_test)
    ck = str(tmp_path / "c.npz")
    m = tiny_student(np.random.default_rng(0))
    train_backprop(m, data, spec(1), np.random.default_rng(0), ckpt_path=ck, progress=False)
    good = tf.checkpoint.load_archive(ck, "checkpoint")[1]["state"]
    bad.x_train[20] = np.nan  # lands in some batch of epoch 2
    with pytest.raises(NonFiniteError, match=r"backprop: non-finite loss or gradient at epoch \d+, step \d+"):
        train_backprop(m, bad, spec(3), np.random.default_rng(0), ckpt_path=ck, resume=True, progress=False)
    # the last good checkpoint is still there and loadable
    assert tf.checkpoint.load_archive(ck, "checkpoint")[1]["state"]["epoch"] >= good["epoch"]


def test_images_of_the_wrong_size_are_a_clear_error():
    m = mnist_student()
    with pytest.raises(ValueError, match=r"takes inputs of shape \(N, 28, 28, 1\).*got \(2, 32, 32, 1\)"):
        m(tf.Tensor(np.zeros((2, 32, 32, 1), np.float32)))


def _log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def test_single_stage_loss_is_cross_entropy_plus_beta_times_hint():
    """The loss single-stage training steps on, against CE + beta * hint computed here in
    NumPy from the same forward outputs (first batch, drawn as fit draws it)."""
    from tinyfit.fitnets import train_single_stage
    from tinyfit.training import FitConfig
    from tiny import spec as make_spec
    data = tiny_data()
    student, teacher = tiny_student(np.random.default_rng(2)), tiny_teacher(np.random.default_rng(1))
    reg = make_regressor(student, "h1", teacher, "h0", (8, 8, 1), rng=np.random.default_rng(3))
    hints = eval_outputs(teacher, data.x_train, until="h0", batch_size=500)
    beta = 0.37
    idx = np.random.default_rng(4).permutation(len(data.y_train))[:16]  # fit's first batch
    with tf.no_grad():
        taps = {"h1": None}
        logits = student(tf.Tensor(data.x_train[idx]), taps=taps).data.astype(np.float64)
        r = reg(taps["h1"]).data.astype(np.float64)
    ce = -_log_softmax(logits)[np.arange(16), data.y_train[idx]].mean()
    hint = 0.5 * ((r - hints[idx]) ** 2).reshape(16, -1).sum(axis=1).mean()
    seen = []
    s = make_spec(1)
    s.fit = FitConfig(epochs=1, batch_size=16, patience=100)
    before = {k: v.copy() for k, v in reg.state_dict().items()}
    train_single_stage(student, "h1", reg, hints, data, s, np.random.default_rng(4), beta, progress=False,
                       step_hooks=[lambda info: seen.append(info)])
    assert seen[0].loss == pytest.approx(ce + beta * hint, rel=1e-5)
    assert set(seen[0].modules) == {"model", "regressor"}
    # the regressor is optimised beside the student, not only evaluated
    assert all(not np.array_equal(before[k], v) for k, v in reg.state_dict().items())
    with pytest.raises(ValueError, match="hint weight beta must be"):
        train_single_stage(student, "h1", reg, hints, data, s, np.random.default_rng(4), -1.0, progress=False)


def test_label_stage1_trains_the_lower_layers_and_a_classifier_on_the_guided_layer():
    import dataclasses
    from tinyfit.fitnets import aux_classifier, layer_shape, train_label_stage1
    data = tiny_data()
    # validation labels the layers cannot predict, so that the validation error is never 0
    data = dataclasses.replace(data, y_val=(data.y_val + np.arange(len(data.y_val))) % 3)
    student = tiny_student(np.random.default_rng(2))
    shape = layer_shape(student, "h1", (8, 8, 1))
    head = aux_classifier(shape, classes=3, rng=np.random.default_rng(3))
    assert head.y.W.shape == (int(np.prod(shape)), 3)  # it reads the guided layer's maps
    s0, h0 = student.state_dict(), head.state_dict()
    seen = []
    result = train_label_stage1(student, "h1", head, data, spec(2), np.random.default_rng(4), progress=False,
                                step_hooks=[lambda info: seen.append(sorted(info.modules))])
    # the validation error it selects on is the classifier's error on the guided layer, by hand;
    # the weights kept are the best epoch's
    import tinyfit as tf
    with tf.no_grad():
        h = tf.Tensor(data.x_val)
        for name in ("h0", "h1"):
            h = student[name](h)
        wrong = int((head(h).data.argmax(axis=1) != data.y_val).sum())
    assert result.best_val == pytest.approx(wrong / len(data.y_val))
    assert result.best_val == min(r["val"] for r in result.history)
    s1 = student.state_dict()
    for k in s0:
        assert (not np.array_equal(s0[k], s1[k])) == k.startswith(("h0.", "h1.")), k
    assert all(not np.array_equal(h0[k], head.state_dict()[k]) for k in h0)
    assert seen[0] == ["classifier", "student"]
    # stage 2 starts from the lower layers only: the classifier is not part of the student
    s2 = init_from_stage1(tiny_student(np.random.default_rng(6)), student, "h1")
    assert [n for n, _ in s2.named_parameters()] == [n for n, _ in tiny_student(np.random.default_rng(0))
                                                        .named_parameters()]


def _kd_by_hand(z, y, t, lam, tau, soft, tau_squared, student_tau):
    """FitNets eq. 2 in NumPy (float64): H(y, P_S) + lam * s * H(P_T^tau, P_S^ts) (or KL)."""
    ts = tau if student_tau is None else student_tau
    p_t = np.exp(_log_softmax(t / tau))
    hard = -_log_softmax(z)[np.arange(len(y)), y].mean()
    soft_term = -(p_t * _log_softmax(z / ts)).sum(axis=1).mean()
    if soft == "kl":
        soft_term -= -(p_t * np.log(p_t)).sum(axis=1).mean()
    return hard + lam * (tau * tau if tau_squared else 1.0) * soft_term


@pytest.mark.parametrize("soft", ["ce", "kl"])
@pytest.mark.parametrize("tau_squared", [False, True])
@pytest.mark.parametrize("student_tau", [None, 1.0])
def test_the_kd_loss_training_steps_on_is_the_definition(soft, tau_squared, student_tau):
    """The loss of KD training's first step (through KDConfig and the precomputed soft
    targets, as train_kd computes it), against eq. 2 computed here from the same logits."""
    from tinyfit.fitnets import KDConfig, train_kd
    from tinyfit.training import FitConfig
    data = tiny_data()
    student = tiny_student(np.random.default_rng(2))
    teacher_logits = np.random.default_rng(9).standard_normal((len(data.y_train), 3)).astype(np.float32) * 3
    tau, lam = 2.5, 4.0
    kd = KDConfig(tau=tau, schedule=Constant(lam), soft=soft, tau_squared=tau_squared, student_tau=student_tau)
    idx = np.random.default_rng(4).permutation(len(data.y_train))[:16]
    with tf.no_grad():
        z = student(tf.Tensor(data.x_train[idx])).data.astype(np.float64)
    want = _kd_by_hand(z, data.y_train[idx], teacher_logits[idx].astype(np.float64), lam, tau, soft, tau_squared,
                       student_tau)
    seen = []
    s = spec(1)
    s.fit = FitConfig(epochs=1, batch_size=16, patience=100)
    train_kd(student, data, s, np.random.default_rng(4), teacher_logits, kd, progress=False,
             step_hooks=[lambda info: seen.append(info.loss)])
    assert seen[0] == pytest.approx(want, rel=2e-5)


def test_a_stage_returns_its_best_validation_epoch_and_patience_ends_it_by_hand():
    """Validation errors 0.5, 0.3, 0.4, 0.35, 0.2 with patience 2: epoch 2 is the best, epochs
    3 and 4 do not improve on it, so the stage stops after epoch 4 (epoch 5 never runs) and
    returns the weights it had at the end of epoch 2, not the last ones."""
    from tinyfit.training import FitConfig, fit
    from tinyfit.optim import RMSProp
    import tinyfit.functional as F
    data = tiny_data()
    model = tiny_student(np.random.default_rng(2))
    vals = iter([0.5, 0.3, 0.4, 0.35, 0.2])
    at_end = []

    def val_fn():
        at_end.append(model.state_dict())
        return next(vals)
    r = fit(stage="s", modules={"model": model}, optimizer=RMSProp(model.parameters(), 0.01),
            loss_fn=lambda idx: (F.cross_entropy(model(tf.Tensor(data.x_train[idx])), data.y_train[idx]), None),
            val_fn=val_fn, n_train=len(data.y_train), cfg=FitConfig(epochs=10, batch_size=16, patience=2),
            rng=np.random.default_rng(0), progress=False)
    assert (r.epochs_run, r.best_epoch, r.best_val) == (4, 2, 0.3) and len(at_end) == 4
    final = model.state_dict()
    assert all(np.array_equal(final[k], at_end[1][k]) for k in final)
    assert not all(np.array_equal(final[k], at_end[3][k]) for k in final)


def test_lambda_decays_to_a_final_value_other_than_zero():
    # the paper's text: 4 -> 1; step (4 - 1) / (150 - 5 + 1) per epoch from epoch 5
    s = LinearDecay(4.0, 1.0, 5, 150)
    step = 3.0 / 146
    assert [s(e) for e in (1, 4)] == [4.0, 4.0]
    assert s(5) == pytest.approx(4 - step) and s(100) == pytest.approx(4 - 96 * step)
    assert s(149) == pytest.approx(1 + step) and s(150) == 1.0 and s(400) == 1.0


def test_validation_hint_loss_weights_a_short_last_chunk_by_its_size():
    """The validation hint loss over 510 examples (chunks of 500 and 10) equals the mean
    over all of them, computed here in one pass."""
    from tinyfit.data import Split
    from tinyfit.training import FitConfig
    rng = np.random.default_rng(0)
    x = rng.random((600, 8, 8, 1), dtype=np.float32)
    data = Split(x[:64], rng.integers(0, 3, 64), x[64:574], rng.integers(0, 3, 510), x[574:], rng.integers(0, 3, 26))
    teacher, student = tiny_teacher(np.random.default_rng(1)), tiny_student(np.random.default_rng(2))
    reg = make_regressor(student, "h1", teacher, "h0", (8, 8, 1), rng=np.random.default_rng(3))
    hints = eval_outputs(teacher, data.x_train, until="h0", batch_size=500)
    val_hints = eval_outputs(teacher, data.x_val, until="h0", batch_size=500)
    s = spec(1)
    s.fit = FitConfig(epochs=1, batch_size=16, patience=100)
    r = train_hints(student, "h1", reg, hints, data, s, np.random.default_rng(4), val_hints=val_hints, progress=False)
    with tf.no_grad():
        out = reg(student(tf.Tensor(data.x_val), until="h1")).data.astype(np.float64)
    want = 0.5 * ((out - val_hints) ** 2).reshape(510, -1).sum(axis=1).mean()
    assert r.best_val == pytest.approx(want, rel=1e-5)


def test_kd_training_sees_lambda_of_the_current_epoch():
    data = tiny_data()
    teacher = tiny_teacher(np.random.default_rng(0)).eval()
    t_logits = tf.nn.eval_outputs(teacher, data.x_train)
    seen = []

    def schedule(epoch):
        seen.append(epoch)
        return 1.0
    spec = StageSpec("rmsprop", 0.01, fit=FitConfig(epochs=3, batch_size=16, patience=100))
    train_kd(tiny_student(np.random.default_rng(1)), data, spec, np.random.default_rng(2), t_logits,
             KDConfig(schedule=schedule), progress=False)
    assert seen == [1, 2, 3]  # read once per epoch, before its steps, with that epoch's number


def test_a_stage_spec_makes_the_optimiser_it_names_with_its_settings():
    from tinyfit.optim import SGD, Adam, RMSProp
    params = tiny_student(np.random.default_rng(0)).parameters()
    rms = StageSpec("rmsprop", 0.01, rms_decay=0.8, rms_eps=1e-3).make_optimizer(params)
    assert type(rms) is RMSProp and (rms.lr, rms.decay, rms.eps) == (0.01, 0.8, 1e-3)
    sgd = StageSpec("sgd", 0.05, momentum=0.3).make_optimizer(params)
    assert type(sgd) is SGD and (sgd.lr, sgd.momentum) == (0.05, 0.3)
    adam = StageSpec("adam", 0.002).make_optimizer(params)
    assert type(adam) is Adam and adam.lr == 0.002 and adam.params == list(params)
    with pytest.raises(ValueError) as e:
        StageSpec("lbfgs").make_optimizer(params)
    assert str(e.value) == "optimizer must be 'rmsprop', 'sgd' or 'adam', got 'lbfgs'"


def test_the_momentum_ramp_exists_only_for_sgd_with_two_momenta_and_ends_at_its_epoch():
    params = tiny_student(np.random.default_rng(0)).parameters()
    for stage_spec in (StageSpec("rmsprop", momentum=0.5, final_momentum=0.9), StageSpec("sgd", momentum=0.5,
                                                                                   final_momentum=0.5)):
        assert stage_spec.epoch_hooks(stage_spec.make_optimizer(params)) == []
    stage_spec = StageSpec("sgd", 0.1, momentum=0.5, final_momentum=0.9, momentum_saturate=1)
    opt = stage_spec.make_optimizer(params)
    (ramp,) = stage_spec.epoch_hooks(opt)
    assert [(ramp(e), opt.momentum)[1] for e in (1, 2)] == [0.5, 0.9]   # saturating at once: the final from epoch 2
    stage_spec = StageSpec("sgd", 0.1, momentum=0.5, final_momentum=0.9, momentum_saturate=3)
    opt = stage_spec.make_optimizer(params)
    (ramp,) = stage_spec.epoch_hooks(opt)
    assert [(ramp(e), opt.momentum)[1] for e in (1, 2, 3, 4)] == pytest.approx([0.5, 0.7, 0.9, 0.9])


def test_the_regressor_keeps_its_max_norm_and_says_no_pieces_when_linear():
    reg = conv_regressor((6, 6, 3), (4, 4, 5), pieces=None, max_norm=0.9, rng=np.random.default_rng(0))
    assert reg.pieces is None and reg.W.max_norm == 0.9 and reg.W.shape == (3, 3, 3, 5)
    with pytest.raises(ValueError) as e:
        conv_regressor((6, 5, 3), (4, 4, 5))
    assert str(e.value) == ("regressor kernel would be 3x2; only square kernels are supported (guided (6, 5, 3), "
                            "hint (4, 4, 5))")


def test_stage2_gets_copies_of_the_stage1_weights_not_the_same_arrays():
    s1, fresh = tiny_student(np.random.default_rng(1)), tiny_student(np.random.default_rng(2))
    s2 = init_from_stage1(fresh, s1, "h1")
    before = s1.h0.conv.W.data.copy()
    s2.h0.conv.W.data += 1.0   # stage 2 trains its own weights
    assert np.array_equal(s1.h0.conv.W.data, before)
    narrow = tf.nn.Sequential([("h0", tf.nn.MaxoutConv2d(in_channels=1, channels=2, pieces=2, kernel=3,
                                                         rng=np.random.default_rng(0)))], input_shape=(8, 8, 1))
    with pytest.raises(ValueError) as e:
        init_from_stage1(narrow, s1, "h0")
    assert str(e.value) == "layer h0.conv.W: stage-1 shape (3, 3, 1, 6) != student shape (3, 3, 1, 4)"


def test_the_kd_trainer_needs_both_teacher_outputs_and_settings():
    for kw in (dict(teacher_logits=np.zeros((64, 3))), dict(kd=KDConfig())):
        with pytest.raises(ValueError) as e:
            from tinyfit.fitnets import train_classifier
            train_classifier("kd", tiny_student(np.random.default_rng(0)), tiny_data(), spec(1),
                             np.random.default_rng(0), **kw)
        assert str(e.value) == "KD training needs both teacher_logits and a KDConfig (kd=); plain training neither"
