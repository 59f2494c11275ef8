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
from .nn import Conv2d, Dropout, Flatten, Linear, MaxoutConv2d, Module, Sequential, eval_outputs
from .optim import SGD, Adam, RMSProp
from .training import FitConfig, fit

__all__ = ["LinearDecay", "Constant", "KDConfig", "StageSpec", "error_rate", "regressor_kernel", "conv_regressor",
           "layer_shape", "make_regressor", "aux_classifier", "train_classifier", "train_teacher", "train_backprop",
           "train_kd", "train_hints", "train_label_stage1", "train_single_stage", "init_from_stage1", "LayerSubset"]


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


@dataclass(frozen=True)
class KDConfig:
    """Everything the KD loss needs besides the data, validated once.

    tau: the softmax temperature (the paper: 3). schedule: lambda(epoch) -> the weight of the
    soft term (``LinearDecay`` or ``Constant``). soft: 'ce' (the paper) or 'kl'.
    tau_squared: scale the soft term by tau^2 (Hinton et al.; not the paper's).
    student_tau: the student's temperature in the soft term (default tau; the official code
    effectively used 1)."""
    tau: float = 3.0
    schedule: object = field(default_factory=LinearDecay)
    soft: str = "ce"
    tau_squared: bool = False
    student_tau: float = None

    def __post_init__(self):
        # the temperatures and the soft term's form, checked and decided in one place
        object.__setattr__(self, "term", F.KDTerm(self.tau, self.soft, self.tau_squared, self.student_tau))
        if not callable(self.schedule):
            raise ValueError(f"schedule must be a callable epoch -> lambda, got {self.schedule!r}")

    def soft_targets(self, teacher_logits):
        """P_T^tau = softmax(teacher_logits / tau) (N, K), computed once for a whole run."""
        return self.term.targets(teacher_logits)

    def weight(self, epoch):
        """lambda at ``epoch`` (1-based), checked."""
        return F.check_kd_weight(self.schedule(epoch))

    def loss(self, student_logits, labels, targets, lam):
        """The KD loss of a batch from its rows of ``soft_targets``."""
        return self.term.loss(student_logits, labels, targets, lam)

    def describe(self):
        """JSON-able settings (stored in checkpoints; a resumed run must match them)."""
        sched = vars(self.schedule) if hasattr(self.schedule, "__dict__") else {"repr": repr(self.schedule)}
        return {"tau": self.tau, "schedule": {"type": type(self.schedule).__name__, **sched}, "soft": self.soft,
                "tau_squared": self.tau_squared, "student_tau": self.student_tau}


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

    def epoch_hooks(self, opt):
        """The per-epoch knobs of this stage's optimiser: the SGD momentum ramp."""
        if not isinstance(opt, SGD) or self.final_momentum == self.momentum:
            return []

        def momentum_ramp(epoch):
            frac = min(1.0, (epoch - 1) / max(1, self.momentum_saturate - 1))
            opt.momentum = self.momentum + frac * (self.final_momentum - self.momentum)
        return [momentum_ramp]


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


def conv_regressor(guided_shape, hint_shape, pieces=None, init=0.05, max_norm=None, rng=None):
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


def layer_shape(model, layer, input_shape):
    """The per-example output shape (H, W, C) of ``model``'s layer ``layer`` for inputs of
    ``input_shape`` (H, W, C), from one forward pass of a dummy example."""
    x = Tensor(np.zeros((1,) + tuple(input_shape), np.float32))
    with no_grad():
        return model(x.to(model.device), until=layer).shape[1:]


def make_regressor(student, guided, teacher, hint, input_shape, pieces=None, **kw):
    """The regressor for student layer ``guided`` -> teacher layer ``hint``."""
    return conv_regressor(layer_shape(student, guided, input_shape), layer_shape(teacher, hint, input_shape),
                          pieces=pieces, **kw)


def aux_classifier(guided_shape, classes=10, init=0.05, max_norm=None, rng=None):
    """A Deeply-Supervised-Nets-style auxiliary classifier on the guided layer's maps
    (N, H, W, C): flatten, then a softmax layer to ``classes`` logits. Its init and max-norm
    default to the regressor's, so that stage 1 with it differs from hint training only in
    its target (the labels instead of the teacher's hint layer)."""
    h, w, c = guided_shape
    return Sequential([("flat", Flatten()), ("y", Linear(in_features=h * w * c, out_features=classes, init=init,
                                                         max_norm=max_norm, rng=rng))], input_shape=tuple(guided_shape))


