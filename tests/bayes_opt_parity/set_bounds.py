"""set_bounds(): new points stay inside the new bounds; .max ignores points outside them."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any


def black_box(x, y):
    return -(x**2) - (y - 1) ** 2 + 1


def run(bo: ModuleType, tmp_path: Path) -> dict[str, Any]:
    optimizer = bo.BayesianOptimization(
        f=black_box, pbounds={"x": (-2, 2), "y": (-3, 3)}, random_state=2, verbose=0
    )
    optimizer.register(params={"x": 0.0, "y": 1.0}, target=1.0)  # the optimum
    optimizer.register(params={"x": 1.5, "y": 1.0}, target=black_box(1.5, 1.0))
    optimizer.register(params={"x": 1.2, "y": 0.0}, target=black_box(1.2, 0.0))
    optimizer.set_bounds(new_bounds={"x": (1, 2)})  # only some parameters
    max_after = optimizer.max
    optimizer.maximize(init_points=1, n_iter=2)
    new = optimizer.res[3:]
    return {
        "shape": {"max": max_after, "res": optimizer.res},
        "same": {
            "max_after_set_bounds": max_after,
            "len_res": len(optimizer.res),
            "new_inside": all(1 <= r["params"]["x"] <= 2 for r in new),
            "y_bounds_kept": all(-3 <= r["params"]["y"] <= 3 for r in new),
            "bounds": optimizer.space.bounds.tolist(),
        },
    }


if __name__ == "__main__":
    import importlib
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        print(run(importlib.import_module(sys.argv[1] if sys.argv[1:] else "bayes_opt"), Path(tmp)))
