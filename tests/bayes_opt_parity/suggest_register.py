"""The ask/tell loop of bayes_opt: suggest() a point, evaluate it yourself, register() it."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any


def black_box(x, y):
    return -(x**2) - (y - 1) ** 2 + 1


def run(bo: ModuleType, tmp_path: Path) -> dict[str, Any]:
    optimizer = bo.BayesianOptimization(
        f=None, pbounds={"x": (-2, 2), "y": (-3, 3)}, random_state=3, verbose=0
    )
    suggestions = []
    for _ in range(4):
        params = optimizer.suggest()
        suggestions.append(params)
        optimizer.register(params=params, target=black_box(**params))
    within = all(-2 <= p["x"] <= 2 and -3 <= p["y"] <= 3 for p in suggestions)
    return {
        "shape": {"suggestions": suggestions, "res": optimizer.res, "max": optimizer.max},
        "same": {
            "len_res": len(optimizer.res),
            "within_bounds": within,
            "registered_in_order": [r["params"] for r in optimizer.res] == suggestions,
        },
    }


if __name__ == "__main__":
    import importlib
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        print(run(importlib.import_module(sys.argv[1] if sys.argv[1:] else "bayes_opt"), Path(tmp)))
