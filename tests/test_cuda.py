"""GPU checks (marked `cuda`, skipped without a GPU): a GPU round proposes valid points of the
same quality as a CPU round."""

from __future__ import annotations

import numpy as np
import pytest

import gpbo
from tests.conftest import fast_bayes
from tests.test_quality import HARTMANN_SPACE, hartmann6

pytestmark = pytest.mark.cuda


def run(surrogate_device: str, seed: int, *, strategy: object) -> gpbo.Result:
    return gpbo.optimize(hartmann6, HARTMANN_SPACE, n_trials=60, batch_size=2, seed=seed,
                         strategy=strategy, surrogate_device=surrogate_device,
                         executor="serial", devices=["cpu"], verbose=False)


def test_gpu_and_cpu_fits_give_the_same_posterior():
    import torch

    from gpbo.surrogate import fit_gp, warp_scores

    rng = np.random.default_rng(0)
    X = rng.random((60, 6))
    y = warp_scores(-np.array([hartmann6({f"x{i}": v for i, v in enumerate(row)}) for row in X]))
    X_test = torch.as_tensor(rng.random((64, 6)))
    moments = {}
    for device in ("cpu", "cuda"):
        gp = fit_gp(torch.as_tensor(X, device=device), torch.as_tensor(y, device=device))
        with torch.no_grad():
            posterior = gp.posterior(X_test.to(device))
        moments[device] = (posterior.mean.cpu(), posterior.variance.sqrt().cpu())
    (mean, std), (gpu_mean, gpu_std) = moments["cpu"], moments["cuda"]
    assert std.min() > 0
    # float64 on both: the fits differ only by the order of floating-point reductions
    torch.testing.assert_close(gpu_mean, mean, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(gpu_std, std, rtol=1e-4, atol=1e-4)


def test_gpu_study_beats_random_search_by_the_cpu_suites_margin():
    # the CPU suite's bar (tests/test_quality.py), with the GP on the GPU: valid proposals, and
    # the median best value over 5 seeds at least 1.0 below random search's
    gpu = [run("cuda", seed, strategy=fast_bayes()) for seed in range(5)]
    random = [run("cpu", seed, strategy="random") for seed in range(5)]
    space = gpbo.Space(HARTMANN_SPACE)
    for result in gpu:
        for trial in result.trials:
            space.check(trial.params)
    gpu_median = np.median([r.best_value for r in gpu])
    random_median = np.median([r.best_value for r in random])
    assert random_median - gpu_median >= 1.0, (gpu_median, random_median)


def test_gpu_study_in_a_mixed_space():
    space = {"lr": gpbo.Real(1e-4, 1e-1, log=True), "n": gpbo.Int(1, 8),
             "act": gpbo.Choice(["relu", "tanh"])}
    study = gpbo.Study(space, strategy=fast_bayes(n_init=4), surrogate_device="cuda", seed=0)
    for _ in range(3):
        for trial in study.ask(3):
            study.tell(trial, abs(np.log10(trial.params["lr"]) + 2) + trial.params["n"] / 8)
    for trial in study.trials:
        study.space.check(trial.params)


def test_the_success_gp_sits_on_the_objective_gps_device(monkeypatch):
    # "auto" resolved apart, 25 complete trials put the objective's GP on the CPU and the 35
    # complete and failed ones the success GP on CUDA, and adding the two models' terms failed
    import gpbo.surrogate as surrogate

    monkeypatch.setattr(surrogate, "AUTO_CUDA_FROM", 30)
    study = gpbo.Study({"x": gpbo.Real(0, 1), "y": gpbo.Real(0, 1)},
                       strategy=fast_bayes(n_init=35), seed=0, surrogate_device="auto")
    for index, trial in enumerate(study.ask(35)):
        if index % 7 < 2:
            study.tell(trial, error="crashed")
        else:
            study.tell(trial, (trial.params["x"] - 0.3) ** 2 + trial.params["y"])
    assert len(study.ask(2)) == 2
