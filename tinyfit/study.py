"""The FitNets study: experiments made of independent student runs after one shared teacher.

Experiments (``EXPERIMENTS``):

* ``init``: backprop, KD and FitNets students from the official U(-0.005, 0.005) init and
  from Glorot init. Are hints an optimisation aid, and what do they add once optimisation is easy?
* ``depth``: the paper's Fig. 2 protocol in miniature: thin maxout students with 3, 5, 7 and 9
  conv layers at about the MNIST student's multiplications per example, each trained by the
  three methods (guided layer in the middle of the student, hint at the teacher's middle).
* ``curves``: the MNIST student's three methods, per-epoch training loss and validation error.
* ``ablate``: the paper's unshown claims: a single stage (CE + beta x hint), label supervision
  at the guided layer (DSN-style), hints from an untrained teacher, hints then backprop.
* ``position``: the guided layer moved through the student's conv layers.
* ``gradients``: per-layer gradient norms, update norms and output scales over the first
  epochs of backprop, KD and both FitNets stages (a ``hooks.GradientRecorder``).
* ``floor``: backprop, KD and FitNets (both stages) with RMSProp's floor lowered from 1e-5
  to 1e-8: do hints still help once plain backprop trains?
* ``deep-floor``: the same on the deepest of the depth students (backprop and FitNets):
  does depth, rather than the optimiser's floor, still stop plain backprop there?

Each run (experiment cell x method x seed) trains into its own folder
``<out>/<experiment>/<run>`` and writes ``result.json`` when it is done; runs that several
experiments use live in the folder of the one that defines them and are shared. ``resume=True``
skips finished runs and continues interrupted ones from their checkpoints; nothing is reused
under other settings. Results are summarised per method with a t interval over seeds and the
count of seeds that left chance (exact binomial interval), and pairs of methods are compared
seed by seed (``compare``; tinyfit.stats).
"""
from __future__ import annotations

import contextlib
import json
import math
import multiprocessing
import os
import statistics
import time
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, replace

from . import backend
from .checkpoint import load_archive, load_model
from .files import atomic_write, output_folder
from .fitnets import make_regressor
from .models import (STUDENT_GUIDED, TEACHER_HINT, mnist_student, mnist_teacher, multiplications, thin_guided,
                     thin_student, thin_width)
from .pipeline import (METHODS, Budget, ConfigError, StudentSpec, Teacher, check_settings, get_teacher, invocations,
                       mnist_student_spec, run_settings, train_student, write_results)
from .provenance import code_commit, provenance
from .stats import binomial_ci, mean_ci, paired_difference
from .hooks import GradientRecorder

__all__ = ["check_executor", "EXPERIMENTS", "DEPTHS", "STUDY_BUDGETS", "Run", "StudyError", "InProcessExecutor",
           "make_executor", "plan", "depth_students", "train_run", "run_study", "summarize", "compare",
           "format_summary", "format_markdown"]

EXPERIMENTS = ("init", "depth", "curves", "ablate", "position", "gradients", "floor", "deep-floor")
DEPTHS = (3, 5, 7, 9)
# epoch budgets on the embedded digits, sized for 2 cores (docs/study.md: measured wall times);
# init, ablate, position, curves and gradients share one budget, so they share their runs
_MNIST_BUDGET = Budget(teacher=15, student=30, hints=15)
_DEPTH_BUDGET = Budget(teacher=15, student=25, hints=12)  # depth and deep-floor share runs
STUDY_BUDGETS = {
    "init": _MNIST_BUDGET,
    "depth": _DEPTH_BUDGET,
    "curves": _MNIST_BUDGET,
    "ablate": _MNIST_BUDGET,
    "position": _MNIST_BUDGET,
    "gradients": _MNIST_BUDGET,
    "floor": _MNIST_BUDGET,
    "deep-floor": _DEPTH_BUDGET,
}
# the seeds each experiment runs by default, sized to its time budget on 2 cores
DEFAULT_SEEDS = {"init": (0, 1, 2, 3, 4, 5), "depth": (0, 1, 2), "curves": (0, 1, 2), "ablate": (0, 1, 2, 3, 4),
                 "position": (0, 1, 2), "gradients": (0, 1, 2, 3), "floor": (0, 1, 2, 3, 4),
                 "deep-floor": (0, 1, 2)}
