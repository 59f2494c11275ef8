"""One explicit, seeded random generator for initialisation, shuffling and dropout.

``manual_seed(s)`` resets the default generator; anything that draws random
numbers takes ``rng=`` (a numpy.random.Generator) and falls back to it. Initial
weights are always drawn on the host, so CPU and GPU runs start identically.
"""
from __future__ import annotations

import numpy as np

__all__ = ["manual_seed", "default_generator", "get_state", "set_state"]

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


def get_state(rng: np.random.Generator | None = None) -> dict:
    """The generator's state as a JSON-serialisable dict."""
    return (rng or _rng).bit_generator.state


def set_state(state: dict, rng: np.random.Generator | None = None) -> None:
    (rng or _rng).bit_generator.state = state


def uniform_like(rng, xp, shape, dtype):
    """U[0, 1) samples of ``shape`` on the device of ``xp``, drawn deterministically from ``rng``."""
    if xp is np:
        return rng.random(shape, dtype=dtype)
    # one host draw seeds a device generator: no host->device copy of the samples
    dev = xp.random.default_rng(int(rng.integers(2 ** 63)))
    return dev.random(shape, dtype=dtype)
