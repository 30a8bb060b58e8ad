"""acquisition.UpperConfidenceBound / ExpectedImprovement / ProbabilityOfImprovement."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any


def black_box(x, y):
    return -(x**2) - (y - 1) ** 2 + 1


def run(bo: ModuleType, tmp_path: Path) -> dict[str, Any]:
    acquisition = bo.acquisition
    made = {
        "ucb": acquisition.UpperConfidenceBound(kappa=2.0, exploration_decay=0.5),
        "ei": acquisition.ExpectedImprovement(xi=0.01),
        "pi": acquisition.ProbabilityOfImprovement(xi=0.01),
    }
    results: dict[str, Any] = {}
    for name, acq in made.items():
        optimizer = bo.BayesianOptimization(
            f=black_box,
            pbounds={"x": (-2, 2), "y": (-3, 3)},
            acquisition_function=acq,
            random_state=1,
            verbose=0,
        )
        optimizer.maximize(init_points=2, n_iter=2)
        results[name] = {"res": optimizer.res, "params": acq.get_acquisition_params()}
    errors = {}
    for label, make in {
        "negative_kappa": lambda: acquisition.UpperConfidenceBound(kappa=-1.0),
        "negative_xi": lambda: acquisition.ExpectedImprovement(xi=-0.1),
        "ei_without_xi": lambda: acquisition.ExpectedImprovement(),
        "bad_decay": lambda: acquisition.ProbabilityOfImprovement(xi=0.1, exploration_decay=2.0),
    }.items():
        try:
            make()
        except Exception as exc:
            errors[label] = type(exc).__name__
    return {
        "shape": results,
        "same": {
            "lengths": {name: len(r["res"]) for name, r in results.items()},
            "ucb_kappa_decayed": made["ucb"].kappa,
            "param_keys": {name: sorted(r["params"]) for name, r in results.items()},
            "errors": errors,
        },
    }


if __name__ == "__main__":
    import importlib
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        print(run(importlib.import_module(sys.argv[1] if sys.argv[1:] else "bayes_opt"), Path(tmp)))
