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
import hashlib
import io
import json
import os
import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

from . import __version__, backend
from .checkpoint import inspect_archive, load_archive, load_model, save_model
from .files import atomic_write, output_folder
from .fitnets import (KDConfig, LinearDecay, StageSpec, aux_classifier, error_rate, init_from_stage1, layer_shape,
                      make_regressor, train_backprop, train_hints, train_kd, train_label_stage1, train_single_stage,
                      train_teacher)
from .methods import ALL_METHODS, PAPER_METHODS, VARIANTS, row_label
from .methods import METHODS as METHOD_RECORDS
from .methods import method as method_record
from .models import STUDENT_GUIDED, TEACHER_HINT, mnist_student, mnist_teacher, multiplications
from .nn import Sequential, eval_layers, eval_outputs
from .provenance import provenance
from .training import FitConfig

__all__ = ["ConfigError", "Budget", "BUDGETS", "StudentSpec", "mnist_student_spec", "PipelineConfig", "Teacher",
           "METHODS", "invocations", "VARIANTS", "ALL_METHODS", "SettingsError", "check_settings",
           "run_settings", "new_teacher", "get_teacher", "train_student", "run_pipeline", "write_results",
           "format_table"]

# the paper's three methods; the ablations (``VARIANTS``) are never called FitNets in a table.
# One record per method, read by train_student and run_settings: tinyfit.methods
METHODS = PAPER_METHODS
# the official RMSProp's floor on the root mean square of a gradient (pylearn2)
RMS_FLOOR = 1e-5
# a teacher whose validation error is at or above this distils nothing (ten classes: chance is ~90%)
TEACHER_CHANCE = 0.5
# one generator stream per stage, derived from the seed (and the student's key)
STAGES = {"teacher": 0, "backprop": 1, "kd": 2, "stage1": 3, "fitnet": 4, "single-stage": 5}


class ConfigError(ValueError):
    """A setting of a run is out of range; ``field`` names it (the command lines turn it into
    their flag), ``reason`` says what is wrong and what is expected."""
    def __init__(self, field, reason):
        super().__init__(f"{field} {reason}")
        self.field, self.reason = field, reason


@dataclass(frozen=True)
class Budget:
    """Epoch budgets: teacher, each student, stage 1 (hints); early-stopping patience.
    stage2: the epochs of a two-stage method's stage 2 when not ``student`` (equal compute:
    hints + stage2 = student, the lambda schedule scaled to stage 2's length)."""
    teacher: int
    student: int
    hints: int
    patience: int = 1000
    stage2: int | None = None

    def __post_init__(self):
        for k, v in asdict(self).items():
            if (v is not None or k != "stage2") and (not isinstance(v, (int, np.integer)) or v <= 0):
                raise ConfigError("budget", f"{k} must be a positive integer number of epochs, got {v!r}")

    def with_epochs(self, epochs, teacher=None):
        """Every stage ``epochs`` long (stage 1 half of it; the teacher ``teacher`` if given)."""
        if not isinstance(epochs, (int, np.integer)) or epochs <= 0:
            raise ConfigError("epochs", f"must be a positive integer, got {epochs!r}")
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


def mnist_student_spec(pieces="code", pooling="ceil", guided=None):
    """The paper's MNIST student; ``guided``: another guided layer than its middle one (h3)."""
    return StudentSpec(lambda init, rng: mnist_student(pieces, pooling, init=init, rng=rng), guided or STUDENT_GUIDED)


