#!/usr/bin/env bash
# How much the example's results move when OpenBLAS picks another GEMM kernel: the same
# command (seed 0) under several OPENBLAS_CORETYPE values, 2 threads each, in parallel on
# separate cores; prints each run's test errors and a digest of its trained weights.
#   bash benchmarks/blas_kernels.sh OUTDIR [CORETYPE ...]     (default: auto Haswell Nehalem)
# Needs a CPU with at least 2 cores per run; results from different machines can be compared.
set -u
out=$(realpath -m "${1:-blas_runs}"); shift || true
types=("$@"); [ ${#types[@]} -eq 0 ] && types=(auto Haswell Nehalem)
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
cmd=(python examples/mnist_fitnet.py --epochs 5 --init glorot --seed 0 --no-progress)
i=0
for t in "${types[@]}"; do
  env_t=(); [ "$t" != auto ] && env_t=(OPENBLAS_CORETYPE="$t")
  env "${env_t[@]}" OPENBLAS_NUM_THREADS=2 TINYFIT_NUM_THREADS=2 taskset -c $((2 * i)),$((2 * i + 1)) \
    "${cmd[@]}" --out "$out/$t" > "$out.$t.log" 2>&1 &
  i=$((i + 1))
done
wait
python - "$out" "${types[@]}" <<'PY'
import hashlib, json, os, sys
import numpy as np
out, types = sys.argv[1], sys.argv[2:]
for t in types:
    try:
        r = json.load(open(os.path.join(out, t, "results.json")))
    except OSError:
        print(f"{t:10s} no results (see {out}.{t}.log)")
        continue
    h = hashlib.sha256()
    for m in ("teacher", "backprop", "kd", "fitnet"):
        with np.load(os.path.join(out, t, f"{m}.model.npz")) as z:
            for k in sorted(z.files):
                if k != "__meta__":  # the metadata holds timings
                    h.update(k.encode())
                    h.update(z[k].tobytes())
    errs = "  ".join(f"{x['method'].split(', ')[-1]} {100 * x['test_error']:.2f}%" for x in r["results"])
    print(f"{t:10s} {errs}  weights {h.hexdigest()[:12]}  {r['wall_seconds']:.0f}s")
PY
