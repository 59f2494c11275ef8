"""The FitNets study on MNIST: what hints do, measured over seeds.

    tinyfit study EXPERIMENT         # one of the experiments listed below
    tinyfit study depth --quick      # smoke run, under a minute
    tinyfit study depth --jobs 2     # students in 2 local processes
    tinyfit study depth --scheduler tcp://host:8786   # on a Dask cluster

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

from .. import data as D
from .. import report
from ..experiments import DEPTHS, EXPERIMENTS, plan
from ..methods import PAPER_METHODS
from ..pipeline import BUDGETS, ConfigError, SettingsError
from ..study import StudyError, check_executor, make_executor, run_study
from .common import CLI_ERRORS, add_common_args, check_common_args, load_data, make_config, print_tail

PROG = "tinyfit study"
ERRORS = CLI_ERRORS + (StudyError, SettingsError)

EXPERIMENT_LINES = "\n".join(f"    {e.name:11s} {e.summary} (default seeds {','.join(map(str, e.seeds))})"
                              for e in EXPERIMENTS.values())


def parse_args(argv=None, prog=PROG):
    p = argparse.ArgumentParser(prog=prog, description=__doc__ + "\nexperiments:\n" + EXPERIMENT_LINES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("experiment", choices=EXPERIMENTS)
    add_common_args(p, os.path.join("runs", "study"))
    p.add_argument("--seeds", help="comma-separated seeds (default: the experiment's, listed above)")
    p.add_argument("--epochs", type=int, help="epoch budget of every student (stage 1: half)")
    p.add_argument("--init", choices=["code", "glorot"], default="code",
                   help="students' init for depth, curves and position (init and ablate run both)")
    p.add_argument("--methods", default=",".join(PAPER_METHODS),
                   help="the paper's methods the experiment runs (default all three; the results say which)")
    p.add_argument("--depths", default=",".join(map(str, DEPTHS)),
                   help="conv layers of the depth students (deep-floor: the deepest)")
    p.add_argument("--jobs", type=int, help="train the students in N local worker processes (CPU)")
    p.add_argument("--scheduler", help="train the students on a Dask cluster: its scheduler's address, e.g. "
                                       "tcp://host:8786 (needs tinyfit[distributed] here and on the workers)")
    a = p.parse_args(argv)
    try:
        default = EXPERIMENTS[a.experiment].seeds
        a.seeds = [int(s) for s in a.seeds.split(",") if s.strip()] if a.seeds else list(default)
        a.depths = [int(d) for d in a.depths.split(",") if d.strip()]
    except ValueError:
        p.error(f"--seeds and --depths take comma-separated integers, e.g. --seeds 0,1,2; got {a.seeds!r}, "
                f"{a.depths!r}")
    try:  # each setting is checked once, by the library; a refusal becomes a usage error naming the flag
        a.methods = tuple(m for m in a.methods.split(",") if m)
        if not a.methods or not set(a.methods) <= set(PAPER_METHODS) or len(set(a.methods)) < len(a.methods):
            raise ConfigError("methods", f"must be distinct names from {', '.join(PAPER_METHODS)}, got {a.methods}")
        runs = plan(a.experiment, a.seeds, a.init, a.depths, a.methods)
        check_executor(a.jobs, a.scheduler)
    except ConfigError as e:
        p.error(f"--{e.field} {e.reason}")
    cap = min(len(runs), os.cpu_count() or 1)
    if a.jobs and a.jobs > cap:  # more processes than runs or cores only share the same cores
        print(f"--jobs {a.jobs}: capped at {cap}, the number of " + ("runs" if len(runs) <= cap else "cores")
              + " (each process already gets its share of the cores' threads)", file=sys.stderr)
        a.jobs = cap
    exp = EXPERIMENTS[a.experiment]
    if exp.full_data and not (a.data_dir or a.download):
        sys.exit(f"error: {exp.name} runs on the full MNIST files: give --data-dir DIR (a folder with the four "
                 "standard IDX files) or --download")
    # with --data-dir an experiment of the embedded digits runs the paper's full recipe
    own = exp.full_data or not a.data_dir
    budget = BUDGETS["quick"] if a.quick else exp.budget if own else BUDGETS["full"]
    a.cfg = make_config(p, budget, a.epochs, teacher_epochs=budget.teacher, batch_size=a.batch_size, tau=a.tau,
                        lambda_final=a.lambda_final, init=a.init,
                        teacher_init=exp.teacher_init or ("code" if a.data_dir else "glorot"),
                        progress=not a.no_progress)
    check_common_args(p, a)
    return a


def main(argv=None, prog=PROG):
    a = parse_args(argv, prog)
    data, source, cfg = load_data(a)
    describe = EXPERIMENTS[a.experiment].describe
    for line in describe(a.depths) if describe else []:
        print(line, flush=True)
    log = lambda *m: print(*m, flush=True)
    command = f"{prog} " + " ".join(argv if argv is not None else sys.argv[1:])
    # workers load the data themselves (the same call as here) and the teacher from its file
    load = functools.partial(D.mnist_split, a.data_dir, a.quick)
    with make_executor(a.jobs, a.scheduler) as executor:
        info = run_study(a.experiment, data, a.out, cfg, a.seeds, a.teacher, a.resume, a.depths, log, methods=a.methods,
                         info={"data": source, "command": command}, executor=executor, load_data=load, smoke=a.quick,
                         present=report.write_study, accept_weak=a.accept_weak_teacher)
    print("\n" + report.format_summary(info["summary"], a.experiment))
    print_tail(info, command, os.path.join(a.out, a.experiment), ", summary.txt, summary.md")
    return info
