#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment in .venv and install gpbo into it.
# torch==2.13.0 goes in first: on the project's machines that pin is a CPU build kept on disk,
# where an unpinned torch would pull several GB of CUDA packages. Sourced by the other scripts.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${GPBO_VENV:-$ROOT/.venv}"
PYTHON_BIN="${PYTHON:-python3}"
EXTRAS="${GPBO_EXTRAS:-test}"
if [ ! -x "$VENV/bin/python" ]; then
    echo "[setup] creating $VENV"
    "$PYTHON_BIN" -m venv "$VENV"
fi
stamp="$VENV/.gpbo-install-stamp"
want="$(cat "$ROOT/pyproject.toml" | sha256sum | cut -c1-16)-$EXTRAS"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "[setup] installing torch==2.13.0 and gpbo[$EXTRAS] into $VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
        "$VENV/bin/python" -m pip install -q "torch==2.13.0"
    fi
    "$VENV/bin/python" -m pip install -q -e "$ROOT[$EXTRAS]"
    echo "$want" > "$stamp"
fi
export PATH="$VENV/bin:$PATH"
