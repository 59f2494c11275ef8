import numpy as np

import tinyfit as tf
import tinyfit.functional as F
from tinyfit.profiler import profile


def test_profile_attributes_time_to_ops():
    x = tf.Tensor(np.random.default_rng(0).random((2, 6, 6, 1), dtype=np.float32))
    W = tf.Tensor(np.ones((3, 3, 1, 4), np.float32), requires_grad=True)
    with profile() as prof:
        F.maxout(F.conv2d(x, W), 2).sum().backward()
    table = prof.table()
    for op in ("Conv2d", "Maxout", "Sum"):
        assert op in table
    assert prof.calls[("Conv2d", "forward")] == 1 and prof.calls[("Conv2d", "backward")] == 1
    # outside the block nothing is recorded
    F.conv2d(x, W)
    assert prof.calls[("Conv2d", "forward")] == 1
