"""Checkpoint and model files: atomic writes, clear errors for truncated, foreign, fuzzed and
crafted files, headers checked against the file's own specification before any array is
read, and models that load with NumPy alone."""
import errno
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from hypothesis import given, strategies as st

from tinyfit import checkpoint
from tinyfit.checkpoint import CheckpointError, inspect_archive, load_archive, load_model, save_archive, save_model
from tinyfit.files import OutputError


def test_crash_during_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch):
    path = str(tmp_path / "c.npz")
    save_archive(path, {"w": np.arange(3.0)}, {"epoch": 1}, "checkpoint")

    def broken_savez(f, **arrays):
        f.write(b"PK\x03\x04 partial")
        raise OSError("disk full")
    monkeypatch.setattr(checkpoint.np, "savez", broken_savez)
    with pytest.raises(OutputError, match="cannot write .*c.npz: disk full"):
        save_archive(path, {"w": np.zeros(3)}, {"epoch": 2}, "checkpoint")
    monkeypatch.undo()
    arrays, meta = load_archive(path, "checkpoint")
    assert meta["epoch"] == 1 and np.array_equal(arrays["w"], np.arange(3.0))
    assert os.listdir(tmp_path) == ["c.npz"]  # no temporary file left behind
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask


def test_truncated_or_foreign_checkpoints_are_clear_errors(tmp_path):
    path = tmp_path / "c.npz"
    save_archive(str(path), {"w": np.arange(1000.0)}, {"epoch": 1}, "checkpoint")
    raw = path.read_bytes()
    (tmp_path / "t.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        load_archive(str(tmp_path / "t.npz"), "checkpoint")
    np.savez(tmp_path / "plain.npz", w=np.ones(2))
    with pytest.raises(CheckpointError, match="not a tinyfit file"):
        load_archive(str(tmp_path / "plain.npz"), "checkpoint")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(CheckpointError):
        load_archive(str(tmp_path / "text.npz"), "checkpoint")
    with pytest.raises(CheckpointError, match="is a tinyfit 'checkpoint' file, expected a 'model'"):
        load_model(str(path))
    with pytest.raises(CheckpointError, match="no such file"):
        load_archive(str(tmp_path / "missing.npz"), "checkpoint")


def test_pickled_object_arrays_are_refused(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, __meta__=np.array([{"format": "tinyfit"}], dtype=object))
    with pytest.raises(CheckpointError):
        load_archive(str(path), "checkpoint")


def test_checkpoint_from_another_architecture_lists_differences(tmp_path):
    from tinyfit.models import mnist_student
    path = str(tmp_path / "s.model.npz")
    save_model(path, mnist_student("code", rng=np.random.default_rng(0)))
    other = mnist_student("paper", rng=np.random.default_rng(0))
    arrays, _ = load_archive(path, "model")
    with pytest.raises(ValueError,
                       match=r"shape mismatch: h4\.conv\.W: expected \(3, 3, 16, 24\), got \(3, 3, 16, 48\)"):
        other.load_state_dict(arrays)
    arrays.pop("y.b")
    arrays["extra.W"] = np.zeros(1)
    with pytest.raises(ValueError, match=r"missing: y\.b.*unexpected: extra\.W"):
        mnist_student("code", rng=np.random.default_rng(0)).load_state_dict(arrays)


def test_exported_student_loads_and_predicts_with_numpy_alone(tmp_path):
    from tinyfit.models import mnist_student
    m = mnist_student(rng=np.random.default_rng(0))
    path = str(tmp_path / "student.model.npz")
    save_model(path, m)
    x = np.random.default_rng(1).random((5, 28, 28, 1), dtype=np.float32)
    loaded = load_model(path)
    assert np.array_equal(loaded.predict(x), m.predict(x))
    code = ("import sys, numpy as np; import tinyfit; m = tinyfit.load_model(sys.argv[1]); "
            "print(m.predict(np.zeros((2, 28, 28, 1), np.float32)).tolist()); "
            "print(sorted(k for k in sys.modules if k.split('.')[0] in ('torch', 'cupy', 'mlxtend', 'tqdm')))")
    r = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True, check=True)
    assert r.stdout.splitlines()[1] == "[]"


@given(st.binary(max_size=400))
def test_random_bytes_only_raise_checkpoint_error(tmp_path_factory, blob):
    p = tmp_path_factory.mktemp("fz") / "c.npz"
    p.write_bytes(blob)
    with pytest.raises(CheckpointError):
        load_archive(str(p), "checkpoint")