# a run "left chance" when its test error is below this (guessing one class of ten: about 90%)
CHANCE_LINE = 0.5
# the depth experiment's cell comparing FitNets' errors across depths (its columns repeat runs
# shown in the per-depth cells)
ACROSS_DEPTHS = "FitNets across depths"
# the gradients experiment records the first GRADIENT_EPOCHS epochs of each stage (stage 1:
# all of it), every step's gradient norms, and every RECORD_EVERY steps the layers' output
# scales on the first PROBE validation images (250 images every 3 steps took a sixth of the
# experiment's time; a layer's output scale over 100 images is already a stable average)
GRADIENT_EPOCHS, RECORD_EVERY, PROBE = 5, 5, 100


@dataclass(frozen=True)
class Run:
    """One student run of a study: its method, seed and student.

    experiment: the experiment whose folder holds the run; runs that several experiments
    use (the init cells' backprop, KD and FitNets students) live in one place and are shared.
    guided: the guided layer when it is not the student's own (the position experiment).
    beta: the hint weight of a single-stage run. floor: its RMSProp floor (the floor
    experiment)."""
    experiment: str
    method: str
    seed: int
    init: str = "code"
    depth: int = 0          # 0: the paper's MNIST student; else thin_student(depth, width)
    width: int = 0
    guided: str = ""
    beta: float = 0.0
    floor: float = 0.0      # the students' RMSProp floor when not the official 1e-5

    @property
    def cell(self):
        """The experiment cell (what the methods are compared within)."""
        return f"depth {self.depth}" if self.depth else f"init {self.init}"

    @property
    def column(self):
        """What this run stands for within its cell: its method, guided layer or hint weight."""
        if self.guided:
            return f"guided {self.guided}"
        if self.floor:
            return f"{self.method} floor={self.floor:g}"
        return f"single-stage beta={self.beta:g}" if self.method == "single-stage" else self.method

    @property
    def name(self):
        head = f"depth{self.depth}" if self.depth else f"init-{self.init}"
        tail = (f"-{self.guided}" if self.guided else "") + (f"-floor{self.floor:g}" if self.floor else "")
        if self.method == "single-stage":
            tail += f"-beta{self.beta:g}"
        return f"{head}/seed{self.seed}/{self.method}{tail}"

    def student(self, pieces="code", pooling="ceil"):
        if not self.depth:
            return mnist_student_spec(pieces, pooling, self.guided or None)
        n, w = self.depth, self.width
        return StudentSpec(lambda init, rng: thin_student(n, w, init=init, rng=rng), thin_guided(n), key=(n,),
                           name=f"thin student, {n} conv layers of {w} channels")


def depth_students(depths=DEPTHS):
    """[(depth, width, multiplications)] at about the MNIST student's multiplications."""
    target = multiplications(mnist_student())
    return [(n,) + thin_width(n, target) for n in depths]


# the single-stage hint weights tried (chosen on validation): RepDistiller's FitNet weight,
# 100 x the mean squared error, is 200 / (H W C) = 0.26 in the paper's hint-loss units for
# the 4x4x48 hint (docs/study.md), a tenth of it and ten times it
LIBRARY_BETA = 0.26
BETA_GRID = (0.026, LIBRARY_BETA, 2.6)
ABLATIONS = ("dsn-kd", "random-hints-kd", "hints-backprop")
GUIDED_POSITIONS = ("h0", "h1", "h2", "h3", "h4", "h5")
# the floor experiment: RMSProp's floor on a gradient's root mean square lowered from the
# official 1e-5 to 1e-8 (the size of the usual additive epsilon), for all three methods
LOW_FLOOR = 1e-8


def guided_positions(pieces="code", pooling="ceil"):
    """[(layer, regressor kernel or None, reason)] for the MNIST student's conv layers as the
    guided layer, the hint fixed at the teacher's middle layer: a kernel by the paper's rule,
    or None with the reason no conv regressor fits."""
    out = []
    student, teacher = mnist_student(pieces, pooling), mnist_teacher(pieces, pooling)
    for g in GUIDED_POSITIONS:
        try:
            reg = make_regressor(student, g, teacher, TEACHER_HINT, student.input_shape)
            out.append((g, reg.kernel, ""))
        except ValueError as e:
            out.append((g, None, str(e)))
    return out


