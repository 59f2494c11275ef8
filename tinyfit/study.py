"""The FitNets study: experiments made of independent student runs after one shared teacher.

Experiments (``EXPERIMENTS``):

* ``init``: backprop, KD and FitNets students from the official U(-0.005, 0.005) init and
  from Glorot init. Are hints an optimisation aid, and what do they add once optimisation is easy?
* ``depth``: the paper's Fig. 2 protocol in miniature: thin maxout students with 3, 5, 7 and 9
  conv layers at about the MNIST student's multiplications per example, each trained by the
  three methods (guided layer in the middle of the student, hint at the teacher's middle).
* ``curves``: the MNIST student's three methods, per-epoch training loss and validation error.

Each run (experiment cell x method x seed) trains into its own folder ``<out>/<experiment>/<run>``
and writes ``result.json`` when it is done; ``resume=True`` skips finished runs and continues
interrupted ones from their checkpoints. Results are summarised as mean and standard deviation
over seeds, and every pair of methods is compared seed by seed (``compare``).
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
from .checkpoint import load_model

from .files import atomic_write
from .models import mnist_student, multiplications, thin_guided, thin_student, thin_width
from .pipeline import (BUDGETS, METHOD_NAMES, METHODS, Budget, StudentSpec, Teacher, get_teacher,
                       mnist_student_spec, train_student, write_results)

__all__ = ["EXPERIMENTS", "DEPTHS", "STUDY_BUDGETS", "Run", "StudyError", "InProcessExecutor", "make_executor",
           "plan", "depth_students", "train_run", "run_study", "summarize", "compare", "format_summary",
           "format_markdown"]

EXPERIMENTS = ("init", "depth", "curves")
DEPTHS = (3, 5, 7, 9)
# epoch budgets on the embedded digits, sized for 2 cores (README: measured wall times)
STUDY_BUDGETS = {
    "init": Budget(teacher=15, student=30, hints=15),
    "depth": Budget(teacher=15, student=25, hints=12),
    "curves": BUDGETS["default"],
}


@dataclass(frozen=True)
class Run:
    """One student run of a study: its experiment cell, method and seed."""
    experiment: str
    method: str
    seed: int
    init: str = "code"
    depth: int = 0          # 0: the paper's MNIST student; else thin_student(depth, width)
    width: int = 0

    @property
    def cell(self):
        """The experiment cell (what the methods are compared within)."""
        return f"depth {self.depth}" if self.depth else f"init {self.init}"

    @property
    def name(self):
        return (f"depth{self.depth}" if self.depth else f"init-{self.init}") + f"/seed{self.seed}/{self.method}"

    def student(self, pieces="code", pooling="ceil"):
        if not self.depth:
            return mnist_student_spec(pieces, pooling)
        n, w = self.depth, self.width
        return StudentSpec(lambda init, rng: thin_student(n, w, init=init, rng=rng), thin_guided(n), key=(n,),
                           name=f"thin student, {n} conv layers of {w} channels")


def depth_students(depths=DEPTHS):
    """[(depth, width, multiplications)] at about the MNIST student's multiplications."""
    target = multiplications(mnist_student())
    return [(n,) + thin_width(n, target) for n in depths]


def plan(experiment, seeds, init="code", depths=DEPTHS, methods=METHODS):
    """The runs of ``experiment``, in the order they are trained."""
    if experiment not in EXPERIMENTS:
        raise ValueError(f"experiment must be one of {', '.join(EXPERIMENTS)}, got {experiment!r}")
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {list(seeds)}")
    if experiment == "init":
        return [Run("init", m, s, i) for i in ("code", "glorot") for s in seeds for m in methods]
    if experiment == "depth":
        return [Run("depth", m, s, init, n, w) for n, w, _ in depth_students(depths) for s in seeds for m in methods]
    return [Run("curves", m, s, init) for s in seeds for m in methods]


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


