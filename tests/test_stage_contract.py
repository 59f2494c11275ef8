"""What every stage trainer of tinyfit.fitnets promises, checked the same way for each: the
checkpoint it writes (its stage name and the settings it records), a resumed run that
continues where the checkpoint stopped, the settings a resume refuses to change, the
progress lines printed by default, the validation metric and training error it reports,
and the SGD momentum ramp reaching its optimiser."""
import numpy as np
import pytest

from tinyfit.autograd import Tensor
from tinyfit.checkpoint import CheckpointError, load_archive
from tinyfit.fitnets import (Constant, KDConfig, StageSpec, aux_classifier, error_rate, layer_shape, make_regressor,
                             train_backprop, train_hints, train_kd, train_label_stage1, train_single_stage,
                             train_teacher)
from tinyfit.nn import eval_outputs
from tinyfit.training import FitConfig, Interrupted
from tiny import tiny_data, tiny_student, tiny_teacher

DATA = tiny_data()
TEACHER = tiny_teacher(np.random.default_rng(1))
HINTS = {layer: eval_outputs(TEACHER, DATA.x_train, until=layer, batch_size=500) for layer in ("h0", "h1")}
VAL_HINTS = eval_outputs(TEACHER, DATA.x_val, until="h0", batch_size=500)
LOGITS = eval_outputs(TEACHER, DATA.x_train, batch_size=500)


def _spec(epochs=1, lr=0.01, optimizer="rmsprop", momentum=0.5, final_momentum=0.7, momentum_saturate=250):
    return StageSpec(optimizer, lr, momentum=momentum, final_momentum=final_momentum,
                     momentum_saturate=momentum_saturate, fit=FitConfig(epochs=epochs, batch_size=16, patience=100))


def _regressor(student, guided="h1", hint="h0"):
    return make_regressor(student, guided, TEACHER, hint, (8, 8, 1), rng=np.random.default_rng(3))


def _single_stage(spec, beta=0.5, reduction="paper", guided="h1", **kw):
    student = tiny_student(np.random.default_rng(2))
    result = train_single_stage(student, guided, _regressor(student, guided), HINTS["h0"], DATA, spec,
                                np.random.default_rng(4), beta, reduction=reduction, **kw)
    return result, student


def _hints(spec, reduction="paper", **kw):
    student = tiny_student(np.random.default_rng(2))
    reg = _regressor(student)
    result = train_hints(student, "h1", reg, HINTS["h0"], DATA, spec, np.random.default_rng(4), reduction=reduction,
                         val_hints=VAL_HINTS, **kw)
    return result, (student, reg)


def _labels(spec, **kw):
    student = tiny_student(np.random.default_rng(2))
    head = aux_classifier(layer_shape(student, "h1", (8, 8, 1)), classes=3, rng=np.random.default_rng(3))
    return train_label_stage1(student, "h1", head, DATA, spec, np.random.default_rng(4), **kw), (student, head)


def _teacher(spec, **kw):
    teacher = tiny_teacher(np.random.default_rng(5))
    return train_teacher(teacher, DATA, spec, np.random.default_rng(4), **kw), teacher


def _backprop(spec, **kw):
    student = tiny_student(np.random.default_rng(2))
    return train_backprop(student, DATA, spec, np.random.default_rng(4), **kw), student


def _kd(spec, tau=3.0, schedule=None, **kw):
    student = tiny_student(np.random.default_rng(2))
    kd = KDConfig(tau=tau) if schedule is None else KDConfig(tau=tau, schedule=schedule)
    return train_kd(student, DATA, spec, np.random.default_rng(4), LOGITS, kd, **kw), student


# name: (trainer, its stage, the settings its checkpoint records, changes a resume refuses and
# the setting it names)
TRAINERS = {
    "single-stage": (_single_stage, "single-stage",
                     {"loss": "ce + beta * hint", "beta": 0.5, "reduction": "paper", "guided": "h1"},
                     [({"beta": 0.25}, "beta"), ({"guided": "h0"}, "guided")]),
    "hints": (_hints, "stage1", {"loss": "hint", "reduction": "paper", "guided": "h1"}, []),
    "labels": (_labels, "stage1", {"loss": "ce at the guided layer", "guided": "h1"}, []),
    "teacher": (_teacher, "teacher", {"loss": "ce", "lr": 0.01, "optimizer": "rmsprop"}, []),
    "backprop": (_backprop, "backprop", {"loss": "ce", "lr": 0.01, "optimizer": "rmsprop"}, []),
    "kd": (_kd, "kd", {"loss": "kd", "lr": 0.01, "optimizer": "rmsprop", "kd": KDConfig().describe()},
           [({"tau": 2.0}, "kd.tau"), ({"schedule": Constant(4.0)}, "kd.schedule.final")]),
}


