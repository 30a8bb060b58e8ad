#!/usr/bin/env bash
# The main job: a real tuning run of a PyTorch network on every GPU present (CPU otherwise).
# Usage: scripts/main.sh [extra arguments for scripts/tune_mlp.py]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GPBO_EXTRAS="${GPBO_EXTRAS:-test}" source "$ROOT/scripts/_venv.sh"
cd "$ROOT"
exec python scripts/tune_mlp.py "$@"