@contextlib.contextmanager
def make_executor(jobs=None, scheduler=None):
    """The executor runs are submitted to: in this process (default), ``jobs`` local worker
    processes (each limited to cpu_count // jobs threads for NumPy, BLAS and tinyfit), or the
    Dask distributed cluster whose scheduler is at ``scheduler`` (extra ``distributed``)."""
    if jobs and scheduler:
        raise ValueError("give either jobs (local processes) or scheduler (a Dask cluster), not both")
    if scheduler:
        try:
            from distributed import Client
        except ImportError:
            raise ImportError("a Dask cluster needs the distributed package: pip install 'tinyfit[distributed]'") \
                from None
        with Client(scheduler) as client:
            yield client.get_executor()
        return
    if not jobs or jobs == 1:
        yield InProcessExecutor()
        return
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive number of worker processes, got {jobs!r}")
    threads = str(max(1, backend.num_threads() // jobs))
    names = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "TINYFIT_NUM_THREADS")
    saved = {k: os.environ.get(k) for k in names}
    os.environ.update({k: threads for k in names})  # workers start with these, before NumPy loads
    try:
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            yield pool
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


_WORKER_CACHE = {}  # per worker process: the data and the teacher, loaded once


def _worker_inputs(load_data, teacher_file, device):
    key = (repr(load_data), teacher_file, os.path.getmtime(teacher_file))
    if key not in _WORKER_CACHE:
        _WORKER_CACHE.clear()
        data = load_data()
        data = data[0] if isinstance(data, tuple) else data
        model = load_model(teacher_file).to(device)
        _WORKER_CACHE[key] = (data, Teacher(model, data, {}))
    return _WORKER_CACHE[key]


def train_run(run, exp_dir, cfg, resume, data=None, teacher=None, load_data=None, teacher_file=None, log=None):
    """Train one run of a study into ``<exp_dir>/<run.name>`` and return its row (also written
    there as result.json). In this process, pass ``data`` and ``teacher`` (a pipeline.Teacher);
    in a worker, ``load_data`` (a picklable callable returning the Split) and ``teacher_file``,
    loaded once per worker."""
    if data is None:
        data, teacher = _worker_inputs(load_data, teacher_file, cfg.device)
    if log is None:
        log = lambda *m: print(f"{run.name}:", *m, flush=True)  # noqa: E731
    run_dir = os.path.join(exp_dir, run.name)
    rcfg = replace(cfg, seed=run.seed, init=run.init)
    model, row = train_student(run.method, data, teacher, run_dir, rcfg, run.student(cfg.pieces, cfg.pooling),
                               resume, log)
    row = dict(row, experiment=run.experiment, cell=run.cell, run=run.name,
               **{k: v for k, v in asdict(run).items() if k != "experiment"})
    row["multiplications"] = multiplications(model)
    atomic_write(os.path.join(run_dir, "result.json"), json.dumps(row, indent=2))
    return row


def run_study(experiment, data, out, cfg, seeds=(0, 1, 2), teacher_path=None, resume=False, depths=DEPTHS,
              log=print, info=None, figure=True, executor=None, load_data=None):
    """Train every run of ``experiment`` (after the teacher shared by all experiments in
    ``out``: trained into ``<out>/teacher`` once, or ``teacher_path``) and write
    ``<out>/<experiment>/results.json``, ``results.csv``, ``summary.txt``, ``summary.md`` and,
    with matplotlib, ``<experiment>.png``. ``cfg`` gives the budget, device and the init of
    the depth and curves experiments (its seed is replaced by each run's).

    executor: a concurrent.futures.Executor the runs are submitted to once the teacher is
    ready (default: in this process; see ``make_executor``). Another executor's workers load
    the data with ``load_data`` (a picklable callable) and the teacher from its file. Each
    run's generators derive only from its own configuration, so the results do not depend on
    the executor, given the same number of BLAS threads per run (it can change GEMM
    rounding). A failed run is reported with its seed and configuration; the finished ones
    are kept and ``resume=True`` trains only what is missing. Returns the info dict."""
    t0 = time.perf_counter()
    runs = plan(experiment, list(seeds), cfg.init, depths)
    # one teacher for every experiment in ``out``: trained once, then reused (its settings checked)
    teacher = get_teacher(data, os.path.join(out, "teacher"), replace(cfg, seed=0), teacher_path, True, log)
    teacher_file = teacher_path or os.path.join(out, "teacher", "teacher.model.npz")
    exp_dir = os.path.join(out, experiment)
    executor = executor or InProcessExecutor()
    local = isinstance(executor, InProcessExecutor)
    if not local and (load_data is None or cfg.device != "cpu"):
        raise ValueError("runs in worker processes need load_data (a picklable callable returning the data) "
                         "and device 'cpu'")
    rows, futures = {}, {}
    for i, run in enumerate(runs, 1):
        done = _load_result(os.path.join(exp_dir, run.name, "result.json")) if resume else None
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
                         + f". The {len(rows)} finished runs are kept in {exp_dir}; rerun with resume "
                         "(--resume) to train the rest.")
    rows = [rows[r.name] for r in runs]
    summary = summarize(rows)
    info = dict(info or {}, experiment=experiment, seeds=list(seeds), split=data.describe(),
                budget=asdict(cfg.budget), init=cfg.init, device=cfg.device, teacher=teacher.row,
                summary=summary, total_seconds=round(time.perf_counter() - t0, 1),
                train_seconds=round(teacher.row["seconds"] + sum(r["seconds"] for r in rows), 1))
    write_results(exp_dir, info, rows)
    text = format_summary(summary, experiment)
    atomic_write(os.path.join(exp_dir, "summary.txt"), text + "\n")
    atomic_write(os.path.join(exp_dir, "summary.md"), format_markdown(summary) + "\n")
    if figure:
        from . import plots
        if plots.available():
            info["figure"] = _figure(experiment, rows, summary, os.path.join(exp_dir, f"{experiment}.png"),
                                     data.describe(), len(seeds))
    info["results"] = rows
    return info