def plan(experiment, seeds, init="code", depths=DEPTHS, methods=METHODS):
    """The runs of ``experiment``, in the order they are trained."""
    if experiment not in EXPERIMENTS:
        raise ConfigError("experiment", f"must be one of {', '.join(EXPERIMENTS)}, got {experiment!r}")
    if not seeds or len(set(seeds)) != len(seeds) or not all(isinstance(x, int) and x >= 0 for x in seeds):
        raise ConfigError("seeds", f"must be distinct non-negative integers, got {list(seeds)}")
    if experiment in ("depth", "deep-floor") and \
            (not depths or not all(isinstance(n, int) and n >= 3 for n in depths)):
        raise ConfigError("depths", f"must be integers >= 3 (two poolings and a last layer), got {list(depths)}")
    if experiment == "init":
        return [Run("init", m, s, i) for i in ("code", "glorot") for s in seeds for m in methods]
    if experiment == "depth":
        return [Run("depth", m, s, init, n, w) for n, w, _ in depth_students(depths) for s in seeds for m in methods]
    if experiment == "ablate":
        return [r for i in ("code", "glorot") for s in seeds for r in
                [Run("init", m, s, i) for m in methods]
                + [Run("ablate", "single-stage", s, i, beta=b) for b in BETA_GRID]
                + [Run("ablate", v, s, i) for v in ABLATIONS]]
    if experiment == "position":
        return [Run("init", "fitnet", s, init) if g == STUDENT_GUIDED else Run("position", "fitnet", s, init, guided=g)
                for s in seeds for g, k, _ in guided_positions() if k]
    if experiment == "gradients":
        return [Run("gradients", m, s, "code") for s in seeds for m in methods]
    if experiment == "floor":
        return [r for s in seeds for m in methods
                for r in (Run("init", m, s, "code"), Run("floor", m, s, "code", floor=LOW_FLOOR))]
    if experiment == "deep-floor":  # the deepest depth student, beside the depth experiment's runs
        (n, w, _), = depth_students([max(depths)])
        return [r for s in seeds for m in ("backprop", "fitnet")
                for r in (Run("depth", m, s, init, n, w), Run("deep-floor", m, s, init, n, w, floor=LOW_FLOOR))]
    return [Run("init", m, s, init) for s in seeds for m in methods]


def choose_hint_weight(vals):
    """The single-stage hint weight chosen on validation: ``vals`` is {column "single-stage
    beta=B": {seed: validation error}}; the column with the lowest mean over the seeds every
    column ran (a tie, one digit being 0.2 points: the smaller weight). Returns (column,
    {column: that mean}, those seeds)."""
    common = sorted(set.intersection(*(set(v) for v in vals.values())))
    if not common:
        raise ValueError(f"the single-stage weights {sorted(vals)} share no seed: nothing to choose on")
    means = {c: statistics.mean(v[s] for s in common) for c, v in vals.items()}
    return min(means, key=lambda c: (means[c], float(c.split("=")[1]))), means, common


def place(experiment, run):
    """(cell, column): where a run's row is summarised within ``experiment``."""
    if experiment == "position":
        return f"init {run.init}", f"guided {run.guided or STUDENT_GUIDED}"
    return run.cell, run.column


def _load_result(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


class StudyError(RuntimeError):
    """Some runs of a study failed; the others are finished and kept."""


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
            raise ImportError("a Dask cluster needs the distributed package: pip install 'tinyfit[distributed]'") \
                from None
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
    names = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "TINYFIT_NUM_THREADS")
    saved = {k: os.environ.get(k) for k in names}
    os.environ.update({k: threads for k in names})  # workers start with these, before NumPy loads
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


