"""Time spent per op type, forward and backward, for finding where a step's time goes.

    with tinyfit.profiler.profile() as prof:
        ...train a few steps...
    print(prof.table())

On CUDA each timed call synchronises the device, which slows the run but makes
the attribution right.
"""
from __future__ import annotations

import contextlib
import time
from collections import defaultdict

from . import autograd, backend

__all__ = ["profile", "Profile"]


class Profile:
    def __init__(self):
        self.seconds = defaultdict(float)
        self.calls = defaultdict(int)

    def _sync(self):
        backend.synchronize()

    def time(self, key, fn, *args):
        self._sync()
        t = time.perf_counter()
        out = fn(*args)
        self._sync()
        self.seconds[key] += time.perf_counter() - t
        self.calls[key] += 1
        return out

    def rows(self, steps=1):
        """[(op, phase, milliseconds per step)], largest first."""
        return [(op, phase, 1000 * s / steps) for (op, phase), s in sorted(self.seconds.items(), key=lambda kv: -kv[1])]

    def table(self, steps=1):
        """Rows 'op phase  ms/step  share', largest first."""
        rows = self.rows(steps)
        total = sum(ms for _, _, ms in rows) or 1.0
        lines = [f"{'op':24s} {'phase':8s} {'ms/step':>8s} {'share':>6s}"]
        for op, phase, ms in rows:
            lines.append(f"{op:24s} {phase:8s} {ms:8.2f} {100 * ms / total:5.1f}%")
        lines.append(f"{'all ops':24s} {'':8s} {total:8.2f}")
        return "\n".join(lines)


@contextlib.contextmanager
def profile():
    """Record the time of every Function's forward and backward inside the block."""
    prof = Profile()
    old = autograd.set_profiler(prof)
    try:
        yield prof
    finally:
        autograd.set_profiler(old)
