"""The training loop shared by every stage: mini-batches, validation, early
stopping, best-on-validation weights, checkpoints and exact resume.

One call of ``fit`` trains one stage. Its state (weights, optimiser slots,
random generator, epoch, step within the epoch and that epoch's batch order,
best weights, history) is checkpointed atomically at every epoch end, every
``checkpoint_every`` steps, and on Ctrl-C; ``resume=True`` continues from the
checkpoint so that the result is bit-identical to an uninterrupted run.
"""
from __future__ import annotations

import math
import os
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from . import backend
from .checkpoint import CheckpointError, load_archive, save_archive

__all__ = ["FitConfig", "FitResult", "NonFiniteError", "fit", "Progress"]


class NonFiniteError(RuntimeError):
    """The loss or a gradient became NaN or infinite."""


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

    def close(self, line):
        if self.bar is not None:
            self.bar.close()
        if self.enabled:
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


def _finite(loss_value, params):
    """Loss and all gradients finite? One reduction and one scalar read for all gradients
    (a NaN or inf anywhere makes the float64 total non-finite)."""
    if not math.isfinite(loss_value):
        return False
    sums = [p.grad.sum(dtype=np.float64) for p in params if p.grad is not None]
    if not sums:
        return True
    xp = backend.get_array_module(*sums)
    return math.isfinite(float(xp.stack(sums).sum()))


