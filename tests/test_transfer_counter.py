"""The host<->device copy counter of the GPU tests, on a stand-in array type whose
``__float__`` calls ``get()`` inside, as CuPy's does."""
import numpy as np

from transfers import TransferCounter


class FakeDeviceArray:
    def __init__(self, v):
        self.v = v

    def get(self):
        return np.asarray(self.v)

    def __float__(self):
        return float(self.get())

    def item(self):
        return self.get().item()


class FakeModule:
    @staticmethod
    def asarray(a):
        return FakeDeviceArray(a)


def test_nested_reads_count_once_and_originals_come_back():
    orig_float = FakeDeviceArray.__float__
    with TransferCounter() as tc:
        for name in ("get", "item", "__float__"):
            tc.wrap(FakeDeviceArray, name, "to_host")
        tc.wrap(FakeModule, "asarray", "to_device", only_host_args=True)
        a = FakeModule.asarray(np.ones(3))       # host array in: one copy
        FakeModule.asarray(a)                     # device array in: none
        b = FakeModule.asarray(np.float32(2))     # a NumPy scalar is not an ndarray: not counted
        float(b)                                  # __float__ -> get: one copy, not two
        a.get()                                   # one
        FakeDeviceArray(2.0).item()               # item -> get: one
    assert tc.counts == {"to_host": 3, "to_device": 1}
    assert FakeDeviceArray.__float__ is orig_float
