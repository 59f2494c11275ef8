"""Training hooks: callables that ``training.fit`` runs after each step's backward pass
(``step_hooks``), seeing the modules and their gradients. Unused, they cost nothing.

``GradientRecorder`` records, per layer, the gradient norm and the weight norm at every step
and, every few steps, the scale (root mean square) of each layer's output on a fixed probe
batch: where the training signal dies in a deep, thin network, and how hints change that.
"""
from __future__ import annotations

import math

from . import backend
from .autograd import Tensor, no_grad

__all__ = ["GradientRecorder", "layer_norms", "activation_scales"]

_MAIN = ("model", "student")  # fit's module names whose children are the network's layers


def _layer_of(module_name, module, param_name):
    child = param_name.split(".", 1)[0]
    children = dict(module.named_children())
    if len(children) > 1 and child in children:  # a stack of layers
        return child if module_name in _MAIN else f"{module_name}/{child}"
    return module_name


def layer_norms(modules, attr="grad"):
    """{layer: L2 norm over the layer's parameters' ``attr`` ('grad' or 'data')}, layers in
    order; ``modules`` as fit gives them ({name: Module})."""
    sq = {}
    for mname, mod in modules.items():
        for pname, p in mod.named_parameters():
            a = getattr(p, attr)
            if a is None:
                continue
            layer = _layer_of(mname, mod, pname)
            sq[layer] = sq.get(layer, 0.0) + float((a.astype("float64") ** 2).sum())
    return {k: math.sqrt(v) for k, v in sq.items()}


def activation_scales(net, x):
    """{layer: root mean square of its output} for probe images ``x`` (N, H, W, C), passing
    through the layers of ``net`` (a Sequential, or a subset of its layers) in order, in eval
    mode and without a graph; the mode is restored afterwards."""
    was = net.training
    net.eval()
    out = {}
    try:
        with no_grad():
            h = Tensor(backend.to_device(x, net.device))
            for name, layer in net.named_children():
                h = layer(h)
                if layer.parameters():
                    out[name] = math.sqrt(float((h.data.astype("float64") ** 2).mean()))
    finally:
        net.train(was)
    return out


class GradientRecorder:
    """A step hook that keeps ``records``: one dict per step with the stage, epoch, step,
    loss, per-layer gradient norms ``grad``, weight norms ``weight`` and the norm of the
    change that step's update made to each layer ``update`` (filled in at the next step), and
    every ``every`` steps (and at each epoch's first step) the per-layer output scales ``act`` on ``probe``
    (N, H, W, C images; None: no activations). It reads, never writes: training with it
    gives the same weights as without."""
    def __init__(self, probe=None, every=1):
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive number of steps, got {every!r}")
        self.probe, self.every, self.records = probe, every, []
        self._last = None  # (stage, {layer: [weight copies]}) at the previous step

    def __call__(self, info):
        rec = {"stage": info.stage, "epoch": info.epoch, "step": info.step, "loss": info.loss,
               "grad": layer_norms(info.modules, "grad"), "weight": layer_norms(info.modules, "data")}
        now = _weights(info.modules)
        if self._last is not None and self._last[0] == info.stage and self.records:
            # what the previous step's update (and max-norm projection) moved each layer by:
            # under RMSProp this, not the gradient norm, says whether a layer learns
            self.records[-1]["update"] = {k: math.sqrt(sum(float(((a - b).astype("float64") ** 2).sum())
                                                           for a, b in zip(v, self._last[1][k])))
                                          for k, v in now.items() if k in self._last[1]}
        self._last = (info.stage, now)
        if self.probe is not None and (info.step % self.every == 0):
            net = next((info.modules[m] for m in _MAIN if m in info.modules), None)
            if net is not None:
                rec["act"] = activation_scales(net, self.probe)
        self.records.append(rec)


def _weights(modules):
    out = {}
    for mname, mod in modules.items():
        for pname, p in mod.named_parameters():
            out.setdefault(_layer_of(mname, mod, pname), []).append(p.data.copy())
    return out
