"""Publish results: copy a finished run's results file into docs/results/NAME, then render
every generated table, quoted value and figure of the README and docs anew from the files
under docs/results (tinyfit.report). Nothing published is typed by hand.

    python examples/publish_results.py --add init runs/study/init     # a study experiment's folder
    python examples/publish_results.py --add default runs/mnist_fitnet # an example run's --out
    python examples/publish_results.py --add speed bench.json          # bench_step.py --json output
    python examples/publish_results.py                                 # re-render everything
    python examples/publish_results.py --check                         # list stale parts, exit 1 if any
"""
from __future__ import annotations

import argparse
import glob
import os
import shutil
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

from tinyfit import report  # noqa: E402
from tinyfit.files import atomic_write  # noqa: E402

RESULTS = os.path.join(ROOT, "docs", "results")


def documents():
    return [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))


def add(name, src):
    """Copy results ``name`` from ``src`` (a folder holding results.json, or a .json file)."""
    dest = os.path.join(RESULTS, name)
    os.makedirs(dest, exist_ok=True)
    if os.path.isdir(src):
        for f in ("results.json", "results.csv"):
            if os.path.exists(os.path.join(src, f)):
                shutil.copyfile(os.path.join(src, f), os.path.join(dest, f))
    else:
        shutil.copyfile(src, os.path.join(dest, "results.json"))
    report.load(RESULTS, name)  # readable, or a clear error now
    print(f"added {name} from {src}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--add", nargs=2, metavar=("NAME", "SOURCE"), action="append", default=[],
                   help="copy the results file of a finished run into docs/results/NAME first")
    p.add_argument("--check", action="store_true", help="only list the stale parts; exit status 1 if any")
    p.add_argument("--no-figures", action="store_true", help="do not redraw the figures")
    a = p.parse_args(argv)
    if a.check:
        bad = [(d, part) for d in documents() for part in report.stale(open(d).read(), RESULTS)]
        for d, (what, _, _) in bad:
            print(f"{os.path.relpath(d, ROOT)}: {what} is stale")
        return 1 if bad else 0
    for name, src in a.add:
        add(name, src)
    if not a.no_figures:
        path = report.method_figure(os.path.join(ROOT, "docs", "method.png"))
        print(f"figure: {os.path.relpath(path, ROOT)}")
        for name in sorted(os.listdir(RESULTS)) if os.path.isdir(RESULTS) else []:
            if os.path.exists(os.path.join(RESULTS, name, "results.json")):
                path = report.figure(RESULTS, name)
                if path:
                    print(f"figure: {os.path.relpath(path, ROOT)}")
    for d in documents():
        text, missing = open(d).read(), []
        new = report.refresh(text, RESULTS, missing)
        if new != text:
            atomic_write(d, new)
            print(f"updated {os.path.relpath(d, ROOT)}")
        if missing:
            print(f"{os.path.relpath(d, ROOT)}: no results yet for " + ", ".join(sorted(set(missing))))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ValueError, OSError) as e:
        sys.exit(f"error: {e}")