def train_run(run, exp_dir, cfg, resume, data=None, teacher=None, load_data=None, teacher_file=None, log=None):
    """Train one run of a study into ``<out>/<run.experiment>/<run.name>`` (``exp_dir`` is
    ``<out>/<experiment>``) and return its row (also written there as result.json). In this
    process, pass ``data`` and ``teacher`` (a pipeline.Teacher); in a worker, ``load_data``
    (a picklable callable returning the Split) and ``teacher_file``, loaded once per worker."""
    if data is None:
        data, teacher = _worker_inputs(load_data, teacher_file, cfg.device)
    if log is None:
        log = lambda *m: print(f"{run.name}:", *m, flush=True)
    t0 = time.perf_counter()
    run_dir = _run_dir(exp_dir, run)
    rcfg = _run_config(cfg, run)
    hooks, recorder = (), None
    if run.experiment == "gradients":
        # a trace must cover every recorded step, so a gradients run restarts rather than resumes
        rcfg, resume = replace(rcfg, max_epochs=GRADIENT_EPOCHS), False
        recorder = GradientRecorder(data.x_val[:PROBE], every=RECORD_EVERY)
        hooks = (recorder,)
    # hints + backprop's stage 1 is FitNets': taken from the init cell's run when it has finished
    twin = _run_dir(exp_dir, replace(run, experiment="init", method="fitnet")) \
        if run.method == "hints-backprop" and not hooks else None
    model, row = train_student(run.method, data, teacher, run_dir, rcfg, run.student(cfg.pieces, cfg.pooling),
                               resume, log, step_hooks=hooks, stage1_from=twin)
    row = dict(row, experiment=run.experiment, run=run.name, commit=code_commit(),
               wall_seconds=round(time.perf_counter() - t0, 1),
               **{k: v for k, v in asdict(run).items() if k not in ("experiment", "method")})
    row["multiplications"] = multiplications(model)
    if recorder is not None:
        row["trace"] = recorder.records
        row["settings"] = _with_recorder(row["settings"])
    atomic_write(os.path.join(run_dir, "result.json"), json.dumps(row, indent=2))
    return row


def _run_config(cfg, run):
    """The study's settings with the run's seed, init, hint weight and RMSProp floor."""
    return replace(cfg, seed=run.seed, init=run.init, hint_weight=run.beta or cfg.hint_weight,
                   rms_floor=run.floor or cfg.rms_floor)


def _run_dir(exp_dir, run):
    return os.path.join(os.path.dirname(exp_dir), run.experiment, run.name)


def _finished(run, exp_dir, data, cfg, teacher):
    """The row of ``run`` if it finished earlier with the settings it would have now (else
    SettingsError naming what differs), or None."""
    path = os.path.join(_run_dir(exp_dir, run), "result.json")
    done = _load_result(path)
    if done is None:
        return None
    rcfg = _run_config(cfg, run)
    if run.experiment == "gradients":
        rcfg = replace(rcfg, max_epochs=GRADIENT_EPOCHS)
    wanted = run_settings(run.method, data, rcfg, run.student(cfg.pieces, cfg.pooling), teacher)
    check_settings(path, done.get("settings"), _with_recorder(wanted) if run.experiment == "gradients" else wanted)
    return done


def _with_recorder(settings):
    """A gradients run's settings: its trace depends on what the recorder probes, too."""
    return dict(settings, recorder={"every": RECORD_EVERY, "probe_images": PROBE})


