"""The array backend: the device chosen explicitly, mixed-device errors that name each
argument and the fix, and an import that changes no process-wide setting."""
import os

import numpy as np
import pytest

from tinyfit import Tensor, backend


def test_asking_for_cuda_without_a_gpu_is_a_clear_error():
    if backend.cupy_available():
        pytest.skip("a GPU is present")
    with pytest.raises(backend.DeviceError, match="cuda.*not available"):
        Tensor(np.ones(2)).to("cuda")
    with pytest.raises(backend.DeviceError, match="'cpu' or 'cuda'"):
        backend.check_device("gpu0")


def test_mixed_devices_name_arguments_and_fix(device):
    if device == "cpu":
        pytest.skip("needs a GPU")
    a = Tensor(np.ones(3))
    b = a.to("cuda")
    with pytest.raises(backend.DeviceError, match=r"on cpu.*on cuda.*\.to\("):
        a + b


def test_env_var_chooses_default_device(monkeypatch):
    monkeypatch.setenv("TINYFIT_DEVICE", "cpu")
    assert backend.default_device() == "cpu"
    monkeypatch.setenv("TINYFIT_DEVICE", "tpu")
    with pytest.raises(backend.DeviceError, match="tpu"):
        backend.default_device()


def test_mixed_device_error_path_without_a_gpu(monkeypatch):
    """The mixed-device check, exercised with a stand-in for CuPy's array type."""
    class FakeGPUArray(np.ndarray):
        pass

    class FakeCupy:
        ndarray = FakeGPUArray
    monkeypatch.setattr(backend, "_cupy", FakeCupy)
    a = Tensor(np.ones(3))
    b = Tensor(np.ones(3).view(FakeGPUArray))
    assert b.device == "cuda" and a.device == "cpu"
    with pytest.raises(backend.DeviceError, match=r"Mul input 0 on cpu, Mul input 1 on cuda.*\.to\('cuda'\)"):
        a * b


def test_numpy_scalar_with_a_device_tensor_stays_on_its_device(monkeypatch):
    """NumPy 2 scalars have a .device attribute; they must still follow the tensor's device."""
    class FakeGPUArray(np.ndarray):
        pass

    class FakeCupy:
        ndarray = FakeGPUArray

        @staticmethod
        def asarray(a, dtype=None):
            return np.asarray(a, dtype=dtype).view(FakeGPUArray)
    monkeypatch.setattr(backend, "_cupy", FakeCupy)
    b = Tensor(np.full(3, 4.0, np.float32).view(FakeGPUArray))
    for scalar in (np.float32(2), np.float64(2), 2.0, 2, np.array(2.0)):
        y = scalar / b
        assert y.device == "cuda" and y.dtype == np.float32, type(scalar)
        np.testing.assert_allclose(np.asarray(y.data), 0.5)
        assert (b - scalar).device == "cuda"


def test_import_changes_no_process_wide_setting():
    """`import tinyfit` must not tune the allocator (an explicit backend.tune_malloc() call does)."""
    import subprocess
    import sys
    code = ("import ctypes\n"
            "calls = []\n"
            "real = ctypes.CDLL\n"
            "class Spy:\n"
            "    def __init__(self, name, *a, **k):\n"
            "        self.lib = real(name, *a, **k)\n"
            "    def __getattr__(self, attr):\n"
            "        calls.append(attr)\n"
            "        return getattr(self.lib, attr)\n"
            "ctypes.CDLL = Spy\n"
            "import tinyfit\n"
            "assert 'mallopt' not in calls, calls\n"
            "tinyfit.backend.tune_malloc()\n"
            "import sys\n"
            "assert 'mallopt' in calls or not sys.platform.startswith('linux'), calls\n"
            "print('ok')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "TINYFIT_MALLOC_TUNE": "1"})
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_shared_cores_warning_only_when_threads_exceed_the_free_cores(monkeypatch):
    assert backend.shared_cores_warning(busy=0.2, cores=2, threads=2) is None  # an idle machine
    assert backend.shared_cores_warning(busy=1.0, cores=4, threads=3) is None  # 3 cores are free
    assert backend.shared_cores_warning(busy=1.0, cores=2, threads=1) is None  # already one thread
    note = backend.shared_cores_warning(busy=1.2, cores=2, threads=2)
    assert "about 1 of the 2 cores busy" in note and "2 threads" in note
    assert "OPENBLAS_NUM_THREADS=1 TINYFIT_NUM_THREADS=1" in note
    note = backend.shared_cores_warning(busy=3.0, cores=8, threads=8)
    assert "OPENBLAS_NUM_THREADS=5 TINYFIT_NUM_THREADS=5" in note
    # the thread count a run would use: OpenBLAS's from its variable, else one per core
    monkeypatch.setattr(backend, "_threads", 1)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    assert backend.shared_cores_warning(busy=1.0, cores=2) is None
    monkeypatch.delenv("OPENBLAS_NUM_THREADS")
    assert "2 threads" in backend.shared_cores_warning(busy=1.0, cores=2)


def test_busy_cores_counts_other_runnable_threads_not_the_reader(monkeypatch):
    import builtins
    import io
    reads = iter(["0.9 0.5 0.2 3/80 1234\n", "0.9 0.5 0.2 1/80 1234\n", "0.9 0.5 0.2 3/80 1234\n"])
    real_open = builtins.open
    monkeypatch.setattr(builtins, "open", lambda path, *a, **k: io.StringIO(next(reads)) if path == "/proc/loadavg"
                        else real_open(path, *a, **k))
    assert backend.busy_cores(samples=3, interval=0) == 2.0   # median of 2, 0, 2 runnable besides the reader


def test_batch_parallel_splits_only_work_worth_the_threads(monkeypatch):
    import threading
    monkeypatch.setattr(backend, "_threads", 2)
    for elements, threaded in ((None, True), (backend.PARALLEL_MIN_ELEMENTS, True),
                               (backend.PARALLEL_MIN_ELEMENTS - 1, False)):
        seen, covered = set(), []

        def fn(lo, hi, seen=seen, covered=covered):
            seen.add(threading.get_ident())
            covered.extend(range(lo, hi))
            threading.Event().wait(0.01)   # long enough for the pool's thread to take a chunk
        backend.batch_parallel(fn, 64, elements=elements)
        assert sorted(covered) == list(range(64))          # every row once, threaded or not
        assert (len(seen) > 1) == threaded, elements
    calls = []
    backend.batch_parallel(lambda lo, hi: calls.append((lo, hi)), 7)   # fewer rows than min_n: one call
    assert calls == [(0, 7)]