@pytest.mark.parametrize("name", TRAINERS)
def test_each_trainer_checkpoints_its_stage_and_settings_and_resumes_from_them(name, tmp_path):
    train, stage, settings, refused = TRAINERS[name]
    path = str(tmp_path / "c.npz")
    first, _ = train(_spec(epochs=1), ckpt_path=path, progress=False)
    _, meta = load_archive(path, "checkpoint")
    assert meta["stage"] == stage
    assert {k: meta["config"].get(k) for k in settings} == settings
    # a fresh model resumed from the checkpoint runs only the second epoch
    again, _ = train(_spec(epochs=2), ckpt_path=path, resume=True, progress=False)
    assert len(again.history) == 2 and again.history[0] == first.history[0]
    for change, setting in refused:
        with pytest.raises(CheckpointError, match=rf"^{path}: the checkpoint was trained with {setting}=\S+, this run "
                                                  rf"has {setting}=\S+; resume with the same setting or start a new "
                                                  "run directory$"):
            train(_spec(epochs=3), ckpt_path=path, resume=True, progress=False, **change)
    # without resume the checkpoint is not read: a new first epoch
    anew, _ = train(_spec(epochs=1), ckpt_path=path, progress=False)
    assert len(anew.history) == 1


@pytest.mark.parametrize("name", TRAINERS)
def test_a_trainer_interrupted_mid_epoch_resumes_to_the_uninterrupted_result(name, tmp_path):
    import signal
    train = TRAINERS[name][0]
    whole, model = train(_spec(epochs=2), progress=False)
    path = str(tmp_path / "c.npz")
    ctrl_c = lambda info: info.epoch == 2 and info.step == 1 and signal.raise_signal(signal.SIGINT)
    with pytest.raises(Interrupted) as e:   # stops at the next step boundary, checkpoint written
        train(_spec(epochs=2), ckpt_path=path, progress=False, step_hooks=[ctrl_c])
    assert e.value.path == path and e.value.args == (path,)
    steps = []
    resumed, again = train(_spec(epochs=2), ckpt_path=path, resume=True, progress=False,
                           step_hooks=[lambda info: steps.append((info.epoch, info.step))])
    assert steps == [(2, 2), (2, 3)]   # only what was left: epoch 2 from its third step
    assert resumed.history == whole.history
    first = model[0] if isinstance(model, tuple) else model
    second = again[0] if isinstance(again, tuple) else again
    assert all(np.array_equal(v, second.state_dict()[k]) for k, v in first.state_dict().items())


def test_an_incomplete_checkpoint_is_refused_with_what_is_missing(tmp_path):
    from tinyfit.checkpoint import save_archive
    path = str(tmp_path / "c.npz")
    _backprop(_spec(epochs=1), ckpt_path=path, progress=False)
    arrays, meta = load_archive(path, "checkpoint")
    del meta["optimizer"]
    save_archive(path, arrays, meta, "checkpoint")
    with pytest.raises(CheckpointError) as e:
        _backprop(_spec(epochs=2), ckpt_path=path, resume=True, progress=False)
    assert str(e.value) == f"{path}: incomplete or inconsistent checkpoint: KeyError: 'optimizer'"
    # a checkpoint of another architecture
    train_backprop(tiny_student(np.random.default_rng(2)), DATA, _spec(epochs=1), np.random.default_rng(4),
                   ckpt_path=path, progress=False)
    with pytest.raises(CheckpointError, match=rf"^{path}: checkpoint does not match module 'model': "):
        train_backprop(tiny_teacher(np.random.default_rng(2)), DATA, _spec(epochs=2), np.random.default_rng(4),
                       ckpt_path=path, resume=True, progress=False)


def test_a_kd_checkpoint_recording_no_kd_settings_names_the_difference(tmp_path):
    from tinyfit.checkpoint import save_archive
    path = str(tmp_path / "c.npz")
    _kd(_spec(epochs=1), ckpt_path=path, progress=False)
    arrays, meta = load_archive(path, "checkpoint")
    del meta["config"]["kd"]   # as an older checkpoint would be
    save_archive(path, arrays, meta, "checkpoint")
    with pytest.raises(CheckpointError, match=r"the checkpoint was trained with kd=None, this run has kd=\{'tau': 3.0"):
        _kd(_spec(epochs=2), ckpt_path=path, resume=True, progress=False)


MODULES = {"single-stage": {"model", "regressor"}, "hints": {"student", "regressor"},
           "labels": {"student", "classifier"}, "teacher": {"model"}, "backprop": {"model"}, "kd": {"model"}}


@pytest.mark.parametrize("name", TRAINERS)
def test_each_trainer_checkpoints_the_modules_it_trains_by_name(name, tmp_path):
    path = str(tmp_path / "c.npz")
    TRAINERS[name][0](_spec(epochs=1), ckpt_path=path, progress=False)
    arrays, _ = load_archive(path, "checkpoint")
    assert {k.split("/")[1] for k in arrays if k.startswith("model/")} == MODULES[name]


