"""MNIST IDX reader, verified download (local HTTP server only), embedded data, splits."""
import gzip
import hashlib
import http.server
import os
import struct
import threading

import numpy as np
import pytest
from hypothesis import given, strategies as st

from tinyfit import data as D


def idx_bytes(arr, type_byte=0x08):
    arr = np.asarray(arr)
    head = bytes([0, 0, type_byte, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
    return head + arr.astype(">u1" if type_byte == 0x08 else arr.dtype).tobytes()


def write_mnist(folder, n_train=20, n_test=10, gz=True, seed=0):
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    parts = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28)), "train_labels": rng.integers(0, 10, n_train),
        "test_images": rng.integers(0, 256, (n_test, 28, 28)), "test_labels": rng.integers(0, 10, n_test),
    }
    paths = {}
    for key, arr in parts.items():
        name = D.MNIST_FILES[key][0]
        raw = idx_bytes(arr)
        path = os.path.join(folder, name if gz else name[:-3])
        with open(path, "wb") as f:
            f.write(gzip.compress(raw) if gz else raw)
        paths[key] = path
    return parts, paths


@pytest.mark.parametrize("gz", [True, False])
def test_reads_standard_files(tmp_path, gz):
    parts, _ = write_mnist(str(tmp_path), gz=gz)
    (x, y), (xt, yt) = D.load_mnist_idx(str(tmp_path))
    assert x.shape == (20, 28, 28, 1) and x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_allclose(x[..., 0], parts["train_images"] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(yt, parts["test_labels"])


def test_idx_errors_name_the_problem(tmp_path):
    p = tmp_path / "f"
    good = idx_bytes(np.zeros((3, 28, 28)))
    p.write_bytes(good[:-5])
    with pytest.raises(D.DataError, match="truncated"):
        D.read_idx(str(p))
    p.write_bytes(good + b"xx")
    with pytest.raises(D.DataError, match="trailing bytes"):
        D.read_idx(str(p))
    p.write_bytes(b"\x12\x34" + good[2:])
    with pytest.raises(D.DataError, match="not an IDX file .*magic bytes 1234"):
        D.read_idx(str(p))
    p.write_bytes(gzip.compress(good)[:-8])
    with pytest.raises(D.DataError, match="corrupted or truncated gzip"):
        D.read_idx(str(p))
    p.write_bytes(idx_bytes(np.zeros(3)))
    with pytest.raises(D.DataError, match="1 dimensions, expected 3"):
        D.read_idx(str(p), expect_ndim=3)
    with pytest.raises(D.DataError, match="not found"):
        D.read_idx(str(tmp_path / "missing"))


def test_labels_out_of_range_and_count_mismatch(tmp_path):
    _, paths = write_mnist(str(tmp_path))
    with open(paths["train_labels"], "wb") as f:
        f.write(gzip.compress(idx_bytes(np.full(20, 12))))
    with pytest.raises(D.DataError, match=r"labels must be digits 0-9, found values in \[12, 12\]"):
        D.load_mnist_idx(str(tmp_path))
    with open(paths["train_labels"], "wb") as f:
        f.write(gzip.compress(idx_bytes(np.zeros(19))))
    with pytest.raises(D.DataError, match="20 images but .* 19 labels"):
        D.load_mnist_idx(str(tmp_path))


def test_missing_files_say_how_to_get_them(tmp_path):
    with pytest.raises(D.DataError, match="--download"):
        D.load_mnist_idx(str(tmp_path))


@given(st.binary(max_size=300))
def test_random_bytes_only_raise_data_error(tmp_path_factory, blob):
    p = tmp_path_factory.mktemp("fuzz") / "f"
    p.write_bytes(blob)
    try:
        D.read_idx(str(p))
    except D.DataError:
        pass


@given(pos=st.integers(0, 10_000), val=st.integers(0, 255), cut=st.integers(0, 10_000), gz=st.booleans())
def test_mutated_files_only_raise_data_error_or_read_fully(tmp_path_factory, pos, val, cut, gz):
    raw = idx_bytes(np.arange(2 * 28 * 28).reshape(2, 28, 28) % 256)
    raw = gzip.compress(raw) if gz else raw
    b = bytearray(raw)
    b[pos % len(b)] = val
    b = bytes(b[: len(b) - cut % len(b)])
    p = tmp_path_factory.mktemp("mut") / "f"
    p.write_bytes(b)
    try:
        a = D.read_idx(str(p))
    except D.DataError:
        return
    assert a.size * a.itemsize <= len(gzip.decompress(b) if b[:2] == b"\x1f\x8b" else b)


class _Server:
    """A local HTTP server on 127.0.0.1 serving one folder."""
    def __init__(self, folder):
        handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=folder, **k)
        http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_download_verifies_sha256_against_a_local_server(tmp_path):
    src = str(tmp_path / "mirror")
    _, paths = write_mnist(src)
    files = {k: (os.path.basename(p), hashlib.sha256(open(p, "rb").read()).hexdigest()) for k, p in paths.items()}
    server = _Server(src)
    try:
        cache = str(tmp_path / "cache")
        D.download_mnist(cache, server.url, files)
        (x, y), _ = D.load_mnist_idx(cache)
        assert x.shape == (20, 28, 28, 1)
        # a tampered mirror is refused, and nothing unverified is kept
        bad = dict(files)
        bad["train_labels"] = (files["train_labels"][0], "0" * 64)
        os.remove(os.path.join(cache, files["train_labels"][0]))
        with pytest.raises(D.DataError, match="SHA-256 .* does not match"):
            D.download_mnist(cache, server.url, bad)
        assert not os.path.exists(os.path.join(cache, files["train_labels"][0]))
        assert not [f for f in os.listdir(cache) if f.endswith(".part")]
        with pytest.raises(D.DataError, match="could not download"):
            D.download_mnist(str(tmp_path / "c2"), server.url + "nothing-here/", files)
    finally:
        server.close()


