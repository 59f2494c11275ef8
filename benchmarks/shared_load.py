"""Training on a shared machine: the student's step time with busy processes on the cores.

    python benchmarks/shared_load.py                       # 0, 1 and 2 busy processes
    python benchmarks/shared_load.py --json load.json      # with commit, command and machine

Each thread setting runs in a fresh process (thread counts are fixed when NumPy loads):

* ``default``: what the commands do: tinyfit's and OpenBLAS's threads one per core, and
  ``OPENBLAS_THREAD_TIMEOUT=4`` so that idle OpenBLAS threads stop spinning at once;
* ``openblas spin``: the same with OpenBLAS's own spin time (the variable unset);
* ``tinyfit 1 thread``: ``TINYFIT_NUM_THREADS=1``;
* ``all 1 thread``: ``TINYFIT_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1``.

The competing load is ``--load`` processes that each run a pure Python loop (one core each, no
memory traffic to speak of), started before the timed process and stopped after it. Prints the
median seconds per student training step (batch 128, RMSProp) for every setting and load, and
the slowdown against the default threads on an idle machine. Nothing else should run meanwhile.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import subprocess
import sys
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

from results_file import save  # noqa: E402

SETTINGS = {
    "default": {"OPENBLAS_THREAD_TIMEOUT": "4"},
    "openblas spin": {},
    "tinyfit 1 thread": {"OPENBLAS_THREAD_TIMEOUT": "4", "TINYFIT_NUM_THREADS": "1"},
    "all 1 thread": {"OPENBLAS_THREAD_TIMEOUT": "4", "TINYFIT_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"},
}
THREAD_VARS = ("OPENBLAS_THREAD_TIMEOUT", "TINYFIT_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")

STEP_SCRIPT = r"""
import statistics, sys, time
sys.path.insert(0, {bench!r})
from bench_step import TinyfitNet, time_calls
from tinyfit import backend
backend.tune_malloc()
net = TinyfitNet("student", {batch}, "cpu")
net.step()
print(statistics.median(time_calls(net.step, {steps}) for _ in range({reps})))
"""


def busy():
    while True:
        pass


def step_seconds(setting, load, batch, steps, reps):
    """Median seconds per training step in a fresh process under ``setting``, with ``load``
    busy processes running meanwhile."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    env.update(SETTINGS[setting])
    hogs = [mp.Process(target=busy, daemon=True) for _ in range(load)]
    for h in hogs:
        h.start()
    try:
        script = STEP_SCRIPT.format(bench=os.path.dirname(os.path.abspath(__file__)), batch=batch, steps=steps,
                                    reps=reps)
        out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    finally:
        for h in hogs:
            h.terminate()
            h.join()
    return float(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--load", type=int, nargs="+", default=[0, 1, 2], help="busy processes to run meanwhile")
    p.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS), metavar="SETTING")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=10, help="steps timed per repetition")
    p.add_argument("--reps", type=int, default=5, help="repetitions (median taken)")
    p.add_argument("--json", help="write the results (with commit, command and machine) to this file")
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    rows = []
    for load in a.load:
        for setting in a.settings:
            s = step_seconds(setting, load, a.batch, a.steps, a.reps)
            rows.append({"setting": setting, "load": load, "step_ms": 1e3 * s})
            print(f"{load} busy, {setting:>17}: {1e3 * s:7.1f} ms per step", flush=True)
    base = next((r["step_ms"] for r in rows if r["setting"] == "default" and r["load"] == 0), None)
    if base:
        for r in rows:
            r["slowdown"] = r["step_ms"] / base
    save(a.json, "shared_load", t0, batch=a.batch, rows=rows)


if __name__ == "__main__":
    main()
