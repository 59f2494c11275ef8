"""Array backend: NumPy on the CPU, CuPy on CUDA.

Every op asks this module for ``xp`` (the array namespace) from its input
arrays, so one body of code serves both devices. CuPy is imported lazily and
only when a CUDA device is asked for explicitly (an argument, ``tensor.to``, or
the ``TINYFIT_DEVICE`` environment variable); having CuPy installed never moves
anything to the GPU on its own.
"""
from __future__ import annotations

import itertools
import os
import statistics
import sys
import time

import numpy as np

__all__ = [
    "batch_parallel", "num_threads", "THREAD_VARIABLES",
    "busy_cores", "shared_cores_warning", "synchronize", "tune_malloc", "DeviceError",
    "get_array_module", "device_of",
    "to_device", "to_numpy", "default_device", "check_device", "cupy_available",
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
    value = os.environ.get("TINYFIT_DEVICE", "cpu") or "cpu"
    try:
        return check_device(value)
    except DeviceError as e:
        raise DeviceError(f"the environment variable TINYFIT_DEVICE={value!r} is not usable: {e}; set it to cpu or "
                          "cuda, or unset it") from None


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


def synchronize():
    """Wait for the GPU to finish queued work (no-op when CuPy was never used)."""
    if _cupy is not None:
        _cupy.cuda.Device().synchronize()


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


# ---- CPU threads for memory-bound array work ---------------------------------
# NumPy's elementwise loops and copies run on one core and release the GIL, so
# splitting the batch over a few threads speeds up im2col, pooling and maxout
# (BLAS already threads the GEMMs). Each thread works on its own slice of the
# batch, so the results do not depend on the number of threads.
_pool = None
_threads = None


def num_threads() -> int:
    """Threads for batch-parallel work: $TINYFIT_NUM_THREADS, else the CPU count (at most 8)."""
    global _threads
    if _threads is None:
        env = os.environ.get("TINYFIT_NUM_THREADS", "")
        try:
            _threads = max(1, int(env)) if env else min(8, len(os.sched_getaffinity(0)))
        except (ValueError, AttributeError):
            _threads = min(8, os.cpu_count() or 1)
    return _threads


def batch_parallel(fn, n, xp=np, min_n=8, elements=None):
    """Call fn(lo, hi) on contiguous chunks covering range(n), in parallel threads on the
    CPU (one call on CuPy, where the device is already parallel). The chunks (a few per
    thread) are taken from a shared counter by whichever thread is free, the caller's
    included, so a thread that the system deschedules on a busy machine holds up at most
    its own chunk. The chunks write disjoint slices: results do not depend on who runs them."""
    global _pool
    t = num_threads() if xp is np else 1
    if t == 1 or n < min_n or (elements is not None and elements < PARALLEL_MIN_ELEMENTS):
        fn(0, n)
        return
    if _pool is None:
        from concurrent.futures import ThreadPoolExecutor
        _pool = ThreadPoolExecutor(max_workers=t - 1, thread_name_prefix="tinyfit")
    k = min(n, CHUNKS_PER_THREAD * t)
    bounds = [n * i // k for i in range(k + 1)]
    taken = itertools.count()

    def worker():
        for i in iter(taken.__next__, None):  # next() on a count is atomic under the GIL
            if i >= k:
                return
            fn(bounds[i], bounds[i + 1])
    futures = [_pool.submit(worker) for _ in range(t - 1)]
    worker()
    for f in futures:
        f.result()


CHUNKS_PER_THREAD = 2
# work of fewer elements than this (``elements``: what the call reads or writes) runs on the
# calling thread: handing chunks to the pool costs tens of microseconds a call, more than
# splitting a pass of this size saves (small inference batches ran 2x slower threaded)
PARALLEL_MIN_ELEMENTS = 1 << 18
# the environment variables that set the thread count of a process started after them: the
# BLAS's (OpenBLAS, OpenMP, MKL) and tinyfit's own
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "TINYFIT_NUM_THREADS")


def busy_cores(samples=10, interval=0.02) -> float:
    """Cores that other processes keep busy now: on Linux the median, over ``samples`` reads
    ``interval`` seconds apart, of the threads the kernel counts as runnable (/proc/loadavg),
    less the one reading; elsewhere the 1-minute load average (which still counts a job that
    ended a minute ago); 0 where the system says neither."""
    try:
        counts = []
        for i in range(samples):
            with open("/proc/loadavg") as f:
                counts.append(int(f.read().split()[3].split("/")[0]) - 1)
            if i + 1 < samples:
                time.sleep(interval)
        return float(max(0, statistics.median(counts)))
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return 0.0


def shared_cores_warning(busy=None, cores=None, threads=None):
    """One line to print when other processes keep some of the cores busy, else None.

    The GEMMs' OpenBLAS threads (one per core unless $OPENBLAS_NUM_THREADS says otherwise)
    split every product statically and wait for each other at its end, so a thread that
    shares its core with another busy process holds up every GEMM of the step (measured in
    docs/benchmarks.md, "On a machine shared with other work").
    The thread counts are not changed here, because OpenBLAS's can change float32 rounding
    (docs/reproducibility.md): the user chooses, knowingly."""
    busy = busy_cores() if busy is None else busy
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if threads is None:
        env = os.environ.get("OPENBLAS_NUM_THREADS", "")
        threads = max(num_threads(), int(env) if env.isdigit() and int(env) > 0 else cores)
    free = max(1, int(cores - busy + 0.5))
    if busy < 0.5 or threads <= free:
        return None
    return (f"note: other processes keep about {busy:.0f} of the {cores} cores busy, "
            f"and this run's {threads} threads wait for each other at every GEMM, so it can run several times "
            f"slower; on a shared machine give it the free cores: OPENBLAS_NUM_THREADS={free} "
            f"TINYFIT_NUM_THREADS={free} (float32 results can then round differently; docs/benchmarks.md)")


def tune_malloc() -> bool:
    """Keep freed memory in the process (glibc only): large arrays are then reused
    instead of being returned to the OS and page-faulted in again on every step,
    which took about a fifth of a student training step. A process-wide setting, so
    ``import tinyfit`` never makes it: the example, the study and the benchmark call it
    (TINYFIT_MALLOC_TUNE=0 turns it off there). Peak memory is unchanged; memory is just not
    given back to the OS."""
    if os.environ.get("TINYFIT_MALLOC_TUNE", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
        return bool(libc.mallopt(M_MMAP_THRESHOLD, 1 << 30) and libc.mallopt(M_TRIM_THRESHOLD, 1 << 31))
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
        return False
