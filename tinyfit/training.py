"""The training loop shared by every stage: mini-batches, validation, early
stopping, best-on-validation weights, checkpoints and exact resume.

One call of ``fit`` trains one stage: restore (on resume), then epochs of steps,
each epoch ended by validation and a checkpoint. Its state (weights, optimiser
slots, random generator, a ``TrainState`` with the epoch, the step within the
epoch and that epoch's batch order, best weights, history) is checkpointed
atomically at every epoch end, every ``checkpoint_every`` steps, and on Ctrl-C;
``resume=True`` continues from the checkpoint so that the result is
bit-identical to an uninterrupted run.
"""
from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from . import backend
from .checkpoint import CheckpointError, load_archive, save_archive

__all__ = ["FitConfig", "FitResult", "TrainState", "RunningSums", "StepInfo", "NonFiniteError", "Interrupted", "fit",
           "Progress", "all_finite"]


class NonFiniteError(RuntimeError):
    """The loss or a gradient became NaN or infinite."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C stopped a stage at a step boundary after its checkpoint was written to ``path``
    (None when the stage had no checkpoint file)."""
    def __init__(self, path):
        super().__init__(path)
        self.path = path


@dataclass
class FitConfig:
    epochs: int = 100           # at most this many epochs
    batch_size: int = 128
    patience: int = 100         # stop after this many epochs without a validation improvement
    drop_last: bool = True      # the official code drops the incomplete last batch
    checkpoint_every: int = 0   # also checkpoint every this many steps (0: epoch ends only)

    def check(self, n_train):
        for k in ("epochs", "batch_size", "patience"):
            v = getattr(self, k)
            if not isinstance(v, (int, np.integer)) or v <= 0:
                raise ValueError(f"{k} must be a positive integer, got {v!r}")
        if self.batch_size > n_train:
            raise ValueError(f"batch size {self.batch_size} is larger than the {n_train} training examples; "
                             f"use a batch_size of {n_train} or less")


@dataclass
class RunningSums:
    """The current epoch's running totals: the sum of the batch losses over ``steps`` steps,
    and of the batch error rates over the ``err_steps`` steps that reported one."""
    loss: float = 0.0
    err: float = 0.0
    err_steps: int = 0
    steps: int = 0

    def add(self, loss, err):
        self.loss += loss
        self.steps += 1
        if err is not None:
            self.err += err
            self.err_steps += 1

    def record(self, epoch, val):
        """The epoch's history entry: mean training loss (and error), validation metric."""
        rec = {"epoch": epoch, "train_loss": self.loss / max(self.steps, 1), "val": val}
        if self.err_steps:
            rec["train_err"] = self.err / self.err_steps
        return rec


@dataclass
class TrainState:
    """Where a stage is: the next epoch and step, the best validation so far, the history.
    ``sums``: the current epoch's running totals (kept across a resume so that the epoch's
    history line covers all its steps)."""
    epoch: int = 1
    step: int = 0
    best_val: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    history: list = field(default_factory=list)
    seconds: float = 0.0
    sums: RunningSums = field(default_factory=RunningSums)

    def __post_init__(self):
        if isinstance(self.sums, dict):  # as a checkpoint stores it
            self.sums = RunningSums(**self.sums)
        elif isinstance(self.sums, (list, tuple)):  # checkpoints of earlier versions
            self.sums = RunningSums(*self.sums[:2], *map(int, self.sums[2:]))


@dataclass(frozen=True)
class StepInfo:
    """What a step hook sees, after the backward pass and before the optimiser step: the
    stage, epoch (1-based), step within the epoch (0-based), the batch loss, and the modules
    being trained ({name: Module}; their parameters' ``.grad`` hold this step's gradients)."""
    stage: str
    epoch: int
    step: int
    loss: float
    modules: dict


@dataclass
class FitResult:
    stage: str
    best_val: float
    best_epoch: int
    epochs_run: int
    seconds: float
    history: list = field(default_factory=list)


class Progress:
    """A per-epoch progress bar (tqdm when installed, else one line per epoch)."""
    def __init__(self, stage, epoch, steps, enabled=True):
        self.bar = None
        self.stage, self.epoch, self.enabled = stage, epoch, enabled
        if enabled:
            try:
                from tqdm import tqdm
                self.bar = tqdm(total=steps, desc=f"{stage} epoch {epoch}", leave=False, file=sys.stderr, disable=None,
                                dynamic_ncols=True)
            except ImportError:
                pass

    def update(self, loss, err):
        if self.bar is not None:
            post = {"loss": f"{loss:.4f}"}
            if err is not None:
                post["err"] = f"{100 * err:.2f}%"
            self.bar.set_postfix(post, refresh=False)
            self.bar.update(1)

    def close(self, line=""):
        if self.bar is not None:
            self.bar.close()
        if self.enabled and line:
            print(line, flush=True)


class _Interrupt:
    """Turns SIGINT into a flag checked between steps, so the checkpoint is consistent."""
    def __init__(self):
        self.flag = False
        self.old = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.old = signal.signal(signal.SIGINT, self._handler)
        return self

    def _handler(self, *_):
        if self.flag:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        self.flag = True

    def __exit__(self, *exc):
        if self.old is not None:
            signal.signal(signal.SIGINT, self.old)


