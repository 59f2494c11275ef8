"""Reverse-mode automatic differentiation: Tensor, Function, backward.

A ``Function`` computes on raw arrays (``forward(*arrays)`` and
``backward(*grad_arrays)``); a ``Tensor`` wraps an array and remembers the
function that created it. ``Tensor.backward`` walks the graph with a heap keyed
by generation (iterative, so very deep graphs do not hit Python's recursion
limit) and frees each function's saved arrays as soon as it has been used,
unless ``retain_graph=True``.
"""
from __future__ import annotations

import contextlib
import heapq
import itertools
import weakref

import numpy as np

from . import backend

__all__ = ["Tensor", "Function", "no_grad", "is_grad_enabled", "as_tensor", "set_profiler"]

_grad_enabled = True
_profiler = None  # set by tinyfit.profiler.profile() through set_profiler


def set_profiler(profiler):
    """Route every Function's forward and backward through ``profiler.time(key, fn, *args)``
    (None: off); returns the previous one."""
    global _profiler
    old, _profiler = _profiler, profiler
    return old


@contextlib.contextmanager
def no_grad():
    """Context in which ops record no graph (inference, teacher forward)."""
    global _grad_enabled
    old, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = old


def is_grad_enabled() -> bool:
    return _grad_enabled


def _output_grads(f, grads, xp):
    """The gradients reaching ``f``'s outputs (popped from ``grads``; a retained output keeps
    its own), None where none arrived; zeros for an output that got none while another did."""
    gys = []
    for ref in f.outputs:
        out = ref()
        g = grads.pop(id(out), (None, None))[1] if out is not None else None
        if out is not None and g is not None and out._retain_grad:
            out.grad = g if out.grad is None else out.grad + g
        gys.append(g)
    if all(g is None for g in gys):
        return None
    if any(g is None for g in gys):
        gys = [xp.zeros(ref().shape, ref().dtype) if g is None and ref() is not None else g
               for g, ref in zip(gys, f.outputs)]
    return gys


def _input_grads(f, gys):
    """``f``'s backward pass (timed when a profiler is on): one gradient per input."""
    if gys is None:
        return (None,) * len(f.inputs)
    gxs = f.backward(*gys) if _profiler is None else _profiler.time((type(f).__name__, "backward"), f.backward, *gys)
    return gxs if isinstance(gxs, tuple) else (gxs,)


