"""The FitNets study on MNIST: what hints do, measured over seeds.

    python examples/fitnets_study.py init      # official U(-0.005, 0.005) vs Glorot init, 3 methods
    python examples/fitnets_study.py depth     # 3/5/7/9 conv layers at equal multiplications (paper Fig. 2)
    python examples/fitnets_study.py curves    # per-epoch loss and validation error of the 3 methods
    python examples/fitnets_study.py ablate    # single stage, DSN-style stage 1, random-teacher hints, hints + backprop
    python examples/fitnets_study.py position  # the guided layer moved through the student's conv layers
    python examples/fitnets_study.py gradients # per-layer gradient norms and activation scales, first epochs
    python examples/fitnets_study.py floor     # the three methods with RMSProp's floor lowered to 1e-8
    python examples/fitnets_study.py deep-floor  # backprop and FitNets at depth 9 with that floor
    python examples/fitnets_study.py depth --quick      # smoke run, under a minute
    python examples/fitnets_study.py depth --jobs 2     # students in 2 local processes
    python examples/fitnets_study.py depth --scheduler tcp://host:8786   # on a Dask cluster

Every experiment shares one teacher (trained once into --out/teacher, or --teacher PATH) and
trains each student run into its own folder under --out/EXPERIMENT; --resume skips finished
runs and continues an interrupted one; runs another experiment defines (the init cells'
students) are shared. Prints the mean test error over --seeds with its 95% interval and every
seed's value, how many seeds left chance, and paired comparisons with 95% intervals; writes
results.json, results.csv, summary.txt, summary.md and (with matplotlib: pip install
'tinyfit[plot]') EXPERIMENT.png.
"""
from __future__ import annotations

import argparse
import functools
import os
import sys
from dataclasses import replace

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)

from mnist_fitnet import CLI_ERRORS, add_common_args, check_common_args, load_data, make_config, run_cli  # noqa: E402
from tinyfit import data as D  # noqa: E402
from tinyfit.pipeline import BUDGETS, ConfigError  # noqa: E402
from tinyfit.pipeline import SettingsError  # noqa: E402
from tinyfit.study import (DEFAULT_SEEDS, DEPTHS, EXPERIMENTS, STUDY_BUDGETS, StudyError, check_executor,  # noqa: E402
                           depth_students, format_summary, guided_positions, make_executor, plan, run_study)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("experiment", choices=EXPERIMENTS)
    add_common_args(p, os.path.join("runs", "study"))
    p.add_argument("--seeds", help="comma-separated seeds (default: " + "; ".join(
        f"{e} {','.join(map(str, s))}" for e, s in DEFAULT_SEEDS.items()) + ")")
    p.add_argument("--epochs", type=int, help="epoch budget of every student (stage 1: half)")
    p.add_argument("--init", choices=["code", "glorot"], default="code",
                   help="students' init for depth, curves and position (init and ablate run both)")
    p.add_argument("--depths", default=",".join(map(str, DEPTHS)),
                   help="conv layers of the depth students (deep-floor: the deepest)")
    p.add_argument("--jobs", type=int, help="train the students in N local worker processes (CPU)")
    p.add_argument("--scheduler", help="train the students on a Dask cluster: its scheduler's address, e.g. "
                                       "tcp://host:8786 (needs tinyfit[distributed] here and on the workers)")
    a = p.parse_args(argv)
    try:
        a.seeds = [int(s) for s in a.seeds.split(",") if s.strip()] if a.seeds else list(DEFAULT_SEEDS[a.experiment])
        a.depths = [int(d) for d in a.depths.split(",") if d.strip()]
    except ValueError:
        p.error(f"--seeds and --depths take comma-separated integers, e.g. --seeds 0,1,2; got {a.seeds!r}, "
                f"{a.depths!r}")
    try:  # each setting is checked once, by the library; a refusal becomes a usage error naming the flag
        plan(a.experiment, a.seeds, a.init, a.depths)
        check_executor(a.jobs, a.scheduler)
    except ConfigError as e:
        p.error(f"--{e.field} {e.reason}")
    budget = BUDGETS["quick"] if a.quick else BUDGETS["full"] if a.data_dir else STUDY_BUDGETS[a.experiment]
    a.cfg = make_config(p, budget, a.epochs, teacher_epochs=budget.teacher, batch_size=a.batch_size, tau=a.tau,
                        lambda_final=a.lambda_final, init=a.init, teacher_init="code" if a.data_dir else "glorot",
                        progress=not a.no_progress)
    check_common_args(p, a)
    return a


def main(argv=None):
    a = parse_args(argv)
    data, source = load_data(a)
    cfg = replace(a.cfg, device=a.device)
    if a.experiment == "depth":
        for n, w, mult in depth_students(a.depths):
            print(f"depth {n}: {n} maxout conv layers of {w} channels x 2 pieces, {mult:,} multiplications "
                  f"per example", flush=True)
    if a.experiment == "position":
        for g, k, why in guided_positions():
            print(f"guided {g}: " + (f"{k}x{k} regressor" if k else f"not run: {why}"), flush=True)
    log = lambda *m: print(*m, flush=True)
    command = "python examples/fitnets_study.py " + " ".join(argv if argv is not None else sys.argv[1:])
    # workers load the data themselves (the same call as here) and the teacher from its file
    load = functools.partial(D.mnist_split, a.data_dir, a.quick)
    with make_executor(a.jobs, a.scheduler) as executor:
        info = run_study(a.experiment, data, a.out, cfg, a.seeds, a.teacher, a.resume, a.depths, log,
                         info={"data": source, "command": command}, executor=executor, load_data=load, smoke=a.quick)
    print("\n" + format_summary(info["summary"], a.experiment))
    print(f"total {info['wall_seconds']:.0f}s; command: {command}")
    exp_dir = os.path.join(a.out, a.experiment)
    print(f"results: {exp_dir}/results.json, results.csv, summary.txt"
          + (f", {info['figure']}" if "figure" in info else " (pip install 'tinyfit[plot]' for the figure)"))
    return info


if __name__ == "__main__":
    run_cli(main, CLI_ERRORS + (StudyError, SettingsError))