def _states(modules):
    return {f"{m}/{n}": a for m, mod in modules.items() for n, a in mod.state_dict().items()}


def _load_states(modules, arrays, prefix, path):
    for m, mod in modules.items():
        sub = {k[len(prefix) + len(m) + 2:]: v for k, v in arrays.items() if k.startswith(f"{prefix}/{m}/")}
        try:
            mod.load_state_dict(sub)
        except ValueError as e:
            raise CheckpointError(f"{path}: checkpoint does not match module {m!r}: {e}") from None


def all_finite(loss_value, params):
    """Loss and all gradients finite? One reduction and one scalar read for all gradients
    (a NaN or inf anywhere makes the float64 total non-finite)."""
    if not math.isfinite(loss_value):
        return False
    sums = [p.grad.sum(dtype=np.float64) for p in params if p.grad is not None]
    if not sums:
        return True
    xp = backend.get_array_module(*sums)
    return math.isfinite(float(xp.stack(sums).sum()))


def _restore(path, stage, cfg, meta, verify, modules, optimizer, rng):
    """Load a checkpoint of ``stage`` into the modules, optimiser and generator; returns
    (TrainState, best weights, the interrupted epoch's batch order or None). ``verify``:
    the keys of ``meta`` that must equal the checkpoint's (settings a resumed run may not change)."""
    arrays, m = load_archive(path, "checkpoint")
    if m.get("stage") != stage:
        raise CheckpointError(f"{path}: checkpoint of stage {m.get('stage')!r}, expected {stage!r}")
    try:
        old = m["config"]
        for k in ("batch_size", "drop_last"):
            if old["fit"][k] != getattr(cfg, k):
                raise CheckpointError(
                    f"{path}: the checkpoint was trained with {k}={old['fit'][k]!r}, this run has "
                    f"{k}={getattr(cfg, k)!r}; resume with the same setting or start a new run directory")
        for k in verify:
            now = json.loads(json.dumps(meta.get(k)))
            if now != old.get(k):
                name, was, new = _first_difference(k, old.get(k), now)
                raise CheckpointError(
                    f"{path}: the checkpoint was trained with {name}={was!r}, this run has {name}={new!r}; resume "
                    "with the same setting or start a new run directory")
        _load_states(modules, arrays, "model", path)
        best = {k[5:]: v for k, v in arrays.items() if k.startswith("best/")}
        optimizer.load_state_dict({"hyper": m["optimizer"],
                                   "slots": {k[6:]: v for k, v in arrays.items() if k.startswith("optim/")}})
        rng.bit_generator.state = m["rng"]
        known = {f.name for f in fields(TrainState)}
        state = TrainState(**{k: v for k, v in m["state"].items() if k in known})
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointError(f"{path}: incomplete or inconsistent checkpoint: {type(e).__name__}: {e}") from None
    return state, best, arrays.get("perm")


def _first_difference(name, a, b):
    """(dotted name, a's value, b's value) of the first entry where two settings differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return _first_difference(f"{name}.{k}", a.get(k), b.get(k))
    return name, a, b


def _save(path, stage, cfg, meta, state, modules, best, optimizer, rng, perm):
    """Write the stage's checkpoint: weights, best weights, optimiser, generator, state."""
    arrays = {f"model/{k}": v for k, v in _states(modules).items()}
    arrays.update({f"best/{k}": v for k, v in best.items()})
    o = optimizer.state_dict()
    arrays.update({f"optim/{k}": v for k, v in o["slots"].items()})
    if perm is not None:
        arrays["perm"] = np.asarray(perm)
    save_archive(path, arrays, {
        "stage": stage, "optimizer": o["hyper"], "rng": rng.bit_generator.state, "state": asdict(state),
        "config": {"fit": asdict(cfg), **meta},
    }, "checkpoint")


def _epoch_line(stage, epoch, rec, state):
    return (f"{stage} epoch {epoch:3d}: loss {rec['train_loss']:.4f}"
            + (f", train err {100 * rec['train_err']:.2f}%" if "train_err" in rec else "")
            + f", val {rec['val']:.4f} (best {state.best_val:.4f} @ {state.best_epoch})")


