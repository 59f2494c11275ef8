"""Optimisers (SGD with momentum, RMSProp, Adam) and max-norm projection.

Updates are in place on each parameter's array. After every step the
optimiser projects parameters that carry a ``max_norm`` (see nn.Parameter):
each filter / column whose L2 norm exceeds it is scaled back onto the ball.
"""
from __future__ import annotations

import numpy as np

from . import backend

__all__ = ["Optimizer", "SGD", "RMSProp", "Adam", "apply_max_norm"]


def apply_max_norm(params):
    """Scale every slice of p (norm over p.norm_axes) with norm > p.max_norm down to it."""
    for p in params:
        if getattr(p, "max_norm", None) is None:
            continue
        xp = backend.get_array_module(p.data)
        norms = xp.sqrt((p.data * p.data).sum(axis=p.norm_axes, keepdims=True))
        scale = xp.minimum(1, p.max_norm / xp.maximum(norms, 1e-12)).astype(p.dtype)
        p.data *= scale


class Optimizer:
    """Base: ``step()`` updates parameters that have a gradient, ``zero_grad()`` clears them.

    ``state_dict()`` returns {'hyper': dict of numbers, 'slots': {name: array}} so that
    a checkpoint can restore the optimiser exactly.
    """
    slot_names: tuple = ()

    def __init__(self, params, lr):
        self.params = list(params)
        if not self.params:
            raise ValueError("optimizer got an empty parameter list")
        if not np.isfinite(lr) or lr <= 0:
            raise ValueError(f"learning rate must be a finite number > 0, got {lr!r}")
        self.lr = float(lr)
        self.steps = 0
        self.slots = {s: [None] * len(self.params) for s in self.slot_names}

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def step(self):
        self.steps += 1
        for i, p in enumerate(self.params):
            if p.grad is not None:
                self._update(i, p, p.grad)
        apply_max_norm(self.params)

    def _slot(self, name, i, p):
        s = self.slots[name][i]
        if s is None:
            s = self.slots[name][i] = backend.get_array_module(p.data).zeros_like(p.data)
        return s

    def _update(self, i, p, g):
        raise NotImplementedError

    def hyper(self):
        return {"lr": self.lr, "steps": self.steps}

    def state_dict(self):
        slots = {}
        for s, arrs in self.slots.items():
            for i, a in enumerate(arrs):
                if a is not None:
                    slots[f"{s}.{i}"] = backend.to_numpy(a).copy()
        return {"hyper": self.hyper(), "slots": slots}

    def load_state_dict(self, state):
        for k, v in state["hyper"].items():
            setattr(self, k, v)
        self.slots = {s: [None] * len(self.params) for s in self.slot_names}
        for key, a in state["slots"].items():
            s, i = key.rsplit(".", 1)
            i = int(i)
            if s not in self.slots or i >= len(self.params) or tuple(a.shape) != self.params[i].shape:
                raise ValueError(f"optimizer state {key!r} (shape {tuple(a.shape)}) does not fit these parameters")
            xp = backend.get_array_module(self.params[i].data)
            self.slots[s][i] = xp.asarray(a).astype(self.params[i].dtype)


class SGD(Optimizer):
    """v = momentum * v - lr * g; p += v (plain SGD when momentum == 0)."""
    slot_names = ("velocity",)

    def __init__(self, params, lr, momentum=0.0):
        super().__init__(params, lr)
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        self.momentum = float(momentum)

    def hyper(self):
        return {**super().hyper(), "momentum": self.momentum}

    def _update(self, i, p, g):
        if self.momentum == 0:
            p.data -= p.dtype.type(self.lr) * g
            return
        v = self._slot("velocity", i, p)
        v *= p.dtype.type(self.momentum)
        v -= p.dtype.type(self.lr) * g
        p.data += v


class RMSProp(Optimizer):
    """The official FitNets code's RMSProp (pylearn2): ms = decay ms + (1-decay) g^2,
    p -= lr g / max(sqrt(ms), eps). No bias correction; eps is a floor, not an addend."""
    slot_names = ("mean_square",)

    def __init__(self, params, lr=0.0005, decay=0.9, eps=1e-5):
        super().__init__(params, lr)
        if not 0 <= decay < 1:
            raise ValueError(f"decay must be in [0, 1), got {decay!r}")
        self.decay, self.eps = float(decay), float(eps)

    def hyper(self):
        return {**super().hyper(), "decay": self.decay, "eps": self.eps}

    def _update(self, i, p, g):
        xp = backend.get_array_module(g)
        ms = self._slot("mean_square", i, p)
        t = p.dtype.type
        ms *= t(self.decay)
        ms += t(1 - self.decay) * (g * g)
        denom = xp.sqrt(ms)
        xp.maximum(denom, t(self.eps), out=denom)
        p.data -= t(self.lr) * g / denom


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction."""
    slot_names = ("m", "v")

    def __init__(self, params, lr=0.001, betas=(0.9, 0.999), eps=1e-8):
        super().__init__(params, lr)
        self.beta1, self.beta2 = map(float, betas)
        self.eps = float(eps)

    def hyper(self):
        return {**super().hyper(), "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}

    def _update(self, i, p, g):
        xp = backend.get_array_module(g)
        t = p.dtype.type
        m, v = self._slot("m", i, p), self._slot("v", i, p)
        m *= t(self.beta1)
        m += t(1 - self.beta1) * g
        v *= t(self.beta2)
        v += t(1 - self.beta2) * (g * g)
        c1 = 1 - self.beta1 ** self.steps
        c2 = 1 - self.beta2 ** self.steps
        p.data -= t(self.lr / c1) * m / (xp.sqrt(v / t(c2)) + t(self.eps))
