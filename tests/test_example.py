"""examples/mnist_fitnet.py --quick: the whole method end to end, then --resume."""
import importlib.util
import json
import os

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
    pytest.importorskip("mlxtend")
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
    # --resume finds every stage finished and reproduces the table without training
    again = ex.main(["--quick", "--out", out, "--no-progress", "--seed", "3", "--resume"])
    assert [r["test_error"] for r in again["results"]] == [r["test_error"] for r in info["results"]]
    assert "finished earlier" in capsys.readouterr().out


def test_bad_arguments_are_clear(capsys):
    ex = load_example()
    with pytest.raises(SystemExit):
        ex.parse_args(["--methods", "backprop,magic"])
    assert "unknown ['magic']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        ex.parse_args(["--tau", "0"])
    assert "--tau must be > 0" in capsys.readouterr().err