@dataclass
class PipelineConfig:
    """Settings shared by every stage of a run.

    init: the students' weight init, 'code' (the official U(-0.005, 0.005), the default) or
    'glorot'; teacher_init: the teacher's (default 'glorot', as the example on the embedded
    digits; None: the students'). lambda decays from 4 to ``lambda_final``
    and reaches it at 30% of the student budget (150 of the code's 500 epochs)."""
    seed: int = 0
    budget: Budget = BUDGETS["default"]
    batch_size: int = 128
    tau: float = 3.0
    lambda_final: float = 0.0
    init: str = "code"
    teacher_init: str | None = "glorot"
    pieces: str = "code"
    pooling: str = "ceil"
    device: str = "cpu"
    progress: bool = True
    hint_weight: float | None = None
    max_epochs: int | None = None
    rms_floor: float = RMS_FLOOR

    def __post_init__(self):
        for k in ("init", "teacher_init"):
            v = getattr(self, k)
            if v not in ("code", "glorot") and not (k == "teacher_init" and v is None):
                raise ConfigError(k, f"must be 'code' (U(-0.005, 0.005)) or 'glorot', got {v!r}")
        if not isinstance(self.seed, (int, np.integer)) or not 0 <= self.seed < 2 ** 63:
            raise ConfigError("seed", f"must be an integer in [0, 2**63), got {self.seed!r}")
        if not isinstance(self.batch_size, (int, np.integer)) or self.batch_size <= 0:
            raise ConfigError("batch_size", f"must be a positive integer, got {self.batch_size!r}")
        if not 0 <= self.lambda_final <= 4:
            raise ConfigError("lambda_final", f"must be in [0, 4] (lambda starts at 4), got {self.lambda_final!r}")
        if not np.isfinite(self.tau) or self.tau <= 0:
            raise ConfigError("tau", f"must be a finite number > 0 (the paper: 3), got {self.tau!r}")
        if self.pieces not in ("code", "paper"):
            raise ConfigError("pieces", f"must be 'code' or 'paper', got {self.pieces!r}")
        if self.pooling not in ("ceil", "floor"):
            raise ConfigError("pooling", f"must be 'ceil' or 'floor', got {self.pooling!r}")
        if self.hint_weight is not None and not (np.isfinite(self.hint_weight) and self.hint_weight >= 0):
            raise ConfigError("hint_weight", f"must be a finite number >= 0, got {self.hint_weight!r}")
        if not (np.isfinite(self.rms_floor) and self.rms_floor > 0):
            raise ConfigError("rms_floor", f"must be a finite number > 0 (official: 1e-5), got {self.rms_floor!r}")
        if self.max_epochs is not None and (not isinstance(self.max_epochs, (int, np.integer)) or self.max_epochs < 1):
            raise ConfigError("max_epochs", f"must be a positive integer, got {self.max_epochs!r}")

    def weight_init(self, teacher=False):
        init = (self.teacher_init or self.init) if teacher else self.init
        return 0.005 if init == "code" else "glorot"

    def last_stage_epochs(self, method):
        """The epochs of the stage that trains the whole student by ``method`` (a record)."""
        return self.budget.stage2 if method.stage1 and self.budget.stage2 else self.budget.student

    def schedule(self, epochs=None):
        """lambda's schedule over a stage of ``epochs`` (default: the student budget)."""
        E = epochs or self.budget.student
        return LinearDecay(4.0, self.lambda_final, min(5, E), max(min(5, E), round(0.3 * E)))

    def kd(self, epochs=None):
        """The KD loss settings of stage 2 and the KD baseline (a stage of ``epochs``)."""
        return KDConfig(tau=self.tau, schedule=self.schedule(epochs))

    def rng(self, stage, key=()):
        return np.random.default_rng([self.seed, STAGES[stage], *key])

    def stage_spec(self, epochs, teacher=False, stage1=False):
        if self.max_epochs and not (teacher or stage1):
            epochs = min(epochs, self.max_epochs)
        fit = FitConfig(epochs=epochs, batch_size=self.batch_size, patience=self.budget.patience)
        if teacher:
            return StageSpec("sgd", 0.05, 0.5, 0.7, 250, fit=fit)
        return StageSpec("rmsprop", 0.0005, rms_eps=self.rms_floor, fit=fit)


class SettingsError(ValueError):
    """A finished stage or run was made under other settings than the ones asked for now."""


def check_settings(path, saved, wanted):
    """Refuse to reuse what ``path`` holds unless it was made with the ``wanted`` settings."""
    if saved is None:
        raise SettingsError(f"{path} records no settings (written by an older tinyfit), so it cannot be reused "
                            "safely; give another output folder (--out) or delete it to train it again")
    wanted = json.loads(json.dumps(wanted))
    diff = [k for k in sorted(set(saved) | set(wanted)) if saved.get(k) != wanted.get(k)]
    if diff:
        said = ", ".join(f"{k}={saved.get(k)!r} (now {wanted.get(k)!r})" for k in diff[:3])
        raise SettingsError(f"{path} was made with other settings: {said}; use the same settings to resume, or "
                            "another output folder (--out) for a new run")


