"""examples/mnist_fitnet.py --quick: the whole method end to end, then --resume."""
import errno
import importlib.util
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import tinyfit

HERE = os.path.dirname(os.path.abspath(__file__))


def load_example():
    path = os.path.join(HERE, "..", "examples", "mnist_fitnet.py")
    spec = importlib.util.spec_from_file_location("mnist_fitnet", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_quick_run_then_resume(tmp_path, capsys):
    ex = load_example()
    out = str(tmp_path / "run")
    info = ex.main(["--quick", "--out", out, "--no-progress", "--seed", "3"])
    assert [r["method"] for r in info["results"]] == ["teacher", "backprop", "kd", "fitnet"]
    labels = [r["label"] for r in info["results"]]
    assert labels == ["teacher", "student, backprop", "student, KD", "student, FitNets (hints + KD)"]
    for r in info["results"]:
        assert 0 <= r["test_error"] <= 1 and r["epochs"] >= 1
    saved = json.load(open(os.path.join(out, "results.json")))
    assert saved["results"] == json.loads(json.dumps(info["results"]))
    assert open(os.path.join(out, "results.csv")).readline().startswith("method,label,parameters,")
    for stage in ("teacher", "backprop", "kd", "stage1", "fitnet"):
        m = tinyfit.load_model(os.path.join(out, f"{stage}.model.npz"))
        assert m.predict(np.zeros((1, 28, 28, 1), np.float32)).shape == (1,)
    text = capsys.readouterr().out
    assert "split: train 512, validation 128, test 256" in text and "regressor: guided h3 (4, 4, 16)" in text
    assert "SMOKE RUN (--quick)" in text and "these numbers mean nothing" in text
    # --resume finds every stage finished and reproduces the table without training
    again = ex.main(["--quick", "--out", out, "--no-progress", "--seed", "3", "--resume"])
    assert [r["test_error"] for r in again["results"]] == [r["test_error"] for r in info["results"]]
    assert "finished earlier" in capsys.readouterr().out
    assert again["invocations"][0] == info["invocations"][0] and len(again["invocations"]) == 2
    # a finished stage is never reused under other settings: refused, naming the setting
    with pytest.raises(SystemExit) as e:
        ex.run_cli(lambda: ex.main(["--quick", "--out", out, "--no-progress", "--seed", "3", "--resume", "--tau", "5"]))
    assert re.fullmatch(r"error: \S+/kd\.model\.npz was made with other settings: tau=3\.0 \(now 5\.0\); use the same "
                        r"settings to resume, or another output folder \(--out\) for a new run", str(e.value.code))


def test_bad_arguments_are_clear(capsys):
    ex = load_example()
    with pytest.raises(SystemExit):
        ex.parse_args(["--methods", "backprop,magic"])
    assert "unknown ['magic']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        ex.parse_args(["--tau", "0"])
    assert "--tau must be a finite number > 0 (the paper: 3), got 0.0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        ex.parse_args(["--epochs", "0"])
    assert "--epochs must be a positive integer, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        ex.parse_args(["--lambda-final", "7"])
    assert "--lambda-final must be in [0, 4] (lambda starts at 4), got 7.0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        ex.parse_args(["--methods", "single-stage"])
    assert "--methods single-stage needs --hint-weight BETA" in capsys.readouterr().err


def _cli(args, **kw):
    script = os.path.join(HERE, "..", "examples", "mnist_fitnet.py")
    return subprocess.run([sys.executable, script, "--quick", "--no-progress"] + args, capture_output=True, text=True,
                          timeout=300, **kw)


def _weights(out):
    got = {}
    for stage in ("teacher", "backprop", "kd", "stage1", "fitnet"):
        with np.load(os.path.join(out, f"{stage}.model.npz")) as z:
            got.update({f"{stage}/{k}": z[k] for k in z.files if k != "__meta__"})
    return got


def test_an_output_folder_that_cannot_be_made_is_one_clear_line():
    r = _cli(["--out", "/proc/nope/run"])
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [
        "error: cannot create the folder /proc/nope/run: No such file or directory"]


def test_a_second_run_on_the_same_folder_is_refused_and_the_first_unaffected(tmp_path):
    from tinyfit.files import FolderLock
    out = str(tmp_path / "run")
    with FolderLock(out):  # as a first run holds it
        r = _cli(["--out", out])
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"{out} is in use by process {os.getpid()}" in r.stderr and "another output folder" in r.stderr
    assert os.listdir(out) == [".tinyfit.lock"]  # the refused run wrote nothing
    assert _cli(["--out", out]).returncode == 0  # released: the next run goes ahead


def test_disk_full_mid_run_ends_cleanly_and_resume_finishes_exactly(tmp_path, monkeypatch):
    """ENOSPC injected at the file layer on the 7th write: one line naming the file and the
    full disk, every file written before intact, and --resume ends where an uninterrupted run
    ends (bit-identical models)."""
    ex = load_example()
    full, cut = str(tmp_path / "full"), str(tmp_path / "cut")
    ex.main(["--quick", "--no-progress", "--out", full])
    calls, real = [0], os.fsync

    def fsync(fd):
        calls[0] += 1
        if calls[0] == 7:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd)
    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(SystemExit) as e:
        ex.run_cli(lambda: ex.main(["--quick", "--no-progress", "--out", cut]))
    assert re.fullmatch(r"error: cannot write .*/cut/\S+: the disk is full; free some space, then rerun with "
                        r"--resume: the files written before are intact", str(e.value.code)), e.value.code
    monkeypatch.undo()
    ex.main(["--quick", "--no-progress", "--out", cut, "--resume"])
    a, b = _weights(full), _weights(cut)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_a_real_small_filesystem_fills_up_then_resume_finishes(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("mounting a tmpfs is not allowed here")
    try:
        (mnt / "filler").write_bytes(b"\0" * (9 << 20))  # 3 MB left: the teacher's checkpoint needs more
        r = _cli(["--out", str(mnt / "run")])
        assert r.returncode == 1 and "Traceback" not in r.stderr and "the disk is full" in r.stderr, r.stderr
        os.remove(mnt / "filler")
        r = _cli(["--out", str(mnt / "run"), "--resume"])
        assert r.returncode == 0, r.stderr
        ref = str(tmp_path / "ref")
        assert _cli(["--out", ref]).returncode == 0
        a, b = _weights(ref), _weights(str(mnt / "run"))
        assert all(np.array_equal(a[k], b[k]) for k in a)
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


def test_export_onnx_without_onnx_is_refused_before_training(capsys, monkeypatch):
    ex = load_example()
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else real(name, *a))
    with pytest.raises(SystemExit):
        ex.parse_args(["--export-onnx"])
    assert "--export-onnx needs the onnx package: pip install 'tinyfit[onnx]'" in capsys.readouterr().err


