"""FitNets on MNIST, end to end: a maxout teacher, then the same thin deep student trained
by plain backprop, by knowledge distillation (KD), and by FitNets (stage 1 hints, stage 2 KD).

    python examples/mnist_fitnet.py                      # the 5,000 real digits that ship with tinyfit
    python examples/mnist_fitnet.py --data-dir DIR       # full MNIST IDX files: the paper's recipe
    python examples/mnist_fitnet.py --download           # fetch them (SHA-256 verified) first
    python examples/mnist_fitnet.py --quick              # a smoke run of about a minute

Writes to --out (default runs/mnist_fitnet): results.json, results.csv, every model
(*.model.npz, loadable with tinyfit.load_model) and per-stage checkpoints; --resume
continues an interrupted run where it stopped.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from dataclasses import replace

# Idle OpenBLAS threads spin for a while after each GEMM, on the cores that tinyfit's own
# threads need next (im2col, pooling, maxout): a short spin makes a CPU training step about
# 15% faster (docs/benchmarks.md). It must be set before NumPy loads; a value already in the
# environment wins.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import tinyfit
from tinyfit import backend, data as D
from tinyfit.checkpoint import CheckpointError
from tinyfit.pipeline import (ALL_METHODS, BUDGETS, METHODS, VARIANTS, ConfigError, PipelineConfig,
                              check_teacher_file, format_table, run_pipeline)
from tinyfit.files import FolderBusy, OutputError
from tinyfit.training import Interrupted, NonFiniteError


def add_common_args(p, out):
    """Options shared with examples/fitnets_study.py."""
    p.add_argument("--data-dir", help="folder with the four standard MNIST IDX files (.gz or not)")
    p.add_argument("--download", action="store_true", help="download MNIST into --cache-dir first")
    p.add_argument("--cache-dir", default=os.path.join(os.path.expanduser("~"), ".cache", "tinyfit", "mnist"))
    p.add_argument("--mirror", default=D.MNIST_MIRROR, help="base URL of the MNIST files for --download")
    p.add_argument("--device", default=None, help="cpu or cuda (default: $TINYFIT_DEVICE or cpu)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--quick", action="store_true", help="a smoke run: a small subset and 1-2 epochs")
    p.add_argument("--teacher", help="a trained teacher (.model.npz) to use instead of training one")
    p.add_argument("--accept-weak-teacher", action="store_true",
                   help="go on with a teacher at chance (by default such a teacher stops the run)")
    p.add_argument("--tau", type=float, default=3.0)
    p.add_argument("--lambda-final", type=float, default=0.0,
                   help="value the KD weight decays to (official code: 0; the paper's text: 1)")
    p.add_argument("--out", default=out)
    p.add_argument("--resume", action="store_true", help="continue the run in --out where it stopped")
    p.add_argument("--no-progress", action="store_true", help="no progress bars or per-epoch lines")


def check_common_args(p, a):
    """What only a command line can check before anything is loaded: the output folder must
    be usable and a --teacher file must hold a teacher before hours of training go into it."""
    if a.teacher:
        try:
            check_teacher_file(a.teacher, a.cfg.pieces, a.cfg.pooling)
        except ConfigError as e:
            p.error(f"--teacher {e.reason}")
        except CheckpointError as e:
            p.error(f"--teacher: {e}")
    out = os.path.abspath(a.out)
    if os.path.exists(out) and not os.path.isdir(out):
        p.error(f"--out {a.out}: exists and is not a folder; give a folder path (it is created if missing)")
    probe = out
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.access(probe, os.W_OK | os.X_OK):
        p.error(f"--out {a.out}: cannot write in {probe}; give a folder you can write to")


FLAGS = {"budget": "the epoch budget:"}  # library settings whose flag is not --<name with dashes>


def make_config(p, budget, epochs, **settings):
    """The library's PipelineConfig for these flags; a setting it refuses becomes a usage
    error naming the flag (each setting is checked once, by the library)."""
    teacher = settings.pop("teacher_epochs", None)  # the study's shared teacher keeps its budget
    try:
        if epochs is not None:
            budget = budget.with_epochs(epochs, teacher=teacher)
        return PipelineConfig(budget=budget, **settings)
    except ConfigError as e:
        p.error(f"{FLAGS.get(e.field, '--' + e.field.replace('_', '-'))} {e.reason}")


def load_data(a):
    """Set up the process (allocator, device) and return (Split, description) on the chosen
    device, from --data-dir / --download or the embedded digits."""
    backend.tune_malloc()
    a.device = backend.check_device(a.device or backend.default_device())
    if a.download:
        a.data_dir = D.download_mnist(a.cache_dir, a.mirror)
    split, source = D.mnist_split(a.data_dir, a.quick)
    print(f"data: {source}\nsplit: {split.describe()}; device: {a.device}", flush=True)
    if a.device == "cpu" and (note := backend.shared_cores_warning()):
        print(note, flush=True)
    if a.device != "cpu":
        split = D.Split(*(backend.to_device(getattr(split, f), a.device) for f in
                          ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")))
    return split, source


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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


def main(argv=None):
    a = parse_args(argv)
    data, source = load_data(a)
    cfg = replace(a.cfg, device=a.device)
    names = {"code": "U(-0.005, 0.005)", "glorot": "Glorot uniform"}
    print(f"init: students {cfg.init} ({names[cfg.init]}), teacher {cfg.teacher_init} ({names[cfg.teacher_init]})",
          flush=True)
    log = lambda *m: print(*m, flush=True)
    info = run_pipeline(data, a.out, cfg, a.methods, a.teacher, resume=a.resume, log=log,
                        accept_weak=a.accept_weak_teacher or a.quick,
                        info={"data": source, "command": "python examples/mnist_fitnet.py " +
                              " ".join(argv if argv is not None else sys.argv[1:])})
    if a.export_onnx:
        for m in a.methods:
            path = tinyfit.export_onnx(tinyfit.load_model(os.path.join(a.out, f"{m}.model.npz")),
                                       os.path.join(a.out, f"{m}.onnx"))
            print(f"ONNX: {path}", flush=True)
    print("\n" + format_table(info["results"]))
    if a.quick:
        print("SMOKE RUN (--quick): 512 training digits and 1-2 epochs; these numbers mean nothing.")
    print_tail(info, info["command"], a.out, "")
    return info


def print_tail(info, command, folder, extra):
    """The last lines both command lines print: the wall time and command, and what was written."""
    print(f"total {info['wall_seconds']:.0f}s; command: {command}")
    print(f"results: {os.path.join(folder, 'results.json')}, results.csv{extra}"
          + (f", {info['figure']}" if "figure" in info else " (pip install 'tinyfit[plot]' for the figure)"))


# OSError: a path the library was given cannot be read or written (its message names the path)
CLI_ERRORS = (D.DataError, CheckpointError, NonFiniteError, ValueError, ImportError, tinyfit.DeviceError, OutputError,
              FolderBusy, OSError)


def run_cli(main, errors=CLI_ERRORS):
    """Run ``main()``; the library's errors become one line and exit code 1, Ctrl-C says what
    was kept and how to resume."""
    try:
        main()
    except errors as e:
        sys.exit(f"error: {e}")
    except Interrupted as e:
        sys.exit(f"interrupted: the current stage's checkpoint is saved in {e.path}; rerun with --resume to continue"
                 if e.path else "interrupted")
    except KeyboardInterrupt:
        sys.exit("interrupted between stages: the finished stages are kept; rerun with --resume to continue")


if __name__ == "__main__":
    run_cli(main)
