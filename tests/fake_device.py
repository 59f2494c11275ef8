"""A stand-in device for machines without a GPU (a test helper): NumPy arrays of a subclass
that the backend takes for CuPy arrays, so that the device dispatch (which arguments choose
the array module, the refusal of mixed devices, the host checks skipped on a device) runs in
every test run. The arithmetic is NumPy's; CuPy itself is tested on a GPU (test_parity)."""
import types

import numpy as np
import pytest

from tinyfit import backend


class DeviceArray(np.ndarray):
    """An array 'on the device'. Reading a value on the host (int, float, bool, item) fails:
    each would be a device-to-host copy."""
    def _host(self, *args):
        raise AssertionError("a device array was read on the host (a device-to-host copy)")

    __int__ = __float__ = __bool__ = __index__ = item = _host


def on_device(a):
    """``a`` as a DeviceArray (same values, dtype and shape)."""
    return np.asarray(a).view(DeviceArray)


@pytest.fixture
def fake_device(monkeypatch):
    """The backend sees a CuPy whose arrays are DeviceArray for the test's duration."""
    module = types.ModuleType("cupy")
    module.__dict__.update({k: getattr(np, k) for k in dir(np) if not k.startswith("_")})
    module.ndarray = DeviceArray
    monkeypatch.setattr(backend, "_cupy", module)
    return module
