"""MNIST data: the IDX reader, a verified download, the embedded 5,000-digit default,
and deterministic splits.

Images come out as float32 (N, 28, 28, 1) in [0, 1] (pixels / 255, channels-last),
labels as int64 (N,).
"""
from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
import zlib
from dataclasses import dataclass

import numpy as np

__all__ = ["DataError", "read_idx", "load_mnist_idx", "download_mnist", "load_mnist_5k", "MNIST_5K",
           "Split", "split_dataset", "paper_split", "mnist_split", "MNIST_FILES", "MNIST_MIRROR", "training_subset",
           "reweigh_classes", "class_profile"]

MNIST_MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"
# SHA-256 of the four standard archives
MNIST_FILES = {
    "train_images": ("train-images-idx3-ubyte.gz", "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
    "train_labels": ("train-labels-idx1-ubyte.gz", "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
    "test_images": ("t10k-images-idx3-ubyte.gz", "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
    "test_labels": ("t10k-labels-idx1-ubyte.gz", "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class DataError(ValueError):
    """A data file is missing, truncated, corrupted or not what was expected."""


def _read_bytes(path):
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError
            raise DataError(f"{path}: corrupted or truncated gzip data ({e}); download the file again") from None
    return raw


def read_idx(path, expect_ndim=None):
    """Read an IDX file (gzipped or not) into a NumPy array, validating its header.

    The header is 2 zero bytes, a type byte, a dimension count, then one big-endian
    uint32 per dimension; the data must have exactly prod(dims) items.
    """
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES or raw[3] == 0:
        raise DataError(
            f"{path}: not an IDX file (magic bytes {raw[:4].hex() or 'missing'}; expected 0000 then a type byte "
            "08/09/0b-0e and a dimension count, e.g. 00000803 for images, 00000801 for labels)")
    ndim = raw[3]
    if expect_ndim is not None and ndim != expect_ndim:
        raise DataError(f"{path}: IDX file has {ndim} dimensions, expected {expect_ndim} "
                        f"({'images' if expect_ndim == 3 else 'labels'}); are image and label files swapped?")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header ({len(raw)} bytes, need {header})")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, 4))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    need = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    got = len(raw) - header
    if got != need:
        kind = "truncated" if got < need else "has trailing bytes"
        raise DataError(f"{path}: IDX data {kind}: header says dims {dims} ({need} bytes) but the file holds "
                        f"{got} bytes; download the file again")
    return np.frombuffer(raw, dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def _find(data_dir, name):
    for cand in (name, name[:-3]):
        p = os.path.join(data_dir, cand)
        if os.path.exists(p):
            return p
    raise DataError(f"{os.path.join(data_dir, name)} (or without .gz) not found; put the four standard MNIST "
                    "files there, or fetch them with download_mnist (the example's --download)")


def _images_labels(img_path, lab_path):
    x = read_idx(img_path, expect_ndim=3)
    y = read_idx(lab_path, expect_ndim=1)
    if x.shape[0] != y.shape[0]:
        raise DataError(f"{img_path} has {x.shape[0]} images but {lab_path} has {y.shape[0]} labels")
    return _normalise(x, y, img_path)


def _normalise(x, y, where):
    if x.ndim != 3 or x.shape[1:] != (28, 28):
        raise DataError(f"{where}: images must be 28x28, got shape {x.shape[1:]}")
    if y.size and (y.min() < 0 or y.max() > 9):
        raise DataError(f"{where}: labels must be digits 0-9, found values in [{y.min()}, {y.max()}]")
    return (x.astype(np.float32) / 255.0)[..., None], y.astype(np.int64)


def load_mnist_idx(data_dir):
    """The standard MNIST files in ``data_dir`` -> ((x_train, y_train), (x_test, y_test))."""
    f = {k: _find(data_dir, name) for k, (name, _) in MNIST_FILES.items()}
    return (_images_labels(f["train_images"], f["train_labels"]),
            _images_labels(f["test_images"], f["test_labels"]))


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download_mnist(cache_dir, mirror=MNIST_MIRROR, files=None, timeout=60):
    """Fetch the four MNIST archives into ``cache_dir`` (skipping verified ones), check each
    file's SHA-256 and return ``cache_dir``. A file with the wrong hash is deleted and reported."""
    import urllib.request  # only here: it is slow to import
    files = files or MNIST_FILES
    for name, digest in files.values():
        dest = os.path.join(cache_dir, name)
        if os.path.exists(dest) and _sha256(dest) == digest:
            continue
        url = mirror.rstrip("/") + "/" + name
        try:
            os.makedirs(cache_dir, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".part")
        except OSError as e:
            raise DataError(f"cannot write the download into {cache_dir} ({e.strerror or e}); give a folder you "
                            "can write to (--cache-dir)") from None
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as r:
                shutil.copyfileobj(r, out)
            got = _sha256(tmp)
            if got != digest:
                raise DataError(f"{url}: SHA-256 {got} does not match the expected {digest}; the mirror "
                                "served a different file. Try another mirror or copy the files by hand.")
            os.replace(tmp, dest)
        except OSError as e:
            raise DataError(f"could not download {url}: {e}") from None
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    return cache_dir


# the embedded digits (tinyfit/datasets/README.md) and their SHA-256
MNIST_5K = {
    "images": ("mnist5k-images-idx3-ubyte.gz", "c6b100a5a2c03680cfe2ea9a6cb50df61c85444712901c9827140677184ff468"),
    "labels": ("mnist5k-labels-idx1-ubyte.gz", "86843f81a1849db34cf2a8117f2c27d94bdb2638b0633e53343f198187730267"),
}
DATASETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "datasets")


def load_mnist_5k():
    """The 5,000 real MNIST digits shipped with tinyfit (the first 500 of each class of the
    MNIST training set, grouped by class; tinyfit/datasets/README.md), checksum-verified."""
    paths = {}
    for k, (name, digest) in MNIST_5K.items():
        paths[k] = os.path.join(DATASETS, name)
        if not os.path.exists(paths[k]):
            raise DataError(f"{paths[k]}: the embedded digits are missing from this tinyfit installation; "
                            "reinstall tinyfit, or use the full MNIST files (--data-dir DIR or --download)")
        if _sha256(paths[k]) != digest:
            raise DataError(f"{paths[k]}: SHA-256 {_sha256(paths[k])} is not the expected {digest}: the file was "
                            "changed or damaged; reinstall tinyfit")
    return _images_labels(paths["images"], paths["labels"])


@dataclass
class Split:
    """Train / validation / test arrays; x: (N, 28, 28, 1) float32, y: (N,) int64."""
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    origin: str = ""    # which training digits, when a subset (``training_subset``)

    def describe(self):
        train = f"train {len(self.y_train)}" + (f" ({self.origin})" if self.origin else "")
        return f"{train}, validation {len(self.y_val)}, test {len(self.y_test)}"


def split_dataset(x, y, n_val, n_test=0, seed=0, x_test=None, y_test=None):
    """Deterministic split: a seeded permutation, then test (when no separate test set
    is given), validation, and the rest for training."""
    n = len(y)
    taken = n_test if x_test is None else 0   # a separate test set takes none of these
    if n_val < 0 or n_test < 0 or n_val + taken >= n:
        raise DataError(f"cannot take {n_val} validation and {taken} test examples from {n} and keep a training "
                        f"set; hold out fewer (at most {n - 1} in all)")
    order = np.random.default_rng(seed).permutation(n)
    if x_test is None:
        test, order = order[:n_test], order[n_test:]
        x_test, y_test = x[test], y[test]
    val, train = order[:n_val], order[n_val:]
    return Split(x[train], y[train], x[val], y[val], x_test, y_test)


def paper_split(x, y, x_test, y_test, n_val=10_000):
    """The paper's fixed split of the MNIST training set: the first ``len(y) - n_val`` digits
    for training, the last ``n_val`` for validation (the official code's 50,000 / 10,000)."""
    if not 0 < n_val < len(y):
        raise DataError(f"cannot hold out {n_val} validation digits from a training set of {len(y)}")
    k = len(y) - n_val
    return Split(x[:k], y[:k], x[k:], y[k:], x_test, y_test)


EMBEDDED_PER_CLASS, EMBEDDED_SEED = 500, 12345   # the embedded digits' rule and their split's seed


def embedded_indices(y_full, offset=0):
    """Where the embedded training digits sit in the MNIST training file whose labels are
    ``y_full`` (60,000): the first 500 of each class, grouped by class, split 3,500 / 500 /
    1,000 as ``mnist_split`` splits them; returns the 3,500 training digits' indices. offset:
    the same rule applied from digit ``offset`` of the file on (0: the embedded digits)."""
    idx = np.concatenate([offset + np.flatnonzero(y_full[offset:] == c)[:EMBEDDED_PER_CLASS] for c in range(10)])
    if len(idx) <= 1500:  # labels too few for the rule (a smoke run's): all that it selects
        return idx
    order = np.random.default_rng(EMBEDDED_SEED).permutation(len(idx))
    return idx[order[1500:]]


def subset_indices(y, n, seed, balanced=False):
    """``n`` distinct indices into labels ``y``, drawn with generator ``seed``; balanced: n / 10
    of each class (n must then be a multiple of 10). Sorted, so a subset is a set of digits."""
    rng = np.random.default_rng(seed)
    if not 0 < n <= len(y):
        raise DataError(f"cannot draw {n} digits from {len(y)}")
    if not balanced:
        return np.sort(rng.choice(len(y), n, replace=False))
    if n % 10:
        raise DataError(f"a class-balanced subset needs a multiple of 10 digits, got {n}")
    pools = [np.flatnonzero(y == c) for c in range(10)]
    if min(len(p) for p in pools) < n // 10:
        raise DataError(f"cannot draw {n // 10} digits of each class from these labels")
    return np.sort(np.concatenate([rng.choice(p, n // 10, replace=False) for p in pools]))


def class_profile(y, x=None):
    """What a training set's labels y (N,) (and images x, if given) look like: its size, the
    count of each class, the ratio of the largest class to the smallest, the total variation
    distance of its class frequencies from uniform (0: every class equal), and the images'
    mean pixel value."""
    counts = np.bincount(y, minlength=10)
    freq = counts / max(1, len(y))
    out = {"digits": int(len(y)), "class_counts": counts.tolist(),
           "largest_to_smallest": float(counts.max() / max(1, counts.min())),
           "distance_from_uniform": float(0.5 * np.abs(freq - 1 / len(counts)).sum())}
    if x is not None:
        out["mean_pixel"] = float(np.mean(x, dtype=np.float64))
    return out


CLASS_REWEIGHTINGS = ("rebalanced", "skewed")


def reweigh_classes(y, how, reference):
    """Indices into labels ``y`` that keep, of each class c, its first ``k_c`` digits in ``y``'s
    order. how: 'rebalanced' (k_c the smallest count of a class in ``y``: every class equal) or
    'skewed' (k_c proportional to class c's frequency in labels ``reference``, the most frequent
    class keeping all of its digits that the others allow: ``y``'s own digits in ``reference``'s
    class proportions). Sorted; only digits are dropped, none added."""
    counts = np.bincount(y, minlength=10)
    if how == "rebalanced":
        keep = np.full(10, counts[counts > 0].min() if counts.any() else 0)
    elif how == "skewed":
        freq = np.bincount(reference, minlength=10) / len(reference)
        scale = min(counts[c] / freq[c] for c in range(10) if freq[c] > 0)
        keep = np.minimum(counts, np.floor(freq * scale + 1e-9).astype(int))
    else:
        raise DataError(f"unknown class reweighting {how!r}: expected one of {', '.join(CLASS_REWEIGHTINGS)}")
    return np.sort(np.concatenate([np.flatnonzero(y == c)[:keep[c]] for c in range(10)]))


def training_subset(split, key):
    """``split`` (the paper's split of the full files) with its training digits replaced by the
    subset ``key`` of its training part; validation and test unchanged, so that every subset is
    measured on the same held-out digits. key: 'embedded' (the digits that ship with tinyfit,
    ``embedded_indices``: all within the first 6,000 of the file), 'rule-K' (the same rule from
    digit K of the file on), 'all' (the whole training part), or 'random-N-sK' / 'balanced-N-sK'
    (N digits drawn with seed K, class-balanced or not). A training part smaller than N (a
    smoke run's) gives all of it, and says so. A key may end in '-rebalanced' or '-skewed': the
    digits of the key before it with classes made equal or given the training part's class
    frequencies by dropping digits (``reweigh_classes``), the same digits otherwise."""
    for how in CLASS_REWEIGHTINGS:
        if key.endswith("-" + how) and len(key) > len(how) + 1:
            parent = training_subset(split, key[:-len(how) - 1])
            keep = reweigh_classes(parent.y_train, how, split.y_train)
            return Split(parent.x_train[keep], parent.y_train[keep], split.x_val, split.y_val, split.x_test,
                         split.y_test, origin=f"{key}: {len(keep)} of {parent.origin}'s {len(parent.y_train)}")
    n_train, parts = len(split.y_train), key.split("-")
    try:
        if key == "embedded":
            idx, wanted = embedded_indices(split.y_train), 10 * EMBEDDED_PER_CLASS - 1500
        elif parts[0] == "rule" and len(parts) == 2:
            offset = int(parts[1]) if int(parts[1]) < n_train else 0   # past a smoke run's digits: from 0
            idx, wanted = embedded_indices(split.y_train, offset), 10 * EMBEDDED_PER_CLASS - 1500
        elif key == "all":
            idx = np.arange(n_train)
            wanted = n_train
        elif parts[0] in ("random", "balanced") and len(parts) == 3 and parts[2].startswith("s"):
            wanted = int(parts[1])
            idx = (subset_indices(split.y_train, wanted, int(parts[2][1:]), parts[0] == "balanced")
                   if wanted <= n_train else np.arange(n_train))
        else:
            raise ValueError
    except ValueError:
        raise DataError(f"unknown training subset {key!r}: expected 'embedded', 'rule-K', 'all', 'random-N-sK' "
                        "or 'balanced-N-sK', optionally ending in '-rebalanced' or '-skewed'") from None
    origin = key if len(idx) == wanted else f"{key}, only {len(idx)}"
    return Split(split.x_train[idx], split.y_train[idx], split.x_val, split.y_val, split.x_test, split.y_test,
                 origin=origin)


def mnist_split(data_dir=None, quick=False):
    """The data of the FitNets runs: (Split, description).

    data_dir: the four MNIST IDX files, split as in the paper (``paper_split``); None: the
    5,000 digits shipped with tinyfit, split 3,500 / 500 / 1,000 with a fixed seed. quick: the first
    512 / 128 / 256 digits of that split (smoke runs)."""
    if data_dir:
        (x, y), (xt, yt) = load_mnist_idx(data_dir)
        split = paper_split(x, y, xt, yt)
        source = f"MNIST IDX files in {data_dir} (the paper's split: first 50,000 train, last 10,000 validation)"
    else:
        x, y = load_mnist_5k()
        split = split_dataset(x, y, n_val=500, n_test=1000, seed=12345)
        source = "the 5,000 MNIST digits shipped with tinyfit (fixed split, seed 12345)"
    if quick:
        s = split
        split = Split(s.x_train[:512], s.y_train[:512], s.x_val[:128], s.y_val[:128], s.x_test[:256], s.y_test[:256])
    return split, source
