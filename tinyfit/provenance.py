"""Where a result came from: the commit of the code, the command, the machine, the wall time.

Every results file the example and the study write carries ``provenance(command)``, so a
published number can be traced to the code and machine that made it (and regenerated:
``docs/reproducing.md``). Nothing here is imported by ``import tinyfit``.
"""
from __future__ import annotations

import os
import platform
import subprocess
import sys
import time

import numpy as np

__all__ = ["code_commit", "machine", "provenance"]

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def code_commit(root=None):
    """The git commit of the checkout tinyfit runs from, with ``+dirty`` when tracked files
    differ from it; None outside a git checkout (an installed package) or without git. Read
    once, when this module is first imported: the code a process runs is the code it loaded,
    whatever the checkout holds later."""
    if root is None:
        return _LOADED
    return _read_commit(root)


def _read_commit(root):
    def git(*args):
        return subprocess.run(["git", "-C", root, *args], capture_output=True, text=True, timeout=10)
    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return None
        dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty else "")


_LOADED = _read_commit(_ROOT)


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _blas():
    """The BLAS library NumPy's GEMMs run on and the kernel it picked for this processor
    (threadpoolctl, when installed; float32 results depend on the kernel)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    return [{k: i.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
            for i in threadpool_info() if i.get("user_api") == "blas"]


def machine():
    """What the numbers depend on besides the code: processor, cores, Python, NumPy, BLAS."""
    return {"cpu": _cpu_model(), "cores": os.cpu_count(), "system": platform.platform(),
            "python": platform.python_version(), "numpy": np.__version__, "blas": _blas(),
            "threads": {k: os.environ[k] for k in ("OPENBLAS_NUM_THREADS", "TINYFIT_NUM_THREADS",
                                                   "OMP_NUM_THREADS") if k in os.environ}}


def provenance(command=None):
    """{commit, command, machine, date}: ``command`` defaults to this process's command line."""
    if command is None:
        command = " ".join(["python"] + [os.path.relpath(sys.argv[0])] + sys.argv[1:]) if sys.argv else ""
    return {"commit": code_commit(), "command": command, "machine": machine(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
