"""tinyfit's command line (installed as the console script ``tinyfit``, also ``python -m tinyfit``):

    tinyfit run ...            the method end to end (teacher, backprop, KD, FitNets): tinyfit.cli.run
    tinyfit study EXPERIMENT   an experiment of the study: tinyfit.cli.study

``examples/mnist_fitnet.py`` and ``examples/fitnets_study.py`` are the same two commands.
"""
from __future__ import annotations

import sys

__all__ = ["main"]

COMMANDS = {"run": "the method end to end on MNIST (teacher, backprop, KD, FitNets)",
            "study": "one experiment of the FitNets study"}


def main(argv=None):
    """Run ``tinyfit COMMAND ARGS...`` (argv: the words after ``tinyfit``); returns the exit code."""
    from .common import run_cli
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        lines = ["usage: tinyfit COMMAND [ARGS...]   (tinyfit COMMAND --help for its flags)", "", "commands:"]
        lines += [f"  {k:6s} {v}" for k, v in COMMANDS.items()]
        known = not argv or argv[0] in ("-h", "--help")
        print("\n".join(lines if known else [f"tinyfit: unknown command {argv[0]!r}; choose one of "
                                             f"{', '.join(COMMANDS)}"]), file=sys.stdout if known else sys.stderr)
        return 0 if known else 2
    command, rest = argv[0], argv[1:]
    if command == "run":
        from .run import main as run_main
        from .common import CLI_ERRORS as errors
        return run_cli(lambda: run_main(rest, "tinyfit run"), errors)
    from .study import ERRORS as errors
    from .study import main as study_main
    return run_cli(lambda: study_main(rest, "tinyfit study"), errors)
