"""Modules, parameters and layers (all image tensors are channels-last, NHWC)."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from . import backend
from . import functional as F
from . import random as _random
from .autograd import Tensor
from .functional.conv import Conv2d as ConvOp
from .functional.pool import MaxPool2d as MaxPoolOp, Maxout as MaxoutOp

__all__ = ["spec_shapes", "Parameter", "Module", "Linear", "Conv2d", "MaxoutConv2d", "Dropout", "Flatten",
           "Sequential", "build", "eval_outputs", "eval_layers"]


class Parameter(Tensor):
    """A trainable tensor. ``max_norm``/``norm_axes``: optional norm constraint that
    the optimisers apply after each update (the norm is taken over ``norm_axes``)."""
    __slots__ = ("max_norm", "norm_axes")

    def __init__(self, data, max_norm=None, norm_axes=None, name=None):
        super().__init__(data, requires_grad=True, name=name)
        self.max_norm = max_norm
        self.norm_axes = norm_axes


def _uniform(rng, shape, r):
    return rng.uniform(-r, r, size=shape).astype(np.float32)


def _init_weight(rng, shape, init, fan_in, fan_out):
    """init: a float r for U(-r, r), or 'glorot' for U(+-sqrt(6 / (fan_in + fan_out)))."""
    rng = rng or _random.default_generator()
    if init == "glorot":
        return _uniform(rng, shape, np.sqrt(6.0 / (fan_in + fan_out)))
    if isinstance(init, (int, float)) and init > 0:
        return _uniform(rng, shape, float(init))
    raise ValueError(f"init must be 'glorot' or a positive float (uniform range), got {init!r}")


class Module:
    """Base class: holds Parameters and sub-Modules set as attributes."""
    @staticmethod
    def param_shapes(**config):
        """{parameter name: shape} of a layer built with ``config`` (none by default)."""
        return {}

    def __init__(self):
        object.__setattr__(self, "_params", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name, value):
        if isinstance(value, Parameter):
            self._params[name] = value
            value.name = value.name or name
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        raise NotImplementedError

    def planned(self, shape, dtype, xp):
        """This layer's eval-mode forward for input arrays of ``shape``, as a function x -> y
        whose buffers are allocated here, once (``tinyfit.predictor``); the weights are read at
        each call. None: the layer has no plan and the predictor runs its forward."""
        return None

    def named_parameters(self, prefix=""):
        for n, p in self._params.items():
            yield prefix + n, p
        for mn, m in self._modules.items():
            yield from m.named_parameters(prefix + mn + ".")

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def named_children(self):
        """[(name, sub-module)] in the order they were set (a Sequential's layers)."""
        return list(self._modules.items())

    def modules(self):
        yield self
        for m in self._modules.values():
            yield from m.modules()

    def num_parameters(self, weights_only=False):
        """Number of scalars; weights_only counts weights but not biases (the paper's convention)."""
        return int(sum(p.size for n, p in self.named_parameters()
                       if not (weights_only and n.rsplit(".", 1)[-1] == "b")))

    def train(self, mode=True):
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    def to(self, device):
        """Move every parameter to ``device`` ('cpu' or 'cuda') in place."""
        for p in self.parameters():
            p.data = backend.to_device(p.data, device)
            p.grad = None
        return self

    def astype(self, dtype):
        """Cast every parameter to ``dtype`` in place (float64 for gradient checks)."""
        for p in self.parameters():
            p.data = p.data.astype(dtype)
            p.grad = None
        return self

    @property
    def device(self):
        ps = self.parameters()
        return ps[0].device if ps else "cpu"

    def state_dict(self):
        """{parameter name: NumPy array copy}."""
        return OrderedDict((n, backend.to_numpy(p.data).copy()) for n, p in self.named_parameters())

    def load_state_dict(self, state):
        """Copy arrays into the parameters; names and shapes must match exactly."""
        own = OrderedDict(self.named_parameters())
        missing = [n for n in own if n not in state]
        extra = [n for n in state if n not in own]
        shape = [f"{n}: expected {own[n].shape}, got {tuple(np.shape(state[n]))}"
                 for n in own if n in state and tuple(np.shape(state[n])) != own[n].shape]
        if missing or extra or shape:
            parts = []
            if missing:
                parts.append("missing: " + ", ".join(missing))
            if extra:
                parts.append("unexpected: " + ", ".join(extra))
            if shape:
                parts.append("shape mismatch: " + "; ".join(shape))
            raise ValueError("state does not fit this model's architecture (" + " | ".join(parts) +
                             "); load it into the architecture it was saved from.")
        for n, p in own.items():
            xp = backend.get_array_module(p.data)
            p.data = (xp.asarray(np.asarray(state[n]), dtype=p.dtype).copy() if xp is np
                      else xp.asarray(np.asarray(state[n], dtype=p.dtype)))
        return self


class Linear(Module):
    """y (N, out) = x (N, in) @ W (in, out) + b; max_norm constrains each column of W."""
    def __init__(self, in_features, out_features, init="glorot", max_norm=None, bias=True, rng=None):
        super().__init__()
        self.config = dict(in_features=in_features, out_features=out_features, max_norm=max_norm, bias=bias)
        self.W = Parameter(_init_weight(rng, (in_features, out_features), init, in_features, out_features),
                           max_norm=max_norm, norm_axes=(0,))
        self.b = Parameter(np.zeros(out_features, np.float32)) if bias else None

    @staticmethod
    def param_shapes(in_features, out_features, bias=True, **_):
        """{parameter name: shape} for this config, without building the layer."""
        return {"W": (in_features, out_features), **({"b": (out_features,)} if bias else {})}

    def forward(self, x):
        return F.linear(x, self.W, self.b)

    def planned(self, shape, dtype, xp):
        y = xp.empty((shape[0], self.W.shape[1]), dtype=dtype)

        def linear(x):   # F.linear's arithmetic: the product, then the bias added
            xp.matmul(x, self.W.data, out=y)
            if self.b is not None:
                y[...] += self.b.data
            return y
        return linear


class Conv2d(Module):
    """NHWC convolution, W (k, k, C_in, C_out); max_norm constrains each output filter."""
    def __init__(self, in_channels, out_channels, kernel, stride=1, pad=0, init="glorot",
                 max_norm=None, bias=True, rng=None):
        super().__init__()
        self.config = dict(in_channels=in_channels, out_channels=out_channels, kernel=kernel, stride=stride,
                           pad=pad, max_norm=max_norm, bias=bias)
        k = kernel
        self.stride, self.pad = stride, pad
        self.W = Parameter(_init_weight(rng, (k, k, in_channels, out_channels), init,
                                        k * k * in_channels, k * k * out_channels),
                           max_norm=max_norm, norm_axes=(0, 1, 2))
        self.b = Parameter(np.zeros(out_channels, np.float32)) if bias else None

    @staticmethod
    def param_shapes(in_channels, out_channels, kernel, bias=True, **_):
        """{parameter name: shape} for this config, without building the layer."""
        return {"W": (kernel, kernel, in_channels, out_channels), **({"b": (out_channels,)} if bias else {})}

    def forward(self, x):
        return F.conv2d(x, self.W, self.b, self.stride, self.pad)

    def planned(self, shape, dtype, xp):
        _, run = ConvOp(self.stride, self.pad).planned(shape, self.W.shape, self.b is not None, dtype, xp)
        return lambda x: run(x, self.W.data, None if self.b is None else self.b.data)

    def output_shape(self, shape):
        return ConvOp(self.stride, self.pad).output_shape(shape, self.W.shape)


class MaxoutConv2d(Module):
    """conv (channels*pieces maps) -> maxout over groups of ``pieces`` -> optional max pool.

    x (N, H, W, C_in) -> (N, H', W', channels). pool=None skips pooling;
    ceil_mode=True is the paper's code's pooling size rule.
    """
    def __init__(self, in_channels, channels, pieces, kernel, pad=0, pool=None, pool_stride=None,
                 ceil_mode=True, init=0.005, max_norm=None, rng=None):
        super().__init__()
        self.config = dict(in_channels=in_channels, channels=channels, pieces=pieces, kernel=kernel, pad=pad,
                           pool=pool, pool_stride=pool_stride, ceil_mode=ceil_mode, max_norm=max_norm)
        self.conv = Conv2d(in_channels, channels * pieces, kernel, 1, pad, init, max_norm, rng=rng)
        self.channels, self.pieces = channels, pieces
        self.pool, self.pool_stride, self.ceil_mode = pool, pool_stride or pool, ceil_mode

    @staticmethod
    def param_shapes(in_channels, channels, pieces, kernel, **_):
        """{parameter name: shape} for this config, without building the layer."""
        return {f"conv.{k}": v for k, v in Conv2d.param_shapes(in_channels, channels * pieces, kernel).items()}

    def forward(self, x):
        y = F.maxout(self.conv(x), self.pieces)
        if self.pool:
            y = F.max_pool2d(y, self.pool, self.pool_stride, ceil_mode=self.ceil_mode)
        return y

    def planned(self, shape, dtype, xp):
        conv = self.conv.planned(shape, dtype, xp)
        n, h, w, c = self.conv.output_shape(shape)
        maxout = MaxoutOp(self.pieces).planned((n, h, w, c), dtype, xp)
        if not self.pool:
            return lambda x: maxout(conv(x))
        pool = MaxPoolOp(self.pool, self.pool_stride, ceil_mode=self.ceil_mode).planned(
            (n, h, w, c // self.pieces), dtype, xp)
        return lambda x: pool(maxout(conv(x)))


class Dropout(Module):
    """Inverted dropout with probability ``p`` of dropping (identity in eval mode)."""
    def __init__(self, p, rng=None):
        super().__init__()
        F.check_dropout(p)
        self.config = dict(p=p)
        self.p, self.rng = p, rng

    def forward(self, x):
        return F.dropout(x, self.p, self.training, self.rng)

    def planned(self, shape, dtype, xp):
        return lambda x: x   # eval mode: the identity


class Flatten(Module):
    """(N, ...) -> (N, prod(...))."""
    def __init__(self):
        super().__init__()
        self.config = {}

    def forward(self, x):
        return F.flatten(x)

    def planned(self, shape, dtype, xp):
        return lambda x: x.reshape(x.shape[0], -1)


class Sequential(Module):
    """Named layers run in order; ``forward(x, until=name)`` stops after layer ``name``
    (to read a hint or guided layer), and ``layer_names`` lists them."""
    def __init__(self, layers, input_shape=None):
        super().__init__()
        items = list(layers.items()) if isinstance(layers, dict) else list(layers)
        self.input_shape = tuple(input_shape) if input_shape is not None else None
        self.layer_names = []
        for name, m in items:
            if not isinstance(m, Module):
                raise TypeError(f"layer {name!r} is not a Module: {m!r}")
            setattr(self, name, m)
            self.layer_names.append(name)

    def __getitem__(self, name):
        return self._modules[name]

    def names_until(self, name):
        """Layer names up to and including ``name``."""
        if name not in self.layer_names:
            raise KeyError(f"no layer named {name!r}; layers are {self.layer_names}")
        return self.layer_names[:self.layer_names.index(name) + 1]

    def forward(self, x, until=None, taps=None):
        """The output of the last layer (or of layer ``until``); with a dict ``taps``, the
        outputs of the layers it names are stored in it on the way."""
        names = self.layer_names if until is None else self.names_until(until)
        if self.input_shape is not None and tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"this model takes inputs of shape (N, {', '.join(map(str, self.input_shape))}) (channels-last), "
                f"got {tuple(x.shape)}; resize the images or build the model for this size")
        for n in names:
            x = self._modules[n](x)
            if taps is not None and n in taps:
                taps[n] = x
        return x

    def spec(self):
        """A JSON-able description from which ``build`` rebuilds this architecture."""
        return {"type": "Sequential", "input_shape": list(self.input_shape) if self.input_shape else None,
                "layers": [[n, type(self._modules[n]).__name__, self._modules[n].config] for n in self.layer_names]}

    def predict(self, x, batch_size=1000):
        """Class indices (N,) for images x (N, H, W, C), in eval mode and without a graph
        (``tinyfit.predictor``: planned on the first call, its buffers reused after)."""
        return self.predictor(batch_size).predict(x)

    def predict_proba(self, x, T=1.0, batch_size=1000):
        """Class probabilities (N, classes) for images x: the softmax of the outputs at temperature T."""
        return self.predictor(batch_size).predict_proba(x, T)

    def __getstate__(self):
        # copies and pickles leave the predictors behind (buffers, a lock); they plan anew
        return {k: v for k, v in self.__dict__.items() if k != "_predictors"}

    def predictor(self, batch_size=1000):
        """This model's ``Predictor`` for batches of ``batch_size`` (one kept per batch size)."""
        from .predictor import Predictor
        cache = self.__dict__.setdefault("_predictors", {})
        if batch_size not in cache:
            cache[batch_size] = Predictor(self, batch_size)
        return cache[batch_size]

    def parameters_until(self, name):
        """Parameters of the layers up to and including ``name``."""
        return [p for n in self.names_until(name) for p in self._modules[n].parameters()]


def eval_outputs(model, x, until=None, batch_size=1000):
    """The outputs of ``model`` for every example of array ``x`` (N, ...): in eval mode (no
    dropout), without a graph, in batches; with ``until`` (a Sequential's layer name) that
    layer's output. The model's train/eval mode is restored afterwards."""
    return eval_layers(model, x, [until], batch_size)[until]


def eval_layers(model, x, names, batch_size=1000):
    """As eval_outputs, for several layers of a Sequential in one pass: {name: outputs}
    (None names the model's output)."""
    from .autograd import no_grad
    layers = [n for n in names if n is not None]
    deepest = None if None in names else max(layers, key=model.layer_names.index)
    was = model.training
    model.eval()
    out = {n: [] for n in names}
    try:
        with no_grad():
            for i in range(0, len(x), batch_size):
                xb, taps = Tensor(x[i:i + batch_size]), dict.fromkeys(layers)
                taps[None] = model(xb, until=deepest, taps=taps) if layers else model(xb)
                for n in names:
                    out[n].append(taps[n].data)
    finally:
        model.train(was)
    xp = backend.get_array_module(*out[names[0]])
    return {n: xp.concatenate(v, axis=0) for n, v in out.items()}


LAYERS = {c.__name__: c for c in (Linear, Conv2d, MaxoutConv2d, Dropout, Flatten)}


def _spec_layers(spec):
    if not isinstance(spec, dict) or spec.get("type") != "Sequential" or not isinstance(spec.get("layers"), list):
        raise ValueError(f"not a model specification: {str(spec)[:200]}")
    out = []
    for entry in spec["layers"]:
        name, kind, cfg = entry
        if kind not in LAYERS:
            raise ValueError(f"unknown layer type {kind!r} in model specification; known: {sorted(LAYERS)}")
        if not isinstance(name, str) or not isinstance(cfg, dict):
            raise ValueError(f"a layer of a model specification is (name, type, config), got {str(entry)[:200]}")
        out.append((name, LAYERS[kind], cfg))
    return out


def spec_shapes(spec):
    """{parameter name: shape} of the Sequential ``spec`` describes, computed from the layers'
    configs without building it (a model file's arrays are checked against it before any is
    read)."""
    shapes = {}
    for name, cls, cfg in _spec_layers(spec):
        for k, shape in cls.param_shapes(**cfg).items():
            if not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
                raise ValueError(f"layer {name!r}: the configuration gives parameter {k} the shape {shape}; every "
                                 "dimension must be a positive integer")
            shapes[f"{name}.{k}"] = tuple(shape)
    return shapes


def build(spec):
    """Rebuild a Sequential from ``Sequential.spec()`` (weights left at their init)."""
    return Sequential([(name, cls(**cfg)) for name, cls, cfg in _spec_layers(spec)], spec.get("input_shape"))
