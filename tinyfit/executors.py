"""Where a study's runs execute: in this process, in local worker processes, or on a Dask
cluster, all behind the ``concurrent.futures.Executor`` interface (``make_executor``)."""
from __future__ import annotations

import contextlib
import multiprocessing
import os
from concurrent.futures import Executor, Future, ProcessPoolExecutor

from . import backend
from .pipeline import ConfigError

__all__ = ["InProcessExecutor", "check_executor", "make_executor", "CONNECT_TIMEOUT", "StudyError"]


class StudyError(RuntimeError):
    """A study cannot go on: some of its runs failed (the others are finished and kept), or its
    executor cannot be had (a Dask scheduler out of reach)."""


class InProcessExecutor(Executor):
    """Runs each submitted call at once, in this process (the default: one run after another)."""
    def submit(self, fn, *args, **kwargs):
        future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as e:  # reported with the run; KeyboardInterrupt still stops the study
            future.set_exception(e)
        return future


def check_executor(jobs=None, scheduler=None):
    """ConfigError unless ``jobs`` (a positive number of processes) or ``scheduler`` (an
    address) or neither is given."""
    if jobs is not None and (not isinstance(jobs, int) or jobs < 1):
        raise ConfigError("jobs", f"must be a positive number of worker processes, got {jobs!r}")
    if jobs and scheduler:
        raise ConfigError("scheduler", "and jobs: give either jobs (local processes) or scheduler (a Dask cluster), "
                                       "not both")


@contextlib.contextmanager
def make_executor(jobs=None, scheduler=None):
    """The executor runs are submitted to: in this process (default), ``jobs`` local worker
    processes (each limited to cpu_count // jobs threads for NumPy, BLAS and tinyfit), or the
    Dask distributed cluster whose scheduler is at ``scheduler`` (extra ``distributed``)."""
    check_executor(jobs, scheduler)
    if scheduler:
        try:
            from distributed import Client
        except ImportError:
            raise ImportError("a Dask cluster needs the distributed package: pip install "
                              "'tinyfit[distributed]'") from None
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False)
        except (OSError, TimeoutError) as e:
            raise StudyError(f"cannot reach the Dask scheduler at {scheduler} within {CONNECT_TIMEOUT} s "
                             f"({type(e).__name__}); start one with `dask scheduler` and give the address it "
                             "prints (tcp://host:8786)") from None
        with client:
            yield client.get_executor()
        return
    if not jobs or jobs == 1:
        yield InProcessExecutor()
        return
    threads = str(max(1, backend.num_threads() // jobs))
    saved = {k: os.environ.get(k) for k in backend.THREAD_VARIABLES}
    os.environ.update({k: threads for k in backend.THREAD_VARIABLES})  # workers start with these, before NumPy loads
    try:
        pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"))
        try:
            yield pool
        except BaseException:
            # Ctrl-C or a failure: the runs not started yet are dropped (a plain exit would
            # wait for every queued run); the running ones stop at their next step, saved
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


CONNECT_TIMEOUT = 10  # seconds to reach a Dask scheduler
