"""Study runs fanned out: local worker processes (--jobs) and a Dask LocalCluster give the
same per-run results as in-process with the same (one) BLAS thread per run; a worker killed
mid-run is reported and --resume finishes."""
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import pytest

from tinyfit import data as D
from tinyfit.backend import THREAD_VARIABLES
from tinyfit.pipeline import BUDGETS, PipelineConfig
from tinyfit.study import StudyError, run_study, train_run
from test_study import load_example

ARGS = ["curves", "--quick", "--seeds", "0,1", "--no-progress"]


def same_runs(a, b):
    assert [r["run"] for r in a] == [r["run"] for r in b]
    for x, y in zip(a, b):
        assert x["test_error"] == y["test_error"] and x["history"] == y["history"], x["run"]


ONE_THREAD = dict.fromkeys(THREAD_VARIABLES, "1")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The in-process study, in a fresh process with one thread, as each worker below has:
    the BLAS thread count can change float32 rounding (tinyfit's own threads cannot)."""
    out = str(tmp_path_factory.mktemp("inprocess"))
    script = os.path.join(os.path.dirname(__file__), "..", "examples", "fitnets_study.py")
    r = subprocess.run([sys.executable, script] + ARGS + ["--out", out], env={**os.environ, **ONE_THREAD},
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return json.load(open(os.path.join(out, "curves", "results.json")))["results"], out


def with_teacher(reference, tmp_path):
    """An output folder holding the reference's trained teacher, so every study below reuses
    that file (this process's BLAS may use more threads than the reference run did)."""
    shutil.copytree(os.path.join(reference[1], "teacher"), os.path.join(str(tmp_path), "teacher"))
    return str(tmp_path)


def test_local_processes_match_in_process(reference, tmp_path):
    study = load_example("fitnets_study")
    info = study.main(ARGS + ["--jobs", "2", "--out", with_teacher(reference, tmp_path)])
    same_runs(info["results"], reference[0])


def test_dask_local_cluster_matches_in_process(reference, tmp_path):
    distributed = pytest.importorskip("distributed")
    study = load_example("fitnets_study")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  env=ONE_THREAD) as cluster:
        info = study.main(ARGS + ["--scheduler", cluster.scheduler_address, "--out", with_teacher(reference, tmp_path)])
    same_runs(info["results"], reference[0])


VICTIM = "init-code/seed1/kd"


def die_mid_run(run, *args, **kwargs):
    """train_run, but the worker process is killed (SIGKILL) after 3 optimiser steps."""
    from tinyfit import optim
    step, count = optim.Optimizer.step, [0]

    def killing_step(self):
        step(self)
        count[0] += 1
        if count[0] == 3:
            os.kill(os.getpid(), signal.SIGKILL)
    optim.Optimizer.step = killing_step
    return train_run(run, *args, **kwargs)


class KillOneWorker(ProcessPoolExecutor):
    def submit(self, fn, *args, **kwargs):
        return super().submit(die_mid_run if args[0].name == VICTIM else fn, *args, **kwargs)


def test_killed_worker_is_reported_and_resume_completes(reference, tmp_path, monkeypatch):
    data, _ = D.mnist_split(quick=True)
    cfg = PipelineConfig(budget=BUDGETS["quick"], init="code", teacher_init="glorot", progress=False)
    load = functools.partial(D.mnist_split, None, True)
    out = with_teacher(reference, tmp_path)
    lines = []
    for k, v in ONE_THREAD.items():  # for the spawned workers (this process's BLAS is already loaded)
        monkeypatch.setenv(k, v)
    with KillOneWorker(2, mp_context=get_context("spawn")) as pool:
        with pytest.raises(StudyError, match=r"runs failed: .*init-code/seed1/kd .*rerun with resume"):
            run_study("curves", data, out, cfg, seeds=(0, 1), executor=pool, load_data=load,
                      log=lines.append, accept_weak=True)
    assert any(VICTIM in line and "FAILED (seed 1" in line for line in lines)
    finished = [r for r in ("init-code/seed0/backprop", "init-code/seed0/kd", "init-code/seed0/fitnet")
                if os.path.exists(os.path.join(out, "curves", r, "result.json"))]
    with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:
        info = run_study("curves", data, out, cfg, seeds=(0, 1), resume=True, log=lines.append,
                         executor=pool, load_data=load, accept_weak=True)
    same_runs(info["results"], reference[0])
    assert sum(f"{r}: finished earlier" in line for line in lines for r in finished) == len(finished)


def test_an_unreachable_scheduler_is_one_clear_line(tmp_path):
    pytest.importorskip("distributed")
    script = os.path.join(os.path.dirname(__file__), "..", "examples", "fitnets_study.py")
    r = subprocess.run([sys.executable, script, "init", "--quick", "--seeds", "0", "--out", str(tmp_path / "s"),
                        "--scheduler", "tcp://127.0.0.1:1"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [
        "error: cannot reach the Dask scheduler at tcp://127.0.0.1:1 within 10 s (OSError); start one with "
        "`dask scheduler` and give the address it prints (tcp://host:8786)"]
    assert not os.path.exists(tmp_path / "s")  # nothing was written


def test_an_interrupt_drops_the_runs_not_started():
    """Ctrl-C under --jobs N: the study stops instead of waiting for every queued run."""
    import time
    from tinyfit.study import make_executor
    futures = []
    with pytest.raises(KeyboardInterrupt):
        with make_executor(jobs=2) as pool:
            futures = [pool.submit(time.sleep, 0.2) for _ in range(40)]
            futures[0].result()
            raise KeyboardInterrupt
    assert sum(f.cancelled() for f in futures) >= 30
    assert all(f.done() for f in futures)