def run_study(experiment, data, out, cfg, seeds=None, teacher_path=None, resume=False, depths=DEPTHS,
              log=print, info=None, figure=True, executor=None, load_data=None, smoke=False):
    """Train every run of ``experiment`` (after the teacher shared by all experiments in
    ``out``: trained into ``<out>/teacher`` once, or ``teacher_path``) and write
    ``<out>/<experiment>/results.json``, ``results.csv``, ``summary.txt``, ``summary.md`` and,
    with matplotlib, ``<experiment>.png``. ``cfg`` gives the budget, device and the init of
    the depth, position and curves experiments (its seed is replaced by each run's). Runs that
    another experiment defines (the init cells' students, used by ablate, position and curves)
    are reused when they finished earlier with the same settings, ``resume`` or not.

    executor: a concurrent.futures.Executor the runs are submitted to once the teacher is
    ready (default: in this process; see ``make_executor``). Another executor's workers load
    the data with ``load_data`` (a picklable callable) and the teacher from its file. Each
    run's generators derive only from its own configuration, so the results do not depend on
    the executor, given the same number of BLAS threads per run (it can change GEMM
    rounding). A failed run is reported with its seed and configuration; the finished ones
    are kept and ``resume=True`` trains only what is missing. smoke: a smoke run (``--quick``):
    its numbers mean nothing, and the summary says so instead of giving verdicts. Returns
    the info dict."""
    t0 = time.perf_counter()
    seeds = list(DEFAULT_SEEDS[experiment] if seeds is None else seeds)
    runs = plan(experiment, seeds, cfg.init, depths)
    executor = executor or InProcessExecutor()
    if not isinstance(executor, InProcessExecutor) and (load_data is None or cfg.device != "cpu"):
        raise ValueError("runs in worker processes need load_data (a picklable callable returning the data) "
                         "and device 'cpu'")
    with output_folder(out):
        # one teacher for every experiment in ``out``: trained once, then reused (its settings checked)
        teacher = get_teacher(data, os.path.join(out, "teacher"), replace(cfg, seed=0), teacher_path, True, log)
        teacher_file = teacher_path or os.path.join(out, "teacher", "teacher.model.npz")
        exp_dir = os.path.join(out, experiment)
        rows, trained = _train_runs(runs, experiment, exp_dir, data, cfg, teacher, teacher_file, resume, executor,
                                    load_data, log)
        rows = [dict(rows[r.name], cell=place(experiment, r)[0], column=place(experiment, r)[1]) for r in runs]
        prov = provenance((info or {}).get("command"))
        info = dict(info or {}, provenance=prov, experiment=experiment, seeds=seeds, split=data.describe(),
                    budget=asdict(cfg.budget), init=cfg.init, device=cfg.device, teacher=teacher.row, smoke=smoke,
                    summary=summarize(rows, experiment, smoke),
                    **invocations(os.path.join(exp_dir, "results.json"), resume, prov, time.perf_counter() - t0,
                                  trained=trained),
                    train_seconds=round(teacher.row["seconds"] + sum(r["seconds"] for r in rows), 1))
        if experiment == "position":
            info["positions"] = [dict(layer=g, kernel=k, error=e) for g, k, e in guided_positions(cfg.pieces,
                                                                                               cfg.pooling)]
        _write_study(exp_dir, info, rows, figure)
    info["results"] = rows
    return info


def _train_runs(runs, experiment, exp_dir, data, cfg, teacher, teacher_file, resume, executor, load_data, log):
    """Reuse the finished runs, submit the others to ``executor``, collect their rows:
    ({run name: row}, how many were trained). A failed run is reported and the others kept."""
    local = isinstance(executor, InProcessExecutor)
    rows, futures = {}, {}
    for i, run in enumerate(runs, 1):
        done = _finished(run, exp_dir, data, cfg, teacher) if resume or run.experiment != experiment else None
        if done is not None:
            log(f"[{i}/{len(runs)}] {run.name}: finished earlier")
            rows[run.name] = done
            continue
        if local:
            log(f"[{i}/{len(runs)}] {run.name}")
            fut = executor.submit(train_run, run, exp_dir, cfg, resume, data=data, teacher=teacher, log=log)
        else:
            fut = executor.submit(train_run, run, exp_dir, cfg, resume, load_data=load_data,
                                  teacher_file=teacher_file)
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


def _write_study(exp_dir, info, rows, figure):
    experiment, summary = info["experiment"], info["summary"]
    write_results(exp_dir, info, rows)
    atomic_write(os.path.join(exp_dir, "summary.txt"), format_summary(summary, experiment) + "\n")
    atomic_write(os.path.join(exp_dir, "summary.md"), format_markdown(summary) + "\n")
    if figure:
        from . import plots
        if plots.available():
            info["figure"] = figure_of(experiment, rows, summary, os.path.join(exp_dir, f"{experiment}.png"),
                                       info["split"], len(info["seeds"]), info["smoke"])


# -- statistics over seeds ------------------------------------------------------------------

