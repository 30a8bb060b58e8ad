"""Registering a point twice: NotUniqueError, unless allow_duplicate_points=True."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any


def run(bo: ModuleType, tmp_path: Path) -> dict[str, Any]:
    exception = importlib.import_module(bo.__name__ + ".exception")
    strict = bo.BayesianOptimization(f=None, pbounds={"x": (0, 1)}, random_state=0, verbose=0)
    strict.register(params={"x": 0.5}, target=1.0)
    raised = None
    try:
        strict.register(params={"x": 0.5}, target=2.0)
    except exception.NotUniqueError as exc:
        raised = exc
    relaxed = bo.BayesianOptimization(
        f=None, pbounds={"x": (0, 1)}, random_state=0, verbose=0, allow_duplicate_points=True
    )
    relaxed.register(params={"x": 0.5}, target=1.0)
    relaxed.register(params={"x": 0.5}, target=2.0)
    return {
        "shape": {"strict": strict.res, "relaxed": relaxed.res},
        "same": {
            "raised": type(raised).__name__,
            "bases": [c.__name__ for c in type(raised).__mro__[1:] if c.__module__ == "builtins"],
            "is_key_error": isinstance(raised, KeyError),
            "base_class": type(raised).__mro__[1].__name__,
            "message_hint": "allow_duplicate_points=True" in str(raised),
            "strict_len": len(strict.res),
            "relaxed_len": len(relaxed.res),
            "relaxed_max": relaxed.max["target"],
        },
    }


if __name__ == "__main__":
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        print(run(importlib.import_module(sys.argv[1] if sys.argv[1:] else "bayes_opt"), Path(tmp)))
