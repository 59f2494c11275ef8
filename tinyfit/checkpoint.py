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

__all__ = ["CheckpointError", "save_archive", "inspect_archive", "load_archive", "save_model", "load_model",
           "FORMAT_VERSION"]

FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint or model file is missing, truncated, corrupted or of another kind."""


def save_archive(path, arrays, meta, kind):
    """Atomically write ``arrays`` ({name: array}) and ``meta`` (JSON-able dict) to ``path``."""
    meta = {"format": "tinyfit", "kind": kind, "version": FORMAT_VERSION, **meta}
    payload = {k: backend.to_numpy(v) for k, v in arrays.items()}
    payload["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    atomic_write(path, lambda f: np.savez(f, **payload))


# no tinyfit file comes near these; a file declaring more is refused before anything is inflated
MAX_ARRAY_BYTES = 1 << 31
MAX_META_BYTES = 1 << 24


def inspect_archive(path, kind, max_array_bytes=None):
    """{array name: (shape, dtype)} read from the archive's headers, and its metadata, without
    reading any array's data: members that would inflate beyond ``max_array_bytes`` (default
    ``MAX_ARRAY_BYTES``), object
    arrays (pickles) and headers that disagree with the member's size are refused."""
    if not os.path.exists(path):
        raise CheckpointError(f"{path}: no such file")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"PK\x03\x04":
        raise CheckpointError(f"{path}: not a tinyfit {kind} file (a tinyfit file is an .npz archive; this one "
                              f"starts with {magic!r})")
    headers, meta = {}, None
    max_array_bytes = MAX_ARRAY_BYTES if max_array_bytes is None else max_array_bytes
    try:
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                limit = MAX_META_BYTES if name == "__meta__" else max_array_bytes
                if info.file_size > limit:
                    raise CheckpointError(f"{path}: array {name!r} would inflate to {info.file_size:,} bytes (limit "
                                          f"{limit:,}); refused")
                with z.open(info) as m:
                    version = np.lib.format.read_magic(m)
                    read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                            else np.lib.format.read_array_header_2_0)
                    shape, fortran, dtype = read(m)
                    if dtype.hasobject:
                        raise CheckpointError(f"{path}: array {name!r} holds Python objects (a pickle); refused")
                    need = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
                    if need > info.file_size:
                        raise CheckpointError(f"{path}: array {name!r} declares shape {shape} ({need:,} bytes) but "
                                              f"its member holds {info.file_size:,}; truncated or crafted")
                    if name == "__meta__":
                        meta = _parse_meta(np.frombuffer(m.read(need), dtype))
                    else:
                        headers[name] = (tuple(shape), dtype)
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError,
            RuntimeError, UnicodeDecodeError, OverflowError) as e:
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointError(f"{path}: not a readable tinyfit {kind} file (truncated or corrupted?): "
                              f"{type(e).__name__}: {str(e)[:200]}") from None
    return headers, _check_meta(path, meta, kind)


def _parse_meta(raw):
    try:
        raw = np.asarray(raw)
        return json.loads(bytes(raw).decode()) if raw.dtype == np.uint8 else None
    except (ValueError, UnicodeDecodeError, TypeError):
        return None


def _check_meta(path, meta, kind):
    if not isinstance(meta, dict) or meta.get("format") != "tinyfit":
        raise CheckpointError(f"{path}: not a tinyfit file (no valid metadata); was it written by tinyfit?")
    if meta.get("kind") != kind:
        raise CheckpointError(f"{path}: is a tinyfit {meta.get('kind')!r} file, expected a {kind!r} file")
    if meta.get("version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: format version {meta.get('version')!r}, this tinyfit reads version "
                              f"{FORMAT_VERSION}; use the tinyfit release that wrote it")
    return meta


def load_archive(path, kind):
    """Read a file written by ``save_archive``; returns (arrays, meta) or raises CheckpointError.
    The headers are checked first (``inspect_archive``), so nothing oversized is inflated."""
    inspect_archive(path, kind)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zipfile.LargeZipFile,
            NotImplementedError, RuntimeError, UnicodeDecodeError, AttributeError, IndexError, TypeError,
            OverflowError, MemoryError) as e:
        raise CheckpointError(f"{path}: not a readable tinyfit {kind} file (truncated or corrupted?): "
                              f"{type(e).__name__}: {str(e)[:200]}") from None
    meta = _check_meta(path, _parse_meta(arrays.pop("__meta__", np.zeros(0, np.uint8))), kind)
    return arrays, meta


def save_model(path, model, extra=None):
    """Write a Sequential's architecture and weights to one file (for ``load_model``)."""
    meta = {"spec": model.spec(), "extra": extra or {}}
    save_archive(path, model.state_dict(), meta, "model")


def load_model(path):
    """Load a model saved by ``save_model``: a Sequential in eval mode, on the CPU,
    ready for ``model.predict(images)`` with NumPy alone."""
    from .nn import build, spec_shapes
    headers, meta = inspect_archive(path, "model")
    try:
        expected = spec_shapes(meta["spec"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: the model specification is invalid: {e}") from None
    for name in sorted(set(headers) | set(expected)):
        got, want = headers.get(name), expected.get(name)
        if got is None or want is None or got[0] != want or got[1].kind != "f":
            raise CheckpointError(
                f"{path}: array {name!r} is " + (f"{got[0]} {got[1]}" if got else "missing")
                + " but the file's own specification asks for " + (f"a float array of shape {want}" if want else
                                                                     "no such array") + "; the file is inconsistent")
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