def _use_rng(model, rng):
    for m in model.modules():
        if isinstance(m, Dropout):
            m.rng = rng


def _batch_error(out, y):
    return float((out.data.argmax(axis=1) != y).mean())


class _EpochWeight:
    """An epoch hook holding the KD weight lambda of the current epoch."""
    def __init__(self, kd):
        self.kd, self.value = kd, None

    def __call__(self, epoch):
        self.value = self.kd.weight(epoch)


def train_classifier(stage, model, data, spec, rng, teacher_logits=None, kd=None, ckpt_path=None, resume=False,
                     progress=True, step_hooks=()):
    """Train ``model`` on data.x_train/y_train with cross-entropy, or with the KD loss when
    ``kd`` (a KDConfig) and ``teacher_logits`` (N_train, K) are given; validation error
    selects the best epoch, whose weights are restored at the end."""
    if (kd is None) != (teacher_logits is None):
        raise ValueError("KD training needs both teacher_logits and a KDConfig (kd=); plain training neither")
    _use_rng(model, rng)
    opt = spec.make_optimizer(model.parameters())
    x, y = data.x_train, data.y_train
    hooks = spec.epoch_hooks(opt)
    meta = {"loss": "kd" if kd else "ce", "lr": spec.lr, "optimizer": spec.optimizer}
    if kd is not None:
        targets = kd.soft_targets(teacher_logits)  # once per run: the teacher is frozen
        lam = _EpochWeight(kd)
        hooks.append(lam)
        meta["kd"] = kd.describe()

    def loss_fn(idx):
        out = model(Tensor(x[idx]))
        L = F.cross_entropy(out, y[idx]) if kd is None else kd.loss(out, y[idx], targets[idx], lam.value)
        return L, _batch_error(out, y[idx])

    return fit(stage=stage, modules={"model": model}, optimizer=opt, loss_fn=loss_fn,
               val_fn=lambda: error_rate(model, data.x_val, data.y_val), n_train=len(y), cfg=spec.fit, rng=rng,
               ckpt_path=ckpt_path, resume=resume, epoch_hooks=hooks, step_hooks=step_hooks, progress=progress,
               meta=meta, verify=("kd",) if kd else ())


def train_teacher(teacher, data, spec, rng, **kw):
    """The teacher: cross-entropy with dropout (train mode) and max-norm (in the model)."""
    return train_classifier("teacher", teacher, data, spec, rng, **kw)


def train_backprop(student, data, spec, rng, stage="backprop", **kw):
    """Baseline: the student trained by standard backprop on the labels."""
    return train_classifier(stage, student, data, spec, rng, **kw)


def train_kd(student, data, spec, rng, teacher_logits, kd, stage="kd", **kw):
    """KD (FitNets eq. 2) with a KDConfig; with a stage-1-initialised student this is
    FitNets' stage 2."""
    return train_classifier(stage, student, data, spec, rng, teacher_logits=teacher_logits, kd=kd, **kw)


def _train_lower(student, guided, head, head_name, data, spec, rng, loss_fn, val_fn, meta, ckpt_path, resume,
                 progress, step_hooks):
    # stage 1: the student's layers up to ``guided`` plus a head on top, nothing else
    opt = spec.make_optimizer(student.parameters_until(guided) + head.parameters())
    lower = LayerSubset(student, student.names_until(guided))
    return fit(stage="stage1", modules={"student": lower, head_name: head}, optimizer=opt, loss_fn=loss_fn,
               val_fn=val_fn, n_train=len(data.x_train), cfg=spec.fit, rng=rng, ckpt_path=ckpt_path, resume=resume,
               epoch_hooks=spec.epoch_hooks(opt), step_hooks=step_hooks, progress=progress, meta=meta)