def new_teacher(pieces, pooling, init, rng):
    """The MNIST teacher at its initial weights: ``init`` 'code' or 'glorot', drawn from
    ``rng`` (the seed's teacher stream, which training then goes on drawing from)."""
    return mnist_teacher(pieces, pooling, init=0.005 if init == "code" else "glorot", rng=rng)


class Teacher:
    """A trained teacher and its outputs on the data, computed once (it is frozen).
    settings: what it was trained with (its model file's), None when unknown."""
    def __init__(self, model, data, row, settings=None):
        self.model, self.data, self.row, self.settings = model.eval(), data, row, settings
        self._logits, self._train_maps, self._hints = None, {}, {}
        digest = hashlib.sha256()
        for k, v in sorted(model.state_dict().items()):
            digest.update(k.encode() + backend.to_numpy(v).tobytes())
        self.fingerprint = digest.hexdigest()[:16]  # which weights: part of every dependent run's settings

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

    def untrained(self):
        """The same teacher at its initial weights, before any training (a control: hints
        from a teacher that knows nothing)."""
        s = self.settings
        if not s:
            raise ValueError("the untrained teacher is rebuilt from the settings the teacher was trained with, and "
                             "this teacher's file records none; train the teacher with tinyfit (no --teacher PATH)")
        rng = np.random.default_rng([s["seed"], STAGES["teacher"]])
        model = new_teacher(s["pieces"], s["pooling"], s["init"], rng).to(self.model.device)
        return Teacher(model, self.data, {"method": "untrained teacher"}, dict(s, epochs=0))


def _row(method, model, res, data):
    return dict(method=method, label=row_label(method),
                parameters=model.num_parameters(weights_only=True),
                best_val_error=res["best_val_error"], test_error=error_rate(model, data.x_test, data.y_test),
                epochs=res["epochs"], seconds=res["seconds"], best_epoch=res["best_epoch"])


def _train_or_load(stage, out, model, train, resume, device, log, settings):
    """Train one stage (``train(ckpt_path) -> FitResult``), or on resume load its finished
    model, which must have been made with ``settings`` (else SettingsError). Returns (model,
    result dict with history)."""
    path = os.path.join(out, f"{stage}.model.npz")
    if resume and os.path.exists(path):
        extra = load_archive(path, "model")[1]["extra"]
        check_settings(path, extra.get("settings"), settings)
        model = load_model(path).to(device)
        log(f"{stage}: finished earlier, loaded {path}")
        return model, extra["result"]
    r = train(os.path.join(out, "checkpoints", f"{stage}.ckpt.npz"))
    res = dict(best_val_error=r.best_val, best_epoch=r.best_epoch, epochs=r.epochs_run,
               seconds=round(r.seconds, 1), history=r.history)
    save_model(path, model, {"result": res, "settings": settings})
    return model, res


def _teacher_settings(data, cfg):
    """What a trained teacher depends on (stored in its model file, checked on reuse)."""
    return {"seed": cfg.seed, "epochs": cfg.budget.teacher, "patience": cfg.budget.patience,
            "init": cfg.teacher_init or cfg.init, "pieces": cfg.pieces, "pooling": cfg.pooling,
            "batch_size": cfg.batch_size, "split": data.describe()}


def run_settings(method, data, cfg, student, teacher):
    """What a student run by ``method`` depends on; stored in each of its stage files and its
    study row, and checked before any of them is reused."""
    m = method_record(method)
    s = {"method": method, "seed": cfg.seed, "init": cfg.init, "student": student.name, "key": list(student.key),
         "guided": student.guided, "pieces": cfg.pieces, "pooling": cfg.pooling, "batch_size": cfg.batch_size,
         "epochs": cfg.budget.student, "patience": cfg.budget.patience, "split": data.describe()}
    if m.teacher:
        s["teacher"] = teacher.fingerprint
    if m.kd:
        s.update(tau=cfg.tau, lambda_schedule=vars(cfg.schedule(cfg.last_stage_epochs(m))))
    if m.stage1:
        s["hint_epochs"] = cfg.budget.hints
        if cfg.budget.stage2:  # recorded only when stage 2 is not the student budget
            s["stage2_epochs"] = cfg.budget.stage2
    if m.hint_weight:
        s["hint_weight"] = cfg.hint_weight
    if cfg.max_epochs:
        s["max_epochs"] = cfg.max_epochs
    if cfg.rms_floor != RMS_FLOOR:  # recorded only when not the official value
        s["rms_floor"] = cfg.rms_floor
    return s


