"""Speed and memory of a training step: tinyfit vs PyTorch on the paper's MNIST networks.

    python benchmarks/bench_step.py                    # tinyfit only
    python benchmarks/bench_step.py --compare-torch    # side by side (pip install torch==2.13.0)
    python benchmarks/bench_step.py --profile          # time per op type
    python benchmarks/bench_step.py --device cuda --batch 128 1024 --compare-torch

Measures, at each batch size, for the student and the teacher: forward-only (inference)
time, full training step time (forward, backward, optimiser update), achieved GFLOP/s
against the float32 GEMM peak measured in the same run, and (CPU) the peak RSS of 200
student training steps in a fresh process plus the time of `import tinyfit`. tinyfit and
PyTorch runs alternate, several repetitions each; medians and the tinyfit/PyTorch ratio
are printed, then one JSON line.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

# as the training commands do (examples/mnist_fitnet.py says why); before NumPy loads
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import tinyfit as tf  # noqa: E402
import tinyfit.functional as F  # noqa: E402
from tinyfit import backend  # noqa: E402
from tinyfit.models import mnist_student, mnist_teacher  # noqa: E402
from tinyfit.optim import SGD, RMSProp  # noqa: E402


def sync(device):
    if device == "cuda":
        backend.synchronize()


def conv_flops(model, batch):
    """Multiply-adds x 2 of one forward pass (convs and the classifier), from the layer configs."""
    flops, h, w, c = 0, 28, 28, 1
    for name in model.layer_names:
        m = model[name]
        cfg = getattr(m, "config", {})
        if type(m).__name__ == "MaxoutConv2d":
            k, p, o = cfg["kernel"], cfg["pad"], cfg["channels"] * cfg["pieces"]
            h, w = h + 2 * p - k + 1, w + 2 * p - k + 1
            flops += 2 * batch * h * w * k * k * c * o
            c = cfg["channels"]
            if cfg["pool"]:
                h = F.pool_output_size(h, cfg["pool"], cfg["pool_stride"], 0, cfg["ceil_mode"])
                w = F.pool_output_size(w, cfg["pool"], cfg["pool_stride"], 0, cfg["ceil_mode"])
        elif type(m).__name__ == "Linear":
            flops += 2 * batch * cfg["in_features"] * cfg["out_features"]
    return flops


def layer_gemms(k, pad, c, o, n, h, w, input_grad):
    """{phase: [(a_shape, b_shape, transpose_a)]}: the GEMMs one training step of a stride-1
    MaxoutConv2d layer performs, as conv2d's algorithm choice does them (functional/conv.py)."""
    from tinyfit.functional.conv import Conv2d, _flipped_pays
    from tinyfit.functional.conv_rows import _pairs
    oh, ow = h + 2 * pad - k + 1, w + 2 * pad - k + 1
    g = {"forward": [], "weight grad": [], "input grad": []}
    flipped = _flipped_pays(np.empty((k, k, c, o)), (n, h, w, c), 1, pad)
    if Conv2d(1, pad).rows:  # one GEMM per kernel row over the output rows it reaches
        for _, o0, o1, _ in _pairs(k, oh, h, pad):
            m = (o1 - o0) * n * ow
            g["forward"].append(((m, k * c), (k * c, o), False))
            g["weight grad"].append(((m, k * c), (m, o), True))
            if input_grad and not flipped:
                g["input grad"].append(((m, o), (o, k * c), False))
    else:  # im2col with the bias column (transposed for one channel); per-offset input gradient
        m, kk = n * oh * ow, k * k * c + 1
        if c == 1:
            g["forward"].append(((kk, m), (kk, o), True))
            g["weight grad"].append(((kk, m), (m, o), False))
        else:
            g["forward"].append(((m, kk), (kk, o), False))
            g["weight grad"].append(((m, kk), (m, o), True))
        if input_grad and not flipped:
            g["input grad"] += [((m, o), (o, c), False)] * (k * k)
    if input_grad and flipped:  # the convolution of gy with the flipped kernel
        g["input grad"].append(((n * h * w, k * k * o), (k * k * o, c), False))
    return g


