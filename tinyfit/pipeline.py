"""The FitNets pipeline: teacher -> baselines (backprop, KD) -> stage 1 (hints) -> stage 2 (KD),
resumable, with one results row per model.

    cfg = PipelineConfig(seed=0, budget=BUDGETS["default"])
    info = run_pipeline(data, "runs/mnist_fitnet", cfg)          # what the example runs

Every stage writes ``<out>/<stage>.model.npz`` when it finishes (with its result and
per-epoch history) and ``<out>/checkpoints/<stage>.ckpt.npz`` while it runs; with
``resume=True`` finished stages are loaded and an interrupted one continues from its
checkpoint. The study (``tinyfit.study``) calls the same functions, one student at a time.
"""
from __future__ import annotations

import csv
import io
import json
import os
import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

from . import __version__
from .checkpoint import load_archive, load_model, save_model
from .files import atomic_write
from .fitnets import (KDConfig, LinearDecay, StageSpec, error_rate, init_from_stage1, make_regressor,
                      train_backprop, train_hints, train_kd, train_teacher)
from .models import STUDENT_GUIDED, TEACHER_HINT, mnist_student, mnist_teacher
from .nn import eval_layers, eval_outputs
from .training import FitConfig

__all__ = ["Budget", "BUDGETS", "StudentSpec", "mnist_student_spec", "PipelineConfig", "Teacher", "METHODS",
           "METHOD_NAMES", "get_teacher", "train_student", "run_pipeline", "write_results", "format_table"]

METHODS = ("backprop", "kd", "fitnet")
METHOD_NAMES = {"teacher": "teacher", "backprop": "student, backprop", "kd": "student, KD",
                "fitnet": "student, FitNets (hints + KD)"}
# one generator stream per stage, derived from the seed (and the student's key)
STAGES = {"teacher": 0, "backprop": 1, "kd": 2, "stage1": 3, "fitnet": 4}