def summarize(rows):
    """{cell: {"methods": {method: {mean, sd, n, per_seed}}, "pairs": [comparison]}} of test errors."""
    cells = {}
    for r in rows:
        cells.setdefault(r["cell"], {}).setdefault(_method_key(r), {})[r["seed"]] = r["test_error"]
    out = {}
    for cell, by_method in cells.items():
        methods = [m for m in METHODS if m in by_method]
        stats = {}
        for m in methods:
            v = [by_method[m][s] for s in sorted(by_method[m])]
            stats[m] = dict(mean=statistics.mean(v), sd=statistics.stdev(v) if len(v) > 1 else float("nan"),
                            n=len(v), per_seed={str(s): by_method[m][s] for s in sorted(by_method[m])})
        pairs = [compare(a, by_method[a], b, by_method[b]) for i, a in enumerate(methods) for b in methods[i + 1:]]
        out[cell] = dict(methods=stats, pairs=pairs)
    return out


def _method_key(row):
    """'backprop' / 'kd' / 'fitnet' from a study row (which also carries the display name)."""
    return next(m for m in METHODS if row["method"] in (m, METHOD_NAMES[m]))


def compare(a, errs_a, b, errs_b):
    """Paired comparison of two methods' test errors over the seeds both ran.

    d = err_a - err_b per seed. The difference is called real ('a better' / 'b better') only
    when |mean d| exceeds the standard deviation of d over seeds, the seed-to-seed spread of
    the difference itself; otherwise it is a tie. Also counts the seeds where each wins."""
    seeds = sorted(set(errs_a) & set(errs_b))
    d = [errs_a[s] - errs_b[s] for s in seeds]
    mean = statistics.mean(d) if d else float("nan")
    sd = statistics.stdev(d) if len(d) > 1 else float("nan")
    if len(d) < 2 or math.isnan(sd) or abs(mean) <= sd:
        verdict = "tie"
    else:
        verdict = f"{a} better" if mean < 0 else f"{b} better"
    return dict(a=a, b=b, n=len(d), mean_diff=mean, sd_diff=sd, a_wins=sum(x < 0 for x in d),
                b_wins=sum(x > 0 for x in d), verdict=verdict)


