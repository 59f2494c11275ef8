"""ONNX export: onnxruntime's outputs equal tinyfit's to 1e-5 on float32 inputs for the paper's
teacher and student and for random small architectures; the files pass onnx.checker and load
without tinyfit. Skipped without the extra (pip install 'tinyfit[onnx]')."""
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinyfit as tf
from tinyfit.models import mnist_student, mnist_teacher
from tinyfit.nn import Conv2d, Dropout, Flatten, Linear, MaxoutConv2d, Sequential, eval_outputs

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
TOL = dict(rtol=1e-5, atol=1e-5)


def run_onnx(path, x):
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return sess.run(None, {"images": x})[0]


@pytest.mark.parametrize("build", [
    lambda: mnist_student(init="glorot", rng=np.random.default_rng(0)),
    lambda: mnist_student(pieces="paper", init="glorot", rng=np.random.default_rng(1)),
    lambda: mnist_teacher(init="glorot", rng=np.random.default_rng(2)),
    lambda: mnist_teacher(pooling="floor", init="glorot", rng=np.random.default_rng(3)),
], ids=["student", "student-paper-pieces", "teacher", "teacher-floor-pooling"])
def test_paper_models_match_onnxruntime(build, tmp_path):
    model = build()
    path = tf.export_onnx(model, str(tmp_path / "m.onnx"))
    onnx.checker.check_model(onnx.load(path), full_check=True)
    x = np.random.default_rng(5).random((9, 28, 28, 1), dtype=np.float32)
    np.testing.assert_allclose(run_onnx(path, x), eval_outputs(model, x), **TOL)
    assert model.training  # exporting leaves the mode as it was


@st.composite
def architectures(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    H, W, C = draw(st.integers(8, 14)), draw(st.integers(8, 14)), draw(st.integers(1, 3))
    layers, c, h, w = [], C, H, W
    if draw(st.booleans()):
        layers.append(("d0", Dropout(0.3)))
    for i in range(draw(st.integers(1, 3))):
        k = draw(st.integers(1, min(3, h, w)))  # the map may have shrunk to 1 or 2
        pad = draw(st.integers(0, k // 2))
        if draw(st.integers(0, 4)) == 0:
            out = draw(st.integers(1, 4))
            layers.append((f"c{i}", Conv2d(in_channels=c, out_channels=out, kernel=k, pad=pad, init="glorot",
                                           rng=rng)))
            c, h, w = out, h + 2 * pad - k + 1, w + 2 * pad - k + 1
            continue
        pieces, ch = draw(st.integers(1, 4)), draw(st.integers(1, 4))
        h, w = h + 2 * pad - k + 1, w + 2 * pad - k + 1
        pool = stride = None
        ceil = draw(st.booleans())
        if draw(st.booleans()) and min(h, w) >= 3:
            pool, stride = draw(st.integers(2, 3)), draw(st.integers(1, 2))
            h, w = (tf.functional.pool_output_size(n, pool, stride, 0, ceil) for n in (h, w))
        layers.append((f"h{i}", MaxoutConv2d(in_channels=c, channels=ch, pieces=pieces, kernel=k, pad=pad, pool=pool,
                                             pool_stride=stride, ceil_mode=ceil, init="glorot", rng=rng)))
        c = ch
    layers += [("flat", Flatten()),
               ("y", Linear(in_features=h * w * c, out_features=draw(st.integers(2, 5)), init="glorot", rng=rng))]
    return Sequential(layers, input_shape=(H, W, C))


@given(model=architectures(), seed=st.integers(0, 2 ** 32 - 1))
def test_random_architectures_match_onnxruntime(model, seed, tmp_path_factory):
    path = tf.export_onnx(model, str(tmp_path_factory.mktemp("onnx") / "m.onnx"))
    x = np.random.default_rng(seed).standard_normal((3,) + model.input_shape).astype(np.float32)
    np.testing.assert_allclose(run_onnx(path, x), eval_outputs(model, x), **TOL)


def test_softmax_with_temperature(tmp_path):
    model = mnist_student(init="glorot", rng=np.random.default_rng(0))
    path = tf.export_onnx(model, str(tmp_path / "p.onnx"), softmax_temperature=3.0)
    x = np.random.default_rng(1).random((4, 28, 28, 1), dtype=np.float32)
    ref = tf.functional.softmax(tf.Tensor(eval_outputs(model, x)), 3.0).data
    p = run_onnx(path, x)
    np.testing.assert_allclose(p, ref, **TOL)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)


def test_the_file_runs_without_tinyfit(tmp_path):
    model = mnist_student(init="glorot", rng=np.random.default_rng(0))
    path = tf.export_onnx(model, str(tmp_path / "s.onnx"))
    x = np.random.default_rng(2).random((2, 28, 28, 1), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    code = ("import sys; sys.modules['tinyfit'] = None\n"  # any import of tinyfit would fail
            "import numpy as np, onnxruntime as ort\n"
            f"s = ort.InferenceSession({path!r}, providers=['CPUExecutionProvider'])\n"
            f"print(s.run(None, {{'images': np.load({str(tmp_path / 'x.npy')!r})}})[0].argmax(1).tolist())")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(tmp_path), timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(model.predict(x).tolist())


def test_unsupported_models_are_named(tmp_path):
    with pytest.raises(TypeError, match="Sequential"):
        tf.export_onnx(Linear(in_features=3, out_features=2), str(tmp_path / "x.onnx"), (1, 1, 3))
    bad = Sequential([("flat", Flatten()), ("y", Linear(in_features=4, out_features=2)),
                      ("c", Conv2d(in_channels=1, out_channels=1, kernel=1))], input_shape=(2, 2, 1))
    with pytest.raises(ValueError, match="layer 'c' .* after Flatten"):
        tf.export_onnx(bad, str(tmp_path / "x.onnx"))
    with pytest.raises(ValueError, match="softmax_temperature"):
        tf.export_onnx(mnist_student(), str(tmp_path / "x.onnx"), softmax_temperature=0)
    assert not os.path.exists(tmp_path / "x.onnx")