def fit(*, stage, modules, optimizer, loss_fn, val_fn, n_train, cfg, rng, ckpt_path=None, resume=False,
        epoch_hooks=(), step_hooks=(), progress=True, meta=None, verify=()):
    """Train one stage.

    stage: name recorded in checkpoints ('teacher', 'stage1', ...).
    modules: {name: Module} whose weights are checkpointed and whose best-on-validation
        weights are restored at the end (include every module the optimiser updates).
    loss_fn(idx) -> (loss Tensor, error rate of the batch or None): idx are the batch's
        example indices.
    val_fn() -> float, lower is better (validation error or loss).
    rng: the stage's numpy Generator (shuffling; dropout layers must draw from it too).
    epoch_hooks: callables hook(epoch) run before each epoch (1-based): the per-epoch
        knobs (KD weight lambda, momentum ramp) are set there.
    step_hooks: callables hook(StepInfo) run after each step's backward pass, before the
        update (to record gradients: ``hooks.GradientRecorder``); none by default. A hook
        must not change the parameters, their gradients or the generator.
    meta: JSON-able configuration stored in the checkpoint; ``verify`` names its keys that a
        resumed run must share with the checkpoint.
    """
    cfg.check(n_train)
    meta = meta or {}
    params = optimizer.params
    xp = backend.get_array_module(params[0].data)
    state, perm, best = TrainState(), None, _states(modules)
    if resume and ckpt_path is not None and os.path.exists(ckpt_path):
        state, best, perm = _restore(ckpt_path, stage, cfg, meta, verify, modules, optimizer, rng)

    def save(perm_now):
        if ckpt_path is not None:
            _save(ckpt_path, stage, cfg, meta, state, modules, best, optimizer, rng, perm_now)

    clock = _Clock(state)
    run = _StageRun(stage=stage, cfg=cfg, n_train=n_train, xp=xp, loss_fn=loss_fn, optimizer=optimizer,
                    params=params, progress=progress, intr=None, save=save, ckpt_path=ckpt_path,
                    step_hooks=tuple(step_hooks), modules=modules, clock=clock)
    with _Interrupt() as run.intr:
        while state.epoch <= cfg.epochs and state.bad_epochs < cfg.patience:
            clock.start()
            for hook in epoch_hooks:
                hook(state.epoch)
            if perm is None:
                order = rng.permutation(n_train)
                state.step, state.sums = 0, RunningSums()
            else:  # an interrupted epoch, even one stopped before its first step: its saved order
                order = perm
            _run_epoch(state, order, run)
            val = float(val_fn())
            clock.lap()
            state.history.append(rec := state.sums.record(state.epoch, val))
            if val < state.best_val:
                state.best_val, state.best_epoch, state.bad_epochs = val, state.epoch, 0
                best = _states(modules)
            else:
                state.bad_epochs += 1
            if progress:
                print(_epoch_line(stage, state.epoch, rec, state), flush=True)
            state.epoch, state.step, state.sums, perm = state.epoch + 1, 0, RunningSums(), None
            save(None)
    _load_states(modules, {f"best/{k}": v for k, v in best.items()}, "best", "best weights")
    return FitResult(stage, state.best_val, state.best_epoch, len(state.history), state.seconds, state.history)


@dataclass
class _StageRun:
    """What stays the same through the epochs of one stage."""
    stage: str
    cfg: FitConfig
    n_train: int
    xp: object
    loss_fn: object
    optimizer: object
    params: list
    progress: bool
    intr: object
    save: object
    ckpt_path: object
    step_hooks: tuple
    modules: dict
    clock: object


class _Clock:
    """Adds the training time of a stage to ``state.seconds`` in laps, so that a checkpoint
    written mid-epoch holds the time spent so far."""
    def __init__(self, state):
        self.state, self.t0 = state, time.perf_counter()

    def start(self):
        self.t0 = time.perf_counter()

    def lap(self):
        now = time.perf_counter()
        self.state.seconds += now - self.t0
        self.t0 = now


def _run_epoch(state, order, run):
    """The optimiser steps of one epoch from ``state.step`` on, in batch ``order``; keeps
    ``state.step`` and ``state.sums`` current, checkpoints every ``cfg.checkpoint_every``
    steps and on Ctrl-C."""
    bs, n = run.cfg.batch_size, run.n_train
    stop = n - n % bs if run.cfg.drop_last else n
    dev_order = run.xp.asarray(order)  # one copy per epoch; batches are slices on the device
    idx_list = [dev_order[i:i + bs] for i in range(0, stop, bs)]
    bar = Progress(run.stage, state.epoch, len(idx_list), run.progress)
    if bar.bar is not None and state.step:
        bar.bar.update(state.step)
    for step in range(state.step, len(idx_list)):
        state.step = step
        if run.intr.flag:
            run.clock.lap()
            run.save(order)
            bar.close(f"{run.stage}: interrupted at epoch {state.epoch}, step {step}"
                      + ("; checkpoint saved" if run.ckpt_path else ""))
            raise Interrupted(run.ckpt_path)
        run.optimizer.zero_grad()
        loss, err = run.loss_fn(idx_list[step])
        loss.backward()
        lv = float(loss.data)
        if not all_finite(lv, run.params):
            bar.close()
            raise NonFiniteError(
                f"{run.stage}: non-finite loss or gradient at epoch {state.epoch}, step {step + 1} (loss {lv}); "
                f"the last good checkpoint is kept{' at ' + str(run.ckpt_path) if run.ckpt_path else ''}. "
                "Lower the learning rate or check the input data.")
        for hook in run.step_hooks:
            hook(StepInfo(run.stage, state.epoch, step, lv, run.modules))
        run.optimizer.step()
        state.sums.add(lv, err)
        bar.update(lv, err)
        state.step = step + 1
        if run.cfg.checkpoint_every and (step + 1) % run.cfg.checkpoint_every == 0 and step + 1 < len(idx_list):
            run.clock.lap()
            run.save(order)
    bar.close("")
