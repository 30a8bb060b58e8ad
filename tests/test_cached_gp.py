"""Tests for gpbo/cached_gp.py: the cached posterior must be the fitted GP's posterior."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from gpbo.acquisition import qlogei
from gpbo.cached_gp import CachedGP, CachedQLogEI, _matern_and_scale, cache_posterior
from gpbo.surrogate import fit_gp


def _assert_same_posterior(cached, gp, X: torch.Tensor):
    """The cached posterior at ``X`` is ``gp``'s in mean and covariance; returns it."""
    expected, got = gp.posterior(X), cached.posterior(X)
    assert got.mean.shape == expected.mean.shape
    torch.testing.assert_close(got.mean, expected.mean, rtol=1e-8, atol=1e-9)
    torch.testing.assert_close(
        got.distribution.covariance_matrix,
        expected.distribution.covariance_matrix,
        rtol=1e-6,
        atol=1e-9,
    )
    return got


def _fitted(n: int = 40, d: int = 3, seed: int = 0, subset: int = 256):
    rng = np.random.default_rng(seed)
    X = torch.tensor(rng.random((n, d)))
    # not centred, so the outcome transform matters
    y = torch.sin(5 * X[:, 0]) + X[:, 1] ** 2 - 0.5 * X[:, -1] + 3.0
    return fit_gp(X, y, subset=subset)