def format_summary(summary, experiment=""):
    """The tables the study prints: per cell, mean +- sd of the test error per method with every
    seed's value, then the paired comparisons."""
    lines = []
    for cell, s in summary.items():
        lines.append(f"{experiment + ': ' if experiment else ''}{cell}")
        lines.append(f"  {'method':30s} {'mean test err':>13s} {'sd':>6s}   per seed")
        for m, st in s["methods"].items():
            per = ", ".join(f"{100 * v:.2f}" for v in st["per_seed"].values())
            lines.append(f"  {METHOD_NAMES[m]:30s} {100 * st['mean']:12.2f}% {100 * st['sd']:5.2f}%   {per}")
        for p in s["pairs"]:
            lines.append(f"  {p['a']} - {p['b']}: {100 * p['mean_diff']:+.2f} +- {100 * p['sd_diff']:.2f} points "
                         f"(paired over {p['n']} seeds; {p['a']} lower in {p['a_wins']}, {p['b']} lower in "
                         f"{p['b_wins']}): {p['verdict']}")
    return "\n".join(lines)


def format_markdown(summary):
    """The summary as two Markdown tables: test error per cell and method (mean, standard
    deviation, every seed), then the paired comparisons."""
    lines = ["| cell | method | mean test error | sd | per seed |", "|---|---|---|---|---|"]
    for cell, s in summary.items():
        for m, st in s["methods"].items():
            per = ", ".join(f"{100 * v:.2f}" for v in st["per_seed"].values())
            lines.append(f"| {cell} | {METHOD_NAMES[m]} | {100 * st['mean']:.2f}% | {100 * st['sd']:.2f} | {per} |")
    lines += ["", "| cell | pair | mean difference (points) | sd of the difference | lower error in | verdict |",
              "|---|---|---|---|---|---|"]
    for cell, s in summary.items():
        for p in s["pairs"]:
            lines.append(f"| {cell} | {p['a']} - {p['b']} | {100 * p['mean_diff']:+.2f} | {100 * p['sd_diff']:.2f} | "
                         f"{p['a']} {p['a_wins']}, {p['b']} {p['b_wins']} of {p['n']} | {p['verdict']} |")
    return "\n".join(lines)


def _figure(experiment, rows, summary, path, split, n_seeds):
    from . import plots
    title = f"{experiment}: {split}, {n_seeds} seeds (bars/lines: mean, whiskers: 1 sd, dots: seeds)"
    if experiment == "init":
        groups = []
        for cell in ("init code", "init glorot"):
            if cell in summary:
                label = {"init code": "students from U(-0.005, 0.005) (official code)",
                         "init glorot": "students from Glorot init"}[cell]
                groups.append((label, {m: [100 * v for v in st["per_seed"].values()]
                                       for m, st in summary[cell]["methods"].items()}))
        return plots.grouped_errors(groups, path, title)
    if experiment == "depth":
        cells = sorted(summary, key=lambda c: int(c.split()[1]))
        depths = [int(c.split()[1]) for c in cells]
        by_method = {m: [[100 * v for v in summary[c]["methods"][m]["per_seed"].values()] for c in cells]
                     for m in METHODS if all(m in summary[c]["methods"] for c in cells)}
        return plots.errors_by_depth(depths, by_method, path, title)
    return plots.curves(rows, path, title=f"curves: {split}, {n_seeds} seeds")