def train_hints(student, guided, regressor, teacher_hints, data, spec, rng, reduction="paper",
                val_hints=None, ckpt_path=None, resume=False, progress=True, step_hooks=()):
    """Stage 1: train the student's layers up to ``guided`` plus ``regressor`` on the hint
    loss against precomputed ``teacher_hints`` (N, Hh, Wh, Ch) of the training set. Only those
    parameters are updated; the validation metric is the hint loss on ``val_hints`` (the
    official code keeps the best-on-validation weights); without them, the hint loss on the
    training digits chooses the epoch."""
    x = data.x_train
    # the digits whose hint loss chooses the best epoch
    val_x, val_h = (data.x_val, val_hints) if val_hints is not None else (x, teacher_hints)

    def loss_fn(idx):
        g = student(Tensor(x[idx]), until=guided)
        return F.hint_loss(regressor(g), Tensor(teacher_hints[idx]), reduction), None

    def val_fn():
        total = 0.0
        with no_grad():
            for i in range(0, len(val_x), 500):
                r = regressor(student(Tensor(val_x[i:i + 500]), until=guided))
                total += float(F.hint_loss(r, Tensor(val_h[i:i + 500]), reduction).data) * len(r)
        return total / len(val_x)

    meta = {"loss": "hint", "reduction": reduction, "guided": guided}
    return _train_lower(student, guided, regressor, "regressor", data, spec, rng, loss_fn, val_fn, meta, ckpt_path,
                        resume, progress, step_hooks)


def train_label_stage1(student, guided, classifier, data, spec, rng, ckpt_path=None, resume=False, progress=True,
                       step_hooks=()):
    """Stage 1 with labels instead of hints (deep supervision, as in Deeply-Supervised Nets):
    the student's layers up to ``guided`` plus an auxiliary ``classifier`` on the guided
    layer (``aux_classifier``), trained with cross-entropy on the labels; the classifier's
    validation error selects the best epoch. Stage 2 then drops the classifier, as FitNets
    drops the regressor."""
    x, y = data.x_train, data.y_train
    head = lambda xb: classifier(student(Tensor(xb), until=guided))

    def loss_fn(idx):
        out = head(x[idx])
        return F.cross_entropy(out, y[idx]), _batch_error(out, y[idx])

    def val_fn():
        with no_grad():
            wrong = sum(int((head(data.x_val[i:i + 500]).data.argmax(axis=1) != data.y_val[i:i + 500]).sum())
                        for i in range(0, len(data.x_val), 500))
        return wrong / len(data.x_val)

    meta = {"loss": "ce at the guided layer", "guided": guided}
    return _train_lower(student, guided, classifier, "classifier", data, spec, rng, loss_fn, val_fn, meta,
                        ckpt_path, resume, progress, step_hooks)


def train_single_stage(student, guided, regressor, teacher_hints, data, spec, rng, beta, reduction="paper",
                       stage="single-stage", ckpt_path=None, resume=False, progress=True, step_hooks=()):
    """The single-stage "FitNet" of most distillation libraries (not the paper's method):
    the whole student and the regressor trained jointly from the first step on
    cross-entropy + ``beta`` x the hint loss (``reduction`` as in ``hint_loss``); the
    validation error selects the best epoch, and the regressor is dropped afterwards."""
    if not np.isfinite(beta) or beta < 0:
        raise ValueError(f"the hint weight beta must be a finite number >= 0, got {beta!r}")
    x, y = data.x_train, data.y_train
    opt = spec.make_optimizer(student.parameters() + regressor.parameters())

    def loss_fn(idx):
        taps = {guided: None}
        out = student(Tensor(x[idx]), taps=taps)
        hint = F.hint_loss(regressor(taps[guided]), Tensor(teacher_hints[idx]), reduction)
        return F.cross_entropy(out, y[idx]) + hint * float(beta), _batch_error(out, y[idx])

    meta = {"loss": "ce + beta * hint", "beta": float(beta), "reduction": reduction, "guided": guided}
    return fit(stage=stage, modules={"model": student, "regressor": regressor}, optimizer=opt, loss_fn=loss_fn,
               val_fn=lambda: error_rate(student, data.x_val, data.y_val), n_train=len(y), cfg=spec.fit, rng=rng,
               ckpt_path=ckpt_path, resume=resume, epoch_hooks=spec.epoch_hooks(opt), step_hooks=step_hooks,
               progress=progress, meta=meta, verify=("beta", "guided"))


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