def check_teacher_file(path, pieces="code", pooling="ceil"):
    """ConfigError (field 'teacher') unless ``path`` is a model file holding the MNIST teacher
    of these pieces and pooling (its layers and shapes, from the file's own metadata): a folder,
    a missing file or another model (a student, say) is refused before anything trains."""
    from .nn import spec_shapes
    if os.path.isdir(path):
        raise ConfigError("teacher", f"{path} is a folder; give the teacher's model file (teacher.model.npz in "
                                     "the --out folder of a run that trained one)")
    if not os.path.isfile(path):
        raise ConfigError("teacher", f"{path} does not exist; give the teacher's model file (teacher.model.npz)")
    meta = inspect_archive(path, "model")[1]
    got = spec_shapes(meta["spec"])
    want = {k: tuple(v.shape) for k, v in mnist_teacher(pieces, pooling).state_dict().items()}
    if got != want:
        method = (meta.get("extra", {}).get("settings") or {}).get("method")
        what = f"a {method} student's model" if method else "another model"
        raise ConfigError("teacher", f"{path} holds {what} ({sum(int(np.prod(s)) for s in got.values()):,} weights, "
                                     f"layers {', '.join(sorted({k.split('.')[0] for k in got}))}), not the MNIST "
                                     f"teacher ({sum(int(np.prod(s)) for s in want.values()):,} weights, pieces "
                                     f"{pieces!r}, pooling {pooling!r}); give a teacher's model file")


def get_teacher(data, out, cfg, path=None, resume=False, log=print, accept_weak=False):
    """The teacher: loaded from ``path`` (a .model.npz holding the MNIST teacher), or trained
    into ``out`` (SGD with momentum, dropout, max-norm) unless ``resume`` finds it finished
    there, trained with the same settings (else ValueError). A teacher whose validation error
    is at chance (TEACHER_CHANCE) stops the run with ValueError unless ``accept_weak`` (a smoke
    run's teacher is not meant to learn); then it is used with a warning."""
    device = cfg.device
    settings = _teacher_settings(data, cfg)
    if path:
        check_teacher_file(path, cfg.pieces, cfg.pooling)
        model = load_model(path).to(device)
        settings = load_archive(path, "model")[1]["extra"].get("settings")
        val = error_rate(model, data.x_val, data.y_val)
        res = dict(best_val_error=val, best_epoch=0, epochs=0, seconds=0.0)
        log(f"teacher: loaded {path}")
    else:
        rng = cfg.rng("teacher")
        model = new_teacher(cfg.pieces, cfg.pooling, settings["init"], rng).to(device)
        spec = cfg.stage_spec(cfg.budget.teacher, teacher=True)
        model, res = _train_or_load("teacher", out, model, lambda ck: train_teacher(
            model, data, spec, rng, ckpt_path=ck, resume=resume, progress=cfg.progress), resume, device, log,
            settings)
    row = _row("teacher", model, res, data)
    log(f"teacher: test error {100 * row['test_error']:.2f}% (best validation {100 * row['best_val_error']:.2f}%)")
    if row["best_val_error"] >= TEACHER_CHANCE:
        said = (f"the teacher{' in ' + path if path else ''} is at chance (validation error "
                f"{100 * row['best_val_error']:.1f}%): it has nothing to distil")
        if not accept_weak:
            raise ValueError(said + "; train it longer, give another --teacher, or accept it with "
                                    "--accept-weak-teacher")
        log(f"warning: {said}; going on as asked")
    return Teacher(model, data, dict(row, history=res.get("history", [])), settings)


def _regressor(s1, student, teacher, data, rng, device, log):
    reg = make_regressor(s1, student.guided, teacher.model, TEACHER_HINT, data.x_train.shape[1:],
                         pieces=teacher.model[TEACHER_HINT].pieces, max_norm=0.9, rng=rng).to(device)
    log(f"regressor: guided {student.guided} {reg.guided_shape} -> hint {TEACHER_HINT} {reg.hint_shape}, "
        f"kernel {reg.kernel}x{reg.kernel}, maxout pieces {reg.pieces}")
    return reg


