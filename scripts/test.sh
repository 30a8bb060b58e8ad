#!/usr/bin/env bash
# The test suite: ruff, then pytest (GPU tests skip without CUDA). Extra arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GPBO_EXTRAS="${GPBO_EXTRAS:-test}" source "$ROOT/scripts/_venv.sh"
cd "$ROOT"
ruff check gpbo tests scripts examples
exec python -m pytest "$@"