def gemm_floor(which, batch, reps=5):
    """Milliseconds of the GEMMs alone of one training step, at the shapes the step's
    convolutions use (layer_gemms), each timed on random arrays (CPU)."""
    model = (mnist_student if which == "student" else mnist_teacher)()
    h = w = 28
    c = 1
    tot = {"forward": 0.0, "weight grad": 0.0, "input grad": 0.0}
    rng = np.random.default_rng(0)

    def med(f):
        f()
        ts = []
        for _ in range(reps):
            t = time.perf_counter()
            f()
            ts.append(time.perf_counter() - t)
        return statistics.median(ts)
    first = True
    for name in model.layer_names:
        cfg = getattr(model[name], "config", {})
        if type(model[name]).__name__ != "MaxoutConv2d":
            continue
        k, p, o = cfg["kernel"], cfg["pad"], cfg["channels"] * cfg["pieces"]
        for phase, gemms in layer_gemms(k, p, c, o, batch, h, w, not first).items():
            for a_shape, b_shape, trans in gemms:
                a = rng.random(a_shape, dtype=np.float32)
                b_ = rng.random(b_shape, dtype=np.float32)
                tot[phase] += med(lambda a=a, b_=b_, trans=trans: (a.T if trans else a) @ b_)
        first = False
        c, h, w = cfg["channels"], h + 2 * p - k + 1, w + 2 * p - k + 1
        if cfg["pool"]:
            h = F.pool_output_size(h, cfg["pool"], cfg["pool_stride"], 0, cfg["ceil_mode"])
            w = F.pool_output_size(w, cfg["pool"], cfg["pool_stride"], 0, cfg["ceil_mode"])
    return {k: 1000 * v for k, v in tot.items()}


def gemm_peak(device, n=2048, reps=5):
    xp = backend.get_array_module(backend.to_device(np.zeros(1), device))
    a = xp.asarray(np.random.default_rng(0).random((n, n), dtype=np.float32))
    b = a.copy()
    a @ b
    sync(device)
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        sync(device)
        ts.append(time.perf_counter() - t)
    return 2 * n ** 3 / min(ts) / 1e9


class TinyfitNet:
    def __init__(self, which, batch, device):
        rng = np.random.default_rng(0)
        self.model = (mnist_student if which == "student" else mnist_teacher)(rng=rng).to(device)
        params = self.model.parameters()
        self.opt = RMSProp(params) if which == "student" else SGD(params, 0.05, 0.5)
        x = rng.random((batch, 28, 28, 1), dtype=np.float32)
        y = rng.integers(0, 10, batch)
        self.x, self.y = backend.to_device(x, device), backend.to_device(y, device)
        for m in self.model.modules():
            if isinstance(m, tf.nn.Dropout):
                m.rng = np.random.default_rng(1)
        self.device = device

    def step(self):
        self.model.train()
        self.opt.zero_grad()
        loss = F.cross_entropy(self.model(tf.Tensor(self.x)), self.y)
        loss.backward()
        self.opt.step()
        sync(self.device)

    def forward(self):
        self.model.eval()
        with tf.no_grad():
            self.model(tf.Tensor(self.x))
        sync(self.device)


class TorchNet:
    """The same networks in PyTorch (NCHW), same optimisers; the reference timing."""
    def __init__(self, which, batch, device):
        import torch
        import torch.nn as nn
        torch.manual_seed(0)
        self.torch, self.device = torch, device

        class Maxout(nn.Module):
            def __init__(self, cin, ch, pieces, k, pad, pool, stride, p_drop=0.0):
                super().__init__()
                self.drop = nn.Dropout(p_drop) if p_drop else nn.Identity()
                self.conv = nn.Conv2d(cin, ch * pieces, k, padding=pad)
                self.ch, self.pieces = ch, pieces
                self.pool = nn.MaxPool2d(pool, stride, ceil_mode=True) if pool else nn.Identity()

            def forward(self, x):
                y = self.conv(self.drop(x))
                n, _, h, w = y.shape
                y = y.view(n, self.ch, self.pieces, h, w).amax(2)
                return self.pool(y)

        if which == "student":
            self.model = nn.Sequential(
                Maxout(1, 16, 2, 5, 0, None, None), Maxout(16, 16, 2, 3, 0, 4, 2),
                Maxout(16, 16, 2, 5, 3, None, None), Maxout(16, 16, 2, 3, 0, 4, 2),
                Maxout(16, 12, 4, 3, 3, None, None), Maxout(12, 12, 4, 3, 0, 2, 2),
                nn.Flatten(), nn.Linear(108, 10))
            self.opt = torch.optim.RMSprop(self.model.parameters(), lr=0.0005, alpha=0.9, eps=1e-5)
        else:
            self.model = nn.Sequential(
                Maxout(1, 48, 2, 8, 0, 4, 2, 0.2), Maxout(48, 48, 2, 8, 3, 4, 2, 0.5),
                Maxout(48, 24, 4, 5, 3, 2, 2, 0.5), nn.Flatten(), nn.Dropout(0.5), nn.Linear(216, 10))
            self.opt = torch.optim.SGD(self.model.parameters(), lr=0.05, momentum=0.5)
        dev = "cuda" if device == "cuda" else "cpu"
        self.model.to(dev)
        self.x = torch.rand(batch, 1, 28, 28, device=dev)
        self.y = torch.randint(0, 10, (batch,), device=dev)
        self.loss = nn.CrossEntropyLoss()

    def _sync(self):
        if self.device == "cuda":
            self.torch.cuda.synchronize()

    def step(self):
        self.model.train()
        self.opt.zero_grad()
        self.loss(self.model(self.x), self.y).backward()
        self.opt.step()
        # the max-norm projection that tinyfit's optimiser applies after each update
        with self.torch.no_grad():
            for p in self.model.parameters():
                if p.dim() == 4:
                    n = p.pow(2).sum(dim=(1, 2, 3), keepdim=True).sqrt()
                    p.mul_(n.clamp(max=1.9365) / n.clamp(min=1e-12))
        self._sync()

    def forward(self):
        self.model.eval()
        with self.torch.no_grad():
            self.model(self.x)
        self._sync()


