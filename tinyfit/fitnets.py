"""FitNets (Romero et al., ICLR 2015): teacher training, stage 1 (hints), stage 2 (KD),
and the two baselines (plain backprop, KD only) on the same student.

Every trainer takes a ``StageSpec`` (optimiser and loop settings) and returns a
``FitResult``; teacher outputs (logits for KD, hint maps for stage 1) are
computed once, in eval mode, since the teacher is frozen and deterministic and
the data are not augmented.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import backend
from . import functional as F
from .autograd import Tensor, no_grad
from .nn import Conv2d, Dropout, MaxoutConv2d, Module, eval_outputs
from .optim import SGD, Adam, RMSProp
from .training import FitConfig, fit

__all__ = ["LinearDecay", "Constant", "StageSpec", "error_rate", "regressor_kernel", "regressor", "make_regressor",
           "train_classifier", "train_teacher", "train_backprop", "train_kd", "train_hints", "init_from_stage1"]


class Constant:
    """lambda(epoch) = value."""
    def __init__(self, value):
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"lambda must be a finite number >= 0, got {value!r}")
        self.value = float(value)

    def __call__(self, epoch):
        return self.value


class LinearDecay:
    """The official code's schedule: ``start`` until epoch start_epoch - 1, then a linear
    step of (start - final) / (saturate - start_epoch + 1) per epoch, reaching ``final`` at
    ``saturate`` and staying there. MNIST: start 4, final 0, start_epoch 5, saturate 150.
    (The paper's text decays to 1; use final=1 for that.)"""
    def __init__(self, start=4.0, final=0.0, start_epoch=5, saturate=150):
        if min(start, final) < 0 or not (np.isfinite(start) and np.isfinite(final)):
            raise ValueError(f"lambda values must be finite and >= 0, got start={start!r}, final={final!r}")
        if not 1 <= start_epoch <= saturate:
            raise ValueError(f"need 1 <= start_epoch <= saturate, got {start_epoch}, {saturate}")
        self.start, self.final = float(start), float(final)
        self.start_epoch, self.saturate = int(start_epoch), int(saturate)
        self.step = (self.start - self.final) / (self.saturate - self.start_epoch + 1)

    def __call__(self, epoch):
        if epoch < self.start_epoch:
            return self.start
        if epoch >= self.saturate:
            return self.final
        return self.start - self.step * (epoch - self.start_epoch + 1)


@dataclass
class StageSpec:
    """Optimiser and loop settings of one stage.

    optimizer: 'rmsprop' (the official FitNets settings), 'sgd' (the teacher's) or 'adam'.
    momentum / final_momentum / momentum_saturate: SGD momentum ramps linearly from the
        first to the second value, reaching it at that epoch (pylearn2's MomentumAdjustor).
    """
    optimizer: str = "rmsprop"
    lr: float = 0.0005
    momentum: float = 0.5
    final_momentum: float = 0.7
    momentum_saturate: int = 250
    rms_decay: float = 0.9
    rms_eps: float = 1e-5
    fit: FitConfig = field(default_factory=FitConfig)

    def make_optimizer(self, params):
        if self.optimizer == "rmsprop":
            return RMSProp(params, self.lr, self.rms_decay, self.rms_eps)
        if self.optimizer == "sgd":
            return SGD(params, self.lr, self.momentum)
        if self.optimizer == "adam":
            return Adam(params, self.lr)
        raise ValueError(f"optimizer must be 'rmsprop', 'sgd' or 'adam', got {self.optimizer!r}")

    def epoch_hook(self, opt):
        if not isinstance(opt, SGD) or self.final_momentum == self.momentum:
            return None

        def hook(epoch):
            frac = min(1.0, (epoch - 1) / max(1, self.momentum_saturate - 1))
            opt.momentum = self.momentum + frac * (self.final_momentum - self.momentum)
        return hook


def error_rate(model, x, y, batch_size=1000):
    """Fraction of misclassified examples (model in eval mode, no graph)."""
    pred = eval_outputs(model, x, batch_size=batch_size).argmax(axis=1)
    return float((pred != y).mean())


def regressor_kernel(guided_shape, hint_shape):
    """Kernel (kh, kw) of the no-padding conv regressor mapping guided -> hint maps.

    Shapes are per example, channels-last (H, W, C). k = N_g - N_h + 1 per axis.
    """
    gh, gw = guided_shape[:2]
    hh, hw = hint_shape[:2]
    if hh > gh or hw > gw:
        raise ValueError(
            f"no convolutional regressor fits: the teacher's hint map {tuple(hint_shape)} (H, W, C) is "
            f"larger than the student's guided map {tuple(guided_shape)}; a valid conv can only shrink "
            f"maps. Pick a deeper hint layer or a shallower guided layer whose map is at least "
            f"{hh}x{hw} (or use floor-mode pooling in the teacher).")
    return gh - hh + 1, gw - hw + 1


def regressor(guided_shape, hint_shape, pieces=None, init=0.05, max_norm=None, rng=None):
    """The conv regressor r: guided maps (N, Hg, Wg, Cg) -> hint-shaped maps (N, Hh, Wh, Ch).

    A no-padding conv with kernel ``regressor_kernel``: pieces=None gives a plain linear
    conv (the paper's text, a Conv2d); pieces=p a maxout conv with p pieces, the hint
    layer's non-linearity (the official code, a MaxoutConv2d without pooling). Built from
    the ordinary layers, so model files and ONNX export need nothing FitNets-specific.
    The layer carries ``guided_shape``, ``hint_shape`` and ``kernel`` for reporting."""
    kh, kw = regressor_kernel(guided_shape, hint_shape)
    if kh != kw:
        raise ValueError(f"regressor kernel would be {kh}x{kw}; only square kernels are supported "
                         f"(guided {tuple(guided_shape)}, hint {tuple(hint_shape)})")
    cg, ch = guided_shape[2], hint_shape[2]
    if pieces:
        layer = MaxoutConv2d(in_channels=cg, channels=ch, pieces=pieces, kernel=kh, pad=0, init=init,
                             max_norm=max_norm, rng=rng)
    else:
        layer = Conv2d(in_channels=cg, out_channels=ch, kernel=kh, pad=0, init=init, max_norm=max_norm, rng=rng)
        layer.pieces = None
    layer.guided_shape, layer.hint_shape, layer.kernel = tuple(guided_shape), tuple(hint_shape), kh
    return layer


def make_regressor(student, guided, teacher, hint, input_shape, pieces=None, **kw):
    """The regressor for student layer ``guided`` -> teacher layer ``hint``, finding both
    feature shapes by one forward pass of a dummy input of ``input_shape`` (H, W, C)."""
    x = Tensor(np.zeros((1,) + tuple(input_shape), np.float32))
    with no_grad():
        g = student(x.to(student.device), until=guided).shape[1:]
        h = teacher(x.to(teacher.device), until=hint).shape[1:]
    return regressor(g, h, pieces=pieces, **kw)


def _use_rng(model, rng):
    for m in model.modules():
        if isinstance(m, Dropout):
            m.rng = rng


def _batch_error(out, y):
    return float((out.data.argmax(axis=1) != y).mean())


def train_classifier(stage, model, data, spec, rng, loss="ce", teacher_logits=None, schedule=None,
                     tau=3.0, kd_options=None, ckpt_path=None, resume=False, progress=True):
    """Train ``model`` on data.x_train/y_train with cross-entropy ('ce') or the KD loss ('kd',
    needs ``teacher_logits`` for the training set and a lambda ``schedule``); early stopping on
    validation error; the best-on-validation weights are restored."""
    if loss == "kd" and (teacher_logits is None or schedule is None):
        raise ValueError("KD training needs teacher_logits and a lambda schedule")
    if loss not in ("ce", "kd"):
        raise ValueError(f"loss must be 'ce' or 'kd', got {loss!r}")
    _use_rng(model, rng)
    opt = spec.make_optimizer(model.parameters())
    x, y = data.x_train, data.y_train
    kd_options = kd_options or {}

    def loss_fn(idx, epoch):
        out = model(Tensor(x[idx]))
        if loss == "ce":
            L = F.cross_entropy(out, y[idx])
        else:
            L = F.kd_loss(out, y[idx], teacher_logits[idx], schedule(epoch), tau, **kd_options)
        return L, _batch_error(out, y[idx])

    meta = {"loss": loss, "tau": tau, "lr": spec.lr, "optimizer": spec.optimizer}
    return fit(stage, {"model": model}, opt, loss_fn, lambda: error_rate(model, data.x_val, data.y_val),
               len(y), spec.fit, rng, ckpt_path, resume, spec.epoch_hook(opt), progress, meta)


def train_teacher(teacher, data, spec, rng, **kw):
    """The teacher: cross-entropy with dropout (train mode) and max-norm (in the model)."""
    return train_classifier("teacher", teacher, data, spec, rng, "ce", **kw)


def train_backprop(student, data, spec, rng, stage="backprop", **kw):
    """Baseline: the student trained by standard backprop on the labels."""
    return train_classifier(stage, student, data, spec, rng, "ce", **kw)


def train_kd(student, data, spec, rng, teacher_logits, schedule, tau=3.0, stage="kd", **kw):
    """KD (FitNets eq. 2); with a stage-1-initialised student this is FitNets' stage 2."""
    return train_classifier(stage, student, data, spec, rng, "kd", teacher_logits, schedule, tau, **kw)


def train_hints(student, guided, regressor, teacher_hints, data, spec, rng, reduction="paper",
                val_hints=None, ckpt_path=None, resume=False, progress=True):
    """Stage 1: train the student's layers up to ``guided`` plus ``regressor`` on the hint
    loss against precomputed ``teacher_hints`` (N, Hh, Wh, Ch) of the training set. Only those
    parameters are updated; the validation metric is the hint loss on ``val_hints``
    (the official code keeps the best-on-validation weights)."""
    params = student.parameters_until(guided) + regressor.parameters()
    opt = spec.make_optimizer(params)
    x = data.x_train

    def loss_fn(idx, epoch):
        g = student(Tensor(x[idx]), until=guided)
        return F.hint_loss(regressor(g), Tensor(teacher_hints[idx]), reduction), None

    def val_fn():
        if val_hints is None:
            return 0.0
        total = 0.0
        with no_grad():
            for i in range(0, len(data.x_val), 500):
                r = regressor(student(Tensor(data.x_val[i:i + 500]), until=guided))
                total += float(F.hint_loss(r, Tensor(val_hints[i:i + 500]), reduction).data) * len(r)
        return total / len(data.x_val)

    lower = LayerSubset(student, student.names_until(guided))
    meta = {"loss": "hint", "reduction": reduction, "guided": guided}
    return fit("stage1", {"student": lower, "regressor": regressor}, opt, loss_fn, val_fn, len(x),
               spec.fit, rng, ckpt_path, resume, spec.epoch_hook(opt), progress, meta)


class LayerSubset(Module):
    """Some of a Sequential's layers (shared, not copied) as one module, so that stage 1
    checkpoints exactly the layers it trains."""
    def __init__(self, seq, names):
        super().__init__()
        for n in names:
            setattr(self, n, seq[n])


def init_from_stage1(fresh_student, stage1_student, guided):
    """Stage 2's starting point: ``fresh_student`` (fresh init) with the stage-1 weights of the
    layers up to and including ``guided`` copied in; the regressor is not part of it."""
    for n in stage1_student.names_until(guided):
        src, dst = stage1_student[n], fresh_student[n]
        for (pn, p), (_, q) in zip(src.named_parameters(), dst.named_parameters()):
            if p.shape != q.shape:
                raise ValueError(f"layer {n}.{pn}: stage-1 shape {p.shape} != student shape {q.shape}")
            xp = backend.get_array_module(q.data)
            q.data = xp.array(p.data, copy=True)
    return fresh_student
