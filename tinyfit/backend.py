"""Array backend: NumPy on the CPU, CuPy on CUDA.

Every op asks this module for ``xp`` (the array namespace) from its input
arrays, so one body of code serves both devices. CuPy is imported lazily and
only when a CUDA device is asked for explicitly (an argument, ``tensor.to``, or
the ``TINYFIT_DEVICE`` environment variable); having CuPy installed never moves
anything to the GPU on its own.
"""
from __future__ import annotations

import os

import numpy as np

__all__ = [
    "DeviceError", "get_array_module", "device_of", "to_device", "to_numpy",
    "default_device", "check_device", "cupy_available",
]

_cupy = None
_cupy_error: Exception | None = None


class DeviceError(ValueError):
    """Arrays on different devices, or a device that is not available."""


def _import_cupy():
    """Import CuPy once and check that a CUDA device is present."""
    global _cupy, _cupy_error
    if _cupy is not None:
        return _cupy
    if _cupy_error is not None:
        raise DeviceError(
            f"device 'cuda' is not available: {_cupy_error}. Install CuPy for your CUDA "
            "version (pip install 'tinyfit[cuda13]' or 'tinyfit[cuda12]') on a machine with "
            "an NVIDIA GPU, or use device='cpu'.")
    try:
        import cupy
        n = cupy.cuda.runtime.getDeviceCount()
        if n < 1:
            raise RuntimeError("CuPy found no CUDA device")
    except Exception as e:  # ImportError, CUDA driver errors
        _cupy_error = e
        return _import_cupy()
    _cupy = cupy
    return cupy


def cupy_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    try:
        _import_cupy()
        return True
    except DeviceError:
        return False


def check_device(device: str) -> str:
    """Normalise a device name ('cpu', 'cuda', 'cuda:0') and check it is usable."""
    if not isinstance(device, str) or device.split(":")[0] not in ("cpu", "cuda"):
        raise DeviceError(f"device must be 'cpu' or 'cuda', got {device!r}")
    if device.startswith("cuda"):
        _import_cupy()
        return "cuda"
    return "cpu"


def default_device() -> str:
    """The device named by TINYFIT_DEVICE, else 'cpu'."""
    return check_device(os.environ.get("TINYFIT_DEVICE", "cpu") or "cpu")


def _is_cupy(a) -> bool:
    return _cupy is not None and isinstance(a, _cupy.ndarray)


def device_of(a) -> str:
    """'cuda' for a CuPy array, 'cpu' otherwise."""
    return "cuda" if _is_cupy(a) else "cpu"


def get_array_module(*arrays, names=None):
    """Return numpy or cupy for ``arrays``; raise DeviceError when they are mixed.

    ``names`` (optional, one per array) makes the error name the arguments.
    """
    if _cupy is None:  # fast path: CuPy never imported, everything is NumPy
        return np
    on_gpu = [_is_cupy(a) for a in arrays]
    if all(on_gpu):
        return _cupy
    if not any(on_gpu):
        return np
    names = names or [f"argument {i}" for i in range(len(arrays))]
    where = ", ".join(f"{n} on {'cuda' if g else 'cpu'}" for n, g in zip(names, on_gpu))
    raise DeviceError(
        f"arrays on different devices: {where}. Move them to one device first, "
        "e.g. tensor.to('cuda') or tensor.to('cpu') (modules: model.to(device)).")


def to_device(a, device: str):
    """Return array ``a`` on ``device`` (no copy when it is already there)."""
    device = check_device(device)
    if device == "cuda":
        return _cupy.asarray(a)
    return to_numpy(a)


def to_numpy(a):
    """Return ``a`` as a NumPy array (copies from the GPU when needed)."""
    if _is_cupy(a):
        return a.get()
    return np.asarray(a)