COLUMN_LABELS = {"backprop": "backprop", "kd": "KD", "fitnet": "FitNets (hints + KD)",
                 "single-stage": "single-stage CE + beta x hint (beta chosen on validation)",
                 "dsn-kd": "label stage 1 (DSN-style) + KD", "random-hints-kd": "random-teacher hints + KD",
                 "hints-backprop": "hints + backprop"}


def column_label(column):
    """The display label of a summary column."""
    if column.startswith("single-stage beta="):
        beta = float(column.split("=")[1])
        return f"single-stage, beta {beta:g}" + (" (RepDistiller's weight)" if beta == LIBRARY_BETA else "")
    if " floor=" in column:
        method, floor = column.split(" floor=")
        return f"{COLUMN_LABELS.get(method, method)}, RMSProp floor {floor}"
    if column.startswith("guided "):
        g = column.split()[1]
        return f"hints at {g} + KD" + (" (the paper's: FitNets)" if g == STUDENT_GUIDED else "")
    return COLUMN_LABELS.get(column, column)


def _pairs(experiment, columns):
    """The paired comparisons an experiment reports, as (a, b) column pairs present in ``columns``."""
    if experiment == "ablate":
        lib = f"single-stage beta={LIBRARY_BETA:g}"
        want = [("single-stage", "fitnet"), ("single-stage", "kd"), (lib, "fitnet"), (lib, "kd"),
                ("dsn-kd", "fitnet"), ("dsn-kd", "kd"), ("random-hints-kd", "fitnet"), ("random-hints-kd", "kd"),
                ("hints-backprop", "fitnet"), ("hints-backprop", "backprop")]
    elif experiment == "position":
        ref = f"guided {STUDENT_GUIDED}"
        want = [(c, ref) for c in columns if c != ref]
    elif experiment == "gradients":
        want = []
    elif experiment == "depth" and columns and all(c.startswith("depth ") for c in columns):
        want = [(c, columns[0]) for c in columns[1:]]  # ACROSS_DEPTHS: shallowest first
    elif experiment in ("floor", "deep-floor"):  # deep-floor has no KD column: its KD pairs drop out
        bp, kd, fn = (f"{m} floor={LOW_FLOOR:g}" for m in METHODS)
        # the floor's effect on each method; then, with the floor lowered, do KD and hints still
        # do better than backprop (now that it trains), and the paper's FitNets against it
        want = [(bp, "backprop"), (kd, "kd"), (fn, "fitnet"), (bp, "kd"), (kd, bp), (fn, bp), ("fitnet", bp)]
    else:
        want = [(a, b) for i, a in enumerate(METHODS) for b in METHODS[i + 1:]]
    return [(a, b) for a, b in want if a in columns and b in columns]


def _column_stats(errs, vals):
    mean, sd, low, high = mean_ci(list(errs.values()))
    # an error rate lies in [0, 1]; with few seeds and a wide spread the t interval can reach past
    # either end (a mean of 4.6, 13.9, 7.8% gives -3.0% to 20.5%), so it is cut to what is possible
    low, high = max(low, 0.0), min(high, 1.0)
    trained = [e for e in errs.values() if e < CHANCE_LINE]
    n = len(errs)
    c_low, c_high = binomial_ci(len(trained), n)
    return dict(n=n, mean=mean, sd=sd, low=low, high=high, per_seed={str(s): e for s, e in errs.items()},
                val_per_seed={str(s): v for s, v in vals.items()}, mean_val=statistics.mean(vals.values()),
                left_chance=len(trained), left_chance_low=c_low, left_chance_high=c_high,
                trained_mean=statistics.mean(trained) if trained else None)


