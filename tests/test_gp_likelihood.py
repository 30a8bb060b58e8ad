"""The hand-written marginal likelihood against GPyTorch's, and the fit that uses it."""

from __future__ import annotations

import pytest
import torch
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from botorch.models.transforms.input import Normalize
from botorch.optim.closures import get_loss_closure_with_grads
from botorch.optim.utils import get_parameters_and_bounds
from gpytorch.kernels import RBFKernel
from gpytorch.mlls import ExactMarginalLogLikelihood

import gpbo.surrogate
from gpbo.gp_likelihood import marginal_likelihood_closure
from gpbo.surrogate import _build_gp


def _data(n: int, d: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    X = torch.rand(n, d, generator=generator, dtype=torch.float64)
    return X, torch.sin(6 * X).sum(-1) + 0.1 * X[:, 0]


def _mll(model: SingleTaskGP) -> ExactMarginalLogLikelihood:
    return ExactMarginalLogLikelihood(model.likelihood, model).train()


def _trainable(mll: ExactMarginalLogLikelihood) -> dict[str, torch.Tensor]:
    return {n: p for n, p in get_parameters_and_bounds(mll)[0].items() if p.requires_grad}


def _perturb(parameters: dict[str, torch.Tensor], generator: torch.Generator) -> None:
    with torch.no_grad():
        for name, p in parameters.items():
            p.add_(0.5 * torch.randn(p.shape, generator=generator, dtype=p.dtype))
            if "lengthscale" in name:  # L-BFGS-B keeps it above its bound 0.025 in a fit
                p.clamp_(min=0.05)


@pytest.mark.parametrize("output_scale", [(2.0, 1.0), None])
@pytest.mark.parametrize("n", [2, 30, 120])
def test_loss_and_gradient_equal_gpytorch_s(monkeypatch, output_scale, n):
    monkeypatch.setattr(gpbo.surrogate, "OUTPUT_SCALE_PRIOR", output_scale)
    mll = _mll(_build_gp(*_data(n)))
    closure = marginal_likelihood_closure(mll)
    assert closure is not None
    parameters = _trainable(mll)
    reference = get_loss_closure_with_grads(mll, parameters=parameters)
    generator = torch.Generator().manual_seed(n)
    for _ in range(4):
        _perturb(parameters, generator)
        loss, grads = closure()
        expected_loss, expected_grads = reference()
        torch.testing.assert_close(loss, expected_loss, rtol=1e-12, atol=1e-12)
        assert len(grads) == len(expected_grads) == len(parameters)
        for grad, expected, p in zip(grads, expected_grads, parameters.values(), strict=True):
            assert grad.shape == p.shape
            torch.testing.assert_close(grad, expected, rtol=1e-9, atol=1e-11)


def test_a_failed_factorization_goes_through_gpytorch(monkeypatch):
    mll = _mll(_build_gp(*_data(20)))
    closure = marginal_likelihood_closure(mll)
    reference = get_loss_closure_with_grads(mll, parameters=_trainable(mll))

    cholesky_ex = torch.linalg.cholesky_ex
    calls = []

    def first_one_fails(K, **kwargs):  # the closure's call fails, GPyTorch's then succeed
        calls.append(K.shape)
        if len(calls) == 1:
            return torch.zeros_like(K), torch.ones((), dtype=torch.int32)
        return cholesky_ex(K, **kwargs)

    monkeypatch.setattr(torch.linalg, "cholesky_ex", first_one_fails)
    loss, grads = closure()
    monkeypatch.undo()
    assert len(calls) >= 2  # it went on to GPyTorch
    expected_loss, expected_grads = reference()
    torch.testing.assert_close(loss, expected_loss)
    for grad, expected in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(grad, expected)


def test_other_models_are_left_to_gpytorch():
    X, y = _data(10)
    rbf = SingleTaskGP(X, y.unsqueeze(-1), covar_module=RBFKernel(ard_num_dims=X.shape[-1]))
    warped = SingleTaskGP(X, y.unsqueeze(-1), input_transform=Normalize(d=X.shape[-1]))
    two_outputs = SingleTaskGP(X, torch.stack([y, -y], dim=-1))
    for model in (rbf, warped, two_outputs):
        assert marginal_likelihood_closure(_mll(model)) is None
    assert marginal_likelihood_closure(_mll(_build_gp(X, y))) is not None


def test_the_fit_finds_the_hyperparameters_gpytorch_s_closure_finds():
    X, y = _data(60, d=6, seed=3)
    fitted = {}
    for name, make_closure in (("fast", marginal_likelihood_closure), ("gpytorch", None)):
        model = _build_gp(X, y)
        mll = _mll(model)
        fit_gpytorch_mll(mll, closure=make_closure(mll) if make_closure else None)
        fitted[name] = torch.cat(
            [
                model.covar_module.base_kernel.lengthscale.detach().reshape(-1),
                model.covar_module.outputscale.detach().reshape(-1),
                model.likelihood.noise.detach().reshape(-1),
                model.mean_module.constant.detach().reshape(-1),
            ]
        )
    # the same optimizer on the same function: the iterates agree to rounding
    torch.testing.assert_close(fitted["fast"], fitted["gpytorch"], rtol=1e-6, atol=1e-8)
    assert fitted["fast"][:6].std() > 0.01  # moved from the common start: a real fit


@pytest.mark.cuda
def test_the_closure_on_cuda_equals_gpytorch_s():
    X, y = _data(50)
    mll = _mll(_build_gp(X.cuda(), y.cuda()))
    closure = marginal_likelihood_closure(mll)
    parameters = _trainable(mll)
    loss, grads = closure()
    expected_loss, expected_grads = get_loss_closure_with_grads(mll, parameters=parameters)()
    assert loss.device.type == "cuda"
    torch.testing.assert_close(loss, expected_loss, rtol=1e-10, atol=1e-10)
    for grad, expected in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(grad, expected, rtol=1e-8, atol=1e-10)
