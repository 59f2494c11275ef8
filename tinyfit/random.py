"""One explicit, seeded random generator for initialisation, shuffling and dropout.

``manual_seed(s)`` resets the default generator; anything that draws random
numbers takes ``rng=`` (a numpy.random.Generator) and falls back to it. Initial
weights are always drawn on the host, so CPU and GPU runs start identically.
"""
from __future__ import annotations

import numpy as np

__all__ = ["manual_seed", "default_generator", "uniform_like"]

_rng = np.random.default_rng(0)


def manual_seed(seed: int) -> np.random.Generator:
    """Reset the default generator to ``seed`` and return it."""
    global _rng
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    _rng = np.random.default_rng(int(seed))
    return _rng


def default_generator() -> np.random.Generator:
    return _rng


_device_generators = {}


def _device_generator(xp):
    """One cuRAND Philox generator per device array module, made once: Philox's state is a
    key and a counter, so reseeding it per call is cheap (XORWOW, CuPy's default, sets
    up per-thread state on every new seed, tens of milliseconds)."""
    gen = _device_generators.get(xp)
    if gen is None:
        gen = _device_generators[xp] = xp.random.RandomState(
            0, method=xp.cuda.curand.CURAND_RNG_PSEUDO_PHILOX4_32_10)
    return gen


def uniform_like(rng, xp, shape, dtype):
    """U[0, 1) samples of ``shape`` on the device of ``xp``, drawn deterministically from ``rng``.

    On the GPU one host draw from ``rng`` seeds the device generator, so the samples depend
    only on ``rng``'s state (checkpointed with the stage: resume stays exact) and no samples
    are copied from the host."""
    if xp is np:
        return rng.random(shape, dtype=dtype)
    gen = _device_generator(xp)
    gen.seed(int(rng.integers(2 ** 63)))
    return gen.random_sample(shape, dtype=dtype)