def summarize(rows, experiment="init", smoke=False):
    """{cell: {"columns": {column: stats}, "pairs": [comparison], "chosen": {...}}} of the
    rows' test errors over seeds. stats: mean, sd, 95% t interval of the mean, every seed's
    value, the validation errors, and how many seeds left chance (test error below
    CHANCE_LINE) with its exact binomial interval and the mean error of those runs. Each
    pair: the paired difference (a - b, per seed) with its 95% t interval and a verdict only
    when the interval excludes zero. In ablate, the single-stage column is the hint weight
    with the lowest mean validation error over the seeds every weight ran (never the test
    error; a tie goes to the smaller weight); "chosen" has each weight's mean validation and
    test errors over those seeds."""
    cells = {}
    for r in rows:
        c = cells.setdefault(r["cell"], {}).setdefault(r["column"], ({}, {}))
        c[0][r["seed"]], c[1][r["seed"]] = r["test_error"], r["best_val_error"]
    if experiment == "depth":
        # the paper's claim that a deeper thin student does better at equal cost, on the method
        # that trains at every depth: FitNets' errors, each depth against the shallowest
        fitnets = {cell: cols["fitnet"] for cell, cols in cells.items() if "fitnet" in cols}
        if len(fitnets) > 1:
            cells[ACROSS_DEPTHS] = dict(sorted(fitnets.items(), key=lambda kv: int(kv[0].split()[1])))
    out = {}
    for cell, cols in cells.items():
        stats = {col: _column_stats(dict(sorted(e.items())), dict(sorted(v.items()))) for col, (e, v) in cols.items()}
        chosen = {}
        grid = {c: v for c, (_, v) in cols.items() if c.startswith("single-stage beta=")}
        if grid:
            best, means, common = choose_hint_weight(grid)
            chosen = {"single-stage": best, "by": "lowest mean validation error over the seeds every weight ran "
                                                  "(a tie: the smaller weight)",
                      "validation": means, "seeds": common,
                      "test": {c: statistics.mean(cols[c][0][s] for s in common) for c in grid}}
            stats["single-stage"] = dict(stats[best], chosen=best)
            cols["single-stage"] = cols[best]
        pairs = [compare(a, cols[a][0], b, cols[b][0], smoke) for a, b in _pairs(experiment, list(stats))]
        out[cell] = dict(columns=stats, pairs=pairs, chosen=chosen, smoke=smoke, repeats=cell == ACROSS_DEPTHS)
    return out


def compare(a, errs_a, b, errs_b, smoke=False):
    """Paired comparison of two columns' test errors over the seeds both ran: the mean of
    d = err_a - err_b with its 95% t interval; 'A better' / 'B better' only when the interval
    excludes zero, else 'no detectable difference at n seeds'. Also counts the seeds where
    each is lower."""
    p = paired_difference(errs_a, errs_b)
    if smoke:
        verdict = "smoke run: no verdict"
    elif p["n"] < 2:
        verdict = "one seed: no verdict"
    elif p["verdict"] is None:
        verdict = f"no detectable difference at {p['n']} seeds"
    else:
        verdict = f"{column_label(a if p['verdict'] == 'a' else b)} better"
    return dict(a=a, b=b, n=p["n"], mean_diff=p["mean"], sd_diff=p["sd"], low=p["low"], high=p["high"],
                a_wins=p["a_lower"], b_wins=p["b_lower"], verdict=verdict)


def _pct(x, digits=2):
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.{digits}f}"


def _chance(st):
    return (f"{st['left_chance']} of {st['n']} (95% CI {_pct(st['left_chance_low'], 0)}-"
            f"{_pct(st['left_chance_high'], 0)}%)")


SMOKE_NOTE = "SMOKE RUN (--quick): tiny data and 1-2 epochs; these numbers mean nothing and no verdict is given."


def format_summary(summary, experiment=""):
    """The tables the study prints: per cell, the test error of each column (mean, 95%
    interval, every seed), how many seeds left chance, then the paired comparisons."""
    lines = []
    if any(s.get("smoke") for s in summary.values()):
        lines.append(SMOKE_NOTE)
    for cell, s in summary.items():
        lines.append(f"{experiment + ': ' if experiment else ''}{cell}")
        if not s.get("repeats"):
            lines.append(f"  {'':56s} {'test error':>10s} {'95% CI':>13s}  {'left chance':>11s}   per seed")
        for col, st in ({} if s.get("repeats") else s["columns"]).items():
            per = ", ".join(_pct(v) for v in st["per_seed"].values())
            lines.append(f"  {column_label(col)[:56]:56s} {_pct(st['mean']):>9s}% {_pct(st['low']):>6s}-"
                         f"{_pct(st['high']):<6s} {st['left_chance']:>5d} of {st['n']:<3d}   {per}")
        if s["chosen"]:
            lines.append(f"  single-stage: {s['chosen']['single-stage']} chosen by "
                         f"{s['chosen']['by']}")
        for p in s["pairs"]:
            lines.append(f"  {p['a']} - {p['b']}: {100 * p['mean_diff']:+.2f} points, 95% CI "
                         f"[{100 * p['low']:+.2f}, {100 * p['high']:+.2f}] (paired over {p['n']} seeds; "
                         f"{p['a']} lower in {p['a_wins']}, {p['b']} lower in {p['b_wins']}): {p['verdict']}")
    return "\n".join(lines)


