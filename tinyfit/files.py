"""Output files: atomic writes (results, figures, checkpoints and models never end up
half-written), folders created with a clear error, and one writer per output folder.

Every failure to create or write an output raises ``OutputError``, which names the path and
the operating system's reason (and says so plainly when the disk is full); the command lines
turn it into one line and a non-zero exit status.
"""
from __future__ import annotations

import contextlib
import errno
import os
import socket
import tempfile
import time

__all__ = ["OutputError", "FolderBusy", "atomic_write", "make_dir", "FolderLock", "output_folder"]


class OutputError(RuntimeError):
    """An output (folder or file) could not be created or written; ``path`` and ``reason``
    say which and why. Files written earlier are intact."""
    def __init__(self, path, err, action="write"):
        self.path, self.errno = path, getattr(err, "errno", None)
        if self.errno == errno.ENOSPC:
            self.reason = "the disk is full"
        elif self.errno == errno.EDQUOT:
            self.reason = "the disk quota is exceeded"
        else:
            self.reason = getattr(err, "strerror", None) or str(err)
        hint = ("; free some space, then rerun with --resume: the files written before are intact"
                if self.errno in (errno.ENOSPC, errno.EDQUOT) else "")
        super().__init__(f"cannot {action} {path}: {self.reason}{hint}")


class FolderBusy(RuntimeError):
    """Another process is writing to the same output folder."""


def make_dir(path):
    """Create folder ``path`` (and its parents) if missing; OutputError if that fails."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise OutputError(path, e, "create the folder") from None
    return path


def atomic_write(path, data):
    """Write ``data`` to ``path`` atomically: to a temporary file beside it, flushed to disk,
    then renamed over ``path``, so a crash mid-write leaves the previous file intact.

    data: bytes, a str (written as UTF-8), or a callable that writes into the binary file
    object it is given (e.g. ``lambda f: np.savez(f, **arrays)``). Raises OutputError when
    the folder or the file cannot be written (the disk is full, no permission...)."""
    d = make_dir(os.path.dirname(os.path.abspath(path)))
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-", suffix=os.path.splitext(path)[1])
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
    except OSError as e:
        _remove(tmp)
        raise OutputError(path, e) from None
    except BaseException:
        _remove(tmp)
        raise


def _remove(tmp):
    if tmp and os.path.exists(tmp):
        try:
            os.remove(tmp)
        except OSError:
            pass


class FolderLock:
    """One writer per output folder: ``with FolderLock(out):`` holds an exclusive lock on
    ``out/.tinyfit.lock`` for the run and releases it on exit. A second process asking for
    the same folder gets FolderBusy naming the folder and the process holding it. The lock
    is the operating system's (``fcntl.flock``), so a process that is killed releases it
    with its file descriptors: a stale lock file is simply taken over. Where flock does not
    exist (Windows), no lock is taken."""
    NAME = ".tinyfit.lock"

    def __init__(self, folder):
        self.folder, self.path, self.fd = folder, os.path.join(folder, self.NAME), None

    def __enter__(self):
        try:
            import fcntl
        except ImportError:  # no flock on this system: one writer is then the user's job
            return self
        make_dir(self.folder)
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise OutputError(self.path, e) from None
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(self.fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(self.fd)
            self.fd = None
            raise FolderBusy(f"{self.folder} is in use by {holder}; wait for it to finish, or give another "
                             "output folder (--out)") from None
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"process {os.getpid()} on {socket.gethostname()}, started "
                           f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode(), 0)
        return self

    def __exit__(self, *exc):
        if self.fd is not None:
            import fcntl
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


@contextlib.contextmanager
def output_folder(path):
    """``with output_folder(out):`` a run's output folder: created if missing, held by one
    writer (``FolderLock``) for the block, and removed again when the block fails before
    anything was written into a folder it created."""
    existed = os.path.isdir(path)
    with FolderLock(path):
        try:
            yield path
        except BaseException:
            if not existed:
                _remove_if_empty(path)
            raise


def _remove_if_empty(path):
    try:
        left = set(os.listdir(path))
        if left <= {FolderLock.NAME}:
            for name in left:
                os.remove(os.path.join(path, name))
            os.rmdir(path)
    except OSError:
        pass