_STAGE2_ONLY = ("method", "tau", "lambda_schedule")


def stage1_settings(settings):
    """What a two-stage run's stage 1 depends on: its run settings less stage 2's, and what its
    stage 1 fits (methods with the same kind and the same settings otherwise, seed, init,
    student, teacher and budgets, train bit-identical stage 1s)."""
    s = {k: v for k, v in settings.items() if k not in _STAGE2_ONLY}
    return dict(s, stage1=METHOD_RECORDS[settings["method"]].stage1)


def _reuse_stage1(source, out, settings, resume, log):
    """Copy the finished stage 1 in folder ``source`` into ``out`` when it was made with the
    same stage-1 settings (unless ``resume`` finds one in ``out``: that is loaded); True when
    copied (else stage 1 is trained)."""
    src, dst = os.path.join(source, "stage1.model.npz"), os.path.join(out, "stage1.model.npz")
    if (resume and os.path.exists(dst)) or not os.path.exists(src):
        return False
    extra = load_archive(src, "model")[1]["extra"]
    saved = extra.get("settings")
    if (saved is None or not getattr(METHOD_RECORDS.get(saved.get("method")), "stage1", None)
            or stage1_settings(saved) != json.loads(json.dumps(stage1_settings(settings)))):
        return False
    os.makedirs(out, exist_ok=True)
    save_model(dst, load_model(src), dict(extra, settings=settings, stage1_from=src))
    log(f"stage1: the same as {src} (same stage-1 settings), reused")
    return True


def _stage1(m, data, teacher, cfg, student, build, rng, run, fit_kw, log):
    """Stage 1 of method record ``m``: hints from the teacher (or from the teacher at its
    untrained init), or the labels through an auxiliary classifier on the guided layer;
    returns (the student it trained, its result)."""
    s1, r1 = build("stage1"), rng("stage1")
    spec1 = cfg.stage_spec(cfg.budget.hints, stage1=True)
    if m.stage1 == "labels":
        head = aux_classifier(layer_shape(s1, student.guided, data.x_train.shape[1:]), max_norm=0.9,
                              rng=r1).to(cfg.device)
        train1 = lambda ck: train_label_stage1(s1, student.guided, head, data, spec1, r1, ckpt_path=ck, **fit_kw)
    else:
        source = teacher.untrained() if m.stage1 == "untrained-teacher hints" else teacher
        reg = _regressor(s1, student, source, data, r1, cfg.device, log)
        hints, val_hints = source.hints(TEACHER_HINT)
        train1 = lambda ck: train_hints(s1, student.guided, reg, hints, data, spec1, r1,
                                        val_hints=val_hints, ckpt_path=ck, **fit_kw)
    s1, res1 = run("stage1", s1, train1)
    log(f"stage1: best validation {'error' if m.stage1 == 'labels' else 'hint loss'} {res1['best_val_error']:.4f} "
        f"at epoch {res1['best_epoch']}")
    head = Sequential([("head", head if m.stage1 == "labels" else reg)], input_shape=layer_shape(
        s1, student.guided, data.x_train.shape[1:]))
    return s1, dict(res1, multiplications=multiplications(s1, student.guided) + multiplications(head))


def _last_stage(m, model, student, data, teacher, cfg, rng, run, fit_kw, log):
    """The stage that trains the whole student by method record ``m``'s loss: KD, CE + beta x
    hint (one stage) or plain cross-entropy; returns (model, result)."""
    epochs = cfg.last_stage_epochs(m)
    spec, r = cfg.stage_spec(epochs), rng(m.stream)
    if m.kd:
        train = lambda ck: train_kd(model, data, spec, r, teacher.logits, cfg.kd(epochs), stage=m.key, ckpt_path=ck,
                                    **fit_kw)
    elif m.hint_weight:
        if cfg.hint_weight is None:
            raise ValueError(f"the {m.key} method needs a hint weight: PipelineConfig(hint_weight=beta)")
        reg = _regressor(model, student, teacher, data, rng(m.key), cfg.device, log)
        hints = teacher.hints(TEACHER_HINT)[0]
        train = lambda ck: train_single_stage(model, student.guided, reg, hints, data, spec, r, cfg.hint_weight,
                                              stage=m.key, ckpt_path=ck, **fit_kw)
    else:
        train = lambda ck: train_backprop(model, data, spec, r, stage=m.key, ckpt_path=ck, **fit_kw)
    model, res = run(m.key, model, train)
    mults = multiplications(model)
    if m.hint_weight:  # the regressor is trained beside the student
        mults += multiplications(Sequential([("head", reg)], input_shape=reg.guided_shape))
    return model, dict(res, multiplications=mults)


