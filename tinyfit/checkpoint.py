"""Checkpoints and model files: .npz archives written atomically, read without pickle.

A file holds named arrays plus one JSON document (stored as a uint8 array under
``__meta__``) with a format tag and version. Writing goes to a temporary file in
the same directory, is flushed to disk, then renamed over the target, so a crash
mid-write leaves the previous file intact. Loading uses ``allow_pickle=False``:
a file from someone else can never execute code.
"""
from __future__ import annotations

import json
import os
import zipfile

import numpy as np

from . import backend
from .files import atomic_write

__all__ = ["CheckpointError", "save_archive", "load_archive", "save_model", "load_model", "FORMAT_VERSION"]

FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint or model file is missing, truncated, corrupted or of another kind."""


def save_archive(path, arrays, meta, kind):
    """Atomically write ``arrays`` ({name: array}) and ``meta`` (JSON-able dict) to ``path``."""
    meta = {"format": "tinyfit", "kind": kind, "version": FORMAT_VERSION, **meta}
    payload = {k: backend.to_numpy(v) for k, v in arrays.items()}
    payload["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    atomic_write(path, lambda f: np.savez(f, **payload))


def load_archive(path, kind):
    """Read a file written by ``save_archive``; returns (arrays, meta) or raises CheckpointError."""
    if not os.path.exists(path):
        raise CheckpointError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zipfile.LargeZipFile,
            NotImplementedError, RuntimeError, UnicodeDecodeError, AttributeError, IndexError, TypeError,
            OverflowError, MemoryError) as e:
        raise CheckpointError(f"{path}: not a readable tinyfit {kind} file (truncated or corrupted?): "
                              f"{type(e).__name__}: {str(e)[:200]}") from None
    raw = arrays.pop("__meta__", None)
    try:
        meta = json.loads(bytes(raw).decode()) if raw is not None and raw.dtype == np.uint8 else None
    except (ValueError, UnicodeDecodeError):
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != "tinyfit":
        raise CheckpointError(f"{path}: not a tinyfit file (no valid metadata); was it written by tinyfit?")
    if meta.get("kind") != kind:
        raise CheckpointError(f"{path}: is a tinyfit {meta.get('kind')!r} file, expected a {kind!r} file")
    if meta.get("version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: format version {meta.get('version')!r}, this tinyfit reads version "
                              f"{FORMAT_VERSION}; use the tinyfit release that wrote it")
    return arrays, meta


def save_model(path, model, extra=None):
    """Write a Sequential's architecture and weights to one file (for ``load_model``)."""
    meta = {"spec": model.spec(), "extra": extra or {}}
    save_archive(path, model.state_dict(), meta, "model")


def load_model(path):
    """Load a model saved by ``save_model``: a Sequential in eval mode, on the CPU,
    ready for ``model.predict(images)`` with NumPy alone."""
    from .nn import build
    arrays, meta = load_archive(path, "model")
    try:
        model = build(meta["spec"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: the model specification is invalid: {e}") from None
    try:
        model.load_state_dict(arrays)
    except ValueError as e:
        raise CheckpointError(f"{path}: {e}") from None
    return model.eval()
