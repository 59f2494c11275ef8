"""Shared test helpers: inputs on a device, tie-free and non-contiguous arrays."""
import numpy as np

from tinyfit import Tensor, backend


def arr(rng, shape, noncontig=False, tie_free=False, scale=1.0):
    """A float64 array of ``shape``; tie_free gives distinct values spaced >= 0.01*scale;
    noncontig returns a transposed (non-C-contiguous) view."""
    n = int(np.prod(shape))
    if tie_free:
        a = (rng.permutation(n) - n / 2) * 0.01 * scale
    else:
        a = rng.standard_normal(n) * scale
    if noncontig and len(shape) > 1:
        return a.reshape(shape[::-1]).transpose()
    return a.reshape(shape)


def T(a, device="cpu", requires_grad=True):
    """A tensor on ``device`` (non-contiguous views stay non-contiguous on CPU)."""
    data = a if device == "cpu" else backend.to_device(np.ascontiguousarray(a), device)
    return Tensor(data, requires_grad=requires_grad)


def np_(t):
    return backend.to_numpy(t.data if isinstance(t, Tensor) else t)