@given(pos=st.integers(0, 10 ** 6), val=st.integers(0, 255), cut=st.integers(0, 10 ** 6))
def test_mutated_checkpoints_raise_checkpoint_error_or_load_intact(tmp_path_factory, pos, val, cut):
    d = tmp_path_factory.mktemp("mut")
    good = d / "good.npz"
    save_archive(str(good), {"w": np.arange(50.0)}, {"epoch": 3}, "checkpoint")
    raw = bytearray(good.read_bytes())
    raw[pos % len(raw)] = val
    raw = bytes(raw[: len(raw) - cut % len(raw)])
    p = d / "bad.npz"
    p.write_bytes(raw)
    try:
        arrays, meta = load_archive(str(p), "checkpoint")
    except CheckpointError:
        return
    # zip entries carry CRCs: whatever loads must be what was written
    assert meta["epoch"] == 3 and np.array_equal(arrays["w"], np.arange(50.0))


def test_disk_full_names_the_file_and_says_so(tmp_path, monkeypatch):
    path = str(tmp_path / "c.npz")
    save_archive(path, {"w": np.arange(3.0)}, {"epoch": 1}, "checkpoint")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OutputError, match=r"cannot write .*c\.npz: the disk is full; free some space, then rerun "
                                          r"with --resume"):
        save_archive(path, {"w": np.zeros(3)}, {"epoch": 2}, "checkpoint")
    monkeypatch.undo()
    assert load_archive(path, "checkpoint")[1]["epoch"] == 1 and os.listdir(tmp_path) == ["c.npz"]


def _model_file(path, spec_change=None, arrays_change=None):
    from tinyfit.models import mnist_student
    save_model(path, mnist_student(rng=np.random.default_rng(0)))
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    import json
    meta = json.loads(bytes(arrays["__meta__"]).decode())
    if spec_change:
        spec_change(meta["spec"])
    if arrays_change:
        arrays_change(arrays)
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(path, **arrays)
    return path


def test_a_model_whose_specification_disagrees_with_its_arrays_is_refused_before_building(tmp_path):
    # the specification asks for a 10^6 x 10^6 softmax layer (4 TB); the arrays are small:
    # refused from the headers, nothing allocated
    def huge(spec):
        spec["layers"][-1][2].update(in_features=10 ** 6, out_features=10 ** 6)
    path = _model_file(str(tmp_path / "huge.model.npz"), spec_change=huge)
    with pytest.raises(CheckpointError, match=r"array 'y.W' is \(108, 10\) float32 but the file's own specification "
                                              r"asks for a float array of shape \(1000000, 1000000\)"):
        load_model(path)
    path = _model_file(str(tmp_path / "extra.model.npz"), arrays_change=lambda a: a.update(junk=np.zeros(3)))
    with pytest.raises(CheckpointError, match="array 'junk' is .* asks for no such array"):
        load_model(path)
    path = _model_file(str(tmp_path / "int.model.npz"),
                       arrays_change=lambda a: a.update({"y.b": np.zeros(10, np.int64)}))
    with pytest.raises(CheckpointError, match="'y.b' is \\(10,\\) int64"):
        load_model(path)


def test_members_that_would_inflate_beyond_the_limit_are_refused_unread(tmp_path, monkeypatch):
    path = str(tmp_path / "big.npz")
    save_archive(path, {"w": np.zeros(1000, np.float32)}, {}, "checkpoint")
    headers, _ = inspect_archive(path, "checkpoint")
    assert headers["w"][0] == (1000,) and headers["w"][1] == np.float32
    with pytest.raises(CheckpointError, match=r"array 'w' would inflate to 4,128 bytes \(limit 4,000\); refused"):
        inspect_archive(path, "checkpoint", max_array_bytes=4000)
    # the limit itself is allowed, one byte under it is not
    assert inspect_archive(path, "checkpoint", max_array_bytes=4128)[0]["w"][0] == (1000,)
    with pytest.raises(CheckpointError, match=r"4,128 bytes \(limit 4,127\)"):
        inspect_archive(path, "checkpoint", max_array_bytes=4127)
    monkeypatch.setattr(checkpoint, "MAX_ARRAY_BYTES", 4000)
    with pytest.raises(CheckpointError, match="would inflate"):
        load_archive(path, "checkpoint")
    # a header declaring more data than its member holds
    with zipfile.ZipFile(tmp_path / "lying.npz", "w") as z:
        z.writestr("w.npy", np.lib.format.magic(1, 0) + b"\x46\x00{'descr': '<f4', 'fortran_order': False, "
                   b"'shape': (100000000,), }" + b" " * 11 + b"\n" + b"\0" * 16)
    with pytest.raises(CheckpointError, match="declares shape"):
        inspect_archive(str(tmp_path / "lying.npz"), "checkpoint")


