"""The `gradient` strategy's restart and point spacing (twenty-sixth session), measured.

Runs ``gpbo.optimize(..., strategy=Gradient(restart=...), batch_size=1)`` on Hartmann6 and
Ackley 3-D (60 trials, seeds 0-4, median log10 regret), an MLP-like mixed space with a
known optimum (40 trials, seeds 0-2) and a 2-D quadratic (40 trials, seeds 0-2), and prints
one line per problem. The numbers in docs/design.md ("A converged `gradient` search
restarts") come from::

    python benchmarks/experiments/gradient_restart/run.py --restart 1
    python benchmarks/experiments/gradient_restart/run.py --restart 0
    # and "before": the same with --default at commit 1251d20 (no restart option then)
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from botorch.test_functions import Ackley, Hartmann

import gpbo
from gpbo import Choice, Int, Real


def _closed_form(fn: Any, bounds: list[tuple[float, float]]) -> tuple[dict, Callable]:
    space = {f"x{i}": Real(lo, hi) for i, (lo, hi) in enumerate(bounds)}

    def objective(p: dict[str, Any]) -> float:
        x = torch.tensor([[p[f"x{i}"] for i in range(len(bounds))]], dtype=torch.float64)
        return float(fn(x))

    return space, objective


def _mlp_like(p: dict[str, Any]) -> float:
    return (
        (math.log10(p["lr"]) + 2) ** 2
        + 0.1 * abs(math.log2(p["batch_size"]) - 6)
        + 0.1 * abs(math.log2(p["hidden"]) - 7)
        + {"adam": 0.0, "sgd": 0.5, "rmsprop": 0.2}[p["optimizer"]]
    )


MLP_SPACE = {
    "lr": Real(1e-4, 1e-1, log=True),
    "batch_size": Choice([32, 64, 128, 256]),
    "hidden": Int(32, 512, log=True),
    "optimizer": Choice(["adam", "sgd", "rmsprop"]),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--restart", type=int, choices=[0, 1], default=1)
    parser.add_argument("--default", action="store_true",
                        help='strategy="gradient" as it is at this commit')
    args = parser.parse_args()
    problems = [
        ("hartmann6", *_closed_form(Hartmann(dim=6), [(0.0, 1.0)] * 6), -3.32237, 60, 5),
        ("ackley3", *_closed_form(Ackley(dim=3), [(-32.768, 32.768)] * 3), 0.0, 60, 5),
        ("mlp-like", MLP_SPACE, _mlp_like, 0.0, 40, 3),
        ("quadratic2", {"x": Real(-3, 3), "y": Real(-3, 3)},
         lambda p: (p["x"] - 0.37) ** 2 + (p["y"] + 1.21) ** 2, 0.0, 40, 3),
    ]
    for name, space, objective, optimum, n_trials, n_seeds in problems:
        regrets = []
        for seed in range(n_seeds):
            strategy: Any = (
                "gradient" if args.default
                else gpbo.strategies.Gradient(restart=bool(args.restart))
            )
            result = gpbo.optimize(objective, space, n_trials=n_trials, strategy=strategy,
                                   batch_size=1, seed=seed, verbose=False)
            regrets.append(math.log10(max(result.best_value - optimum, 1e-12)))
        print(f"{name}: log10 regret by seed {np.round(regrets, 2).tolist()}, "
              f"median {np.median(regrets):.2f}", flush=True)


if __name__ == "__main__":
    main()