MNIST_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data", "mnist")


def test_embedded_digits():
    x, y = D.load_mnist_5k()
    assert x.shape == (5000, 28, 28, 1) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    assert np.bincount(y).tolist() == [500] * 10 and (np.diff(y) >= 0).all()  # grouped by class


@pytest.mark.skipif(not os.path.isdir(MNIST_DIR), reason="the MNIST files are not in ../shared/data/mnist")
def test_embedded_digits_are_the_first_500_of_each_class_of_the_mnist_training_set():
    (xt, yt), _ = D.load_mnist_idx(MNIST_DIR)
    first = np.concatenate([np.flatnonzero(yt == c)[:500] for c in range(10)])
    x, y = D.load_mnist_5k()
    assert np.array_equal(x, xt[first]) and np.array_equal(y, yt[first])


def test_embedded_digits_are_checksum_verified(tmp_path, monkeypatch):
    import shutil
    for name, _ in D.MNIST_5K.values():
        shutil.copy(os.path.join(D.DATASETS, name), tmp_path / name)
    monkeypatch.setattr(D, "DATASETS", str(tmp_path))
    assert D.load_mnist_5k()[0].shape == (5000, 28, 28, 1)
    raw = bytearray((tmp_path / D.MNIST_5K["labels"][0]).read_bytes())
    raw[-5] ^= 1
    (tmp_path / D.MNIST_5K["labels"][0]).write_bytes(bytes(raw))
    with pytest.raises(D.DataError, match="SHA-256 .* is not the expected .* reinstall tinyfit"):
        D.load_mnist_5k()
    os.remove(tmp_path / D.MNIST_5K["labels"][0])
    with pytest.raises(D.DataError, match="embedded digits are missing .*--data-dir DIR or --download"):
        D.load_mnist_5k()


def test_split_is_deterministic_and_disjoint():
    x = np.arange(100)[:, None].astype(np.float32)
    y = np.arange(100) % 10
    a, b = D.split_dataset(x, y, 10, 20, seed=3), D.split_dataset(x, y, 10, 20, seed=3)
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.x_test, b.x_test)
    ids = np.concatenate([a.x_train, a.x_val, a.x_test])[:, 0]
    assert sorted(ids.tolist()) == list(range(100)) and len(a.y_val) == 10 and len(a.y_test) == 20
    with pytest.raises(D.DataError, match="cannot take 60 validation and 50 test examples from 100"):
        D.split_dataset(x, y, 60, 50)


def test_the_split_keeps_at_least_one_training_example_and_refuses_none():
    x, y = np.arange(10)[:, None].astype(np.float32), np.arange(10)
    assert len(D.split_dataset(x, y, 5, 4).y_train) == 1
    with pytest.raises(D.DataError, match="cannot take 5 validation and 5 test examples from 10 and keep a training "
                                          "set; hold out fewer \\(at most 9 in all\\)"):
        D.split_dataset(x, y, 5, 5)
    # a separate test set: only the validation digits come out of the ten
    assert len(D.split_dataset(x, y, 9, 0, x_test=x[:2], y_test=y[:2]).y_train) == 1
    with pytest.raises(D.DataError, match="cannot take 10 validation and 0 test examples from 10"):
        D.split_dataset(x, y, 10, 0, x_test=x[:2], y_test=y[:2])
    with pytest.raises(D.DataError, match="cannot take -1 validation"):
        D.split_dataset(x, y, -1, 0)


def test_full_mnist_uses_the_papers_fixed_split(tmp_path):
    parts, _ = write_mnist(str(tmp_path), n_train=30, n_test=5)
    (x, y), (xt, yt) = D.load_mnist_idx(str(tmp_path))
    s = D.paper_split(x, y, xt, yt, n_val=10)
    np.testing.assert_array_equal(s.y_train, parts["train_labels"][:20])
    np.testing.assert_array_equal(s.y_val, parts["train_labels"][20:])
    np.testing.assert_array_equal(s.y_test, parts["test_labels"])
    with pytest.raises(D.DataError, match="cannot hold out 30"):
        D.paper_split(x, y, xt, yt, n_val=30)


