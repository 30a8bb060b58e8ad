"""The GP's marginal likelihood and its gradient, computed directly for the model gpbo fits.

BoTorch's ``fit_gpytorch_mll`` maximizes the marginal likelihood with L-BFGS-B, calling a
closure for the loss and its gradient some 40-60 times per fit. Through GPyTorch that closure
walks the model, its priors, constraints and linear operators: a few milliseconds an
evaluation where the arithmetic at a few hundred points takes a fraction of one, and on a GPU
several hundred small kernel launches. :func:`marginal_likelihood_closure` computes the same
loss (to rounding) and gradient from a dozen tensor operations; BoTorch still runs the
optimizer, its retries from prior samples and its warnings. Imported lazily (torch).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

# the same floor as the cached posterior's kernel (GPyTorch's), so the two agree where a point
# meets itself
from gpbo.cached_gp import _MIN_SQUARED_DISTANCE

Closure = Callable[[], tuple[torch.Tensor, Sequence[torch.Tensor | None]]]


def marginal_likelihood_closure(mll: Any) -> Closure | None:
    r"""A loss-and-gradient closure for ``fit_gpytorch_mll(mll, closure=...)``, or ``None``.

    The loss is GPyTorch's ``ExactMarginalLogLikelihood`` negated: for a ``SingleTaskGP`` with
    a Matern-5/2 ARD kernel (alone or in a ``ScaleKernel``), a ``ConstantMean``, a
    ``GaussianLikelihood`` and no input transform, with `K = s k(X, X) + sigma^2 I` on the
    standardized targets `y`,

    `-(log N(y | c, K) + log p(lengthscales) + log p(s) + log p(sigma^2)) / n`,

    each hyperparameter the constraint's transform of its raw parameter, as GPyTorch computes
    it. The likelihood term's gradient is hand-written (:class:`_GaussianLogLikelihood`);
    autograd carries it and the priors' through the constraint transforms to the raw
    parameters, returned in the order BoTorch's optimizer packs them. Where the Cholesky
    factorization fails, that evaluation goes through GPyTorch (which adds jitter or raises
    ``NotPSDError`` for BoTorch to retry).

    Args:
        mll: An ``ExactMarginalLogLikelihood`` of the model to fit.

    Returns:
        The closure, or ``None`` for any other model structure (fit through GPyTorch then).
    """
    from botorch.models import SingleTaskGP
    from botorch.optim.closures import get_loss_closure_with_grads
    from botorch.optim.utils import get_parameters_and_bounds
    from gpytorch.kernels import MaternKernel, ScaleKernel
    from gpytorch.likelihoods import GaussianLikelihood
    from gpytorch.means import ConstantMean
    from gpytorch.mlls import ExactMarginalLogLikelihood

    model = getattr(mll, "model", None)
    if type(mll) is not ExactMarginalLogLikelihood or type(model) is not SingleTaskGP:
        return None
    kernel = model.covar_module
    scale_kernel = kernel if type(kernel) is ScaleKernel else None
    matern = kernel.base_kernel if scale_kernel is not None else kernel
    if not (
        type(matern) is MaternKernel
        and matern.nu == 2.5
        and matern.active_dims is None
        and (scale_kernel is None or scale_kernel.active_dims is None)
        and type(model.mean_module) is ConstantMean
        and type(model.likelihood) is GaussianLikelihood
        and mll.likelihood is model.likelihood
        and getattr(model, "input_transform", None) is None
        and model.num_outputs == 1
        and model.train_inputs[0].dim() == 2
        and not list(mll.added_loss_terms())
    ):
        return None

    noise_covar = model.likelihood.noise_covar
    terms: list[tuple[torch.Tensor, Any, Any]] = [
        (matern.raw_lengthscale, matern.raw_lengthscale_constraint,
         getattr(matern, "lengthscale_prior", None)),
        (noise_covar.raw_noise, noise_covar.raw_noise_constraint,
         getattr(noise_covar, "noise_prior", None)),
    ]
    if scale_kernel is not None:
        terms.append((scale_kernel.raw_outputscale, scale_kernel.raw_outputscale_constraint,
                      getattr(scale_kernel, "outputscale_prior", None)))
    raw_constant = model.mean_module.raw_constant
    known = [raw for raw, _, _ in terms] + [raw_constant]
    # the priors this closure adds must be all the model has, each on its own hyperparameter
    expected_priors = sum(prior is not None for _, _, prior in terms)
    if len(list(model.named_priors())) != expected_priors:
        return None
    parameters = {
        name: p for name, p in get_parameters_and_bounds(mll)[0].items() if p.requires_grad
    }
    if len(parameters) != len(known) or not all(
        any(p is raw for raw in known) for p in parameters.values()
    ):
        return None
    through_gpytorch = get_loss_closure_with_grads(mll, parameters=parameters)

    X = model.train_inputs[0]
    y = model.train_targets
    n = X.shape[0]
    data = _TrainingData(X, y)

    def closure() -> tuple[torch.Tensor, Sequence[torch.Tensor | None]]:
        with torch.enable_grad():
            lengthscale, noise, *scale = (con.transform(raw) for raw, con, _ in terms)
            outputscale = (
                scale[0].reshape(()) if scale
                else torch.ones((), dtype=X.dtype, device=X.device)
            )
            try:
                log_likelihood = _GaussianLogLikelihood.apply(
                    lengthscale.reshape(-1), outputscale, noise.reshape(()),
                    raw_constant.reshape(()), data,
                )
            except _FactorizationError:
                return through_gpytorch()
            log_prob = log_likelihood
            for value, (_, _, prior) in zip((lengthscale, noise, *scale), terms, strict=True):
                if prior is not None:
                    log_prob = log_prob + prior.log_prob(value).sum()
            loss = -log_prob / n
            grads = torch.autograd.grad(loss, list(parameters.values()), allow_unused=True)
        return loss.detach(), tuple(
            torch.zeros_like(p) if g is None else g
            for p, g in zip(parameters.values(), grads, strict=True)
        )

    return closure


class _TrainingData:
    """The training inputs and targets with the terms every evaluation reuses."""

    def __init__(self, X: torch.Tensor, y: torch.Tensor) -> None:
        self.X = X.detach() - X.detach().mean(dim=0)  # centred, as GPyTorch's Matern does
        self.y = y.detach()
        self.squares = self.X.pow(2)


class _FactorizationError(Exception):
    """The covariance matrix was not positive definite to working precision."""


class _GaussianLogLikelihood(torch.autograd.Function):
    r"""`log N(y | c, s k(X, X) + sigma^2 I)` with a hand-written gradient.

    With `W = K^{-1} - alpha alpha^T` and `alpha = K^{-1} (y - c)`, the derivative in any
    covariance parameter `t` is `-1/2 sum(W * dK/dt)`: `-tr(W) / 2` in the noise,
    `-sum(W * k) / 2` in the output scale and, for lengthscale `l_j`, with `u` the
    lengthscale-scaled distance times `sqrt(5)`,
    `dK/dl_j = s (5 / 3) (1 + u) exp(-u) (x_j - x_j')^2 / l_j^3`, whose sum against `W` is a
    few matrix products. One factorization and its inverse replace autograd's backward
    through the Cholesky factor, which was most of an evaluation.

    ``apply`` raises :class:`_FactorizationError` where the Cholesky factorization fails.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        lengthscale: torch.Tensor,
        outputscale: torch.Tensor,
        noise: torch.Tensor,
        constant: torch.Tensor,
        data: _TrainingData,
    ) -> torch.Tensor:
        # in place where a tensor is not kept: every `n x n` pass is a memory sweep
        Z = data.X / lengthscale
        norms = Z.pow(2).sum(-1)
        u = torch.addmm(norms.unsqueeze(-1) + norms, Z, Z.T, alpha=-2.0).clamp_min_(0.0)
        u.fill_diagonal_(0.0)
        u.clamp_min_(_MIN_SQUARED_DISTANCE).sqrt_().mul_(math.sqrt(5.0))
        decay = torch.neg(u).exp_()
        k = u.pow(2).div_(3.0).add_(u).add_(1.0).mul_(decay)
        K = k * outputscale
        K.diagonal().add_(noise)
        L, info = torch.linalg.cholesky_ex(K)
        if info.item() != 0:
            raise _FactorizationError
        residual = (data.y - constant).unsqueeze(-1)
        alpha = torch.cholesky_solve(residual, L)
        n = data.y.shape[0]
        value = -0.5 * (
            (residual * alpha).sum() + 2.0 * torch.log(torch.diagonal(L)).sum()
            + n * math.log(2.0 * math.pi)
        )
        ctx.save_for_backward(L, alpha, u, decay, k, lengthscale, outputscale)
        ctx.data = data
        return value

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: Any, grad: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, None]:
        L, alpha, u, decay, k, lengthscale, outputscale = ctx.saved_tensors
        data = ctx.data
        W = torch.addmm(torch.cholesky_inverse(L), alpha, alpha.T, alpha=-1.0)
        grad_outputscale = -0.5 * torch.dot(W.reshape(-1), k.reshape(-1))
        grad_noise = -0.5 * torch.diagonal(W).sum()
        G = u.add(1.0).mul_(decay).mul_(W)
        # sum over pairs of G * (x_j - x_j')^2, for every j at once (G is symmetric)
        spread = 2.0 * (data.squares * G.sum(-1, keepdim=True)).sum(0) - 2.0 * (
            data.X * (G @ data.X)
        ).sum(0)
        grad_lengthscale = -0.5 * outputscale * (5.0 / 3.0) * spread / lengthscale.pow(3)
        grad_constant = alpha.sum()
        return (
            grad * grad_lengthscale, grad * grad_outputscale, grad * grad_noise,
            grad * grad_constant, None,
        )