class Tensor:
    """An array with an optional gradient and the Function that produced it.

    ``data`` is a numpy.ndarray or cupy.ndarray; ``grad`` is a raw array of the
    same shape (or None) filled by ``backward`` for tensors that require grad and
    are leaves (or called ``retain_grad``).
    """
    __slots__ = ("data", "grad", "requires_grad", "creator", "generation", "name",
                 "_retain_grad", "__weakref__")
    __array_priority__ = 200  # numpy scalars/arrays defer to Tensor operators

    def __init__(self, data, requires_grad=False, name=None):
        if isinstance(data, Tensor):
            data = data.data
        if not hasattr(data, "__array__") or not hasattr(data, "dtype"):
            data = np.asarray(data, dtype=np.float32)
        self.data = data
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self.creator = None
        self.generation = 0
        self.name = name
        self._retain_grad = False

    # ---- array-like facts -------------------------------------------------
    @property
    def shape(self):
        return self.data.shape

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def size(self):
        return self.data.size

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def device(self):
        return backend.device_of(self.data)

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        extra = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({self.data!r}{extra})"

    def numpy(self):
        """The data as a NumPy array (copied from the GPU when needed)."""
        return backend.to_numpy(self.data)

    def item(self):
        return self.data.item()

    def to(self, device=None, dtype=None):
        """A new leaf tensor on ``device`` and/or of ``dtype`` (no graph)."""
        data = self.data if device is None else backend.to_device(self.data, device)
        if dtype is not None:
            data = data.astype(dtype, copy=False)
        return Tensor(data, requires_grad=self.requires_grad, name=self.name)

    def detach(self):
        """The same data, cut from the graph."""
        return Tensor(self.data, name=self.name)

    def retain_grad(self):
        """Keep ``grad`` on this non-leaf tensor after backward."""
        self._retain_grad = True
        return self

    def zero_grad(self):
        self.grad = None

    # ---- backward ---------------------------------------------------------
    def backward(self, grad=None, retain_graph=False):
        """Accumulate d(self)/d(leaf) into ``leaf.grad`` for every leaf that requires grad.

        grad: array of self's shape (default: ones, so a scalar loss needs none).
        retain_graph: keep saved arrays so backward can run again on this graph.
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward() on a tensor that does not require grad: no input of the "
                "computation had requires_grad=True (or it ran under no_grad()).")
        xp = backend.get_array_module(self.data)
        if grad is None:
            if self.size != 1:
                raise ValueError(
                    f"backward() without a gradient needs a scalar, got shape {self.shape}; "
                    "pass grad= an array of that shape or reduce first (e.g. .sum()).")
            grad = xp.ones_like(self.data)
        elif isinstance(grad, Tensor):
            grad = grad.data
        if self.creator is None:
            self._accumulate(grad)
            return
        # id(tensor) -> (tensor, grad): holding the tensor keeps it alive after
        # the function that consumed it has been released
        grads = {id(self): (self, grad)}
        counter = itertools.count()
        heap = [(-self.creator.generation, next(counter), self.creator)]
        seen = {id(self.creator)}
        while heap:
            _, _, f = heapq.heappop(heap)
            if f.inputs is None:
                raise RuntimeError(
                    "this graph was already freed by an earlier backward(); call "
                    "backward(retain_graph=True) the first time to run it twice.")
            gxs = _input_grads(f, _output_grads(f, grads, xp))
            for x, gx in zip(f.inputs, gxs):
                if gx is None or not x.requires_grad:
                    continue
                if x.creator is None:
                    x._accumulate(gx)
                    continue
                old = grads.get(id(x))
                grads[id(x)] = (x, gx if old is None else old[1] + gx)
                c = x.creator
                if id(c) not in seen:
                    seen.add(id(c))
                    heapq.heappush(heap, (-c.generation, next(counter), c))
            if not retain_graph:
                f.release()

    def _accumulate(self, g):
        if g.shape != self.data.shape:
            raise RuntimeError(f"internal: gradient of shape {g.shape} for a tensor of shape {self.shape}")
        self.grad = g if self.grad is None else self.grad + g

    # ---- operators (+, *, @, [], .T, ...): attached by functional/basic.py ----


def as_tensor(x, like: Tensor | None = None) -> Tensor:
    """Wrap arrays and Python numbers as constant tensors.

    A Python or NumPy scalar takes the dtype (and device) of ``like`` so that
    ``x * 0.5`` keeps float32 data float32.
    """
    if isinstance(x, Tensor):
        return x
    # host scalars follow ``like`` (a .device attribute proves nothing: NumPy 2's scalars have one)
    if like is not None and np.ndim(x) == 0 and backend.device_of(x) == "cpu":
        xp = backend.get_array_module(like.data)
        return Tensor(xp.asarray(x, dtype=like.dtype))
    return Tensor(x)


class Function:
    """One differentiable operation.

    Subclasses implement ``forward(*arrays)`` returning an array (or a tuple of
    arrays) and ``backward(*grads)`` returning one gradient per input (None for
    inputs that need none; ``self.needs_grad[i]`` says which do). Saved arrays
    live as attributes and are dropped by ``release`` after backward.
    """
    generation = 0
    recording = True  # False while a call records no graph (no_grad, no input needs grad)

    def __call__(self, *inputs):
        inputs = [x if isinstance(x, Tensor) else as_tensor(x) for x in inputs]
        arrays = [x.data for x in inputs]
        if backend._cupy is not None:
            try:
                backend.get_array_module(*arrays)
            except backend.DeviceError:
                names = [f"{type(self).__name__} input {i}" for i in range(len(arrays))]
                backend.get_array_module(*arrays, names=names)
        record = _grad_enabled and any(x.requires_grad for x in inputs)
        # ops may skip saving what only backward needs when nothing is recorded
        self.recording = record
        if record:
            self.needs_grad = tuple(x.requires_grad for x in inputs)
        ys = (self.forward(*arrays) if _profiler is None
              else _profiler.time((type(self).__name__, "forward"), self.forward, *arrays))
        single = not isinstance(ys, tuple)
        if single:
            ys = (ys,)
        outputs = [Tensor(y, requires_grad=record) for y in ys]
        if record:
            self.generation = max(x.generation for x in inputs)
            for y in outputs:
                y.creator = self
                y.generation = self.generation + 1
            self.inputs = inputs
            self.outputs = [weakref.ref(y) for y in outputs]
        return outputs[0] if single else outputs

    def forward(self, *arrays):
        raise NotImplementedError

    def backward(self, *grads):
        raise NotImplementedError

    def release(self):
        """Drop the inputs and saved arrays (the graph is freed)."""
        gen = self.generation
        self.__dict__.clear()
        self.inputs = None
        self.generation = gen