def fit(stage, modules, optimizer, loss_fn, val_fn, n_train, cfg, rng, ckpt_path=None, resume=False,
        epoch_hook=None, progress=True, meta=None):
    """Train one stage.

    stage: name recorded in checkpoints ('teacher', 'stage1', ...).
    modules: {name: Module} whose weights are checkpointed and whose best-on-validation
        weights are restored at the end (include every module the optimiser updates).
    loss_fn(idx, epoch) -> (loss Tensor, error rate of the batch or None): idx are the
        batch's example indices; epoch is 1-based.
    val_fn() -> float, lower is better (validation error or loss).
    rng: the stage's numpy Generator (shuffling; dropout layers must draw from it too).
    epoch_hook(epoch): called before each epoch (schedules).
    meta: JSON-able configuration stored in the checkpoint.
    """
    cfg.check(n_train)
    params = optimizer.params
    xp = backend.get_array_module(params[0].data)
    # sums: the interrupted epoch's running loss, error and step counts, so that its history
    # line after a resume covers every step of the epoch
    st = dict(epoch=1, step=0, best_val=math.inf, best_epoch=0, bad_epochs=0, history=[], seconds=0.0,
              sums=[0.0, 0.0, 0, 0])
    perm = None
    best = _states(modules)
    if resume and ckpt_path is not None and os.path.exists(ckpt_path):
        arrays, m = load_archive(ckpt_path, "checkpoint")
        if m.get("stage") != stage:
            raise CheckpointError(f"{ckpt_path}: checkpoint of stage {m.get('stage')!r}, expected {stage!r}")
        try:
            old = m["config"]["fit"]
            for k in ("batch_size", "drop_last"):
                if old[k] != getattr(cfg, k):
                    raise CheckpointError(
                        f"{ckpt_path}: the checkpoint was trained with {k}={old[k]!r}, this run has "
                        f"{k}={getattr(cfg, k)!r}; resume with the same setting or start a new run directory")
            _load_states(modules, arrays, "model", ckpt_path)
            best = {k[5:]: v for k, v in arrays.items() if k.startswith("best/")}
            optimizer.load_state_dict({"hyper": m["optimizer"],
                                       "slots": {k[6:]: v for k, v in arrays.items() if k.startswith("optim/")}})
            rng.bit_generator.state = m["rng"]
            st = {k: m["state"].get(k, st[k]) if k == "sums" else m["state"][k] for k in st}
        except (KeyError, TypeError, ValueError) as e:
            if isinstance(e, CheckpointError):
                raise
            raise CheckpointError(f"{ckpt_path}: incomplete or inconsistent checkpoint: "
                                  f"{type(e).__name__}: {e}") from None
        perm = arrays.get("perm")

    def save(epoch, step, perm_now):
        if ckpt_path is None:
            return
        arrays = {f"model/{k}": v for k, v in _states(modules).items()}
        arrays.update({f"best/{k}": v for k, v in best.items()})
        o = optimizer.state_dict()
        arrays.update({f"optim/{k}": v for k, v in o["slots"].items()})
        if perm_now is not None:
            arrays["perm"] = np.asarray(perm_now)
        save_archive(ckpt_path, arrays, {
            "stage": stage, "optimizer": o["hyper"], "rng": rng.bit_generator.state,
            "state": {**st, "epoch": epoch, "step": step}, "config": {"fit": asdict(cfg), **(meta or {})},
        }, "checkpoint")

    with _Interrupt() as intr:
        epoch = st["epoch"]
        while epoch <= cfg.epochs and st["bad_epochs"] < cfg.patience:
            t0 = time.perf_counter()
            if epoch_hook is not None:
                epoch_hook(epoch)
            if st["step"] == 0 or perm is None:
                order = rng.permutation(n_train)
                st["step"] = 0
            else:
                order = perm
            bs = cfg.batch_size
            stop = n_train - n_train % bs if cfg.drop_last else n_train
            dev_order = xp.asarray(order)  # one copy per epoch; batches are slices on the device
            idx_list = [dev_order[i:i + bs] for i in range(0, stop, bs)]
            bar = Progress(stage, epoch, len(idx_list), progress)
            if bar.bar is not None and st["step"]:
                bar.bar.update(st["step"])
            tot_loss, tot_err, n_err, n_steps = st["sums"] if st["step"] else (0.0, 0.0, 0, 0)
            for step in range(st["step"], len(idx_list)):
                if intr.flag:
                    st["seconds"] += time.perf_counter() - t0
                    st["sums"] = [tot_loss, tot_err, n_err, n_steps]
                    save(epoch, step, order)
                    bar.close(f"{stage}: interrupted at epoch {epoch}, step {step}; checkpoint saved")
                    raise KeyboardInterrupt
                optimizer.zero_grad()
                loss, err = loss_fn(idx_list[step], epoch)
                loss.backward()
                lv = float(loss.data)
                if not _finite(lv, params):
                    bar.close("")
                    raise NonFiniteError(
                        f"{stage}: non-finite loss or gradient at epoch {epoch}, step {step + 1} (loss {lv}); "
                        f"the last good checkpoint is kept{' at ' + str(ckpt_path) if ckpt_path else ''}. "
                        "Lower the learning rate or check the input data.")
                optimizer.step()
                tot_loss += lv
                n_steps += 1
                if err is not None:
                    tot_err += err
                    n_err += 1
                bar.update(lv, err)
                if cfg.checkpoint_every and (step + 1) % cfg.checkpoint_every == 0 and step + 1 < len(idx_list):
                    st["seconds"] += time.perf_counter() - t0
                    t0 = time.perf_counter()
                    st["sums"] = [tot_loss, tot_err, n_err, n_steps]
                    save(epoch, step + 1, order)
            val = float(val_fn())
            st["seconds"] += time.perf_counter() - t0
            rec = {"epoch": epoch, "train_loss": tot_loss / max(n_steps, 1), "val": val}
            if n_err:
                rec["train_err"] = tot_err / n_err
            st["history"].append(rec)
            if val < st["best_val"]:
                st.update(best_val=val, best_epoch=epoch, bad_epochs=0)
                best = _states(modules)
            else:
                st["bad_epochs"] += 1
            bar.close(f"{stage} epoch {epoch:3d}: loss {rec['train_loss']:.4f}"
                      + (f", train err {100 * rec['train_err']:.2f}%" if n_err else "")
                      + f", val {val:.4f} (best {st['best_val']:.4f} @ {st['best_epoch']})")
            epoch += 1
            st["step"] = 0
            st["sums"] = [0.0, 0.0, 0, 0]
            perm = None
            save(epoch, 0, None)
    _load_states(modules, {f"best/{k}": v for k, v in best.items()}, "best", "best weights")
    return FitResult(stage, st["best_val"], st["best_epoch"], len(st["history"]), st["seconds"], st["history"])