@pytest.mark.parametrize("shape", [(7, 3), (4, 5, 3), (2, 3, 1, 3)])
def test_posterior_matches_the_gp_in_mean_and_covariance(shape):
    gp = _fitted()
    cached = cache_posterior(gp)
    assert isinstance(cached, CachedGP)
    X = torch.rand(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    _assert_same_posterior(cached, gp, X)


def test_a_matern_without_output_scale_is_cached_too(monkeypatch):
    from gpytorch.kernels import MaternKernel

    import gpbo.surrogate

    monkeypatch.setattr(gpbo.surrogate, "OUTPUT_SCALE_PRIOR", None)
    gp = _fitted()
    assert type(gp.covar_module) is MaternKernel
    cached = cache_posterior(gp)
    assert isinstance(cached, CachedGP)
    X = torch.rand(4, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    _assert_same_posterior(cached, gp, X)


def test_posterior_matches_when_hyperparameters_come_from_a_subset():
    gp = _fitted(n=60, subset=30)
    X = torch.rand(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(cache_posterior(gp).posterior(X).mean, gp.posterior(X).mean)


def _value_and_gradient(acqf, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    X = X.clone().requires_grad_(True)
    value = acqf(X)
    value.sum().backward()
    return value.detach(), X.grad


@pytest.mark.parametrize("q", [1, 2])
@pytest.mark.parametrize("n_pending", [0, 2])
def test_cached_qlogei_matches_botorch_qlogei_on_the_gp(n_pending, q):
    from botorch.acquisition.logei import qLogExpectedImprovement
    from botorch.sampling import SobolQMCNormalSampler

    gp = _fitted()
    generator = torch.Generator().manual_seed(3)
    pending = torch.rand(n_pending, 3, dtype=torch.float64, generator=generator)
    best_f = float(gp.outcome_transform.untransform(gp.train_targets.unsqueeze(-1))[0].max())
    X = torch.rand(6, q, 3, dtype=torch.float64, generator=generator)
    results = []
    for acquisition, model in (
        (qLogExpectedImprovement, gp),
        (qLogExpectedImprovement, cache_posterior(gp)),
        (CachedQLogEI, cache_posterior(gp)),
    ):
        acqf = acquisition(
            model,
            best_f=best_f,
            sampler=SobolQMCNormalSampler(sample_shape=torch.Size([64]), seed=0),
            X_pending=pending if n_pending else None,
        )
        results.append(_value_and_gradient(acqf, X))
    (value, grad), others = results[0], results[1:]
    assert torch.isfinite(value).all() and value.std() > 0
    for other_value, other_grad in others:
        torch.testing.assert_close(other_value, value, rtol=1e-6, atol=1e-8)
        torch.testing.assert_close(other_grad, grad, rtol=1e-5, atol=1e-8)


def test_the_direct_reduction_is_used_and_constraints_take_botorch_path(monkeypatch):
    from botorch.sampling import SobolQMCNormalSampler

    from gpbo import cached_gp

    calls = []
    original = cached_gp._LogEIOfSamples.apply
    monkeypatch.setattr(
        cached_gp._LogEIOfSamples, "apply", lambda *a: calls.append(1) or original(*a)
    )
    model = cache_posterior(_fitted())
    X = torch.rand(4, 1, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    sampler = SobolQMCNormalSampler(sample_shape=torch.Size([32]), seed=0)
    plain = CachedQLogEI(model, best_f=3.0, sampler=sampler)(X)
    assert len(calls) == 1
    constrained = CachedQLogEI(
        model, best_f=3.0, sampler=sampler, constraints=[lambda Y: Y[..., 0] - 1e9]
    )(X)
    assert len(calls) == 1  # BoTorch's forward: the constraint is applied
    # a constraint that always holds leaves the value (to its smoothing)
    torch.testing.assert_close(constrained, plain, rtol=1e-6, atol=1e-6)


def test_matern_cross_gradient_is_the_finite_difference_one_also_on_a_column():
    from gpbo import cached_gp

    model = cache_posterior(_fitted())
    columns = model._train_columns()
    X = torch.rand(3, 2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    X[1, 0] = model.train_X[7]  # on a training point: distance 0
    X.requires_grad_(True)

    def cross(X):
        return cached_gp._MaternCross.apply(
            X, model.lengthscale, columns.scaled, columns.squared_norms
        )

    torch.autograd.gradcheck(cross, (X,))
    torch.testing.assert_close(cross(X), model._kernel(X, model.train_X), rtol=1e-10, atol=1e-12)


def test_log_ei_of_samples_gradient_is_the_finite_difference_one():
    from gpbo import cached_gp

    generator = torch.Generator().manual_seed(6)
    samples = torch.randn(16, 3, 4, dtype=torch.float64, generator=generator)
    samples[:, 1, 2] = samples[:, 1, 0]  # tied maxima share the gradient
    samples.requires_grad_(True)
    best_f = torch.tensor(0.5, dtype=torch.float64)

    def value(samples):
        return cached_gp._LogEIOfSamples.apply(samples, best_f, 0.3, 0.2)

    # temperatures large enough for finite differences to resolve the curvature
    torch.autograd.gradcheck(value, (samples,))


@pytest.mark.parametrize("batch", [(), (4,), (2, 3)])
def test_joint_with_fixed_points_equals_joint_of_the_concatenation(batch):
    cached = cache_posterior(_fitted())
    generator = torch.Generator().manual_seed(8)
    X_new = torch.rand(*batch, 2, 3, dtype=torch.float64, generator=generator)
    X_fixed = torch.rand(3, 3, dtype=torch.float64, generator=generator)
    mean, covariance = cached.joint_with(X_new, cached.fix(X_fixed))
    everything = torch.cat([X_new, X_fixed.expand(*batch, 3, 3)], dim=-2)
    expected_mean, expected_covariance = cached.joint(everything)
    assert mean.shape == (*batch, 5) and covariance.shape == (*batch, 5, 5)
    torch.testing.assert_close(mean, expected_mean, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(covariance, expected_covariance, rtol=1e-8, atol=1e-12)


def _counting(cached: CachedGP, monkeypatch) -> dict[str, int]:
    calls = {"fix": 0, "joint_with": 0, "joint": 0}
    for name in calls:
        original = getattr(cached, name)

        def counted(*args, _name=name, _original=original):
            calls[_name] += 1
            return _original(*args)

        monkeypatch.setattr(cached, name, counted)
    return calls


def test_pending_points_terms_are_computed_once_per_pending_set(monkeypatch):
    from botorch.sampling import SobolQMCNormalSampler

    cached = cache_posterior(_fitted())
    calls = _counting(cached, monkeypatch)
    generator = torch.Generator().manual_seed(9)
    acqf = CachedQLogEI(
        cached, best_f=3.0, sampler=SobolQMCNormalSampler(torch.Size([32]), seed=0),
        X_pending=torch.rand(2, 3, dtype=torch.float64, generator=generator),
    )
    for _ in range(3):
        _value_and_gradient(acqf, torch.rand(5, 1, 3, dtype=torch.float64, generator=generator))
    assert calls == {"fix": 1, "joint_with": 3, "joint": 0}
    acqf.set_X_pending(torch.rand(4, 3, dtype=torch.float64, generator=generator))
    acqf(torch.rand(5, 1, 3, dtype=torch.float64, generator=generator))
    assert calls == {"fix": 2, "joint_with": 4, "joint": 0}


def test_points_that_do_not_end_with_the_pending_ones_take_the_full_posterior(monkeypatch):
    from botorch.sampling import SobolQMCNormalSampler

    cached = cache_posterior(_fitted())
    generator = torch.Generator().manual_seed(10)
    pending = torch.rand(2, 3, dtype=torch.float64, generator=generator)
    acqf = CachedQLogEI(
        cached, best_f=3.0, sampler=SobolQMCNormalSampler(torch.Size([32]), seed=0),
        X_pending=pending,
    )
    calls = _counting(cached, monkeypatch)
    X = torch.rand(5, 3, 3, dtype=torch.float64, generator=generator)
    samples, _ = acqf._get_samples_and_objectives(X)
    assert calls == {"fix": 0, "joint_with": 0, "joint": 1}
    assert samples.shape == (32, 5, 3, 1)


def test_pending_terms_are_reused_only_on_the_listed_devices(monkeypatch):
    from botorch.sampling import SobolQMCNormalSampler

    import gpbo.cached_gp as cached_gp

    cached = cache_posterior(_fitted())
    generator = torch.Generator().manual_seed(11)
    acqf = CachedQLogEI(
        cached, best_f=3.0, sampler=SobolQMCNormalSampler(torch.Size([32]), seed=0),
        X_pending=torch.rand(3, 3, dtype=torch.float64, generator=generator),
    )
    X = torch.rand(5, 1, 3, dtype=torch.float64, generator=generator)
    calls = _counting(cached, monkeypatch)
    with_cache = _value_and_gradient(acqf, X)
    assert calls == {"fix": 1, "joint_with": 1, "joint": 0}
    monkeypatch.setattr(cached_gp, "PENDING_CACHE_DEVICES", frozenset({"cuda"}))
    without_cache = _value_and_gradient(acqf, X)
    assert calls == {"fix": 1, "joint_with": 1, "joint": 1}
    for a, b in zip(with_cache, without_cache, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.cuda
def test_pending_terms_reused_on_cuda_give_the_cpu_values(monkeypatch):
    from botorch.sampling import SobolQMCNormalSampler

    import gpbo.cached_gp as cached_gp

    assert "cuda" in cached_gp.PENDING_CACHE_DEVICES  # the default
    gp = _fitted()
    generator = torch.Generator().manual_seed(12)
    pending = torch.rand(3, 3, dtype=torch.float64, generator=generator)
    X = torch.rand(5, 1, 3, dtype=torch.float64, generator=generator)
    results = []
    for device in ("cpu", "cuda"):
        cached = cache_posterior(copy.deepcopy(gp).to(device))
        acqf = CachedQLogEI(
            cached, best_f=3.0, sampler=SobolQMCNormalSampler(torch.Size([32]), seed=0),
            X_pending=pending.to(device),
        )
        calls = _counting(cached, monkeypatch)
        value, grad = _value_and_gradient(acqf, X.to(device))
        assert calls == {"fix": 1, "joint_with": 1, "joint": 0}
        results.append((value.cpu(), grad.cpu()))
    torch.testing.assert_close(results[1][0], results[0][0], rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(results[1][1], results[0][1], rtol=1e-5, atol=1e-8)


def test_cached_qlogei_takes_botorch_path_for_another_model():
    from botorch.acquisition.logei import qLogExpectedImprovement
    from botorch.models import SingleTaskGP
    from botorch.sampling import SobolQMCNormalSampler

    X = torch.rand(10, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    rbf = SingleTaskGP(X, X.sum(dim=1, keepdim=True)).eval()
    test = torch.rand(4, 1, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    values = [
        acquisition(rbf, best_f=1.0, sampler=SobolQMCNormalSampler(torch.Size([32]), seed=1))(test)
        for acquisition in (qLogExpectedImprovement, CachedQLogEI)
    ]
    torch.testing.assert_close(values[1], values[0])


def test_gradient_is_finite_where_a_point_meets_a_pending_or_training_point():
    gp = _fitted()
    cached = cache_posterior(gp)
    X = torch.cat([gp.train_inputs[0][:1], gp.train_inputs[0][:1]]).unsqueeze(0)  # `1 x 2 x d`
    X.requires_grad_(True)
    posterior = cached.posterior(X)
    (posterior.mean.sum() + posterior.distribution.covariance_matrix.sum()).backward()
    assert torch.isfinite(X.grad).all()


def test_other_models_are_returned_unchanged():
    from botorch.models import SingleTaskGP

    X = torch.rand(10, 2, dtype=torch.float64)
    rbf = SingleTaskGP(X, X.sum(dim=1, keepdim=True))  # BoTorch's default RBF kernel
    rbf.eval()
    assert cache_posterior(rbf) is rbf
    gp = _fitted()
    gp.train()
    assert cache_posterior(gp) is gp


def test_qlogei_uses_the_cached_posterior_and_sampling():
    acqf = qlogei(_fitted(), best_f=0.0, pending=np.zeros((0, 3)))
    assert isinstance(acqf, CachedQLogEI)
    assert isinstance(acqf.model, CachedGP)


@pytest.mark.cuda
def test_cached_qlogei_on_cuda_matches_botorch_and_the_cpu():
    from botorch.acquisition.logei import qLogExpectedImprovement
    from botorch.sampling import SobolQMCNormalSampler

    gp = _fitted()
    X = torch.rand(6, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    best_f = float(gp.outcome_transform.untransform(gp.train_targets.unsqueeze(-1))[0].max())
    results = {}
    for device in ("cpu", "cuda"):
        # a fresh copy per device: `.to()` leaves GPyTorch's prediction caches where they were
        model = copy.deepcopy(gp).to(device)
        for acquisition, m in ((qLogExpectedImprovement, model),
                               (CachedQLogEI, cache_posterior(model))):
            acqf = acquisition(
                m, best_f=best_f, sampler=SobolQMCNormalSampler(torch.Size([64]), seed=0)
            )
            value, grad = _value_and_gradient(acqf, X.to(device))
            assert value.device.type == device
            results[device, acquisition.__name__] = (value.cpu(), grad.cpu())
    value, grad = results["cpu", "qLogExpectedImprovement"]
    assert torch.isfinite(value).all() and value.std() > 0
    for other_value, other_grad in results.values():
        torch.testing.assert_close(other_value, value, rtol=1e-6, atol=1e-8)
        torch.testing.assert_close(other_grad, grad, rtol=1e-5, atol=1e-8)


def test_posterior_mean_acquisition_matches_botorch_posterior_mean():
    from botorch.acquisition import PosteriorMean

    from gpbo.cached_gp import CachedPosteriorMean

    gp = _fitted(n=60, subset=30)
    X = torch.rand(9, 1, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    expected = PosteriorMean(gp)(X)
    got = CachedPosteriorMean(cache_posterior(gp))(X)
    assert got.shape == expected.shape == (9,)
    torch.testing.assert_close(got, expected, rtol=1e-8, atol=1e-9)
    X.requires_grad_(True)
    CachedPosteriorMean(cache_posterior(gp))(X).sum().backward()
    assert torch.isfinite(X.grad).all() and X.grad.abs().sum() > 0


def test_the_cached_posterior_is_built_once_per_fitted_model_and_again_after_a_change():
    gp = _fitted()
    first = cache_posterior(gp)
    assert cache_posterior(gp) is first
    copied = copy.deepcopy(gp)  # carries the memo along, with new storage
    assert cache_posterior(copied) is not first
    matern, _ = _matern_and_scale(gp.covar_module)
    with torch.no_grad():
        matern.lengthscale = matern.lengthscale * 2
    refreshed = cache_posterior(gp)
    assert refreshed is not first
    X = torch.rand(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(refreshed.posterior(X).mean, gp.posterior(X).mean)


def _with_output_scale(gp, outputscale: float):
    """``gp``, not refitted, with its Matern in a ``ScaleKernel`` of ``outputscale``."""
    from botorch.models import SingleTaskGP
    from gpytorch.kernels import ScaleKernel

    matern, _ = _matern_and_scale(gp.covar_module)
    scaled = SingleTaskGP(
        gp.train_inputs[0],
        gp.outcome_transform.untransform(gp.train_targets.unsqueeze(-1))[0],
        likelihood=copy.deepcopy(gp.likelihood),
        covar_module=ScaleKernel(copy.deepcopy(matern)),
        outcome_transform=copy.deepcopy(gp.outcome_transform),
    ).to(gp.train_inputs[0])
    with torch.no_grad():
        scaled.covar_module.outputscale = torch.tensor(outputscale, dtype=torch.float64)
        scaled.mean_module.constant.copy_(gp.mean_module.constant)
    scaled.eval()
    return scaled


@pytest.mark.parametrize("outputscale", [0.3, 4.0])
def test_an_output_scale_is_folded_into_the_cached_posterior(outputscale):
    from botorch.acquisition.logei import qLogExpectedImprovement
    from botorch.sampling import SobolQMCNormalSampler

    gp = _with_output_scale(_fitted(), outputscale)
    cached = cache_posterior(gp)
    assert isinstance(cached, CachedGP)
    generator = torch.Generator().manual_seed(5)
    X = torch.rand(4, 3, 3, dtype=torch.float64, generator=generator)
    got = _assert_same_posterior(cached, gp, X)
    # the scale changes the posterior variance (else the test above proves nothing about it)
    unscaled = cache_posterior(_with_output_scale(gp, 1.0)).posterior(X).variance
    assert not torch.allclose(got.variance, unscaled, rtol=1e-2)
    pending = torch.rand(2, 3, dtype=torch.float64, generator=generator)
    best_f = float(gp.outcome_transform.untransform(gp.train_targets.unsqueeze(-1))[0].max())
    values = []
    for acquisition, model in ((qLogExpectedImprovement, gp), (CachedQLogEI, cached)):
        acqf = acquisition(
            model,
            best_f=best_f,
            sampler=SobolQMCNormalSampler(sample_shape=torch.Size([64]), seed=0),
            X_pending=pending,
        )
        values.append(_value_and_gradient(acqf, X[:, :2]))
    torch.testing.assert_close(values[1][0], values[0][0], rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(values[1][1], values[0][1], rtol=1e-5, atol=1e-8)


def test_a_changed_output_scale_rebuilds_the_cached_posterior():
    gp = _with_output_scale(_fitted(), 2.0)
    first = cache_posterior(gp)
    with torch.no_grad():
        gp.covar_module.outputscale = torch.tensor(3.0, dtype=torch.float64)
    refreshed = cache_posterior(gp)
    assert refreshed is not first
    X = torch.rand(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    torch.testing.assert_close(refreshed.posterior(X).variance, gp.posterior(X).variance)