def _bad_paths(tmp_path):
    """(argument values that are wrong for a path argument, and what the one line must say)."""
    from tinyfit.checkpoint import save_model
    from tinyfit.models import mnist_student
    student = str(tmp_path / "kd.model.npz")
    save_model(student, mnist_student(), {"settings": {"method": "kd"}})
    a_file = str(tmp_path / "file.txt")
    open(a_file, "w").close()
    return [(["--teacher", str(tmp_path)], "is a folder"), (["--teacher", str(tmp_path / "no.npz")], "does not exist"),
            (["--teacher", student], "holds a kd student's model"),
            (["--download", "--cache-dir", a_file + "/mnist"], "cannot write the download into"),
            (["--out", a_file], "exists and is not a folder"), (["--out", a_file + "/run"], "cannot write in"),
            (["--data-dir", str(tmp_path / "none")], str(tmp_path / "none"))]


@pytest.mark.parametrize("command", ["mnist_fitnet.py", "fitnets_study.py init"])
def test_every_bad_path_is_one_clear_line_before_any_training(command, tmp_path):
    for args, said in _bad_paths(tmp_path):
        script, *rest = command.split()
        out = [] if "--out" in args else ["--out", str(tmp_path / "out")]
        r = subprocess.run([sys.executable, os.path.join(HERE, "..", "examples", script), *rest, "--quick",
                            "--no-progress", "--mirror", "http://127.0.0.1:9"] + out + args,
                           capture_output=True, text=True, timeout=300)
        last = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ""
        assert r.returncode != 0 and "Traceback" not in r.stderr and said in last, (command, args, r.stderr[-500:])
        assert "error" in last and not os.path.exists(tmp_path / "out" / "teacher.model.npz")
