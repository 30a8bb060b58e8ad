"""probe(): lazy points wait for the next maximize(); eager ones are evaluated at once."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any


def run(bo: ModuleType, tmp_path: Path) -> dict[str, Any]:
    calls = []

    def black_box(x, y):
        calls.append((x, y))
        return -(x**2) - (y - 1) ** 2 + 1

    optimizer = bo.BayesianOptimization(
        f=black_box, pbounds={"x": (-2, 2), "y": (-3, 3)}, random_state=1, verbose=0
    )
    optimizer.probe(params={"x": 0.5, "y": 0.7}, lazy=True)
    optimizer.probe(params=[-0.3, 0.1], lazy=True)  # an array, in key order
    after_lazy = len(optimizer.res)
    optimizer.maximize(init_points=0, n_iter=0)  # evaluates the queue only
    after_queue = len(optimizer.res)
    optimizer.probe(params={"x": 1.0, "y": 2.0}, lazy=False)
    after_eager = len(optimizer.res)
    optimizer.probe(params={"x": 1.0, "y": 2.0}, lazy=False)  # seen: not evaluated again
    return {
        "shape": {"res": optimizer.res, "max": optimizer.max},
        "same": {
            "after_lazy": after_lazy,
            "after_queue": after_queue,
            "after_eager": after_eager,
            "after_repeat": len(optimizer.res),
            "calls": len(calls),
            "queued_first": [r["params"] for r in optimizer.res[:2]]
            == [{"x": 0.5, "y": 0.7}, {"x": -0.3, "y": 0.1}],
            "eager_target": optimizer.res[2]["target"] == -1.0 - 1.0 + 1,
        },
    }


if __name__ == "__main__":
    import importlib
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        print(run(importlib.import_module(sys.argv[1] if sys.argv[1:] else "bayes_opt"), Path(tmp)))
