"""Mean and spread of the test errors of several runs of mnist_fitnet.py (e.g. seeds).

    python examples/summarize_runs.py runs/seed0 runs/seed1 runs/seed2
"""
import json
import os
import statistics
import sys


def load(d):
    path = os.path.join(d, "results.json")
    try:
        with open(path) as f:
            return json.load(f)
    except OSError as e:
        sys.exit(f"error: cannot read {path}: {e.strerror}; give the --out folders of finished runs of "
                 "examples/mnist_fitnet.py")
    except ValueError as e:
        sys.exit(f"error: {path} is not a results file ({e})")


def main(dirs):
    if not dirs:
        sys.exit(__doc__)
    runs = [load(d) for d in dirs]
    methods = [r["method"] for r in runs[0]["results"]]
    labels = {r["method"]: r.get("label", r["method"]) for r in runs[0]["results"]}
    print(f"{len(runs)} runs, seeds {[r['seed'] for r in runs]}; data: {runs[0]['data']}")
    print(f"{'method':32s} {'mean test err':>13s} {'min':>6s} {'max':>6s}   per run")
    for m in methods:
        errs = [100 * next(x["test_error"] for x in r["results"] if x["method"] == m) for r in runs]
        print(f"{labels[m]:32s} {statistics.mean(errs):12.2f}% {min(errs):5.2f}% {max(errs):5.2f}%   "
              + ", ".join(f"{e:.2f}%" for e in errs))
    print("wall seconds per run: " + ", ".join(f"{r['wall_seconds']:.0f}" for r in runs))


if __name__ == "__main__":
    main(sys.argv[1:])
