"""Checkpoints, exact resume after SIGKILL, atomic writes, determinism."""
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from tinyfit.checkpoint import CheckpointError, load_archive
from tinyfit.fitnets import train_backprop
from tiny import spec, tiny_data, tiny_student

HERE = os.path.dirname(os.path.abspath(__file__))


def _run(stage, out, kill_at):
    return subprocess.run([sys.executable, os.path.join(HERE, "resume_worker.py"), stage, str(out), str(kill_at)],
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("stage", ["teacher", "backprop", "kd", "stage1", "fitnet"])
def test_sigkill_mid_epoch_then_resume_is_bit_identical(tmp_path, stage):
    a, b = tmp_path / "a", tmp_path / "b"
    r = _run(stage, a, 0)
    assert r.returncode == 0, r.stderr
    # 4 steps per epoch, checkpoints after step 3 of an epoch and at its end: killed after
    # step 8 (the last of epoch 2), the run resumes from the checkpoint at epoch 2, step 3
    r = _run(stage, b, 8)
    assert r.returncode == -signal.SIGKILL, (r.returncode, r.stderr)
    assert not (b / "final.npz").exists() and (b / "ckpt.npz").exists()
    r = _run(stage, b, 0)
    assert r.returncode == 0, r.stderr
    # the rerun continued from the checkpoint (epoch 2, step 3): 12 - 7 = 5 steps, not 12
    assert (a / "steps.txt").read_text() == "12" and (b / "steps.txt").read_text() == "5"
    fa, fb = np.load(a / "final.npz"), np.load(b / "final.npz")
    assert sorted(fa.files) == sorted(fb.files)
    for k in fa.files:
        assert np.array_equal(fa[k], fb[k]), f"{stage}: parameter {k} differs after resume"
    assert_same_final_state(a / "ckpt.npz", b / "ckpt.npz", stage)


def assert_same_final_state(path_a, path_b, stage):
    """The last checkpoint holds the last weights (not only the best ones, which on a small
    problem may be epoch 1's), the optimiser's slots and the generator state: all must match."""
    arr_a, meta_a = load_archive(str(path_a), "checkpoint")
    arr_b, meta_b = load_archive(str(path_b), "checkpoint")
    assert sorted(arr_a) == sorted(arr_b)
    assert any(k.startswith("model/") for k in arr_a) and any(k.startswith("optim/") for k in arr_a)
    for k in arr_a:
        assert np.array_equal(arr_a[k], arr_b[k]), f"{stage}: checkpoint array {k} differs after resume"
    assert meta_a["rng"] == meta_b["rng"], f"{stage}: generator state differs after resume"
    assert meta_a["optimizer"] == meta_b["optimizer"]
    keep = lambda st: {k: v for k, v in st.items() if k != "seconds"}
    assert keep(meta_a["state"]) == keep(meta_b["state"])


def test_ctrl_c_saves_a_checkpoint_at_the_step_boundary_and_resume_matches(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert _run("backprop", a, 0).returncode == 0
    r = _run("backprop", b, -6)  # SIGINT after step 6 (epoch 2, step 2)
    assert r.returncode == 130, r.stderr
    _, meta = load_archive(str(b / "ckpt.npz"), "checkpoint")
    assert (meta["state"]["epoch"], meta["state"]["step"]) == (2, 2)
    assert _run("backprop", b, 0).returncode == 0
    assert (b / "steps.txt").read_text() == "6"
    fa, fb = np.load(a / "final.npz"), np.load(b / "final.npz")
    assert all(np.array_equal(fa[k], fb[k]) for k in fa.files)
    assert_same_final_state(a / "ckpt.npz", b / "ckpt.npz", "backprop")


@pytest.mark.parametrize("stage", ["backprop", "stage1"])
@pytest.mark.parametrize("at", [1, 3, 4, 8, 11, 12])
def test_ctrl_c_at_every_boundary_then_resume_matches_an_uninterrupted_run(tmp_path, stage, at):
    # 4 steps per epoch, 3 epochs, checkpoints every 3 steps: the first step (1), a step
    # checkpoint (3), an epoch's last step (4, 8: the next epoch's first step sees Ctrl-C,
    # after its batch order was drawn), the last epoch (11) and the very last step (12, after
    # which nothing is left to interrupt)
    a, b = tmp_path / "a", tmp_path / "b"
    assert _run(stage, a, 0).returncode == 0
    r = _run(stage, b, -at)
    assert r.returncode in ((0, 130) if at == 12 else (130,)), r.stderr
    assert _run(stage, b, 0).returncode == 0
    fa, fb = np.load(a / "final.npz"), np.load(b / "final.npz")
    assert all(np.array_equal(fa[k], fb[k]) for k in fa.files), f"interrupted after step {at}"
    assert_same_final_state(a / "ckpt.npz", b / "ckpt.npz", stage)


def test_same_seed_gives_identical_weights_and_other_seeds_differ():
    data = tiny_data()

    def train(seed):
        m = tiny_student(np.random.default_rng(seed))
        train_backprop(m, data, spec(2), np.random.default_rng(seed), progress=False)
        return m.state_dict()
    w1, w2, w3 = train(0), train(0), train(1)
    assert all(np.array_equal(w1[k], w2[k]) for k in w1)
    assert any(not np.array_equal(w1[k], w3[k]) for k in w1)


def test_resume_refuses_other_settings_and_architectures(tmp_path):
    from tinyfit.nn import Flatten, Linear, Sequential
    data = tiny_data()
    ck = str(tmp_path / "c.npz")
    train_backprop(tiny_student(np.random.default_rng(0)), data, spec(1), np.random.default_rng(0),
                   ckpt_path=ck, progress=False)
    other = spec(2)
    other.fit.batch_size = 8
    with pytest.raises(CheckpointError, match="batch_size=16, this run has batch_size=8"):
        train_backprop(tiny_student(np.random.default_rng(0)), data, other, np.random.default_rng(0),
                       ckpt_path=ck, resume=True, progress=False)
    wrong = Sequential([("flat", Flatten()), ("y", Linear(in_features=64, out_features=3))])
    with pytest.raises(CheckpointError, match=r"does not match module 'model'.*unexpected: h0\.conv\.W"
                                              r".*y\.W: expected \(64, 3\), got \(4, 3\)"):
        train_backprop(wrong, data, spec(2), np.random.default_rng(0), ckpt_path=ck, resume=True, progress=False)
    from tinyfit.fitnets import Constant, KDConfig, train_kd
    with pytest.raises(CheckpointError, match="checkpoint of stage 'backprop', expected 'kd'"):
        train_kd(tiny_student(np.random.default_rng(0)), data, spec(2), np.random.default_rng(0),
                 np.zeros((64, 3), np.float32), KDConfig(schedule=Constant(1.0)), ckpt_path=ck, resume=True,
                 progress=False)


def test_resumed_kd_run_checks_its_lambda_schedule(tmp_path):
    """The KD settings (tau, the lambda schedule, variants) are stored in the checkpoint; a
    resumed run with other settings is refused instead of silently mixing two schedules."""
    from tinyfit.fitnets import KDConfig, LinearDecay, train_kd
    data = tiny_data()
    ck = str(tmp_path / "kd.ckpt.npz")
    t = np.random.default_rng(0).standard_normal((64, 3)).astype(np.float32)
    kd = KDConfig(tau=3.0, schedule=LinearDecay(4.0, 0.0, 2, 3))
    train_kd(tiny_student(np.random.default_rng(0)), data, spec(1), np.random.default_rng(0), t, kd, ckpt_path=ck,
             progress=False)
    _, meta = load_archive(ck, "checkpoint")
    assert meta["config"]["kd"]["schedule"] == {"type": "LinearDecay", "start": 4.0, "final": 0.0, "start_epoch": 2,
                                                "saturate": 3, "step": 2.0}
    for other, said in ((KDConfig(tau=3.0, schedule=LinearDecay(4.0, 1.0, 2, 3)), "kd.schedule.final=0.0, this run "
                         "has kd.schedule.final=1.0"), (KDConfig(tau=2.0, schedule=kd.schedule), "kd.tau=3.0, this run "
                                                        "has kd.tau=2.0")):
        with pytest.raises(CheckpointError, match=said) as e:
            train_kd(tiny_student(np.random.default_rng(0)), data, spec(2), np.random.default_rng(0), t, other,
                     ckpt_path=ck, resume=True, progress=False)
        assert len(str(e.value)) < 250
    r = train_kd(tiny_student(np.random.default_rng(0)), data, spec(2), np.random.default_rng(0), t, kd,
                 ckpt_path=ck, resume=True, progress=False)
    assert r.epochs_run == 2


def test_weights_do_not_depend_on_the_number_of_threads(monkeypatch):
    from tinyfit import backend
    from tiny import tiny_teacher
    from tinyfit.fitnets import train_teacher
    data = tiny_data()
    runs = []
    for threads in (1, 2, 3):
        monkeypatch.setattr(backend, "_threads", threads)
        m = tiny_teacher(np.random.default_rng(0))
        train_teacher(m, data, spec(2, "sgd", 0.1), np.random.default_rng(0), progress=False)
        runs.append(m.state_dict())
    for other in runs[1:]:
        assert all(np.array_equal(runs[0][k], other[k]) for k in runs[0])