@pytest.mark.parametrize("name", TRAINERS)
def test_each_trainer_prints_its_epochs_by_default(name, capsys):
    train, stage, _, _ = TRAINERS[name]
    result, _ = train(_spec(epochs=1))
    h = result.history[0]
    line = (f"{stage} epoch   1: loss {h['train_loss']:.4f}"
            + (f", train err {100 * h['train_err']:.2f}%" if name != "hints" else "")
            + f", val {h['val']:.4f} (best {result.best_val:.4f} @ 1)")
    assert line in capsys.readouterr().out.splitlines()
    train(_spec(epochs=1), progress=False)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("name", ["single-stage", "labels", "backprop", "kd"])
def test_the_training_error_reported_is_the_batches_error(name):
    # at a learning rate too small to move a float32 weight, the epoch's training error is the model's error on the
    # training digits (equal batches), and the validation error its error on the validation digits
    train = TRAINERS[name][0]
    result, model = train(_spec(epochs=1, lr=1e-30), progress=False)
    if name == "labels":
        student, head = model
        err = lambda x, y: float((head(student(Tensor(x), until="h1")).data.argmax(axis=1) != y).mean())
    else:
        student = model
        err = lambda x, y: error_rate(student, x, y)
    assert result.history[0]["train_err"] == pytest.approx(err(DATA.x_train, DATA.y_train))
    assert result.best_val == pytest.approx(err(DATA.x_val, DATA.y_val))


def test_the_single_stage_hint_term_follows_its_reduction_and_beta_may_be_zero():
    paper, _ = _single_stage(_spec(epochs=1), progress=False)
    code, _ = _single_stage(_spec(epochs=1), reduction="code", progress=False)
    assert paper.history[0]["train_loss"] != pytest.approx(code.history[0]["train_loss"])
    none, _ = _single_stage(_spec(epochs=1), beta=0.0, progress=False)
    assert none.history[0]["train_loss"] < paper.history[0]["train_loss"]


@pytest.mark.parametrize("name", TRAINERS)
def test_the_sgd_momentum_ramp_reaches_each_trainer(name):
    train = TRAINERS[name][0]

    def weights(final):
        _, model = train(_spec(epochs=2, optimizer="sgd", final_momentum=final, momentum_saturate=2), progress=False)
        student = model[0] if isinstance(model, tuple) else model
        return np.concatenate([v.ravel() for v in student.state_dict().values()])
    assert not np.allclose(weights(0.5), weights(0.9), rtol=0, atol=1e-7)


def test_stage1_on_hints_validates_with_its_own_reduction_or_not_at_all():
    import tinyfit.functional as F
    for reduction in ("paper", "code"):
        result, (student, reg) = _hints(_spec(epochs=1, lr=1e-30), reduction=reduction, progress=False)
        by_hand = F.hint_loss(reg(student(Tensor(DATA.x_val), until="h1")), Tensor(VAL_HINTS), reduction)
        assert result.best_val == pytest.approx(float(by_hand.data), rel=1e-5)
        on_train = F.hint_loss(reg(student(Tensor(DATA.x_train), until="h1")), Tensor(HINTS["h0"]), reduction)
        assert result.history[0]["train_loss"] == pytest.approx(float(on_train.data), rel=1e-5)   # equal batches
    # without validation hints, the training digits' hint loss chooses the epoch
    student = tiny_student(np.random.default_rng(2))
    reg = _regressor(student)
    result = train_hints(student, "h1", reg, HINTS["h0"], DATA, _spec(epochs=2), np.random.default_rng(4),
                         progress=False)
    on_train = F.hint_loss(reg(student(Tensor(DATA.x_train), until="h1")), Tensor(HINTS["h0"]))
    assert result.best_val == pytest.approx(float(on_train.data), rel=1e-5)
    assert result.best_val == min(r["val"] for r in result.history) and result.best_val > 0


def test_validation_in_chunks_counts_every_validation_digit_once():
    # more validation digits than one chunk of 500, and a last chunk of another size
    import dataclasses
    reps = 1100 // len(DATA.y_val) + 1
    data = dataclasses.replace(DATA, x_val=np.tile(DATA.x_val, (reps, 1, 1, 1))[:1100],
                               y_val=(np.tile(DATA.y_val, reps)[:1100] + np.arange(1100)) % 3)
    student = tiny_student(np.random.default_rng(2))
    head = aux_classifier(layer_shape(student, "h1", (8, 8, 1)), classes=3, rng=np.random.default_rng(3))
    result = train_label_stage1(student, "h1", head, data, _spec(epochs=1, lr=1e-30), np.random.default_rng(4),
                                progress=False)
    wrong = (head(student(Tensor(data.x_val), until="h1")).data.argmax(axis=1) != data.y_val).sum()
    assert result.best_val == wrong / 1100
