"""The structure of .max and .res: empty, then with float, integer and categorical parameters."""

from __future__ import annotations

import warnings
from pathlib import Path
from types import ModuleType
from typing import Any


def run(bo: ModuleType, tmp_path: Path) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bayes_opt: "non-float parameters are experimental"
        optimizer = bo.BayesianOptimization(
            f=lambda lr, layers, act: lr * layers + (act == "relu"),
            pbounds={"lr": (0.0, 1.0), "layers": (1, 4, int), "act": ["relu", "tanh"]},
            random_state=0,
            verbose=0,
        )
    empty = {"max": optimizer.max, "res": optimizer.res, "len": len(optimizer.space)}
    optimizer.register(params={"lr": 0.5, "layers": 2, "act": "relu"}, target=2.0)
    optimizer.register(params={"lr": 0.25, "layers": 3, "act": "tanh"}, target=0.75)
    optimizer.maximize(init_points=1, n_iter=1)
    return {
        "shape": {"empty": empty, "max": optimizer.max, "res": optimizer.res},
        "same": {
            "empty_max": optimizer.max is not None and empty["max"] is None,
            "first": optimizer.res[0],
            "max_keys": sorted(optimizer.max),
            "res_keys": [sorted(r) for r in optimizer.res],
            "param_keys": [list(r["params"]) for r in optimizer.res],
            "layers_are_ints": all(isinstance(r["params"]["layers"], int) for r in optimizer.res),
            "acts": all(r["params"]["act"] in ("relu", "tanh") for r in optimizer.res),
            "space_dim": optimizer.space.dim,  # one-hot columns for a categorical
            "space_params_shape": optimizer.space.params.shape,
            "space_bounds_shape": optimizer.space.bounds.shape,
        },
    }


if __name__ == "__main__":
    import importlib
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        print(run(importlib.import_module(sys.argv[1] if sys.argv[1:] else "bayes_opt"), Path(tmp)))
