"""Running the FitNets study: an experiment's runs (``tinyfit.experiments``) after one shared
teacher, on an executor (``tinyfit.executors``), resumable.

Each run (experiment cell x method x seed) trains into its own folder
``<out>/<experiment>/<run>`` and writes ``result.json`` when it is done; runs that several
experiments use live in the folder of the one that defines them and are shared. ``resume=True``
skips finished runs and continues interrupted ones from their checkpoints; nothing is reused
under other settings. The statistics are ``tinyfit.summary``'s, the tables and figures
``tinyfit.report``'s.
"""
from __future__ import annotations

import json
import os
import time
from concurrent.futures import as_completed
from dataclasses import asdict, replace

from .checkpoint import load_archive, load_model
from .data import class_profile, training_subset
from .executors import InProcessExecutor, StudyError, check_executor, make_executor
from .experiments import DEPTHS, EXPERIMENTS, Run, depth_students, guided_positions, plan
from .experiments import experiment as experiment_record
from .files import atomic_write, output_folder
from .hooks import GradientRecorder
from .methods import METHODS, PAPER_METHODS
from .models import multiplications
from .pipeline import Teacher, check_settings, get_teacher, invocations, run_settings, train_student, write_results
from .provenance import code_commit, provenance
from .summary import summarize

__all__ = ["check_executor", "EXPERIMENTS", "DEPTHS", "Run", "StudyError", "InProcessExecutor", "make_executor",
           "plan", "depth_students", "guided_positions", "train_run", "run_study", "run_config", "expected_settings"]