def test_a_text_file_given_as_a_model_gets_no_pickle_advice(tmp_path):
    p = tmp_path / "teacher.txt"
    p.write_text("weights: 1 2 3\n")
    with pytest.raises(CheckpointError) as e:
        load_model(str(p))
    assert "not a tinyfit model file" in str(e.value) and "pickle" not in str(e.value)


def test_every_refusal_names_the_file_and_what_was_wrong(tmp_path):
    import json
    path = str(tmp_path / "m.model.npz")
    _model_file(path)
    # a missing array: named, with what the specification asks for
    _model_file(path, arrays_change=lambda a: a.pop("y.b"))
    with pytest.raises(CheckpointError) as e:
        load_model(path)
    assert str(e.value) == (f"{path}: array 'y.b' is missing but the file's own specification asks for a float array "
                            "of shape (10,); the file is inconsistent")
    # another format version
    ck = str(tmp_path / "c.npz")
    save_archive(ck, {"w": np.zeros(2)}, {"epoch": 1}, "checkpoint")
    with np.load(ck) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(bytes(arrays["__meta__"]).decode())
    meta["version"] = 99
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(ck, **arrays)
    with pytest.raises(CheckpointError) as e:
        load_archive(ck, "checkpoint")
    assert str(e.value) == (f"{ck}: format version 99, this tinyfit reads version 1; use the tinyfit release that "
                            "wrote it")
    # a specification that cannot be built
    _model_file(path, spec_change=lambda s: s.update(layers=[["y", "NoSuchLayer", {}]]))
    with pytest.raises(CheckpointError, match=f"^{path}: the model specification is invalid: "):
        load_model(path)


def test_a_model_file_keeps_its_extra_metadata(tmp_path):
    from tinyfit.models import mnist_student
    path = str(tmp_path / "m.model.npz")
    save_model(path, mnist_student(rng=np.random.default_rng(0)), extra={"test_error": 0.25})
    assert load_archive(path, "model")[1]["extra"] == {"test_error": 0.25}
    save_model(path, mnist_student(rng=np.random.default_rng(0)))
    assert load_archive(path, "model")[1]["extra"] == {}


def test_the_metadata_has_its_own_size_limit(tmp_path, monkeypatch):
    path = str(tmp_path / "c.npz")
    save_archive(path, {"w": np.zeros(4)}, {"note": "x" * 500}, "checkpoint")
    monkeypatch.setattr(checkpoint, "MAX_META_BYTES", 300)
    with pytest.raises(CheckpointError, match=r"array '__meta__' would inflate to [\d,]+ bytes \(limit 300\)"):
        inspect_archive(path, "checkpoint", max_array_bytes=10 ** 6)
    monkeypatch.setattr(checkpoint, "MAX_META_BYTES", 10 ** 6)
    assert inspect_archive(path, "checkpoint", max_array_bytes=200)[1]["note"] == "x" * 500   # meta > 200 bytes


