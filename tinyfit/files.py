"""Atomic file writes: results, figures, checkpoints and models never end up half-written."""
from __future__ import annotations

import os
import tempfile

__all__ = ["atomic_write"]


def atomic_write(path, data):
    """Write ``data`` to ``path`` atomically: to a temporary file beside it, flushed to disk,
    then renamed over ``path``, so a crash mid-write leaves the previous file intact.

    data: bytes, a str (written as UTF-8), or a callable that writes into the binary file
    object it is given (e.g. ``lambda f: np.savez(f, **arrays)``)."""
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-", suffix=os.path.splitext(path)[1])
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
