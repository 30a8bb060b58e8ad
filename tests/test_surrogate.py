"""Tests for gpbo/surrogate.py: the GP fit, the score warp, the device choice."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import gpbo
import gpbo.surrogate as surrogate
from gpbo.cached_gp import _matern_and_scale
from gpbo.exceptions import GpboError
from gpbo.surrogate import (
    AUTO_CUDA_FROM,
    SurrogateFitError,
    fit_gp,
    resolve_device,
    warp_scores,
)
from tests.conftest import fast_bayes


def test_fit_gp_interpolates_a_smooth_function():
    rng = np.random.default_rng(0)
    X = torch.tensor(rng.random((30, 2)))
    y = -((X - 0.5) ** 2).sum(dim=1)
    model = fit_gp(X, y)
    test = torch.tensor([[0.5, 0.5], [0.0, 0.0]], dtype=torch.float64)
    mean = model.posterior(test).mean.squeeze(-1).detach()
    assert mean[0] > mean[1]
    assert abs(float(mean[1]) - (-0.5)) < 0.1
    assert next(model.parameters()).dtype == torch.float64


def _noise(model) -> float:
    return float(model.likelihood.noise.detach().item())


def test_noise_is_small_for_a_noise_free_objective_and_follows_a_noisy_one():
    rng = np.random.default_rng(1)
    X = torch.tensor(rng.random((60, 3)))
    f = torch.sin(6 * X[:, 0]) + (X[:, 1] - 0.5) ** 2 - X[:, 2]
    # noise-free: the standardized noise falls to the floor (1e-6); BoTorch's default prior
    # keeps it at its own floor, 1e-4
    assert _noise(fit_gp(X, f)) < 1e-5
    # noise sd 0.3 on a function of sd ~0.9: the standardized noise variance is ~0.1, and the
    # wide prior lets the likelihood find it (within a factor of 3)
    noisy = f + 0.3 * torch.tensor(rng.standard_normal(60))
    var = 0.3**2 / float(noisy.var())
    assert var / 3 < _noise(fit_gp(X, noisy)) < 3 * var


def test_large_data_fit_the_hyperparameters_on_a_subset_and_condition_on_all():
    rng = np.random.default_rng(2)
    X = torch.tensor(rng.random((300, 2)))
    y = torch.sin(5 * X[:, 0]) * torch.cos(3 * X[:, 1])
    full = fit_gp(X, y)
    sub = fit_gp(X, y, subset=100)
    assert sub.train_inputs[0].shape == (300, 2)  # every point is in the model
    ls_full = _matern(full).lengthscale.detach()
    ls_sub = _matern(sub).lengthscale.detach()
    assert torch.allclose(ls_sub, ls_full, rtol=0.5)
    # every hyperparameter is the subset's own fit (the rows fit_gp draws, seeded by n)
    rows = torch.as_tensor(np.sort(np.random.default_rng(300).choice(300, 100, replace=False)))
    on_subset = fit_gp(X[rows], y[rows])
    torch.testing.assert_close(sub.covar_module.state_dict(), on_subset.covar_module.state_dict())
    torch.testing.assert_close(sub.likelihood.noise, on_subset.likelihood.noise)
    test = torch.tensor(rng.random((50, 2)))
    truth = torch.sin(5 * test[:, 0]) * torch.cos(3 * test[:, 1])
    mean = sub.posterior(test).mean.squeeze(-1).detach()
    assert float((mean - truth).abs().max()) < 0.05
    # seeded by n: the same data give the same model
    again = fit_gp(X, y, subset=100)
    assert torch.equal(_matern(again).lengthscale.detach(), ls_sub)


def _matern(model):
    """The Matern kernel of a fitted model, inside its ``ScaleKernel`` where there is one."""
    return _matern_and_scale(model.covar_module)[0]


def test_the_output_scale_is_fitted_with_its_prior(monkeypatch):
    from gpytorch.kernels import ScaleKernel

    rng = np.random.default_rng(3)
    X = torch.tensor(rng.random((40, 3)))
    y = torch.sin(6 * X[:, 0]) + X[:, 1]
    model = fit_gp(X, y)
    assert isinstance(model.covar_module, ScaleKernel)
    prior = model.covar_module.outputscale_prior
    concentration, rate = surrogate.OUTPUT_SCALE_PRIOR
    assert float(prior.concentration) == concentration and float(prior.rate) == rate
    assert model.covar_module.outputscale.item() != pytest.approx(1.0, rel=1e-3)  # fitted
    monkeypatch.setattr(surrogate, "OUTPUT_SCALE_PRIOR", None)
    assert not isinstance(fit_gp(X, y).covar_module, ScaleKernel)


def test_fit_gp_rejects_bad_data():
    X = torch.rand(5, 2, dtype=torch.float64)
    with pytest.raises(SurrogateFitError, match="non-finite"):
        fit_gp(X, torch.tensor([0.0, 1.0, float("nan"), 2.0, 3.0], dtype=torch.float64))
    with pytest.raises(SurrogateFitError, match="shapes"):
        fit_gp(X, torch.zeros(4, dtype=torch.float64))


def test_warp_keeps_the_order_and_pulls_in_heavy_tails():
    y = -np.array([0.4, 0.5, 1.0, 2.0, 5.0, 30.0, 250.0])  # Branin-like: a heavy bad tail
    warped = warp_scores(y)
    assert np.array_equal(np.argsort(warped), np.argsort(y))
    z = (y - y.mean()) / y.std()
    assert (warped.max() - warped.min()) < (z.max() - z.min())
    assert np.array_equal(warp_scores(np.ones(5)), np.ones(5))  # constant: unchanged
    assert np.array_equal(warp_scores(np.array([1.0, 2.0])), np.array([1.0, 2.0]))


@pytest.mark.parametrize("outlier", [1e160, 1e200, 1.7e308])
def test_scores_too_large_for_np_std_stay_finite_ordered_and_apart(outlier):
    # np.std squares the scores: from about 1e154 it overflowed and the raw scores reached the
    # GP (BoTorch then failed on NaN in every later ask)
    good = -np.array([0.3, 0.05, 2.0, 0.8, 1.5, 0.01])
    y = np.append(good, [-outlier, -outlier])
    with np.errstate(all="raise"):
        warped = warp_scores(y)
    assert np.all(np.isfinite(warped))
    assert np.array_equal(np.argsort(warped[:6]), np.argsort(good))
    assert np.min(np.diff(np.sort(warped[:6]))) > 1e-6  # the good ones are not tied
    assert warped[6] == warped[7] < warped[:6].min()


@pytest.mark.parametrize("scale", [1e-200, 1e-300])
def test_scores_too_small_for_np_std_are_warped_as_larger_ones_are(scale):
    # np.std underflowed to 0: the raw scores reached the GP, which saw a constant objective
    y = -np.array([0.3, 0.05, 2.0, 0.8, 1.5, 0.01, 0.6])
    warped = warp_scores(y * scale)
    np.testing.assert_allclose(warped, warp_scores(y), atol=1e-6)
    assert np.std(warped) > 0.5


def test_one_extreme_score_does_not_squeeze_the_good_ones_together():
    rng = np.random.default_rng(0)
    good = -rng.random(20) * 0.5  # losses in [0, 0.5)
    y = np.append(good, -1e12)  # one diverged run
    warped = warp_scores(y)
    better = np.sort(warped)[len(y) // 2 :]
    # the better half spreads over more than the GP's noise floor (std 1e-3) can hide
    assert np.std(better) > 1e-2 * np.std(warped)
    assert np.array_equal(np.argsort(warped[:-1]), np.argsort(good))  # the good keep their order
    assert np.argmin(warped) == len(y) - 1


@pytest.mark.parametrize("penalty", [1e6, 1e30])
@pytest.mark.parametrize("n_penalized", [1, 4, 10])
def test_a_penalty_returned_for_diverged_runs_does_not_tie_the_good_scores(penalty, n_penalized):
    # "return 1e6 when the loss is NaN": with a quarter or more of the runs at the penalty,
    # q25 was the penalty and nothing was clipped; all good scores warped to one value
    good = -np.array([5.0, 3.0, 2.0, 1.0, 0.5])
    y = np.append(np.full(n_penalized, -penalty), good)
    warped = warp_scores(y)
    assert np.array_equal(np.argsort(warped[n_penalized:]), np.argsort(good))
    assert np.min(np.diff(np.sort(warped[n_penalized:]))) > 1e-2
    assert np.all(warped[:n_penalized] < warped[n_penalized:].min())


def test_a_plateau_and_one_outlier_leave_the_incumbent_apart():
    y = -np.array([0.1] * 6 + [0.05, 1e30])  # the incumbent 0.05 tied with the plateau before
    warped = warp_scores(y)
    assert warped[6] - warped[0] > 1e-2 and np.all(warped[:6] == warped[0])
    assert np.argmin(warped) == 7


def test_repeated_scores_alone_are_no_squeeze():
    from gpbo.surrogate import _standardized_yeo_johnson

    for y in (np.array([1.0, 1.0, 1.0, 2.0]), np.array([0.0, 1.0, 1.0, 1.0, 1.0, 3.0])):
        # nothing squeezed: the Yeo-Johnson warp as before, not ranks
        np.testing.assert_array_equal(warp_scores(y), _standardized_yeo_johnson(y))


def test_a_study_with_one_diverged_trial_still_converges():
    import gpbo
    from gpbo.strategies import Bayes

    def quadratic(p):
        return (p["x"] - 0.3) ** 2 + (p["y"] - 0.6) ** 2

    study = gpbo.Study(
        {"x": gpbo.Real(0, 1), "y": gpbo.Real(0, 1)},
        seed=0,
        strategy=Bayes(n_init=6, num_restarts=4, raw_samples=64, maxiter=50),
    )
    study.add({"x": 1.0, "y": 1.0}, 1e12)
    for _ in range(24):
        (trial,) = study.ask(1)
        study.tell(trial, quadratic(trial.params))
    # measured: 1.6e-7 / 1.1e-8 / 2.2e-8 on seeds 0-2 (2.7e-8 / 6.7e-9 / 8.8e-9 without the
    # outlier); with the outlier squeezing the rest, 1.9e-3 / 1.8e-2 / 1.0e-1
    assert study.best_value < 1e-4


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("auto", n_train=AUTO_CUDA_FROM).type == expected
    assert resolve_device("auto", n_train=AUTO_CUDA_FROM - 1).type == "cpu"
    with pytest.raises(GpboError, match="not a device"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(GpboError, match="CUDA is not available"):
            resolve_device("cuda:0")


def test_auto_device_follows_the_training_size_where_cuda_is_there(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto", n_train=10).type == "cpu"
    assert resolve_device("auto", n_train=AUTO_CUDA_FROM - 1).type == "cpu"
    assert resolve_device("auto", n_train=AUTO_CUDA_FROM).type == "cuda"
    assert resolve_device("auto").type == "cuda"


def test_a_numerical_failure_of_the_fit_is_a_fit_error_and_a_bug_is_not(monkeypatch):
    X = torch.rand(8, 2, dtype=torch.float64)
    y = X.sum(-1)

    def fails_with(error):
        def fit(model):
            raise error

        return fit

    monkeypatch.setattr(surrogate, "_maximize_likelihood",
                        fails_with(torch.linalg.LinAlgError("not positive-definite")))
    with pytest.raises(surrogate.SurrogateFitError, match="not positive-definite"):
        surrogate.fit_gp(X, y)
    # a bug (an API that changed, a typo) must not hide behind the quasi-random fallback
    monkeypatch.setattr(surrogate, "_maximize_likelihood", fails_with(TypeError("a bug")))
    with pytest.raises(TypeError, match="a bug"):
        surrogate.fit_gp(X, y)


def test_the_fit_logs_the_optimizer_s_warnings_and_passes_on_the_others(monkeypatch, caplog):
    import logging
    import warnings

    from botorch.exceptions.warnings import OptimizationWarning

    X = torch.rand(8, 2, dtype=torch.float64)
    real = surrogate._maximize_likelihood

    def warns(model):
        warnings.warn("the optimizer restarted", OptimizationWarning, stacklevel=1)
        warnings.warn("a user's own warning", UserWarning, stacklevel=1)
        real(model)

    monkeypatch.setattr(surrogate, "_maximize_likelihood", warns)
    with caplog.at_level(logging.DEBUG, logger="gpbo.surrogate"), \
            pytest.warns(UserWarning, match="a user's own warning") as shown:
        surrogate.fit_gp(X, X.sum(-1))
    assert not any(issubclass(w.category, OptimizationWarning) for w in shown)
    assert "OptimizationWarning: the optimizer restarted" in caplog.text


def test_botorch_s_retry_note_is_logged_and_other_runtime_warnings_pass(caplog):
    import logging
    import warnings

    with (
        caplog.at_level(logging.DEBUG, logger="gpbo.surrogate"),
        pytest.warns(RuntimeWarning, match="overflow in the user's code") as shown,
        surrogate.numerical_warnings_to_debug_log("acquisition optimization"),
    ):
        warnings.warn(
            "Optimization failed in `gen_candidates_scipy` with the following warning(s):"
            "\n[...]\nTrying again with a new set of initial conditions.",
            RuntimeWarning, stacklevel=1,
        )
        warnings.warn("overflow in the user's code", RuntimeWarning, stacklevel=1)
    assert len(shown) == 1
    assert "Trying again with a new set of initial conditions" in caplog.text


def test_a_large_cpu_gp_is_warned_of_once_with_its_memory(monkeypatch):
    monkeypatch.setattr(surrogate, "LARGE_CPU_GP", 12)
    monkeypatch.setattr(surrogate, "GP_BYTES_PER_POINT_SQUARED", 10**7)
    monkeypatch.setattr(surrogate, "_warned_large", False)
    study = gpbo.Study({"x": gpbo.Real(0, 1), "y": gpbo.Real(0, 1)},
                       strategy=fast_bayes(n_init=6), seed=0, surrogate_device="cpu")
    for _ in range(11):  # 11 trials: below the line, nothing said
        trial = study.ask(1)[0]
        study.tell(trial, (trial.params["x"] - 0.3) ** 2 + trial.params["y"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            trial = study.ask(1)[0]
            study.tell(trial, (trial.params["x"] - 0.3) ** 2 + trial.params["y"])
    said = [str(w.message) for w in caught if issubclass(w.category, gpbo.GpboWarning)]
    assert len(said) == 1
    assert "conditions on 12 trials on the CPU" in said[0] and "1.4 GB" in said[0]
    assert "surrogate_device='auto'" in said[0]


def test_the_success_gp_reads_where_trials_failed():
    from gpbo.cached_gp import cache_posterior
    from gpbo.surrogate import fit_success_gp, log_probability_of_success

    rng = np.random.default_rng(0)
    X = torch.tensor(rng.random((30, 2)))
    succeeded = X[:, 1] < 0.5
    gp = fit_success_gp(X, succeeded)
    points = torch.tensor([[0.5, 0.1], [0.5, 0.9]], dtype=torch.float64)
    for model in (gp, cache_posterior(gp)):  # the cached posterior gives the same odds
        log_p = log_probability_of_success(model, points)
        assert log_p.shape == (2,)
        assert log_p[0] > np.log(0.9) and log_p[1] < np.log(0.1)
    assert torch.allclose(
        log_probability_of_success(gp, points),
        log_probability_of_success(cache_posterior(gp), points),
        atol=1e-6,
    )


def test_a_large_success_gp_fits_on_a_subset_and_conditions_on_every_trial():
    from gpbo.surrogate import fit_success_gp, log_probability_of_success

    rng = np.random.default_rng(1)
    X = torch.tensor(rng.random((400, 3)))
    succeeded = X[:, 0] < 0.8
    gp = fit_success_gp(X, succeeded, subset=64)
    assert gp.train_inputs[0].shape == (400, 3)
    points = torch.tensor([[0.3, 0.5, 0.5], [0.95, 0.5, 0.5]], dtype=torch.float64)
    log_p = log_probability_of_success(gp, points)
    assert log_p[0] > np.log(0.9) and log_p[1] < np.log(0.1)


def test_the_success_gp_refuses_labels_of_another_length():
    from gpbo.surrogate import fit_success_gp

    with pytest.raises(SurrogateFitError, match="labels"):
        fit_success_gp(torch.rand(5, 2, dtype=torch.float64), torch.ones(4, dtype=torch.bool))
