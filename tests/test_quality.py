"""Sample-efficiency checks on standard test functions, with fixed seeds and honest margins.

The acquisition budget is shrunk (fast_bayes) to keep the suite fast; the library defaults
are larger, so these margins understate what users get.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import gpbo
from tests.conftest import fast_bayes

BRANIN_OPTIMUM = 0.397887
HARTMANN6_OPTIMUM = -3.32237


def branin(params):
    x1, x2 = params["x1"], params["x2"]
    b, c = 5.1 / (4 * math.pi**2), 5 / math.pi
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10


def hartmann6(params):
    import torch
    from botorch.test_functions import Hartmann

    x = torch.tensor([[params[f"x{i}"] for i in range(6)]], dtype=torch.float64)
    return float(Hartmann(dim=6)(x))


BRANIN_SPACE = {"x1": gpbo.Real(-5, 10), "x2": gpbo.Real(0, 15)}
HARTMANN_SPACE = {f"x{i}": gpbo.Real(0, 1) for i in range(6)}


def best_values(objective, space, *, strategy, n_trials, batch_size, seeds=range(5)):
    return [
        gpbo.optimize(objective, space, n_trials=n_trials, batch_size=batch_size, seed=seed,
                      strategy=strategy() if callable(strategy) else strategy,
                      verbose=False).best_value
        for seed in seeds
    ]


def test_branin_30_evaluations_median_within_0_05_of_the_optimum():
    values = best_values(branin, BRANIN_SPACE, strategy=fast_bayes, n_trials=30, batch_size=1)
    assert np.median(values) - BRANIN_OPTIMUM < 0.05, values


def test_hartmann6_60_evaluations_bayes_beats_random_by_1():
    bayes = best_values(hartmann6, HARTMANN_SPACE, strategy=fast_bayes, n_trials=60,
                        batch_size=2)
    random = best_values(hartmann6, HARTMANN_SPACE, strategy="random", n_trials=60,
                         batch_size=2)
    assert np.median(random) - np.median(bayes) >= 1.0, (bayes, random)


@pytest.mark.parametrize("batch_size", [4])
def test_branin_batches_also_converge(batch_size):
    values = best_values(branin, BRANIN_SPACE, strategy=fast_bayes, n_trials=32,
                         batch_size=batch_size, seeds=range(3))
    assert np.median(values) - BRANIN_OPTIMUM < 0.1, values
