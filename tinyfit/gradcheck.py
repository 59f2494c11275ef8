"""Numerical gradient checking along random directions (float64).

For each input x_i that requires grad, draw a random direction d and compare
the directional derivative from central differences,
    (L(x_i + eps d) - L(x_i - eps d)) / (2 eps),  L(x) = sum(gy * f(x)),
with the analytic one, sum(x_i.grad * d). Two forward passes per input, not two
per element, so large convolutions stay cheap to check.
"""
from __future__ import annotations

import numpy as np

from . import backend
from .autograd import Tensor, no_grad

__all__ = ["gradcheck", "GradcheckError"]


class GradcheckError(AssertionError):
    """The analytic and numerical directional derivatives disagree."""


def _outputs(y):
    return list(y) if isinstance(y, (tuple, list)) else [y]


def gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-4, seed=0, directions=1):
    """Check ``fn(*inputs)`` against central differences; return True or raise GradcheckError.

    fn: callable taking Tensors, returning a Tensor (or a tuple of Tensors).
    inputs: Tensors (those with requires_grad=True are checked; a module's
        parameters can be included by closing over them and listing them here).
    The check uses float64: inputs of another float dtype raise ValueError.
    """
    inputs = list(inputs)
    checked = [x for x in inputs if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True, nothing to check")
    for x in checked:
        if x.dtype != np.float64:
            raise ValueError(f"gradcheck needs float64 inputs for accurate differences, got {x.dtype}; "
                             "make them with dtype=np.float64 (module.astype(np.float64) for layers)")
    rng = np.random.default_rng(seed)
    xp = backend.get_array_module(*[x.data for x in checked])

    def as_dev(a):
        return xp.asarray(a) if xp is not np else a

    ys = _outputs(fn(*inputs))
    gys = [as_dev(rng.standard_normal(y.shape)) for y in ys]

    def objective():
        with no_grad():
            return sum(float((gy * y.data).sum()) for gy, y in zip(gys, _outputs(fn(*inputs))))

    for x in checked:
        x.grad = None
    total = None
    for y, gy in zip(ys, gys):
        s = (y * Tensor(gy)).sum()
        total = s if total is None else total + s
    total.backward()
    for x in checked:
        analytic_grad = x.grad if x.grad is not None else xp.zeros_like(x.data)
        for _ in range(directions):
            d = as_dev(rng.standard_normal(x.shape))
            orig = x.data
            x.data = orig + eps * d
            plus = objective()
            x.data = orig - eps * d
            minus = objective()
            x.data = orig
            numeric = (plus - minus) / (2 * eps)
            analytic = float((analytic_grad * d).sum())
            if not abs(numeric - analytic) <= atol + rtol * max(abs(numeric), abs(analytic)):
                name = x.name or f"input {inputs.index(x)}"
                raise GradcheckError(
                    f"gradient of {name} (shape {x.shape}) is wrong: directional derivative "
                    f"analytic {analytic:.10g} vs numerical {numeric:.10g} "
                    f"(difference {abs(numeric - analytic):.3g}, atol {atol}, rtol {rtol})")
    return True
