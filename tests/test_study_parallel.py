"""Study runs fanned out: local worker processes (--jobs) and a Dask LocalCluster give the
same per-run results as in-process; a worker killed mid-run is reported and --resume finishes."""
import functools
import os
import signal
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import pytest

from tinyfit import data as D
from tinyfit.pipeline import BUDGETS, PipelineConfig
from tinyfit.study import StudyError, run_study, train_run
from test_study import load_example

pytest.importorskip("mlxtend")
ARGS = ["curves", "--quick", "--seeds", "0,1", "--no-progress"]


def same_runs(a, b):
    assert [r["run"] for r in a] == [r["run"] for r in b]
    for x, y in zip(a, b):
        assert x["test_error"] == y["test_error"] and x["history"] == y["history"], x["run"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    study = load_example("fitnets_study")
    return study.main(ARGS + ["--out", str(tmp_path_factory.mktemp("inprocess"))])["results"]


def test_local_processes_match_in_process(reference, tmp_path):
    study = load_example("fitnets_study")
    info = study.main(ARGS + ["--jobs", "2", "--out", str(tmp_path)])
    same_runs(info["results"], reference)


def test_dask_local_cluster_matches_in_process(reference, tmp_path):
    distributed = pytest.importorskip("distributed")
    study = load_example("fitnets_study")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        info = study.main(ARGS + ["--scheduler", cluster.scheduler_address, "--out", str(tmp_path)])
    same_runs(info["results"], reference)


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


def test_killed_worker_is_reported_and_resume_completes(reference, tmp_path):
    data, _ = D.mnist_split(quick=True)
    cfg = PipelineConfig(budget=BUDGETS["quick"], init="code", teacher_init="glorot", progress=False)
    load = functools.partial(D.mnist_split, None, True)
    lines = []
    with KillOneWorker(2, mp_context=get_context("spawn")) as pool:
        with pytest.raises(StudyError, match=r"runs failed: .*init-code/seed1/kd .*rerun with resume"):
            run_study("curves", data, str(tmp_path), cfg, seeds=(0, 1), executor=pool, load_data=load,
                      log=lines.append, figure=False)
    assert any(VICTIM in line and "FAILED (seed 1" in line for line in lines)
    finished = [r for r in ("init-code/seed0/backprop", "init-code/seed0/kd", "init-code/seed0/fitnet")
                if os.path.exists(os.path.join(str(tmp_path), "curves", r, "result.json"))]
    info = run_study("curves", data, str(tmp_path), cfg, seeds=(0, 1), resume=True, log=lines.append, figure=False)
    same_runs(info["results"], reference)
    assert sum(f"{r}: finished earlier" in line for line in lines for r in finished) == len(finished)
