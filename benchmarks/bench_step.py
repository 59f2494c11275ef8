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

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import tinyfit as tf
import tinyfit.functional as F
from tinyfit import backend
from tinyfit.files import atomic_write
from tinyfit.models import mnist_student, mnist_teacher, multiplications
from tinyfit.provenance import provenance
from tinyfit.optim import SGD, RMSProp


def sync(device):
    if device == "cuda":
        backend.synchronize()


def layer_gemms(model, batch):
    """{phase: [(a shape, b shape, a transposed)]}: the GEMMs of one training step of the
    model's conv layers, as conv2d's plan does them (functional.conv_plan; the first layer
    needs no input gradient)."""
    g = {"forward": [], "weight grad": [], "input grad": []}
    x, first = tf.Tensor(np.zeros((1,) + tuple(model.input_shape), np.float32)), True
    with tf.no_grad():
        for name in model.layer_names:
            for m in model[name].modules():
                if isinstance(m, tf.nn.Conv2d):
                    shape = (batch,) + tuple(x.shape[1:])
                    plan = F.conv_plan(shape, m.W.shape, m.stride, m.pad, bias=m.b is not None)
                    for phase, gemms in plan.gemms.items():
                        if not (first and phase == "input grad"):
                            g[phase] += gemms
                    first = False
            x = model[name](x)
    return g


def gemm_floor(which, batch, reps=5):
    """Milliseconds of the GEMMs alone of one training step, at the shapes the step's
    convolutions use (layer_gemms), each timed on random arrays (CPU)."""
    rng = np.random.default_rng(0)

    def med(f):
        f()
        ts = []
        for _ in range(reps):
            t = time.perf_counter()
            f()
            ts.append(time.perf_counter() - t)
        return statistics.median(ts)
    tot = {}
    for phase, gemms in layer_gemms(MODELS[which](), batch).items():
        tot[phase] = 0.0
        for a_shape, b_shape, trans in gemms:
            a, b = rng.random(a_shape, dtype=np.float32), rng.random(b_shape, dtype=np.float32)
            tot[phase] += med(lambda a=a, b=b, trans=trans: (a.T if trans else a) @ b)
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


MODELS = {"student": mnist_student, "teacher": mnist_teacher}


class TinyfitNet:
    def __init__(self, which, batch, device):
        rng = np.random.default_rng(0)
        self.model = MODELS[which](rng=rng).to(device)
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
    """The PyTorch twin (benchmarks/torch_twin.py), built from the tinyfit model's spec."""
    def __init__(self, which, batch, device):
        from torch_twin import torch_twin
        model = MODELS[which]()
        self.model, self.step, self.forward = torch_twin(model, "rmsprop" if which == "student" else "sgd", batch,
                                                         device)


def time_calls(fn, n):
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n


SETTLE_SECONDS = 0.5


def measure(nets, what, reps, n):
    """Alternate the implementations rep by rep; return {name: median seconds per call}."""
    for net in nets.values():
        getattr(net, what)()  # warm-up
    times = {k: [] for k in nets}
    for _ in range(reps):
        for k, net in nets.items():
            # idle threads of the implementation that ran last (PyTorch's OpenMP pool,
            # OpenBLAS's) spin for a while on the cores; measured, they slowed the next
            # implementation's calls by up to 2x. A pause lets them go to sleep first.
            time.sleep(SETTLE_SECONDS)
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


def profile_step(which, batch, device, steps=10):
    """The profiler over ``steps`` training steps: [(op, phase, ms per step)]."""
    from tinyfit.profiler import profile
    net = TinyfitNet(which, batch, device)
    net.step()
    with profile() as prof:
        for _ in range(steps):
            net.model.train()
            net.opt.zero_grad()
            loss = F.cross_entropy(net.model(tf.Tensor(net.x)), net.y)
            loss.backward()
            prof.time(("optimizer", "update"), net.opt.step)
    return prof


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
    p.add_argument("--json", help="write the results (with commit, command and machine) to this file")
    a = p.parse_args(argv)
    t0 = time.perf_counter()
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
            fl = 2 * batch * multiplications(nets["tinyfit"].model)
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
    result = {"provenance": provenance(), "device": device, "gemm_peak_gflops": peak, "rows": rows}
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
        result["profile_ms"] = {}
        for which in a.nets.split(","):
            prof = profile_step(which, a.batch[0], device)
            result["profile_ms"][which] = [list(r) for r in prof.rows(10)]
            print(f"\nprofile: {which}, batch {a.batch[0]}, per training step\n" + prof.table(10))
    result["wall_seconds"] = round(time.perf_counter() - t0, 1)
    if a.json:
        atomic_write(a.json, json.dumps(result, indent=2))
        print(f"results: {a.json}")
    else:
        print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