def time_calls(fn, n):
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n


def measure(nets, what, reps, n):
    """Alternate the implementations rep by rep; return {name: median seconds per call}."""
    for net in nets.values():
        getattr(net, what)()  # warm-up
    times = {k: [] for k in nets}
    for _ in range(reps):
        for k, net in nets.items():
            times[k].append(time_calls(getattr(net, what), n))
    return {k: statistics.median(v) for k, v in times.items()}


RSS_SCRIPT = r"""
import resource, sys, numpy as np
sys.path.insert(0, {root!r})
import tinyfit as tf, tinyfit.functional as F
tf.backend.tune_malloc()  # as the training commands do
from tinyfit.models import mnist_student
from tinyfit.optim import RMSProp
m = mnist_student(rng=np.random.default_rng(0)); opt = RMSProp(m.parameters())
rng = np.random.default_rng(0)
x = rng.random((128, 28, 28, 1), dtype=np.float32); y = rng.integers(0, 10, 128)
for _ in range({steps}):
    opt.zero_grad(); F.cross_entropy(m(tf.Tensor(x)), y).backward(); opt.step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def peak_rss_mb(steps=200):
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    out = subprocess.run([sys.executable, "-c", RSS_SCRIPT.format(root=root, steps=steps)],
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def import_seconds(reps=5):
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    code = f"import sys, time; sys.path.insert(0, {root!r}); t = time.perf_counter(); import tinyfit; " \
           "print(time.perf_counter() - t)"
    return statistics.median(float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                                  check=True).stdout) for _ in range(reps))


class TransferCounter:
    """Counts calls of wrapped methods and functions, outermost calls only: CuPy's
    ``__float__``, ``item`` and ``__bool__`` call ``get()`` inside, which is one copy, not two.

    wrap(owner, name, kind, only_host_args): count ``owner.name`` calls under ``kind``
    (with only_host_args, only calls whose first argument is a NumPy array). Use as a
    context manager; the originals are restored on exit."""
    def __init__(self):
        self.counts, self._saved, self._depth = {}, {}, 0

    def wrap(self, owner, name, kind, only_host_args=False):
        orig = getattr(owner, name)
        self._saved[(owner, name)] = orig
        self.counts.setdefault(kind, 0)

        def f(*args, **kw):
            if self._depth == 0 and (not only_host_args or (args and isinstance(args[0], np.ndarray))):
                self.counts[kind] += 1
            self._depth += 1
            try:
                return orig(*args, **kw)
            finally:
                self._depth -= 1
        setattr(owner, name, f)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for (owner, name), orig in self._saved.items():
            setattr(owner, name, orig)


def count_transfers(batch, steps=10):
    """Host<->device copies per training step on CUDA, counted by wrapping CuPy's transfer
    entry points, for a loop that logs the loss and the batch error like tinyfit.training.fit."""
    import cupy
    from tinyfit.training import _finite
    net = TinyfitNet("student", batch, "cuda")
    net.step()
    with TransferCounter() as tc:
        for name in ("get", "item", "__float__", "__int__", "__bool__"):
            tc.wrap(cupy.ndarray, name, "to_host")
        for name in ("asarray", "array"):
            tc.wrap(cupy, name, "to_device", only_host_args=True)
        for _ in range(steps):
            net.opt.zero_grad()
            out = net.model(tf.Tensor(net.x))
            loss = F.cross_entropy(out, net.y)
            loss.backward()
            lv = float(loss.data)  # the logged loss
            _finite(lv, net.opt.params)
            float((out.data.argmax(axis=1) != net.y).mean())  # the logged batch error
            net.opt.step()
    return {k: v / steps for k, v in tc.counts.items()}


def profile_table(which, batch, device, steps=10):
    from tinyfit.profiler import profile
    net = TinyfitNet(which, batch, device)
    net.step()
    with profile() as prof:
        for _ in range(steps):
            prof.time(("optimizer", "update"), lambda: None)
            net.model.train()
            net.opt.zero_grad()
            loss = F.cross_entropy(net.model(tf.Tensor(net.x)), net.y)
            loss.backward()
            prof.time(("optimizer", "update"), net.opt.step)
    return prof.table(steps)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, nargs="+", default=[128])
    p.add_argument("--compare-torch", action="store_true")
    p.add_argument("--profile", action="store_true")
    p.add_argument("--reps", type=int, default=7, help="alternating repetitions (median taken)")
    p.add_argument("--steps", type=int, default=5, help="calls timed per repetition")
    p.add_argument("--nets", default="student,teacher")
    p.add_argument("--gemm-floor", action="store_true", help="also time the GEMMs alone (CPU)")
    a = p.parse_args(argv)
    backend.tune_malloc()  # as the training commands do
    device = backend.check_device(a.device)
    # measured first, in a fresh process, so that nothing imported here can affect it
    rss = peak_rss_mb() if device == "cpu" else None
    torch_ok = False
    if a.compare_torch:
        try:
            import torch
            torch_ok = True
            if device == "cpu":
                print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
        except ImportError:
            print("PyTorch is not installed: pip install torch==2.13.0 (CPU build) to compare", flush=True)
    peak = gemm_peak(device)
    print(f"float32 GEMM peak (2048^3, {device}): {peak:.1f} GFLOP/s", flush=True)
    rows = []
    for batch in a.batch:
        for which in a.nets.split(","):
            nets = {"tinyfit": TinyfitNet(which, batch, device)}
            if torch_ok:
                nets["torch"] = TorchNet(which, batch, device)
            fl = conv_flops(nets["tinyfit"].model, batch)
            for what, label, mult in (("forward", "forward", 1), ("step", "train step", 3)):
                med = measure(nets, what, a.reps, a.steps)
                row = dict(net=which, batch=batch, what=label, tinyfit_ms=1000 * med["tinyfit"],
                           gflops=mult * fl / med["tinyfit"] / 1e9)
                if "torch" in med:
                    row["torch_ms"] = 1000 * med["torch"]
                    row["ratio"] = med["tinyfit"] / med["torch"]
                rows.append(row)
                print(f"{which:8s} b={batch:<5d} {label:11s} tinyfit {row['tinyfit_ms']:8.1f} ms "
                      f"({row['gflops']:5.1f} GFLOP/s, {100 * row['gflops'] / peak:4.1f}% of peak)"
                      + (f"   torch {row['torch_ms']:8.1f} ms   ratio {row['ratio']:.2f}" if "ratio" in row else ""),
                      flush=True)
    result = {"device": device, "gemm_peak_gflops": peak, "rows": rows}
    if device == "cuda":
        result["transfers_per_step"] = count_transfers(a.batch[0])
        print(f"host<->device copies per student training step (3 logged scalars expected): "
              f"{result['transfers_per_step']}")
    if device == "cpu":
        result["peak_rss_mb_200_student_steps"] = rss
        result["import_seconds"] = import_seconds()
        print(f"peak RSS of 200 student steps (batch 128): {result['peak_rss_mb_200_student_steps']:.0f} MB; "
              f"import tinyfit: {result['import_seconds']:.3f} s")
    if a.gemm_floor and device == "cpu":
        result["gemm_floor_ms"] = {}
        for which in a.nets.split(","):
            fl = gemm_floor(which, a.batch[0])
            result["gemm_floor_ms"][which] = fl
            step = next((r["tinyfit_ms"] for r in rows if r["net"] == which and r["what"] == "train step"), None)
            outside = f"; outside the GEMMs {step - sum(fl.values()):.1f} ms of the {step:.1f} ms step" if step else ""
            print(f"GEMMs alone, {which} training step: " + ", ".join(f"{k} {v:.1f} ms" for k, v in fl.items())
                  + f"; total {sum(fl.values()):.1f} ms" + outside)
    if a.profile:
        for which in a.nets.split(","):
            print(f"\nprofile: {which}, batch {a.batch[0]}, per training step\n" +
                  profile_table(which, a.batch[0], device))
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
