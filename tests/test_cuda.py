"""GPU checks (marked `cuda`, skipped without a GPU): a GPU round proposes valid points of the
same quality as a CPU round."""

from __future__ import annotations

import numpy as np
import pytest

import gpbo
from tests.conftest import fast_bayes
from tests.test_quality import HARTMANN_SPACE, hartmann6

pytestmark = pytest.mark.cuda


def run(surrogate_device: str, seed: int) -> gpbo.Result:
    return gpbo.optimize(hartmann6, HARTMANN_SPACE, n_trials=40, batch_size=4, seed=seed,
                         strategy=fast_bayes(), surrogate_device=surrogate_device,
                         executor="serial", devices=["cpu"], verbose=False)


def test_gpu_round_gives_valid_proposals_of_cpu_quality():
    gpu = [run("cuda", seed) for seed in range(3)]
    cpu = [run("cpu", seed) for seed in range(3)]
    space = gpbo.Space(HARTMANN_SPACE)
    for result in gpu:
        for trial in result.trials:
            space.check(trial.params)
    gpu_median = np.median([r.best_value for r in gpu])
    cpu_median = np.median([r.best_value for r in cpu])
    assert gpu_median < -2.5 and abs(gpu_median - cpu_median) < 0.3, (gpu_median, cpu_median)


def test_gpu_study_in_a_mixed_space():
    space = {"lr": gpbo.Real(1e-4, 1e-1, log=True), "n": gpbo.Int(1, 8),
             "act": gpbo.Choice(["relu", "tanh"])}
    study = gpbo.Study(space, strategy=fast_bayes(n_init=4), surrogate_device="cuda", seed=0)
    for _ in range(3):
        for trial in study.ask(3):
            study.tell(trial, abs(np.log10(trial.params["lr"]) + 2) + trial.params["n"] / 8)
    for trial in study.trials:
        study.space.check(trial.params)