def _labelled_split(n_train=2000, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n_train + 300, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, n_train + 300)
    return D.Split(x[:n_train], y[:n_train], x[n_train:n_train + 100], y[n_train:n_train + 100], x[-200:], y[-200:])


def test_training_subsets_are_what_they_claim():
    s = _labelled_split()
    a, b = D.training_subset(s, "random-500-s0"), D.training_subset(s, "random-500-s1")
    assert len(a.y_train) == 500 and a.describe() == "train 500 (random-500-s0), validation 100, test 200"
    # the same digits for the same seed, other digits for another, none repeated, none from validation or test
    again = D.training_subset(s, "random-500-s0")
    assert np.array_equal(a.x_train, again.x_train) and not np.array_equal(a.x_train, b.x_train)
    flat = {x.tobytes() for x in a.x_train}
    assert len(flat) == 500 and flat <= {x.tobytes() for x in s.x_train}
    assert not flat & {x.tobytes() for x in np.concatenate([s.x_val, s.x_test])}
    assert a.x_val is s.x_val and a.x_test is s.x_test           # every subset, the same held-out digits
    bal = D.training_subset(s, "balanced-500-s0")
    assert np.bincount(bal.y_train, minlength=10).tolist() == [50] * 10
    assert D.training_subset(s, "all").describe() == "train 2000 (all), validation 100, test 200"
    assert D.training_subset(s, "random-5000-s0").describe().startswith("train 2000 (random-5000-s0, only 2000)")
    assert "(rule-5000, only " in D.training_subset(s, "rule-5000").describe()   # past the digits: from 0
    for bad in ("random-500", "balanced-55-s0", "thirds", "random-x-s0"):
        with pytest.raises(D.DataError, match="training subset|multiple of 10"):
            D.training_subset(s, bad)


def test_reweighed_classes_keep_only_the_parents_digits_in_the_stated_proportions():
    s = _labelled_split(3000, seed=3)
    parent = D.training_subset(s, "random-1000-s2")
    counts = np.bincount(parent.y_train, minlength=10)
    rows = lambda x: {r.tobytes() for r in x}
    reb = D.training_subset(s, "random-1000-s2-rebalanced")
    assert np.bincount(reb.y_train, minlength=10).tolist() == [counts.min()] * 10
    assert rows(reb.x_train) <= rows(parent.x_train) and reb.x_val is s.x_val and reb.x_test is s.x_test
    assert reb.origin == f"random-1000-s2-rebalanced: {10 * counts.min()} of random-1000-s2's 1000"
    # skewed: the training part's class proportions, each class at most what the parent has
    skew = D.training_subset(s, "balanced-500-s0-skewed")
    got = np.bincount(skew.y_train, minlength=10)
    freq = np.bincount(s.y_train, minlength=10) / len(s.y_train)
    assert got.max() == 50 and got.argmax() == freq.argmax()
    assert np.all(np.abs(got - 50 * freq / freq.max()) < 1)
    assert rows(skew.x_train) <= rows(D.training_subset(s, "balanced-500-s0").x_train)
    # the first digits of each class in the parent's order: the same digits every time
    keep = D.reweigh_classes(np.array([1, 0, 1, 1, 0, 2, 2, 1]), "rebalanced", None)
    assert keep.tolist() == [0, 1, 2, 4, 5, 6]    # two of each class present
    for bad in ("random-1000-s2-shuffled", "-rebalanced", "rebalanced"):
        with pytest.raises(D.DataError, match="training subset"):
            D.training_subset(s, bad)
    with pytest.raises(D.DataError, match="reweighting 'sorted'"):
        D.reweigh_classes(parent.y_train, "sorted", s.y_train)


def test_the_embedded_rule_picks_the_first_500_of_each_class_split_as_shipped():
    y = np.repeat(np.arange(10), 600)[np.random.default_rng(0).permutation(6000)]
    idx = D.embedded_indices(y)
    assert len(idx) == 3500 and len(set(idx)) == 3500
    firsts = set(np.concatenate([np.flatnonzero(y == c)[:500] for c in range(10)]))
    assert set(idx) <= firsts
    later = D.embedded_indices(np.concatenate([y, y]), offset=6000)
    assert set(later) == {i + 6000 for i in idx}          # the same rule further into the file


@pytest.mark.skipif(not os.path.isdir(MNIST_DIR), reason="the full MNIST files are not beside the checkout")
def test_the_embedded_subset_of_the_full_files_is_the_shipped_training_digits():
    full, _ = D.mnist_split(MNIST_DIR)
    emb, _ = D.mnist_split()
    sub = D.training_subset(full, "embedded")
    rows = lambda x: sorted(r.tobytes() for r in x.reshape(len(x), -1))
    assert rows(sub.x_train) == rows(emb.x_train)   # the same 3,500 digits
    assert sorted(sub.y_train.tolist()) == sorted(emb.y_train.tolist())
