"""A tiny FitNets problem (8x8 images, 3 classes) for fast training tests."""
import numpy as np

from tinyfit.data import Split
from tinyfit.fitnets import StageSpec
from tinyfit.nn import Dropout, Flatten, Linear, MaxoutConv2d, Sequential
from tinyfit.training import FitConfig


def tiny_data(seed=0, n=96):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.random((n, 8, 8, 1), dtype=np.float32) * 0.3
    for c in range(3):  # a learnable pattern per class
        x[y == c, 2 * c:2 * c + 3, :, 0] += 0.7
    return Split(x[:64], y[:64], x[64:80], y[64:80], x[80:], y[80:])


def tiny_teacher(rng):
    return Sequential([
        ("d0", Dropout(0.2)),
        ("h0", MaxoutConv2d(in_channels=1, channels=6, pieces=2, kernel=3, pad=1, pool=2, pool_stride=2,
                            init="glorot", max_norm=1.9, rng=rng)),
        ("d1", Dropout(0.5)),
        ("h1", MaxoutConv2d(in_channels=6, channels=6, pieces=2, kernel=3, init="glorot", max_norm=1.9, rng=rng)),
        ("flat", Flatten()),
        ("y", Linear(in_features=6 * 2 * 2, out_features=3, init="glorot", max_norm=1.9, rng=rng)),
    ], input_shape=(8, 8, 1))


def tiny_student(rng):
    return Sequential([
        ("h0", MaxoutConv2d(in_channels=1, channels=3, pieces=2, kernel=3, init="glorot", max_norm=1.9, rng=rng)),
        ("h1", MaxoutConv2d(in_channels=3, channels=3, pieces=2, kernel=3, init="glorot", max_norm=1.9,
                            rng=rng)),  # 4x4, guided
        ("h2", MaxoutConv2d(in_channels=3, channels=4, pieces=2, kernel=3, pool=2, pool_stride=2, init="glorot",
                            max_norm=1.9, rng=rng)),
        ("flat", Flatten()),
        ("y", Linear(in_features=4, out_features=3, init="glorot", max_norm=1.9, rng=rng)),
    ], input_shape=(8, 8, 1))


def spec(epochs=3, optimizer="rmsprop", lr=0.01, checkpoint_every=0):
    return StageSpec(optimizer, lr, fit=FitConfig(epochs=epochs, batch_size=16, patience=100,
                                                  checkpoint_every=checkpoint_every))
