"""The FitNets study on MNIST: what hints do, measured over seeds.

    python examples/fitnets_study.py EXPERIMENT         # one of the experiments listed below
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

import os
import sys

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")  # as examples/mnist_fitnet.py, before NumPy loads
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from tinyfit.cli.common import run_cli
from tinyfit.cli.study import ERRORS, parse_args  # noqa: F401
from tinyfit.cli.study import main as _main

PROG = "python examples/fitnets_study.py"


def main(argv=None):
    """``tinyfit study`` (tinyfit.cli.study), recorded as this script's command."""
    return _main(argv, PROG)


if __name__ == "__main__":
    run_cli(main, ERRORS)
