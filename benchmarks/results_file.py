"""A benchmark's results file: what it measured, with the commit and command that made it
(``tinyfit.provenance``) and its wall time, written atomically for ``publish_results.py --add``."""
from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from tinyfit.files import atomic_write
from tinyfit.provenance import provenance


def save(path, benchmark, started, **fields):
    """{provenance, benchmark, **fields, wall_seconds since ``started`` (perf_counter)}, written
    to ``path`` when one is given; returned."""
    result = {"provenance": provenance(), "benchmark": benchmark, **fields,
              "wall_seconds": round(time.perf_counter() - started, 1)}
    if path:
        atomic_write(path, json.dumps(result, indent=1).encode())
        print(f"results: {path}")
    return result
