"""How a study's runs fan out: wall time in-process vs --jobs N, and what a Dask cluster adds per run.

    python benchmarks/bench_study.py depth --epochs 5 --teacher-dir runs/study/teacher --out runs/bench_study
    python benchmarks/bench_study.py overhead          # Dask LocalCluster: per-task cost (needs tinyfit[distributed])

``depth``/``init``/``curves``: runs the study command twice on this machine, one after the
other, into <out>/inprocess and <out>/jobsN (the shared teacher copied from --teacher-dir into
both, so only the student runs are timed; without it the first command trains the teacher
and the second reuses a copy), and prints both wall times and whether every run's test
error agrees. Nothing else should run on the machine meanwhile.

``overhead``: a LocalCluster of 2 worker processes (1 thread each) on this machine; the
round-trip time of a task that does nothing (submitted one at a time), and the time per
task when 200 are submitted at once, against a local process pool of the same size. That
is what scheduling costs a study run beyond its training (a study run trains for seconds
to minutes).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def study_wall_time(experiment, out, extra, teacher_dir):
    os.makedirs(out, exist_ok=True)
    if teacher_dir:
        shutil.copytree(teacher_dir, os.path.join(out, "teacher"), dirs_exist_ok=True)
    cmd = [sys.executable, os.path.join(ROOT, "examples", "fitnets_study.py"), experiment, "--no-progress",
           "--out", out] + extra
    t = time.perf_counter()
    with open(out + ".log", "w") as log:
        subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=True)
    return time.perf_counter() - t


def test_errors(out, experiment):
    with open(os.path.join(out, experiment, "results.json")) as f:
        rows = json.load(f)["results"]
    return {r["run"]: r["test_error"] for r in rows}


def noop(i):
    return i


def task_costs(executor, n=200, rounds=20):
    """(median seconds of one submit -> result round trip, seconds per task of n at once)."""
    executor.submit(noop, 0).result()  # workers started
    trips = []
    for i in range(rounds):
        t = time.perf_counter()
        executor.submit(noop, i).result()
        trips.append(time.perf_counter() - t)
    t = time.perf_counter()
    for f in [executor.submit(noop, i) for i in range(n)]:
        f.result()
    return statistics.median(trips), (time.perf_counter() - t) / n


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["init", "depth", "curves", "overhead"])
    p.add_argument("--epochs", type=int, help="students' epoch budget (passed to the study)")
    p.add_argument("--quick", action="store_true", help="the study's --quick (a check of this script)")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--teacher-dir", help="a trained study teacher folder (<study out>/teacher) to share")
    p.add_argument("--out", default="runs/bench_study")
    a = p.parse_args(argv)
    if a.what == "overhead":
        from distributed import Client, LocalCluster
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                Client(cluster) as client:
            dask = task_costs(client.get_executor())
        with ProcessPoolExecutor(2) as pool:
            local = task_costs(pool)
        for name, (trip, each) in (("Dask LocalCluster", dask), ("local process pool", local)):
            print(f"{name:18s}: round trip {1000 * trip:.2f} ms, {1000 * each:.2f} ms per task of 200 at once")
        print(json.dumps({"dask_round_trip_s": dask[0], "dask_per_task_s": dask[1],
                          "pool_round_trip_s": local[0], "pool_per_task_s": local[1]}))
        return
    extra = (["--epochs", str(a.epochs)] if a.epochs else []) + (["--quick"] if a.quick else [])
    walls, errors = {}, {}
    for name, more in (("inprocess", []), (f"jobs{a.jobs}", ["--jobs", str(a.jobs)])):
        out = os.path.join(a.out, name)
        teacher = a.teacher_dir or (os.path.join(a.out, "inprocess", "teacher") if more else None)
        walls[name] = study_wall_time(a.what, out, extra + more, teacher)
        errors[name] = test_errors(out, a.what)
        print(f"{name}: {walls[name]:.0f} s ({len(errors[name])} runs)", flush=True)
    (n1, e1), (n2, e2) = errors.items()
    diff = [r for r in e1 if e1[r] != e2.get(r)]
    print(f"speed-up {walls[n1] / walls[n2]:.2f}x; runs whose test error differs: {len(diff)} of {len(e1)}"
          + (f" ({', '.join(diff[:6])}{', ...' if len(diff) > 6 else ''})" if diff else ""))
    print(json.dumps({"wall_s": walls, "runs": len(e1), "differing_runs": diff}))


if __name__ == "__main__":
    main()
