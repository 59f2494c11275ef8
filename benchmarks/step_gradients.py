"""Every parameter gradient of one training step of the MNIST student and teacher, for
comparing two checkouts of tinyfit (did a speed change alter what is computed?).

    python benchmarks/step_gradients.py OUT.npz [--float64] [--root CHECKOUT]
    python benchmarks/step_gradients.py --compare A.npz B.npz

Both networks, from the official and from Glorot init, one batch of 64 random images, the
teacher's dropout on a fixed generator; and a stage-1 step (the hint loss of the student's
layers up to the guided one and the regressor against the teacher's hint maps). In float64
two correct implementations agree to rounding (~1e-14 relative); in float32 a max-like op
can pick another winner where two candidates differ by rounding, which moves single
gradients by up to about 1%.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np


def gradients(root, dtype):
    sys.path.insert(0, root)
    import tinyfit as tf
    import tinyfit.functional as F
    from tinyfit.models import mnist_student, mnist_teacher
    out = {}
    for name, make in (("student", mnist_student), ("teacher", mnist_teacher)):
        for init in ("code", "glorot"):
            model = make(init=0.005 if init == "code" else "glorot", rng=np.random.default_rng(0)).astype(dtype)
            for m in model.modules():
                if isinstance(m, tf.nn.Dropout):
                    m.rng = np.random.default_rng(1)
            x = np.random.default_rng(2).random((64, 28, 28, 1)).astype(dtype)
            y = np.random.default_rng(3).integers(0, 10, 64)
            loss = F.cross_entropy(model(tf.Tensor(x)), y)
            loss.backward()
            out[f"{name}/{init}/loss"] = np.asarray(loss.data)
            for pname, p in model.named_parameters():
                out[f"{name}/{init}/{pname}"] = p.grad
    # stage 1: the hint loss of the student's layers up to h3 and the regressor against the
    # teacher's h1 maps
    from tinyfit.fitnets import make_regressor
    student = mnist_student(rng=np.random.default_rng(0)).astype(dtype)
    teacher = mnist_teacher(init="glorot", rng=np.random.default_rng(1)).astype(dtype).eval()
    reg = make_regressor(student, "h3", teacher, "h1", (28, 28, 1), rng=np.random.default_rng(2)).astype(dtype)
    x = np.random.default_rng(2).random((64, 28, 28, 1)).astype(dtype)
    hint = teacher(tf.Tensor(x), until="h1").data
    loss = F.hint_loss(reg(student(tf.Tensor(x), until="h3")), tf.Tensor(hint), "paper")
    loss.backward()
    out["hints/teacher_h1"], out["hints/loss"] = hint, np.asarray(loss.data)
    for pname, p in list(student.named_parameters()) + \
            [("regressor." + n, q) for n, q in reg.named_parameters()]:
        if p.grad is not None:
            out[f"hints/{pname}"] = p.grad
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", nargs="?")
    p.add_argument("--float64", action="store_true")
    p.add_argument("--root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    p.add_argument("--compare", nargs=2, metavar=("A", "B"))
    a = p.parse_args(argv)
    if a.compare:
        x, y = np.load(a.compare[0]), np.load(a.compare[1])
        worst = max((float(np.abs(x[k] - y[k]).max() / (np.abs(x[k]).max() + 1e-30)), k) for k in x.files)
        print(f"{len(x.files)} arrays; largest relative difference {worst[0]:.3g} ({worst[1]})")
        return
    if not a.out:
        p.error("give OUT.npz, or --compare A.npz B.npz")
    np.savez(a.out, **gradients(os.path.abspath(a.root), np.float64 if a.float64 else np.float32))


if __name__ == "__main__":
    main()
