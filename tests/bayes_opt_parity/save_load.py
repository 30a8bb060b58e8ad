"""save_state() to JSON, then load_state() into a new optimizer with the same pbounds."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any


def black_box(x, y):
    return -(x**2) - (y - 1) ** 2 + 1


def run(bo: ModuleType, tmp_path: Path) -> dict[str, Any]:
    pbounds = {"x": (-2, 2), "y": (-3, 3)}
    first = bo.BayesianOptimization(f=black_box, pbounds=pbounds, random_state=4, verbose=0)
    first.maximize(init_points=2, n_iter=1)
    path = tmp_path / "state.json"
    first.save_state(path)
    state = json.loads(path.read_text())
    second = bo.BayesianOptimization(f=black_box, pbounds=pbounds, random_state=5, verbose=0)
    second.load_state(path)
    second.maximize(init_points=0, n_iter=1)
    return {
        "shape": {"res": second.res, "max": second.max},
        "same": {
            "keys": state["keys"],
            "n_params": len(state["params"]),
            "row_width": [len(row) for row in state["params"]],
            "n_target": len(state["target"]),
            "acquisition_params": sorted(state["acquisition_params"]),
            "allow_duplicate_points": state["allow_duplicate_points"],
            "restored": second.res[:3] == first.res,
            "len_res": len(second.res),
        },
    }


if __name__ == "__main__":
    import importlib
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        print(run(importlib.import_module(sys.argv[1] if sys.argv[1:] else "bayes_opt"), Path(tmp)))