@dataclass(frozen=True)
class Budget:
    """Epoch budgets: teacher, each student, stage 1 (hints); early-stopping patience."""
    teacher: int
    student: int
    hints: int
    patience: int = 1000

    def __post_init__(self):
        for k, v in asdict(self).items():
            if not isinstance(v, (int, np.integer)) or v <= 0:
                raise ValueError(f"budget {k} must be a positive integer number of epochs, got {v!r}")

    def with_epochs(self, epochs, teacher=None):
        """Every stage ``epochs`` long (stage 1 half of it; the teacher ``teacher`` if given)."""
        return Budget(epochs if teacher is None else teacher, epochs, max(1, epochs // 2), self.patience)


BUDGETS = {
    "full": Budget(teacher=500, student=500, hints=500, patience=100),  # the paper's recipe
    "default": Budget(teacher=15, student=30, hints=15),                # embedded digits, 2 cores
    "quick": Budget(teacher=1, student=2, hints=1),                     # smoke runs
}


@dataclass(frozen=True)
class StudentSpec:
    """Which student to train: ``build(init, rng) -> Sequential`` and its guided layer.
    ``key`` (ints) separates the random streams of different architectures."""
    build: Callable
    guided: str
    key: tuple = ()
    name: str = "student"


def mnist_student_spec(pieces="code", pooling="ceil"):
    return StudentSpec(lambda init, rng: mnist_student(pieces, pooling, init=init, rng=rng), STUDENT_GUIDED)


@dataclass
class PipelineConfig:
    """Settings shared by every stage of a run.

    init: the students' weight init, 'code' (the official U(-0.005, 0.005)) or 'glorot';
    teacher_init: the teacher's (default: the same). lambda decays from 4 to ``lambda_final``
    and reaches it at 30% of the student budget (150 of the code's 500 epochs)."""
    seed: int = 0
    budget: Budget = BUDGETS["default"]
    batch_size: int = 128
    tau: float = 3.0
    lambda_final: float = 0.0
    init: str = "glorot"
    teacher_init: str | None = None
    pieces: str = "code"
    pooling: str = "ceil"
    device: str = "cpu"
    progress: bool = True

    def __post_init__(self):
        for k in ("init", "teacher_init"):
            v = getattr(self, k)
            if v not in ("code", "glorot") and not (k == "teacher_init" and v is None):
                raise ValueError(f"{k} must be 'code' (U(-0.005, 0.005)) or 'glorot', got {v!r}")
        if not isinstance(self.seed, (int, np.integer)) or not 0 <= self.seed < 2 ** 63:
            raise ValueError(f"seed must be an integer in [0, 2**63), got {self.seed!r}")
        if not 0 <= self.lambda_final <= 4:
            raise ValueError(f"lambda_final must be in [0, 4] (lambda starts at 4), got {self.lambda_final!r}")
        if not np.isfinite(self.tau) or self.tau <= 0:
            raise ValueError(f"tau must be a finite number > 0, got {self.tau!r}")

    def weight_init(self, teacher=False):
        init = (self.teacher_init or self.init) if teacher else self.init
        return 0.005 if init == "code" else "glorot"

    def schedule(self):
        E = self.budget.student
        return LinearDecay(4.0, self.lambda_final, min(5, E), max(min(5, E), round(0.3 * E)))

    def kd(self):
        """The KD loss settings of stage 2 and the KD baseline."""
        return KDConfig(tau=self.tau, schedule=self.schedule())

    def rng(self, stage, key=()):
        return np.random.default_rng([self.seed, STAGES[stage], *key])

    def stage_spec(self, epochs, teacher=False):
        fit = FitConfig(epochs=epochs, batch_size=self.batch_size, patience=self.budget.patience)
        if teacher:
            return StageSpec("sgd", 0.05, 0.5, 0.7, 250, fit=fit)
        return StageSpec("rmsprop", 0.0005, fit=fit)


class Teacher:
    """A trained teacher and its outputs on the data, computed once (it is frozen)."""
    def __init__(self, model, data, row):
        self.model, self.data, self.row = model.eval(), data, row
        self._logits, self._train_maps, self._hints = None, {}, {}

    def _train_pass(self, layer):
        # the logits and a hint layer's maps of the training set come from one forward pass
        out = eval_layers(self.model, self.data.x_train, [None, layer], batch_size=500)
        self._logits, self._train_maps[layer] = out[None], out[layer]

    @property
    def logits(self):
        if self._logits is None:
            self._train_pass(TEACHER_HINT)
        return self._logits

    def hints(self, layer=TEACHER_HINT):
        """(training-set maps, validation-set maps) of layer ``layer``."""
        if layer not in self._hints:
            if layer not in self._train_maps:
                self._train_pass(layer)
            self._hints[layer] = (self._train_maps[layer],
                                  eval_outputs(self.model, self.data.x_val, until=layer, batch_size=500))
        return self._hints[layer]


def _row(method, model, res, data):
    return dict(method=METHOD_NAMES.get(method, method), parameters=model.num_parameters(weights_only=True),
                best_val_error=res["best_val_error"], test_error=error_rate(model, data.x_test, data.y_test),
                epochs=res["epochs"], seconds=res["seconds"], best_epoch=res["best_epoch"])


def _train_or_load(stage, out, model, train, resume, device, log, extra=None):
    """Train one stage (``train(ckpt_path) -> FitResult``), or on resume load its finished model.
    Returns (model, result dict with history)."""
    path = os.path.join(out, f"{stage}.model.npz")
    if resume and os.path.exists(path):
        model = load_model(path).to(device)
        res = load_archive(path, "model")[1]["extra"]["result"]
        log(f"{stage}: finished earlier, loaded {path}")
        return model, res
    r = train(os.path.join(out, "checkpoints", f"{stage}.ckpt.npz"))
    res = dict(best_val_error=r.best_val, best_epoch=r.best_epoch, epochs=r.epochs_run,
               seconds=round(r.seconds, 1), history=r.history)
    save_model(path, model, {"result": res, **(extra or {})})
    return model, res


def _teacher_setup(data, cfg):
    """What a trained teacher depends on (stored in its model file, checked on reuse)."""
    return {"seed": cfg.seed, "epochs": cfg.budget.teacher, "patience": cfg.budget.patience,
            "init": cfg.teacher_init or cfg.init, "pieces": cfg.pieces, "pooling": cfg.pooling,
            "batch_size": cfg.batch_size, "split": data.describe()}


def get_teacher(data, out, cfg, path=None, resume=False, log=print):
    """The teacher: loaded from ``path`` (a .model.npz), or trained into ``out`` (SGD with
    momentum, dropout, max-norm) unless ``resume`` finds it finished there, trained with the
    same settings (else ValueError)."""
    device = cfg.device
    setup = _teacher_setup(data, cfg)
    done = os.path.join(out, "teacher.model.npz")
    if resume and not path and os.path.exists(done):
        saved = load_archive(done, "model")[1]["extra"].get("setup")
        if saved is None:
            log(f"teacher: {done} does not record its settings (an older file); reusing it as it is")
        elif saved != setup:
            raise ValueError(f"{done} was trained with {saved}, this run needs {setup}; use another output "
                             "folder, or pass that file as the teacher explicitly")
    if path:
        model = load_model(path).to(device)
        val = error_rate(model, data.x_val, data.y_val)
        res = dict(best_val_error=val, best_epoch=0, epochs=0, seconds=0.0)
        log(f"teacher: loaded {path}")
    else:
        rng = cfg.rng("teacher")
        model = mnist_teacher(cfg.pieces, cfg.pooling, init=cfg.weight_init(teacher=True), rng=rng).to(device)
        spec = cfg.stage_spec(cfg.budget.teacher, teacher=True)
        model, res = _train_or_load("teacher", out, model, lambda ck: train_teacher(
            model, data, spec, rng, ckpt_path=ck, resume=resume, progress=cfg.progress), resume, device, log,
            {"seed": cfg.seed, "setup": setup})
    row = _row("teacher", model, res, data)
    log(f"teacher: test error {100 * row['test_error']:.2f}% (best validation {100 * row['best_val_error']:.2f}%)")
    return Teacher(model, data, dict(row, history=res.get("history", [])))


def train_student(method, data, teacher, out, cfg, student=None, resume=False, log=print):
    """Train one student by ``method`` ('backprop', 'kd' or 'fitnet' = stage 1 then stage 2)
    into ``out``; returns (model, row). The row has the method, weight count, best validation
    error, test error, epochs (stage 2's for FitNets), seconds (both stages for FitNets),
    best epoch and the per-epoch history (stage 2's for FitNets; stage 1's as hint_history)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    student = student or mnist_student_spec(cfg.pieces, cfg.pooling)
    device, init, E = cfg.device, cfg.weight_init(), cfg.budget.student
    build = lambda stage: student.build(init, cfg.rng(stage, student.key)).to(device)  # noqa: E731
    rng = lambda stage: cfg.rng(stage, student.key)  # noqa: E731
    extra = {"seed": cfg.seed}
    if method == "backprop":
        model, r = build("backprop"), rng("backprop")
        model, res = _train_or_load("backprop", out, model, lambda ck: train_backprop(
            model, data, cfg.stage_spec(E), r, ckpt_path=ck, resume=resume, progress=cfg.progress),
            resume, device, log, extra)
    elif method == "kd":
        model, r = build("kd"), rng("kd")
        model, res = _train_or_load("kd", out, model, lambda ck: train_kd(
            model, data, cfg.stage_spec(E), r, teacher.logits, cfg.kd(), ckpt_path=ck, resume=resume,
            progress=cfg.progress), resume, device, log, extra)
    else:
        s1, r1 = build("stage1"), rng("stage1")
        reg = make_regressor(s1, student.guided, teacher.model, TEACHER_HINT, data.x_train.shape[1:],
                             pieces=teacher.model[TEACHER_HINT].pieces, max_norm=0.9, rng=r1).to(device)
        log(f"regressor: guided {student.guided} {reg.guided_shape} -> hint {TEACHER_HINT} {reg.hint_shape}, "
            f"kernel {reg.kernel}x{reg.kernel}, maxout pieces {reg.pieces}")
        hints, val_hints = teacher.hints(TEACHER_HINT)

        def stage1(ck):
            r = train_hints(s1, student.guided, reg, hints, data, cfg.stage_spec(cfg.budget.hints), r1,
                            val_hints=val_hints, ckpt_path=ck, resume=resume, progress=cfg.progress)
            log(f"stage1: best validation hint loss {r.best_val:.4f} at epoch {r.best_epoch}")
            return r
        s1, res1 = _train_or_load("stage1", out, s1, stage1, resume, device, log, extra)
        model, r2 = init_from_stage1(build("fitnet"), s1, student.guided), rng("fitnet")
        model, res = _train_or_load("fitnet", out, model, lambda ck: train_kd(
            model, data, cfg.stage_spec(E), r2, teacher.logits, cfg.kd(), stage="fitnet", ckpt_path=ck,
            resume=resume, progress=cfg.progress), resume, device, log, extra)
        res = dict(res, seconds=round(res["seconds"] + res1["seconds"], 1), hint_history=res1.get("history", []))
    row = _row(method, model, res, data)
    row["history"] = res.get("history", [])
    if "hint_history" in res:
        row["hint_history"] = res["hint_history"]
    log(f"{row['method']}: test error {100 * row['test_error']:.2f}% (best validation "
        f"{100 * row['best_val_error']:.2f}% at epoch {row['best_epoch']})")
    return model, row


TABLE_COLUMNS = ["method", "parameters", "best_val_error", "test_error", "epochs", "seconds", "best_epoch"]


def write_results(out, info, rows, name="results"):
    """Write ``<name>.json`` (``info`` plus the rows, histories included) and ``<name>.csv``
    (the rows' table columns) atomically."""
    atomic_write(os.path.join(out, f"{name}.json"), json.dumps(dict(info, results=rows), indent=2))
    buf = io.StringIO()
    cols = [c for c in TABLE_COLUMNS if rows and c in rows[0]] + \
        [c for c in (rows[0] if rows else {}) if c not in TABLE_COLUMNS and not isinstance(rows[0][c], (list, dict))]
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    atomic_write(os.path.join(out, f"{name}.csv"), buf.getvalue())


def format_table(rows):
    """The results table as printed by the example."""
    lines = [f"{'method':32s} {'params':>8s} {'best val err':>12s} {'test err':>9s} {'epochs':>6s} {'time':>7s}"
             "   (FitNets: epochs of stage 2, time of both stages)"]
    for r in rows:
        lines.append(f"{r['method']:32s} {r['parameters']:8,d} {100 * r['best_val_error']:11.2f}% "
                     f"{100 * r['test_error']:8.2f}% {r['epochs']:6d} {r['seconds']:6.0f}s")
    return "\n".join(lines)


def run_pipeline(data, out, cfg, methods=METHODS, teacher_path=None, student=None, resume=False, log=print,
                 info=None, figure=True):
    """Teacher, then each of ``methods`` on the same student; writes results.json / .csv and,
    with matplotlib installed and ``figure``, curves.png into ``out``. Returns the info dict."""
    t0 = time.perf_counter()
    os.makedirs(out, exist_ok=True)
    teacher = get_teacher(data, out, cfg, teacher_path, resume, log)
    rows = [teacher.row]
    for m in methods:
        rows.append(train_student(m, data, teacher, out, cfg, student, resume, log)[1])
    info = dict(info or {}, seed=cfg.seed, device=cfg.device, init=cfg.init,
                teacher_init=cfg.teacher_init or cfg.init, lambda_schedule=vars(cfg.schedule()),
                split=data.describe(), tinyfit=__version__, pieces=cfg.pieces, pooling=cfg.pooling,
                tau=cfg.tau, budget=asdict(cfg.budget), total_seconds=round(time.perf_counter() - t0, 1))
    write_results(out, info, rows)
    if figure:
        from . import plots
        if plots.available():
            path = plots.curves([r for r in rows if r["method"] != "teacher"], os.path.join(out, "curves.png"),
                                title=f"students on {data.describe()}, seed {cfg.seed}")
            info["figure"] = path
    info["results"] = rows
    return info