def compute(stages, n_train, batch_size):
    """What training cost: ``stages`` is [(epochs run, forward multiplications per example of
    what the stage trains)]; returns {epochs, steps, multiplications}: the steps of batch_size
    examples (the incomplete last batch dropped) and the multiplications of their forward and
    backward passes, counted as 3 x the forward (the backward pass computes the gradients of
    the inputs and of the weights, each about a forward's work). Inference passes (validation,
    the teacher's outputs, computed once) are not counted."""
    per_epoch = n_train // batch_size
    steps = [e * per_epoch for e, _ in stages]
    return {"epochs": sum(e for e, _ in stages), "steps": sum(steps),
            "multiplications": sum(3 * s * batch_size * f for s, (_, f) in zip(steps, stages))}


def train_student(method, data, teacher, out, cfg, student=None, resume=False, log=print, step_hooks=(),
                  stage1_from=None):
    """Train one student by ``method`` into ``out``; returns (model, row).

    methods: 'backprop', 'kd', 'fitnet' (stage 1 hints, then stage 2 KD: the paper's), and
    the ablations (``VARIANTS``): 'single-stage' (CE + cfg.hint_weight x hint from the first
    step), 'dsn-kd' (stage 1 on the labels through an auxiliary classifier on the guided
    layer, then KD), 'random-hints-kd' (stage 1 against the hint layer of the teacher at its
    untrained init, then KD from the trained teacher), 'hints-backprop' (stage 1 hints, then
    cross-entropy only). Two-stage methods share FitNets' random streams (the same student
    init and batch order in both stages); single-stage shares backprop's.

    The row has the method, weight count, best validation error, test error, epochs (stage
    2's for two-stage methods), seconds (both stages), best epoch, the per-epoch history
    (stage 2's; stage 1's as hint_history) and the settings that made it. step_hooks: passed
    to every stage's ``fit`` (e.g. a ``hooks.GradientRecorder``). stage1_from: the folder of
    another two-stage run (say FitNets' for 'hints-backprop'); its finished stage 1 is reused
    instead of trained when it was made with the same stage-1 settings (``stage1_settings``:
    bit-identical to training it again; the row's seconds then count the original's stage 1)."""
    m = method_record(method)
    student = student or mnist_student_spec(cfg.pieces, cfg.pooling)
    device, init = cfg.device, cfg.weight_init()
    build = lambda stage: student.build(init, cfg.rng(stage, student.key)).to(device)
    rng = lambda stage: cfg.rng(stage, student.key)
    settings = run_settings(method, data, cfg, student, teacher)
    # a recorded stage (step_hooks) is trained, never copied
    reused = (m.stage1 is not None and stage1_from is not None and not step_hooks
              and _reuse_stage1(stage1_from, out, settings, resume, log))
    run = lambda stage, model, train: _train_or_load(stage, out, model, train, resume or (reused and stage == "stage1"),
                                                     device, log, settings)
    fit_kw = dict(resume=resume, progress=cfg.progress, step_hooks=step_hooks)
    stages = []
    if m.stage1:  # stage 2 starts from stage 1's layers up to the guided one
        s1, res1 = _stage1(m, data, teacher, cfg, student, build, rng, run, fit_kw, log)
        model = init_from_stage1(build(m.stream), s1, student.guided)
        stages.append((res1["epochs"], res1["multiplications"]))
    else:
        model = build(m.stream)
    model, res = _last_stage(m, model, student, data, teacher, cfg, rng, run, fit_kw, log)
    stages.append((res["epochs"], res["multiplications"]))
    if m.stage1:
        res = dict(res, seconds=round(res["seconds"] + res1["seconds"], 1), hint_history=res1.get("history", []))
    row = _row(method, model, res, data)
    row["history"] = res.get("history", [])
    if "hint_history" in res:
        row["hint_history"] = res["hint_history"]
    row["settings"] = settings
    row["compute"] = compute(stages, len(data.y_train), cfg.batch_size)
    log(f"{row['label']}: test error {100 * row['test_error']:.2f}% (best validation "
        f"{100 * row['best_val_error']:.2f}% at epoch {row['best_epoch']})")
    return model, row


