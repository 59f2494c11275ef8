"""Counting host<->device copies (a test helper): the GPU parity tests assert how many a
training step makes."""
import numpy as np


class TransferCounter:
    """Counts calls of wrapped methods and functions, outermost calls only: CuPy's
    ``__float__``, ``item`` and ``__bool__`` call ``get()`` inside, which is one copy, not two.

    wrap(owner, name, kind, only_host_args): count ``owner.name`` calls under ``kind``
    (with only_host_args, only calls whose first argument is a NumPy array). Use as a
    context manager; the originals are restored on exit."""
    def __init__(self):
        self.counts, self._saved, self._depth = {}, {}, 0

    def wrap(self, owner, name, kind, only_host_args=False):
        orig = getattr(owner, name)
        self._saved[(owner, name)] = orig
        self.counts.setdefault(kind, 0)

        def f(*args, **kw):
            if self._depth == 0 and (not only_host_args or (args and isinstance(args[0], np.ndarray))):
                self.counts[kind] += 1
            self._depth += 1
            try:
                return orig(*args, **kw)
            finally:
                self._depth -= 1
        setattr(owner, name, f)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for (owner, name), orig in self._saved.items():
            setattr(owner, name, orig)