def test_what_the_header_check_refuses_and_what_it_reads(tmp_path):
    import io
    import json
    path = str(tmp_path / "c.npz")
    save_archive(path, {"w": np.arange(4.0)}, {"epoch": 1}, "checkpoint")
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    # a header declaring 100 float32 (400 bytes) over 16 bytes of data
    lying = str(tmp_path / "lying.npz")
    with zipfile.ZipFile(lying, "w") as z:
        z.writestr("__meta__.npy", members["__meta__.npy"])
        head = io.BytesIO()
        np.lib.format.write_array_header_1_0(head, {"descr": "<f4", "fortran_order": False, "shape": (100,)})
        z.writestr("w.npy", np.lib.format.magic(1, 0) + head.getvalue()[8:] + b"\0" * 16)
    with pytest.raises(CheckpointError, match=r"array 'w' declares shape \(100,\) \(400 bytes\) but its member holds"):
        inspect_archive(lying, "checkpoint")
    # a version 2.0 header is read as such
    v2 = str(tmp_path / "v2.npz")
    with zipfile.ZipFile(v2, "w") as z:
        z.writestr("__meta__.npy", members["__meta__.npy"])
        buf = io.BytesIO()
        np.lib.format.write_array(buf, np.arange(3, dtype=np.float32), version=(2, 0))
        z.writestr("w.npy", buf.getvalue())
    assert inspect_archive(v2, "checkpoint")[0]["w"] == ((3,), np.float32)
    # metadata that is not bytes is no metadata
    meta = json.loads(bytes(np.load(path)["__meta__"]).decode())
    np.savez(str(tmp_path / "m.npz"), w=np.zeros(2), __meta__=np.frombuffer(json.dumps(meta).encode(), np.uint8)
             .astype(np.int32))
    with pytest.raises(CheckpointError, match="not a tinyfit file"):
        inspect_archive(str(tmp_path / "m.npz"), "checkpoint")
    # not even bytes of another integer type that happen to spell the same JSON
    np.savez(str(tmp_path / "m8.npz"), w=np.zeros(2), __meta__=np.frombuffer(json.dumps(meta).encode(), np.int8))
    with pytest.raises(CheckpointError, match="not a tinyfit file"):
        inspect_archive(str(tmp_path / "m8.npz"), "checkpoint")
    # what a broken file raised is named
    raw = open(path, "rb").read()
    (tmp_path / "cut.npz").write_bytes(raw[:len(raw) // 2])
    with pytest.raises(CheckpointError) as e:
        inspect_archive(str(tmp_path / "cut.npz"), "checkpoint")
    head, _, what = str(e.value).partition(" (truncated or corrupted?): ")
    kind, _, text = what.partition(": ")
    assert head == f"{tmp_path}/cut.npz: not a readable tinyfit checkpoint file"
    assert kind in ("BadZipFile", "EOFError", "OSError", "ValueError", "KeyError") and text and text != "None"
    np.savez(str(tmp_path / "obj.npz"), __meta__=np.array([{"a": 1}], dtype=object))
    with pytest.raises(CheckpointError) as e:
        inspect_archive(str(tmp_path / "obj.npz"), "checkpoint")
    assert str(e.value) == f"{tmp_path}/obj.npz: array '__meta__' holds Python objects (a pickle); refused"


def test_a_file_changed_after_its_headers_were_checked_is_still_refused(tmp_path, monkeypatch):
    # load_archive reads what inspect_archive checked; a file replaced in between meets the
    # second guards: no pickle, the error named, the file's path in every refusal
    monkeypatch.setattr(checkpoint, "inspect_archive", lambda path, kind: None)
    np.savez(str(tmp_path / "obj.npz"), w=np.array([{"a": 1}], dtype=object))
    with pytest.raises(CheckpointError) as e:
        load_archive(str(tmp_path / "obj.npz"), "checkpoint")
    assert str(e.value).startswith(f"{tmp_path}/obj.npz: not a readable tinyfit checkpoint file (truncated or "
                                   "corrupted?): ValueError: Object arrays cannot be loaded")
    np.savez(str(tmp_path / "bare.npz"), w=np.zeros(2))
    with pytest.raises(CheckpointError) as e:
        load_archive(str(tmp_path / "bare.npz"), "checkpoint")
    assert str(e.value) == f"{tmp_path}/bare.npz: not a tinyfit file (no valid metadata); was it written by tinyfit?"


def test_a_model_that_fails_to_build_or_load_names_the_file(tmp_path, monkeypatch):
    from tinyfit import nn
    from tinyfit.models import mnist_student
    path = str(tmp_path / "s.model.npz")
    save_model(path, mnist_student())

    def refuse(spec):
        raise ValueError("no such layer")
    monkeypatch.setattr(nn, "build", refuse)
    with pytest.raises(CheckpointError) as e:
        load_model(path)
    assert str(e.value) == f"{path}: the model specification is invalid: no such layer"

    class Refusing:
        def load_state_dict(self, arrays):
            raise ValueError("shape mismatch")
    monkeypatch.setattr(nn, "build", lambda spec: Refusing())
    with pytest.raises(CheckpointError) as e:
        load_model(path)
    assert str(e.value) == f"{path}: shape mismatch"
