"""FitNets on MNIST, end to end, from a checkout: ``tinyfit run`` (tinyfit/cli/run.py).

    python examples/mnist_fitnet.py                      # the 5,000 real digits that ship with tinyfit
    python examples/mnist_fitnet.py --data-dir DIR       # full MNIST IDX files: the paper's recipe
    python examples/mnist_fitnet.py --quick              # a smoke run of about a minute
"""
from __future__ import annotations

import os
import sys

# Idle OpenBLAS threads spin for a while after each GEMM, on the cores that tinyfit's own
# threads need next (im2col, pooling, maxout): a short spin makes a CPU training step about
# 15% faster (docs/benchmarks.md). It must be set before NumPy loads; a value already in the
# environment wins.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from tinyfit.cli.common import (CLI_ERRORS, add_common_args, check_common_args, load_data,  # noqa: F401
                                make_config, print_tail, run_cli)
from tinyfit.cli.run import parse_args  # noqa: F401
from tinyfit.cli.run import main as _main

PROG = "python examples/mnist_fitnet.py"


def main(argv=None):
    """``tinyfit run`` (tinyfit.cli.run), recorded as this script's command."""
    return _main(argv, PROG)


if __name__ == "__main__":
    run_cli(main)