def _load_result(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


_WORKER_CACHE = {}  # per worker process: the data and the teacher, loaded once


def _worker_inputs(load_data, teacher_file, device):
    key = (repr(load_data), teacher_file, os.path.getmtime(teacher_file))
    if key not in _WORKER_CACHE:
        _WORKER_CACHE.clear()
        data = load_data()
        data = data[0] if isinstance(data, tuple) else data
        model = load_model(teacher_file).to(device)
        settings = load_archive(teacher_file, "model")[1]["extra"].get("settings")
        _WORKER_CACHE[key] = (data, Teacher(model, data, {}, settings))
    return _WORKER_CACHE[key]


_SUBSET_CACHE = {}  # the last training subset and its teacher: consecutive runs (seeds) share them


def _subset_inputs(run, data, teacher):
    """The run's training subset and the teacher over it (its logits and hints are computed on
    those digits, once for every run of the same subset in a row)."""
    key = (run.data, teacher.fingerprint)
    base, sub, t = _SUBSET_CACHE.get(key, (None, None, None))
    if base is not data:  # the cache holds the study's data itself, so an id is never reused
        _SUBSET_CACHE.clear()
        sub = run_data(run, data)
        t = Teacher(teacher.model, sub, teacher.row, teacher.settings)
        _SUBSET_CACHE[key] = (data, sub, t)
    return sub, t


def run_data(run, data):
    """The run's training data: ``data`` (the study's split), or its subset ``run.data``."""
    return training_subset(data, run.data) if run.data else data


def run_config(cfg, run, data):
    """The study's settings with the run's seed, init, hint weight, RMSProp floor and budget,
    and the epoch cap of a recording experiment: what the run is trained with (``data``: the
    run's own, ``run_data``)."""
    exp = EXPERIMENTS[run.experiment]
    rec = exp.recorder
    budget = _RUN_BUDGETS[run.budget](cfg.budget)
    if exp.budget_of:
        budget = exp.budget_of(budget, len(data.y_train) // cfg.batch_size)
    return replace(cfg, seed=run.seed, init=run.init, hint_weight=run.beta or cfg.hint_weight,
                   rms_floor=run.floor or cfg.rms_floor, max_epochs=rec.epochs if rec else cfg.max_epochs,
                   budget=budget)


def expected_settings(run, data, cfg, teacher):
    """What ``run`` depends on: its method's settings (``pipeline.run_settings``) under
    ``run_config``, and what its recorder probes. Written into its row when it is trained and
    compared with the row's before a finished run is reused. ``data``: the run's own."""
    rec = EXPERIMENTS[run.experiment].recorder
    s = run_settings(run.method, data, run_config(cfg, run, data), run.student(cfg.pieces, cfg.pooling), teacher)
    return dict(s, recorder=rec.settings()) if rec else s


def train_run(run, exp_dir, cfg, resume, data=None, teacher=None, load_data=None, teacher_file=None, log=None,
              stage1_from=None):
    """Train one run of a study into ``<out>/<run.experiment>/<run.name>`` (``exp_dir`` is
    ``<out>/<experiment>``) and return its row (also written there as result.json). In this
    process, pass ``data`` and ``teacher`` (a pipeline.Teacher); in a worker, ``load_data``
    (a picklable callable returning the Split) and ``teacher_file``, loaded once per worker.
    stage1_from: the run whose finished stage 1 this one may take (its method's ``shares_stage1``)."""
    if data is None:
        data, teacher = _worker_inputs(load_data, teacher_file, cfg.device)
    if run.data:
        data, teacher = _subset_inputs(run, data, teacher)
    if log is None:
        log = lambda *m: print(f"{run.name}:", *m, flush=True)
    t0 = time.perf_counter()
    run_dir = _run_dir(exp_dir, run)
    rec = EXPERIMENTS[run.experiment].recorder
    hooks = ()
    if rec:
        # a trace must cover every recorded step, so a recorded run restarts rather than resumes
        resume, hooks = False, (GradientRecorder(data.x_val[:rec.probe], every=rec.every),)
    twin = _run_dir(exp_dir, stage1_from) if stage1_from is not None and not hooks else None
    model, row = train_student(run.method, data, teacher, run_dir, run_config(cfg, run, data),
                               run.student(cfg.pieces, cfg.pooling), resume, log, step_hooks=hooks, stage1_from=twin)
    row = dict(row, experiment=run.experiment, run=run.name, commit=code_commit(),
               wall_seconds=round(time.perf_counter() - t0, 1),
               **{k: v for k, v in asdict(run).items() if k not in ("experiment", "method")
                  and not (k in _OPTIONAL_FIELDS and not v)})
    row["multiplications"] = multiplications(model)
    if hooks:
        row["trace"] = hooks[0].records
    row["settings"] = expected_settings(run, data, cfg, teacher)
    atomic_write(os.path.join(run_dir, "result.json"), json.dumps(row, indent=2))
    return row


_OPTIONAL_FIELDS = ("budget", "data", "teacher")  # in a row only when set


def _equal(b):
    hints = max(1, round(b.student * b.hints / (b.hints + b.student)))
    return replace(b, hints=hints, stage2=max(1, b.student - hints))


# a run's budget from the experiment's: its own, two stages in the one-stage epochs, one stage as
# long as the two stages
_RUN_BUDGETS = {"": lambda b: b, "equal": _equal, "long": lambda b: replace(b, student=b.student + b.hints)}


def _run_dir(exp_dir, run):
    return os.path.join(os.path.dirname(exp_dir), run.experiment, run.name)


def _finished(run, exp_dir, data, cfg, teacher):
    """The row of ``run`` if it finished earlier with the settings it would have now (else
    SettingsError naming what differs), or None."""
    path = os.path.join(_run_dir(exp_dir, run), "result.json")
    done = _load_result(path)
    if done is not None:
        check_settings(path, done.get("settings"), expected_settings(run, run_data(run, data), cfg, teacher))
    return done


def _stage1_source(run, runs):
    """The planned run whose stage 1 ``run`` shares (its method's ``shares_stage1``), or None."""
    twin = METHODS[run.method].shares_stage1
    if twin is None:
        return None
    want = replace(run, method=twin, experiment="")
    return next((r for r in runs if replace(r, experiment="") == want), None)


def run_study(experiment, data, out, cfg, seeds=None, teacher_path=None, resume=False, depths=DEPTHS,
              log=print, info=None, executor=None, load_data=None, smoke=False, present=None, accept_weak=False,
              methods=PAPER_METHODS):
    """Train every run of ``experiment`` (after the teacher shared by all experiments in
    ``out``: trained into ``<out>/teacher`` once, or ``teacher_path``) and write
    ``<out>/<experiment>/results.json`` and ``results.csv``; ``present(exp_dir, info)`` then
    writes what presents them (``report.write_study``: summaries and the figure) and returns
    what to add to the info it returns (the figure's path). ``cfg``
    gives the budget, device and the init of the experiments that take one (its seed is
    replaced by each run's). Runs that another experiment defines (the init cells' students)
    are reused when they finished earlier with the same settings, ``resume`` or not.

    executor: a concurrent.futures.Executor the runs are submitted to once the teacher is
    ready (default: in this process; see ``make_executor``). Another executor's workers load
    the data with ``load_data`` (a picklable callable) and the teacher from its file. Each
    run's generators derive only from its own configuration, so the results do not depend on
    the executor, given the same number of BLAS threads per run (it can change GEMM
    rounding). A failed run is reported with its seed and configuration; the finished ones
    are kept and ``resume=True`` trains only what is missing. smoke: a smoke run (``--quick``):
    its numbers mean nothing, and the summary says so instead of giving verdicts (and a teacher
    at chance is accepted with a warning, as with ``accept_weak``). methods: the paper's methods
    the experiment plans (a part of an experiment, its results file says which). Returns the
    info dict."""
    t0 = time.perf_counter()
    exp = experiment_record(experiment)
    seeds = list(exp.seeds if seeds is None else seeds)
    runs = plan(experiment, seeds, cfg.init, depths, methods)
    executor = executor or InProcessExecutor()
    if not isinstance(executor, InProcessExecutor) and (load_data is None or cfg.device != "cpu"):
        raise ValueError("runs in worker processes need load_data (a picklable callable returning the data) "
                         "and device 'cpu'")
    with output_folder(out):
        teachers = _teachers(runs, data, out, cfg, teacher_path, log, accept_weak or smoke)
        teacher = teachers[0][0]
        exp_dir = os.path.join(out, experiment)
        rows, trained = _train_runs(runs, experiment, exp_dir, data, cfg, teachers, resume, executor, load_data, log)
        place = exp.place or (lambda r: (r.cell, r.column))
        rows = [dict(rows[r.name], cell=place(r)[0], column=place(r)[1]) for r in runs]
        prov = provenance((info or {}).get("command"))
        info = dict(info or {}, provenance=prov, experiment=experiment, seeds=seeds, split=data.describe(),
                    **({"methods": list(methods)} if tuple(methods) != PAPER_METHODS else {}),
                    budget=asdict(cfg.budget), init=cfg.init, device=cfg.device, teacher=teacher.row, smoke=smoke,
                    summary=summarize(rows, experiment, smoke),
                    **invocations(os.path.join(exp_dir, "results.json"), resume, prov, time.perf_counter() - t0,
                                  trained=trained),
                    train_seconds=round(sum(t.row["seconds"] for t, _ in teachers.values())
                                        + sum(r["seconds"] for r in rows), 1))
        if len(teachers) > 1:
            info["teachers"] = {str(k): t.row for k, (t, _) in teachers.items()}
        sets = {r.data: run_data(r, data) for r in runs if r.data}
        if sets:
            info["training_sets"] = {k: class_profile(d.y_train, d.x_train) for k, d in sets.items()}
        if exp.extra_info:
            info.update(exp.extra_info(cfg.pieces, cfg.pooling))
        write_results(exp_dir, info, rows)
        if present:
            info.update(present(exp_dir, dict(info, results=rows)) or {})
    info["results"] = rows
    return info



def _teachers(runs, data, out, cfg, teacher_path, log, accept_weak):
    """{teacher seed: (Teacher, its file)} for ``runs``: the one teacher every experiment in
    ``out`` shares (seed 0: trained once into <out>/teacher, or ``teacher_path``), and any
    other seed's (trained once into <out>/teacher-seedK); reused with their settings checked."""
    teachers = {0: (get_teacher(data, os.path.join(out, "teacher"), replace(cfg, seed=0), teacher_path, True, log,
                                accept_weak), teacher_path or os.path.join(out, "teacher", "teacher.model.npz"))}
    for k in sorted({r.teacher for r in runs} - {0}):
        folder = os.path.join(out, f"teacher-seed{k}")
        teachers[k] = (get_teacher(data, folder, replace(cfg, seed=k), None, True, log, accept_weak),
                       os.path.join(folder, "teacher.model.npz"))
    return teachers


def _train_runs(runs, experiment, exp_dir, data, cfg, teachers, resume, executor, load_data, log):
    """Reuse the finished runs, submit the others to ``executor``, collect their rows:
    ({run name: row}, how many were trained). ``teachers``: {teacher seed: (Teacher, its file)}.
    A failed run is reported and the others kept."""
    local = isinstance(executor, InProcessExecutor)
    rows, futures = {}, {}
    for i, run in enumerate(runs, 1):
        teacher, teacher_file = teachers[run.teacher]
        done = _finished(run, exp_dir, data, cfg, teacher) if resume or run.experiment != experiment else None
        if done is not None:
            log(f"[{i}/{len(runs)}] {run.name}: finished earlier")
            rows[run.name] = done
            continue
        twin = _stage1_source(run, runs)
        if local:
            log(f"[{i}/{len(runs)}] {run.name}")
            fut = executor.submit(train_run, run, exp_dir, cfg, resume, data=data, teacher=teacher, log=log,
                                  stage1_from=twin)
        else:
            fut = executor.submit(train_run, run, exp_dir, cfg, resume, load_data=load_data,
                                  teacher_file=teacher_file, stage1_from=twin)
        futures[fut] = run
    failed = []
    for fut in as_completed(futures):
        run = futures[fut]
        try:
            rows[run.name] = fut.result()
            if not local:
                log(f"{run.name}: test error {100 * rows[run.name]['test_error']:.2f}% "
                    f"({len(rows)}/{len(runs)} runs finished)")
        except Exception as e:  # a run's error, or its worker died (BrokenProcessPool, KilledWorker)
            failed.append((run, e))
            log(f"{run.name} FAILED (seed {run.seed}, {run.cell}, {run.method}): {type(e).__name__}: {e}")
    if failed:
        raise StudyError(f"{len(failed)} of {len(runs)} runs failed: "
                         + "; ".join(f"{r.name} ({type(e).__name__})" for r, e in failed)
                         + f". The {len(rows)} finished runs are kept in {os.path.dirname(exp_dir)}; rerun with "
                         "resume (--resume) to train the rest.")
    return rows, len(futures)
