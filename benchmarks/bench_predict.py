"""Inference speed: tinyfit's Predictor against onnxruntime and PyTorch, on the paper's networks.

    python benchmarks/bench_predict.py                       # prints the table
    python benchmarks/bench_predict.py --json docs/results/predict/results.json

For the student and the teacher, at batch 1, 16 and 128, with one thread and with every core
(each setting in a fresh process whose thread variables are set before NumPy loads): the
median time of one call of tinyfit's ``Predictor.logits``, of the autograd forward it replaces
(``nn.eval_outputs``), of onnxruntime on the model's own ONNX export (``tinyfit.onnx_export``)
and of PyTorch eager (``benchmarks/torch_twin.py``, where torch is installed); the implementations
alternate rep by rep. Also the Predictor's first call (it plans and allocates then) and the
memory it keeps (tracemalloc: NumPy's buffers), the largest difference between its logits and
onnxruntime's, and at batch 1 and 128 its time per layer and the Python function calls of one
call. Needs tinyfit[onnx]; PyTorch optional.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
THREAD_VARIABLES = ("TINYFIT_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
BATCHES = (1, 16, 128)
NETS = ("student", "teacher")
IMPLEMENTATIONS = ("predictor", "autograd", "onnxruntime", "torch")


def _calls_per_rep(fn, seconds):
    """How many calls of ``fn`` take about ``seconds`` (at least 1)."""
    t = time.perf_counter()
    fn()
    return max(1, int(seconds / max(time.perf_counter() - t, 1e-6)))


def _measure(fns, reps, seconds=0.2):
    """{name: median seconds per call}, the implementations alternating rep by rep."""
    n = {k: _calls_per_rep(f, seconds) for k, f in fns.items()}
    times = {k: [] for k in fns}
    for _ in range(reps):
        for k, f in fns.items():
            time.sleep(0.3)  # idle BLAS / OpenMP threads of the previous implementation go to sleep first
            t = time.perf_counter()
            for _ in range(n[k]):
                f()
            times[k].append((time.perf_counter() - t) / n[k])
    return {k: statistics.median(v) for k, v in times.items()}


def _implementations(predictor, model, session, x, eval_outputs):
    """{name: a call computing the logits of batch x}."""
    name = session.get_inputs()[0].name
    return {"predictor": lambda: predictor.logits(x),
            "autograd": lambda: eval_outputs(model, x, batch_size=len(x)),
            "onnxruntime": lambda: session.run(None, {name: x})}


def worker(threads, reps):
    """The rows of one thread setting (this process's thread variables already set)."""
    import cProfile
    import pstats
    import tracemalloc

    import numpy as np

    sys.path.insert(0, os.path.join(HERE, ".."))
    sys.path.insert(0, HERE)
    from tinyfit.models import mnist_student, mnist_teacher
    from tinyfit.nn import eval_outputs
    from tinyfit.onnx_export import export_onnx
    from tinyfit.predictor import Predictor
    import onnxruntime as ort
    try:
        import torch
        torch.set_num_threads(threads)
        from torch_twin import torch_twin
    except ImportError:
        torch = None
    rows = []
    for net in NETS:
        model = (mnist_student if net == "student" else mnist_teacher)(rng=np.random.default_rng(0), init="glorot")
        model.eval()
        with tempfile.TemporaryDirectory() as tmp:
            path = export_onnx(model, os.path.join(tmp, f"{net}.onnx"))
            opts = ort.SessionOptions()
            opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
            session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        for batch in BATCHES:
            x = np.random.default_rng(batch).random((batch, 28, 28, 1), dtype=np.float32)
            tracemalloc.start()
            t = time.perf_counter()
            p = Predictor(model, batch_size=batch)
            first = p.logits(x)
            first_s = time.perf_counter() - t
            kept, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            fns = _implementations(p, model, session, x, eval_outputs)
            if torch is not None:
                fns["torch"] = torch_twin(model, "sgd", batch, "cpu")[2]
            med = _measure(fns, reps)
            row = {"net": net, "batch": batch, "threads": threads,
                   **{f"{k}_ms": 1000 * v for k, v in med.items()},
                   "first_call_ms": 1000 * first_s, "kept_mb": (kept - first.nbytes) / 2 ** 20,
                   "first_call_peak_mb": peak / 2 ** 20,
                   "max_abs_diff_onnxruntime": float(np.abs(first - session.run(None, {name: x})[0]).max())}
            if batch in (1, 128):  # where the time goes: each layer, and the Python calls of one call
                row["layer_ms"] = p.layer_times(x)
                prof = cProfile.Profile()
                prof.runcall(p.logits, x)
                row["python_calls"] = pstats.Stats(prof).total_calls
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def _cores():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=7, help="alternating repetitions per measurement (median)")
    ap.add_argument("--threads", default=None, help="comma-separated thread counts (default: 1 and every core)")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        worker(a.worker, a.reps)
        return None
    from results_file import save
    t0 = time.perf_counter()
    settings = [int(t) for t in a.threads.split(",")] if a.threads else sorted({1, _cores()})
    rows = []
    for threads in settings:
        env = dict(os.environ, OPENBLAS_THREAD_TIMEOUT="4", **{v: str(threads) for v in THREAD_VARIABLES})
        out = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", str(threads), "--reps",
                              str(a.reps)], env=env, capture_output=True, text=True)
        if out.returncode:
            sys.exit(f"the {threads}-thread run failed:\n{out.stderr[-3000:]}")
        rows += [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    for r in rows:
        others = "  ".join(f"{k} {r[k + '_ms']:7.2f} ms" for k in IMPLEMENTATIONS if k + "_ms" in r)
        print(f"{r['net']:8s} batch {r['batch']:4d} threads {r['threads']}: {others}   first call "
              f"{r['first_call_ms']:.1f} ms, kept {r['kept_mb']:.1f} MB")
    return save(a.json, "bench_predict", t0, rows=rows)


if __name__ == "__main__":
    main()
