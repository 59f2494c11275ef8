"""What both command lines share: the common flags, the library config they make, the data
they load, the last lines they print, and one line (not a traceback) for the library's errors."""
from __future__ import annotations

import os
import sys
from dataclasses import replace

import tinyfit

from .. import backend
from .. import data as D
from ..checkpoint import CheckpointError
from ..files import FolderBusy, OutputError
from ..pipeline import ConfigError, PipelineConfig, check_teacher_file
from ..training import Interrupted, NonFiniteError


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
    """Set up the process (allocator, device) and return (Split, description, PipelineConfig)
    on the chosen device, from --data-dir / --download or the embedded digits."""
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
    return split, source, replace(a.cfg, device=a.device)


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
