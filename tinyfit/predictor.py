"""Inference without the autograd layer: a trained ``Sequential`` planned once.

``Predictor(model)`` runs a model's forward pass as a list of array steps, one per layer:
each op's ``planned`` forward (``functional.conv.Conv2d.planned``, ``Maxout.planned``,
``MaxPool2d.planned``: the arithmetic of the autograd forward, the same GEMMs in the same
shapes), planned on the first call for an input shape, with every buffer allocated then and
reused by every later call of that shape. No Function objects, no graph, no stored winners
(which piece or window position won: only backward needs them), dropout off. At the same
batch size its outputs equal ``nn.eval_outputs``' bit for bit (tests/test_predictor.py); at
another batch size the GEMMs have other shapes, which BLAS may block and so round differently:
on the paper's networks, batch 1 against batch 256 differs by at most 2.4e-7 in logits of
about 0.3 (one or two float32 units in the last place), no predicted label changed.

The weights are read from the model at every call, so a predictor follows the model when it is
trained further or loaded into; moving the model to another device or dtype plans anew.
Concurrent callers take turns (a lock: the buffers are shared); for parallel inference give
each thread its own Predictor.

Each layer plans itself (``Module.planned``: Linear, Conv2d, MaxoutConv2d, Dropout as the
identity, Flatten); a layer without a plan runs through its own forward in eval mode, without a
graph.
"""
from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from . import backend
from .autograd import Tensor, no_grad

__all__ = ["Predictor"]

PLANS_KEPT = 4   # input shapes whose buffers are kept (a full batch and a last, shorter one, ...)


class Predictor:
    """Logits, class probabilities and labels of ``model`` (a Sequential with an input
    shape) for images x (N, H, W, C), in batches of at most ``batch_size``."""

    def __init__(self, model, batch_size=1000):
        if getattr(model, "input_shape", None) is None or not hasattr(model, "layer_names"):
            raise TypeError(f"a Predictor needs a Sequential built with an input shape, got {type(model).__name__} "
                            f"(input shape {getattr(model, 'input_shape', None)}); build it with input_shape=(H, W, C)")
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.model, self.batch_size = model, batch_size
        self._first = model.parameters()[0]   # its array says the device and dtype of each call
        self._plans = OrderedDict()
        self._lock = threading.Lock()

    def logits(self, x):
        """The model's outputs (N, classes) for x (N, H, W, C), a new array on the model's device."""
        param = self._first.data
        xp = backend.get_array_module(param)
        if tuple(x.shape[1:]) != self.model.input_shape or x.ndim != 4:
            raise ValueError(
                f"this model takes inputs of shape (N, {', '.join(map(str, self.model.input_shape))}) "
                f"(channels-last), got {tuple(x.shape)}; resize the images or build the model for this size")
        x = xp.asarray(x, dtype=param.dtype)
        out = None
        with self._lock:
            for i in range(0, len(x), self.batch_size):
                y = self._run(x[i:i + self.batch_size], xp)
                if out is None:
                    out = xp.empty((len(x),) + y.shape[1:], dtype=y.dtype)
                out[i:i + len(y)] = y
            if out is None:   # no images: the outputs' shape, from one of zeros
                out = xp.empty((0,) + self._run(xp.zeros((1,) + tuple(self.model.input_shape), x.dtype), xp).shape[1:],
                               dtype=param.dtype)
        return out

    def predict_proba(self, x, T=1.0):
        """Class probabilities (N, classes): the softmax of the logits at temperature T."""
        z = self.logits(x) / T
        z -= z.max(axis=1, keepdims=True)
        xp = backend.get_array_module(z)
        xp.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        return z

    def predict(self, x):
        """Class indices (N,)."""
        return self.logits(x).argmax(axis=1)

    def layer_times(self, x, reps=20):
        """[(layer name, median milliseconds)] of each planned layer on one batch ``x`` (at most
        ``batch_size`` images): where an inference call spends its time."""
        import statistics
        import time
        self.logits(x)   # planned for this shape
        xp = backend.get_array_module(self._first.data)
        x = xp.asarray(x, dtype=self._first.data.dtype)
        with self._lock:
            steps = self._plans[(x.shape, x.dtype.str, xp.__name__)]
            out = []
            for name, step in zip(self.model.layer_names, steps):
                times = []
                for _ in range(reps):
                    t = time.perf_counter()
                    y = step(x)
                    if xp is not np:
                        backend.synchronize()
                    times.append(time.perf_counter() - t)
                out.append((name, 1000 * statistics.median(times)))
                x = y
        return out

    def _run(self, x, xp):
        key = (x.shape, x.dtype.str, xp.__name__)
        steps = self._plans.get(key)
        if steps is not None:
            self._plans.move_to_end(key)
            for step in steps:
                x = step(x)
            return x
        steps = []   # planned layer by layer on this first batch, which it computes on the way
        for name in self.model.layer_names:
            steps.append(_step(self.model[name], x.shape, x.dtype, xp))
            x = steps[-1](x)
        self._plans[key] = steps
        if len(self._plans) > PLANS_KEPT:
            self._plans.popitem(last=False)
        return x


def _step(m, shape, dtype, xp):
    """A function x -> y computing layer ``m`` for inputs of ``shape``: its own ``planned``
    (buffers allocated there), or, for a layer that has none, its forward in eval mode."""
    step = m.planned(shape, dtype, xp)
    if step is not None:
        return step

    def forward(x):
        was = m.training
        m.eval()
        try:
            with no_grad():
                return m(Tensor(x)).data
        finally:
            m.train(was)
    return forward
