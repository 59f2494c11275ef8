"""Runs one training stage of the tiny problem; optionally SIGKILLs itself after N
optimiser steps. Used by test_resume.py:  python resume_worker.py STAGE OUTDIR KILL_AT"""
import os
import signal
import sys

import numpy as np

# this checkout's tinyfit (the one its tests test, a mutation run's mutants included) and the helpers
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from tinyfit import optim
from tinyfit.fitnets import (KDConfig, LinearDecay, init_from_stage1, make_regressor, train_backprop,
                             train_hints, train_kd, train_teacher)
from tinyfit.nn import eval_outputs
from tiny import spec, tiny_data, tiny_student, tiny_teacher


def kill_after(kill_at):
    """From now on, count optimiser steps; right after step |kill_at| send this process
    SIGKILL (kill_at > 0) or SIGINT, as Ctrl-C does (kill_at < 0)."""
    step = optim.Optimizer.step

    def killing_step(self):
        step(self)
        STEPS[0] += 1
        if STEPS[0] == abs(kill_at):
            os.kill(os.getpid(), signal.SIGKILL if kill_at > 0 else signal.SIGINT)
    optim.Optimizer.step = killing_step


def main(stage, out, kill_at):
    data = tiny_data()
    ck = os.path.join(out, "ckpt.npz")
    sp = spec(epochs=3, checkpoint_every=3)
    teacher = tiny_teacher(np.random.default_rng(1))
    kw = dict(ckpt_path=ck, resume=True, progress=False)
    rng = np.random.default_rng(7)
    if stage != "fitnet":
        kill_after(kill_at)
    if stage == "teacher":
        model = teacher
        train_teacher(model, data, sp, rng, **kw)
    elif stage == "backprop":
        model = tiny_student(np.random.default_rng(2))
        train_backprop(model, data, sp, rng, **kw)
    elif stage in ("kd", "fitnet"):
        t_logits = eval_outputs(teacher, data.x_train, batch_size=500)
        model = tiny_student(np.random.default_rng(2))
        if stage == "fitnet":
            s1 = tiny_student(np.random.default_rng(3))
            reg = make_regressor(s1, "h1", teacher, "h0", (8, 8, 1), rng=np.random.default_rng(4))
            train_hints(s1, "h1", reg, eval_outputs(teacher, data.x_train, until="h0", batch_size=500), data, spec(2),
                        np.random.default_rng(5), progress=False)
            init_from_stage1(model, s1, "h1")
            kill_after(kill_at)
        train_kd(model, data, sp, rng, t_logits, KDConfig(tau=3.0, schedule=LinearDecay(4, 0, 2, 3)), **kw)
    elif stage == "stage1":
        model = tiny_student(np.random.default_rng(3))
        reg = make_regressor(model, "h1", teacher, "h0", (8, 8, 1), rng=np.random.default_rng(4))
        hints = eval_outputs(teacher, data.x_train, until="h0", batch_size=500)
        val_hints = eval_outputs(teacher, data.x_val, until="h0", batch_size=500)
        train_hints(model, "h1", reg, hints, data, sp, rng, val_hints=val_hints, **kw)
        np.savez(os.path.join(out, "regressor.npz"), **reg.state_dict())
    np.savez(os.path.join(out, "final.npz"), **model.state_dict())
    with open(os.path.join(out, "steps.txt"), "w") as f:
        f.write(str(STEPS[0]))


STEPS = [0]  # optimiser steps taken by the stage under test in this process


if __name__ == "__main__":
    try:
        main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
    except KeyboardInterrupt:
        sys.exit(130)
