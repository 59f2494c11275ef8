"""The FitNets study on MNIST from a checkout: ``tinyfit study`` (tinyfit/cli/study.py).

    python examples/fitnets_study.py EXPERIMENT [--quick] [--resume] [--jobs N]   # --help lists them
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
