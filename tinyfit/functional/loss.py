"""Losses: cross-entropy (hard and soft targets), the FitNets hint loss and the KD loss.

All reduce to a scalar averaged over the batch (axis 0). Logits are (N, K).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import backend
from ..autograd import Function, Tensor, no_grad
from .activation import _log_softmax, check_temperature, soften, softmax

__all__ = ["cross_entropy", "soft_cross_entropy", "hint_loss", "kd_loss", "kd_loss_targets", "check_labels",
           "check_kd_weight"]


def check_labels(labels, n, k):
    """Validate integer labels of shape (n,) with values in [0, k). On the GPU the value
    range is not checked (it would copy to the host on every step); data loaders check it."""
    if labels.shape != (n,):
        raise ValueError(f"labels must have shape ({n},) to match the logits' batch, got {labels.shape}")
    if labels.dtype.kind not in "iu":
        raise ValueError(f"labels must be integers (class indices), got dtype {labels.dtype}")
    if backend.device_of(labels) != "cpu":
        return
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or hi >= k:
        raise ValueError(f"labels must lie in [0, {k - 1}] for {k} classes, found values in [{lo}, {hi}]")


class CrossEntropy(Function):
    """mean_n -log softmax(x_n / T)[t_n] for logits x (N, K) and integer labels t (N,)."""
    def __init__(self, labels, T=1.0):
        self.labels, self.T = labels, check_temperature(T)

    def forward(self, x):
        xp = backend.get_array_module(x, self.labels)
        if x.ndim != 2:
            raise ValueError(f"cross_entropy expects logits (N, K), got shape {x.shape}")
        N, K = x.shape
        check_labels(self.labels, N, K)
        z = soften(x, self.T)
        self.logp = _log_softmax(z, xp)
        return -self.logp[xp.arange(N), self.labels].mean()

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        N = self.logp.shape[0]
        g = xp.exp(self.logp)
        g[xp.arange(N), self.labels] -= 1
        return g * (gy / (N * self.T))


class SoftCrossEntropy(Function):
    """mean_n -sum_k q_nk log softmax(x_n / T)_k for logits x (N, K), targets q (N, K)."""
    def __init__(self, T=1.0):
        self.T = check_temperature(T)

    def forward(self, x, q):
        xp = backend.get_array_module(x, q)
        if x.ndim != 2 or q.shape != x.shape:
            raise ValueError(f"soft_cross_entropy expects logits and targets of one shape (N, K), "
                             f"got {x.shape} and {q.shape}")
        z = soften(x, self.T)
        self.logp, self.q = _log_softmax(z, xp), q
        return -(q * self.logp).sum() / x.dtype.type(x.shape[0])  # NumPy 1.x: a scalar / int is float64

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        N = self.q.shape[0]
        gx = gq = None
        if self.needs_grad[0]:
            p = xp.exp(self.logp)
            gx = (p * self.q.sum(axis=-1, keepdims=True) - self.q) * (gy / (N * self.T))
        if self.needs_grad[1]:
            gq = -self.logp * (gy / N)
        return gx, gq


class HintLoss(Function):
    """1/2 ||a - b||^2 summed per example, averaged over the batch ('paper'),
    or the official code's variant ('code': summed over the last spatial axis
    only, averaged over batch, the other spatial axis and channels)."""
    def __init__(self, reduction="paper"):
        if reduction not in ("paper", "code"):
            raise ValueError(f"hint loss reduction must be 'paper' or 'code', got {reduction!r}")
        self.reduction = reduction

    def forward(self, a, b):
        if a.shape != b.shape:
            raise ValueError(f"hint loss needs equal shapes: regressor output {a.shape} vs teacher hint {b.shape}")
        self.d = a - b
        sq = self.d * self.d
        if self.reduction == "paper":
            self.scale = 1.0 / a.shape[0]
        else:  # NHWC: sum over W (axis 2), mean over N, H, C
            self.scale = 1.0 / (a.size // a.shape[2])
        return sq.sum() * a.dtype.type(0.5 * self.scale)

    def backward(self, gy):
        g = self.d * (gy * self.scale)
        return (g if self.needs_grad[0] else None,
                -g if self.needs_grad[1] else None)


def cross_entropy(logits, labels, T=1.0):
    """Mean cross-entropy of ``logits`` (N, K) against integer ``labels`` (N,)."""
    labels = labels.data if isinstance(labels, Tensor) else labels
    return CrossEntropy(labels, T)(logits)


def soft_cross_entropy(logits, targets, T=1.0):
    """H(targets, softmax(logits / T)) = -sum q log p, averaged over the batch."""
    return SoftCrossEntropy(T)(logits, targets)


def hint_loss(regressed, hint, reduction="paper"):
    """FitNets eq. 3: 1/2 ||u_h - r(v_g)||^2 (per example, batch mean); arrays NHWC."""
    return HintLoss(reduction)(regressed, hint)


@dataclass(frozen=True)
class KDTerm:
    """The soft term of the KD loss, its settings checked once (the one place the KD
    temperatures and scaling are decided; ``kd_loss`` and ``fitnets.KDConfig`` use it).

    tau: the teacher's temperature (the paper: 3). soft: 'ce' (the paper) or 'kl'
    (KL(P_T || P_S): the same gradient, zero at a match). tau_squared: multiply the soft term
    by tau^2 (Hinton et al.; not the paper's). student_tau: the student's temperature in the
    soft term, default ``tau`` (the official code effectively used 1; docs/fitnets.md)."""
    tau: float = 3.0
    soft: str = "ce"
    tau_squared: bool = False
    student_tau: float = None

    def __post_init__(self):
        check_temperature(self.tau)
        if self.student_tau is not None:
            check_temperature(self.student_tau)
        if self.soft not in ("ce", "kl"):
            raise ValueError(f"soft must be 'ce' or 'kl', got {self.soft!r}")

    def targets(self, teacher_logits):
        """P_T^tau = softmax(teacher_logits / tau) (N, K), a constant (no graph)."""
        with no_grad():
            return softmax(Tensor(teacher_logits), self.tau).data

    def loss(self, student_logits, labels, q, lam):
        """H(y, P_S) + lam * (tau^2) * H(q, P_S^student_tau) from the targets ``q`` (N, K)."""
        s_tau = self.tau if self.student_tau is None else self.student_tau
        return kd_loss_targets(student_logits, labels, q, lam, s_tau, self.soft,
                               self.tau * self.tau if self.tau_squared else 1.0)


def kd_loss(student_logits, labels, teacher_logits, lam, tau=3.0, soft="ce",
            tau_squared=False, student_tau=None):
    """FitNets eq. 2: H(y, P_S) + lam * H(P_T^tau, P_S^tau), each a batch mean; the options
    are ``KDTerm``'s. The teacher's logits are treated as constants. Training loops that see
    the same teacher outputs every epoch compute P_T^tau once (``KDTerm.targets``)."""
    term = KDTerm(tau, soft, tau_squared, student_tau)
    return term.loss(student_logits, labels, term.targets(teacher_logits), check_kd_weight(lam))


def check_kd_weight(lam):
    if not np.isscalar(lam) or not np.isfinite(lam) or lam < 0:
        raise ValueError(f"KD weight lambda must be a finite number >= 0, got {lam!r}")
    return float(lam)


def kd_loss_targets(student_logits, labels, q, lam, student_tau, soft="ce", scale=1.0):
    """The KD loss from the teacher's softened outputs ``q`` = P_T^tau (N, K), already
    computed: H(y, P_S) + lam * scale * H(q, P_S^student_tau) (or the KL form). No argument
    checks: ``KDTerm`` validates them once."""
    hard = cross_entropy(student_logits, labels)
    if lam == 0:
        return hard
    soft_term = soft_cross_entropy(student_logits, Tensor(q.astype(student_logits.dtype, copy=False)), student_tau)
    if soft == "kl":
        xp = backend.get_array_module(q)
        ent = -(q * xp.log(xp.maximum(q, np.finfo(q.dtype).tiny))).sum() / q.dtype.type(q.shape[0])
        soft_term = soft_term - ent.astype(student_logits.dtype)
    return hard + soft_term * (lam * scale)
