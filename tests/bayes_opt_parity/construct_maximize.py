"""Construct an optimizer (int seed, RandomState, default table) and maximize."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np


def black_box(x, y):
    return -(x**2) - (y - 1) ** 2 + 1


def run(bo: ModuleType, tmp_path: Path) -> dict[str, Any]:
    pbounds = {"x": (-2, 2), "y": (-3, 3)}
    seeded = bo.BayesianOptimization(f=black_box, pbounds=pbounds, random_state=1)
    seeded.maximize(init_points=2, n_iter=2)
    state = bo.BayesianOptimization(
        f=black_box, pbounds=pbounds, random_state=np.random.RandomState(7), verbose=0
    )
    state.maximize(2, 1)  # positional init_points, n_iter
    state.maximize(init_points=0, n_iter=1)  # a second call goes on from the first
    return {
        "shape": {"max": seeded.max, "res": seeded.res, "state_res": state.res},
        "same": {
            "len_res": len(seeded.res),
            "len_space": len(seeded.space),
            "keys": list(seeded.space.keys),
            "state_len_res": len(state.res),
            "max_is_best": seeded.max["target"] == max(r["target"] for r in seeded.res),
            "returns": seeded.maximize(init_points=0, n_iter=0),
        },
    }


if __name__ == "__main__":
    import importlib
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        print(run(importlib.import_module(sys.argv[1] if sys.argv[1:] else "bayes_opt"), Path(tmp)))