def invocations(results_path, resume, prov, seconds, **extra):
    """{"invocations": [...], "wall_seconds": total}: this invocation's wall time added to
    those recorded in ``results_path`` by the earlier invocations a resume continues, so a
    resume that trains nothing does not overwrite the time the results took."""
    before = []
    if resume:
        try:
            with open(results_path) as f:
                before = json.load(f).get("invocations", [])
        except (OSError, ValueError, AttributeError):
            before = []
    now = before + [dict(date=prov["date"], commit=prov["commit"], wall_seconds=round(seconds, 1), **extra)]
    return {"invocations": now, "wall_seconds": round(sum(i["wall_seconds"] for i in now), 1)}


TABLE_COLUMNS = ["method", "label", "parameters", "best_val_error", "test_error", "epochs", "seconds", "best_epoch"]


def write_results(out, info, rows, name="results"):
    """Write ``<name>.json`` (``info`` plus the rows, histories included) and ``<name>.csv``
    (the rows' table columns) atomically."""
    atomic_write(os.path.join(out, f"{name}.json"), json.dumps(dict(info, results=rows), indent=2))
    buf = io.StringIO()
    cols = ([c for c in TABLE_COLUMNS if rows and c in rows[0]]
            + [c for c in (rows[0] if rows else {}) if c not in TABLE_COLUMNS
               and not isinstance(rows[0][c], (list, dict))])
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    atomic_write(os.path.join(out, f"{name}.csv"), buf.getvalue())


def format_table(rows):
    """The results table as printed by the example."""
    lines = [f"{'method':32s} {'params':>8s} {'best val err':>12s} {'test err':>9s} {'epochs':>6s} {'time':>7s}"
             "   (FitNets: epochs of stage 2, time of both stages)"]
    for r in rows:
        lines.append(f"{r['label']:32s} {r['parameters']:8,d} {100 * r['best_val_error']:11.2f}% "
                     f"{100 * r['test_error']:8.2f}% {r['epochs']:6d} {r['seconds']:6.0f}s")
    return "\n".join(lines)


def run_pipeline(data, out, cfg, methods=METHODS, teacher_path=None, student=None, resume=False, log=print,
                 info=None, figure=True, accept_weak=False):
    """Teacher, then each of ``methods`` on the same student; writes results.json / .csv and,
    with matplotlib installed and ``figure``, curves.png into ``out``; one writer at a time
    (``files.output_folder``: a second run on the same folder gets FolderBusy). Returns the
    info dict."""
    t0 = time.perf_counter()
    with output_folder(out):
        return _run_pipeline(data, out, cfg, methods, teacher_path, student, resume, log, info, figure, t0,
                             accept_weak)


def _run_pipeline(data, out, cfg, methods, teacher_path, student, resume, log, info, figure, t0, accept_weak):
    teacher = get_teacher(data, out, cfg, teacher_path, resume, log, accept_weak)
    rows = [teacher.row]
    for m in methods:
        rows.append(train_student(m, data, teacher, out, cfg, student, resume, log)[1])
    prov = provenance((info or {}).get("command"))
    info = dict(info or {}, provenance=prov, seed=cfg.seed, device=cfg.device, init=cfg.init,
                teacher_init=cfg.teacher_init or cfg.init, lambda_schedule=vars(cfg.schedule()),
                split=data.describe(), tinyfit=__version__, pieces=cfg.pieces, pooling=cfg.pooling,
                tau=cfg.tau, budget=asdict(cfg.budget),
                **invocations(os.path.join(out, "results.json"), resume, prov, time.perf_counter() - t0))
    write_results(out, info, rows)
    if figure:
        from . import plots
        if plots.available():
            path = plots.curves([r for r in rows if r["method"] != "teacher"], os.path.join(out, "curves.png"),
                                title=f"students on {data.describe()}, seed {cfg.seed}")
            info["figure"] = path
    info["results"] = rows
    return info
