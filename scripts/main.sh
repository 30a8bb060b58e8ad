#!/usr/bin/env bash
# The main job: a real tuning run of a PyTorch network on every GPU present (CPU otherwise),
# as configs/mlp_digits.yaml describes it. Running it again resumes the run (runs/mlp_digits).
# Usage: scripts/main.sh [gpbo run options], e.g. --set n_trials=48, --fresh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GPBO_EXTRAS="${GPBO_EXTRAS:-test}" source "$ROOT/scripts/_venv.sh"
cd "$ROOT"
exec gpbo run configs/mlp_digits.yaml "$@"
