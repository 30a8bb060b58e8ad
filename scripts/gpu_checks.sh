#!/usr/bin/env bash
# The checks that need a CUDA GPU, for a machine that has one and already has torch, botorch and
# gpytorch (no network needed): the `cuda` tests, then the overhead benchmark on CUDA and on the
# same machine's CPU, for the CPU/GPU ratio and the crossover (docs/benchmarks.md).
#
# Usage, from the repository root:
#     bash scripts/gpu_checks.sh [tests|overhead|pcache|all] [OUT_DIR]
# pcache: q=8 rounds on CUDA without reusing the pending points' posterior terms there (gpbo
# reuses them on the CPU and CUDA; gpbo.cached_gp.PENDING_CACHE_DEVICES), into
# OUT_DIR/pending_cache, to compare with the overhead stage's CUDA rows.
# OUT_DIR defaults to $OUT (set on a lent device machine) or benchmarks/results/overhead_gpu.
# GPBO_GPU_NS (default 50,200,500,1000,2000,5000,10000), GPBO_CPU_NS (default up to 2000) and
# GPBO_GPU_THREADS (default 1) change the CUDA sizes, the CPU sizes and the thread counts. The
# overhead stage resumes: if a time limit cuts it off, the same command again measures only what
# is missing (sizes run smallest first).
set -euo pipefail

stage="${1:-all}"
out="${2:-${OUT:-benchmarks/results/overhead_gpu}}"
mkdir -p "$out"
python=${PYTHON:-python}

if ! "$python" -c "import gpbo" 2>/dev/null; then
    # --no-deps: the machine's own torch/botorch/gpytorch stay; setuptools builds offline.
    "$python" -m pip install --no-deps --no-build-isolation -q -e . \
        || export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
"$python" - <<'EOF' | tee "$out/machine.txt"
import platform, torch, botorch, gpytorch, gpbo
print("python", platform.python_version(), "torch", torch.__version__, "botorch",
      botorch.__version__, "gpytorch", gpytorch.__version__, "gpbo", gpbo.__version__)
if not torch.cuda.is_available():
    raise SystemExit("no CUDA device: these checks need one")
print("cuda", torch.version.cuda, torch.cuda.get_device_name(0))
EOF

if [[ "$stage" == tests || "$stage" == all ]]; then
    if "$python" -c "import pytest" 2>/dev/null; then
        "$python" -m pytest -m cuda -q -rs tests 2>&1 | tee "$out/cuda_tests.txt"
    else
        echo "pytest is not installed here: the cuda tests did not run" | tee "$out/cuda_tests.txt"
    fi
fi

if [[ "$stage" == overhead || "$stage" == all ]]; then
    # CUDA first (the numbers only this machine gives), then the same machine's CPU up to the
    # sizes a CPU round still takes seconds at, for the crossover.
    for device in cuda cpu; do
        if [[ "$device" == cuda ]]; then ns="${GPBO_GPU_NS:-50,200,500,1000,2000,5000,10000}"
        else ns="${GPBO_CPU_NS:-50,200,500,1000,2000}"; fi
        "$python" scripts/benchmark_overhead.py --device "$device" --methods gpbo --ns "$ns" \
            --threads "${GPBO_GPU_THREADS:-1}" --repeats 3 --max-seconds 30 \
            --out "$out" --resume 2>&1 | tee -a "$out/overhead.log"
    done
fi

if [[ "$stage" == pcache || "$stage" == all ]]; then
    "$python" scripts/benchmark_overhead.py --device cuda --methods gpbo --qs 8 \
        --ns "${GPBO_GPU_NS:-50,200,500,1000,2000,5000,10000}" --threads "${GPBO_GPU_THREADS:-1}" \
        --repeats 3 --max-seconds 30 --pending-cache-devices cpu --out "$out/pending_cache" --resume \
        2>&1 | tee -a "$out/pending_cache.log"
fi
