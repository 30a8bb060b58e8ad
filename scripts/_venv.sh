#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment in .venv and install gpbo into it.
# torch==2.13.0 goes in first: on the project's machines that pin is a CPU build kept on disk,
# where an unpinned torch would pull several GB of CUDA packages. Sourced by the other scripts.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${GPBO_VENV:-$ROOT/.venv}"
PYTHON_BIN="${PYTHON:-python3}"
EXTRAS="${GPBO_EXTRAS:-test}"
# Python 3.10+, with pip: a venv made by an older python3 (or where ensurepip is missing, as
# on Debian without python3-venv) would otherwise be reused, failing on every later run
usable='import sys, pip; sys.exit(sys.version_info < (3, 10))'
if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" -c "$usable" 2>/dev/null; then
    echo "[setup] error: $VENV has $("$VENV/bin/python" --version 2>&1) without pip, or older" \
         "than 3.10; remove it (rm -rf $VENV) and run again, with PYTHON=python3.X for a" \
         "Python 3.10+ if python3 is older" >&2
    exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
    if ! "$PYTHON_BIN" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
        echo "[setup] error: gpbo needs Python 3.10+; $PYTHON_BIN is" \
             "$("$PYTHON_BIN" --version 2>&1); set PYTHON=python3.X to a newer one" >&2
        exit 1
    fi
    echo "[setup] creating $VENV"
    if ! "$PYTHON_BIN" -m venv "$VENV"; then
        rm -rf "$VENV"  # half made: the next run starts over
        echo "[setup] error: '$PYTHON_BIN -m venv' failed (on Debian/Ubuntu: apt install" \
             "python3-venv)" >&2
        exit 1
    fi
fi
stamp="$VENV/.gpbo-install-stamp"
want="$(cat "$ROOT/pyproject.toml" "$ROOT/scripts/_venv.sh" | sha256sum | cut -c1-16)-$EXTRAS"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "[setup] installing torch==2.13.0 and gpbo[$EXTRAS] into $VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
        "$VENV/bin/python" -m pip install -q "torch==2.13.0"
    fi
    # SciPy 1.18 makes a GP round 4-6 times slower (README, "SciPy below 1.18 with BoTorch 0.18")
    "$VENV/bin/python" -m pip install -q -e "$ROOT[$EXTRAS]" "scipy>=1.13,<1.18"
    echo "$want" > "$stamp"
fi
export PATH="$VENV/bin:$PATH"