def format_markdown(summary):
    """The summary as Markdown: per cell and column the test error (mean, 95% t interval,
    every seed) and how many seeds left chance (exact 95% interval; the mean error of those
    runs); then the paired comparisons with their 95% intervals and verdicts."""
    lines = [f"**{SMOKE_NOTE}**", ""] if any(s.get("smoke") for s in summary.values()) else []
    lines += ["| cell | method | mean test error | 95% CI | left chance (95% CI) | error of those | per seed |",
              "|---|---|---|---|---|---|---|"]
    for cell, s in summary.items():
        for col, st in ({} if s.get("repeats") else s["columns"]).items():
            per = ", ".join(_pct(v) for v in st["per_seed"].values())
            trained = "-" if st["trained_mean"] is None else _pct(st["trained_mean"]) + "%"
            lines.append(f"| {cell} | {column_label(col)} | {_pct(st['mean'])}% | {_pct(st['low'])}-{_pct(st['high'])}"
                         f" | {_chance(st)} | {trained} | {per} |")
    pairs = [(cell, p) for cell, s in summary.items() for p in s["pairs"]]
    if pairs:
        lines += ["", "| cell | pair (a - b) | mean difference (points) | 95% CI | lower error in | verdict |",
                  "|---|---|---|---|---|---|"]
        for cell, p in pairs:
            lines.append(f"| {cell} | {column_label(p['a'])} - {column_label(p['b'])} | {100 * p['mean_diff']:+.2f} | "
                         f"[{100 * p['low']:+.2f}, {100 * p['high']:+.2f}] | a {p['a_wins']}, b {p['b_wins']} of "
                         f"{p['n']} | {p['verdict']} |")
    return "\n".join(lines)


def figure_of(experiment, rows, summary, path, split, n_seeds, smoke=False):
    """The experiment's figure (matplotlib): grouped bars (init, ablate, position), error
    against depth (depth), per-epoch curves (curves), per-layer gradient flow (gradients)."""
    from . import plots
    title = f"{experiment}: {split}, {n_seeds} seeds" + (" (SMOKE RUN: numbers mean nothing)" if smoke else "")
    if experiment == "depth":
        cells = sorted((c for c in summary if not summary[c].get("repeats")), key=lambda c: int(c.split()[1]))
        depths = [int(c.split()[1]) for c in cells]
        by_method = {m: [[100 * v for v in summary[c]["columns"][m]["per_seed"].values()] for c in cells]
                     for m in METHODS if all(m in summary[c]["columns"] for c in cells)}
        return plots.errors_by_depth(depths, by_method, path, title + " (mean, 95% CI, dots: seeds)")
    if experiment == "curves":
        return plots.curves(rows, path, title=title)
    if experiment == "gradients":
        return plots.gradient_flow(rows, path, title=title)
    groups = []
    for cell, s in summary.items():
        label = {"init code": "students from U(-0.005, 0.005) (official code)",
                 "init glorot": "students from Glorot init"}.get(cell, cell)
        cols = [c for c in s["columns"] if not c.startswith("single-stage beta=")] if experiment == "ablate" \
            else list(s["columns"])
        groups.append((label, [(column_label(c), c, [100 * v for v in s["columns"][c]["per_seed"].values()])
                               for c in cols]))
    return plots.grouped_errors(groups, path, title + " (bars: mean, whiskers: 95% CI, dots: seeds)")
