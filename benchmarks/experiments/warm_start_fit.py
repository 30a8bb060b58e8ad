"""Cold against warm-started hyperparameter fits of gpbo's GP (fifteenth session).

For each n, five random subsets of Hartmann6 points: the GP is fitted to the first n - 8 (the
previous round, q = 8), then to all n twice, once from the priors' defaults (gpbo's fit) and
once from the previous fit's hyperparameters. Prints the median seconds, likelihood
evaluations and final marginal log likelihood of each, one thread:

    python benchmarks/experiments/warm_start_fit.py 1 50 100 200 256
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch
from botorch.fit import fit_gpytorch_mll
from botorch.test_functions import Hartmann
from gpytorch.mlls import ExactMarginalLogLikelihood

import gpbo.surrogate as surrogate
from gpbo.gp_likelihood import marginal_likelihood_closure


def fit(X: torch.Tensor, y: torch.Tensor, start: object = None) -> tuple[object, float, int, float]:
    model = surrogate._build_gp(X, y)
    if start is not None:
        for name in ("covar_module", "likelihood", "mean_module"):
            getattr(model, name).load_state_dict(getattr(start, name).state_dict())
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    calls = [0]
    base = marginal_likelihood_closure(mll)

    def closure(**kwargs: object) -> object:
        calls[0] += 1
        return base(**kwargs)

    started = time.perf_counter()
    fit_gpytorch_mll(mll, closure=closure)
    seconds = time.perf_counter() - started
    model.train()
    with torch.no_grad():
        value = mll(model(*model.train_inputs), model.train_targets).item()
    model.eval()
    return model, seconds, calls[0], value


def main() -> None:
    torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
    sizes = tuple(int(a) for a in sys.argv[2:]) or (50, 100, 200, 256)
    rng = np.random.default_rng(0)
    X_all = torch.tensor(rng.random((1100, 6)))
    y_all = -Hartmann(dim=6)(X_all)
    q = 8
    for n in sizes:
        rows = []
        for _ in range(5):
            index = rng.choice(1100, size=n, replace=False)
            X, y = X_all[index], y_all[index]
            previous, *_ = fit(X[:-q], y[:-q])
            _, cold_s, cold_calls, cold_mll = fit(X, y)
            _, warm_s, warm_calls, warm_mll = fit(X, y, start=previous)
            rows.append((cold_s, cold_calls, cold_mll, warm_s, warm_calls, warm_mll))
        a = np.array(rows)
        print(
            f"n={n}: cold {np.median(a[:, 0]):.3f} s, {np.median(a[:, 1]):.0f} evaluations | "
            f"warm {np.median(a[:, 3]):.3f} s, {np.median(a[:, 4]):.0f} evaluations | "
            f"MLL warm - cold: median {np.median(a[:, 5] - a[:, 2]):+.4f}, "
            f"min {np.min(a[:, 5] - a[:, 2]):+.4f}"
        )


if __name__ == "__main__":
    main()
