"""FitNets on MNIST, end to end: a maxout teacher, then the same thin deep student trained
by plain backprop, by knowledge distillation (KD), and by FitNets (stage 1 hints, stage 2 KD).

    tinyfit run                      # the 5,000 real digits that ship with tinyfit
    tinyfit run --data-dir DIR       # full MNIST IDX files: the paper's recipe
    tinyfit run --download           # fetch them (SHA-256 verified) first
    tinyfit run --quick              # a smoke run of about a minute

Writes to --out (default runs/mnist_fitnet): results.json, results.csv, every model
(*.model.npz, loadable with tinyfit.load_model) and per-stage checkpoints; --resume
continues an interrupted run where it stopped.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys

import tinyfit

from ..pipeline import ALL_METHODS, BUDGETS, METHODS, VARIANTS, format_table, run_pipeline
from .common import add_common_args, check_common_args, load_data, make_config, print_tail

PROG = "tinyfit run"


def parse_args(argv=None, prog=PROG):
    p = argparse.ArgumentParser(prog=prog, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p, os.path.join("runs", "mnist_fitnet"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, help="epoch budget of every stage (overrides the defaults)")
    p.add_argument("--methods", default=",".join(METHODS),
                   help="comma-separated subset of backprop,kd,fitnet, or the ablations " + ",".join(VARIANTS)
                        + " (docs/study.md)")
    p.add_argument("--hint-weight", type=float, help="beta of the single-stage method (CE + beta x hint loss)")
    p.add_argument("--pieces", choices=["code", "paper"], default="code")
    p.add_argument("--pooling", choices=["ceil", "floor"], default="ceil")
    p.add_argument("--init", choices=["code", "glorot"], default="code",
                   help="the students' weight init: 'code' = the official U(-0.005, 0.005) (default), 'glorot' = "
                        "Glorot uniform")
    p.add_argument("--export-onnx", action="store_true",
                   help="also write every trained student as ONNX (<out>/<method>.onnx; needs tinyfit[onnx])")
    p.add_argument("--teacher-init", choices=["auto", "code", "glorot"], default="auto",
                   help="the teacher's init; 'auto' = code with --data-dir/--download, glorot on the embedded "
                        "5,000 digits (where U(-0.005, 0.005) leaves the teacher at chance)")
    a = p.parse_args(argv)
    methods = [m for m in a.methods.split(",") if m]
    bad = [m for m in methods if m not in ALL_METHODS]
    if bad or not methods:
        p.error(f"--methods: unknown {bad or a.methods!r}; choose from {', '.join(ALL_METHODS)}")
    if "single-stage" in methods and a.hint_weight is None:
        p.error("--methods single-stage needs --hint-weight BETA (the weight of the hint loss)")
    a.methods = methods
    if a.export_onnx and importlib.util.find_spec("onnx") is None:  # checked before hours of training
        p.error("--export-onnx needs the onnx package: pip install 'tinyfit[onnx]'")
    full = bool(a.data_dir or a.download)
    a.cfg = make_config(p, BUDGETS["quick" if a.quick else "full" if full else "default"], a.epochs, seed=a.seed,
                        batch_size=a.batch_size, tau=a.tau, lambda_final=a.lambda_final, init=a.init,
                        teacher_init=a.teacher_init if a.teacher_init != "auto" else ("code" if full else "glorot"),
                        pieces=a.pieces, pooling=a.pooling, progress=not a.no_progress, hint_weight=a.hint_weight)
    check_common_args(p, a)
    return a


def main(argv=None, prog=PROG):
    a = parse_args(argv, prog)
    data, source, cfg = load_data(a)
    names = {"code": "U(-0.005, 0.005)", "glorot": "Glorot uniform"}
    print(f"init: students {cfg.init} ({names[cfg.init]}), teacher {cfg.teacher_init} ({names[cfg.teacher_init]})",
          flush=True)
    log = lambda *m: print(*m, flush=True)
    info = run_pipeline(data, a.out, cfg, a.methods, a.teacher, resume=a.resume, log=log,
                        accept_weak=a.accept_weak_teacher or a.quick,
                        info={"data": source, "command": f"{prog} " +
                              " ".join(argv if argv is not None else sys.argv[1:])})
    if a.export_onnx:
        for m in a.methods:
            path = tinyfit.export_onnx(tinyfit.load_model(os.path.join(a.out, f"{m}.model.npz")),
                                       os.path.join(a.out, f"{m}.onnx"))
            print(f"ONNX: {path}", flush=True)
    print("\n" + format_table(info["results"]))
    b = cfg.budget  # the regime of these numbers, in the same breath (docs/study.md: they depend on it)
    print(f"regime: {data.describe()} ({source}); students {b.student} epochs, FitNets' stage 1 "
          f"{b.hints} more; one seed ({cfg.seed})")
    if a.quick:
        print("SMOKE RUN (--quick): 512 training digits and 1-2 epochs; these numbers mean nothing.")
    print_tail(info, info["command"], a.out, "")
    return info
