"""A GP classifier for where trials succeed, against the default's label GP regression.

Twenty-second session. The default success model (:func:`gpbo.surrogate.fit_success_gp`) is a
GP regression on labels 1/0: a sharp failing boundary shrinks its lengthscale to a few
hundredths of the unit cube, so inside the failing region it reverts to the mean success rate
between failed points and the acquisition keeps probing there (``successgp.py``). A GP
classifier (probit likelihood, variational inference with the trials as inducing points) can
draw a sharp boundary with a long lengthscale: its latent function crosses zero steeply.
Alternative ``sg-gpc``:

    python gpclassifier.py --problems quad3edge,quad3,branin --failures systematic,early \\
        --alts gpbo,sg-gpc --seeds 0-7 --q 1 --out /tmp/gpc_q1.jsonl

The output rows are ``failexp.py``'s (``adopted.py``/``analyze.py`` read them).
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Iterator
from typing import Any

import failexp
import torch

import gpbo.surrogate
from gpbo.strategies import Bayes

_original_fit = gpbo.surrogate.fit_success_gp
_original_log_p = gpbo.surrogate.log_probability_of_success

#: Adam steps and rate of the variational fit
STEPS, RATE = 150, 0.05


class GPClassifier:
    """A fitted variational GP classifier; ``log_p(X)`` the log probability of success."""

    def __init__(self, X: torch.Tensor, succeeded: torch.Tensor) -> None:
        from gpytorch.distributions import MultivariateNormal
        from gpytorch.kernels import MaternKernel, ScaleKernel
        from gpytorch.likelihoods import BernoulliLikelihood
        from gpytorch.means import ConstantMean
        from gpytorch.mlls import VariationalELBO
        from gpytorch.models import ApproximateGP
        from gpytorch.priors import LogNormalPrior
        from gpytorch.variational import CholeskyVariationalDistribution, VariationalStrategy

        d = X.shape[-1]

        class Model(ApproximateGP):
            def __init__(self) -> None:
                distribution = CholeskyVariationalDistribution(X.shape[0])
                strategy = VariationalStrategy(
                    self, X, distribution, learn_inducing_locations=False
                )
                super().__init__(strategy)
                self.mean_module = ConstantMean()
                # BoTorch's dimension-scaled lengthscale prior, as the label GP has
                prior = LogNormalPrior(math.sqrt(2) + math.log(d) / 2, math.sqrt(3))
                self.covar_module = ScaleKernel(
                    MaternKernel(nu=2.5, ard_num_dims=d, lengthscale_prior=prior)
                )

            def forward(self, x: torch.Tensor) -> Any:
                return MultivariateNormal(self.mean_module(x), self.covar_module(x))

        self.model = Model().to(X)
        self.likelihood = BernoulliLikelihood()
        elbo = VariationalELBO(self.likelihood, self.model, num_data=X.shape[0])
        self.model.train()
        optimizer = torch.optim.Adam(self.model.parameters(), lr=RATE)
        labels = succeeded.to(X.dtype)
        for _ in range(STEPS):
            optimizer.zero_grad()
            loss = -elbo(self.model(X), labels)
            loss.backward()
            optimizer.step()
        self.model.eval()

    def log_p(self, X: torch.Tensor) -> torch.Tensor:
        shape = X.shape[:-1]
        latent = self.model(X.reshape(-1, 1, X.shape[-1]))  # one point per batch: its variance
        mean, variance = latent.mean[..., 0], latent.variance[..., 0]
        return torch.special.log_ndtr(mean / (1 + variance).sqrt()).reshape(shape)


def _fit(X: torch.Tensor, succeeded: torch.Tensor, **_: Any) -> Any:
    return GPClassifier(X, succeeded)


def _log_p(success_gp: Any, X: torch.Tensor) -> torch.Tensor:
    if isinstance(success_gp, GPClassifier):
        return success_gp.log_p(X)
    return _original_log_p(success_gp, X)


@contextlib.contextmanager
def _classifier() -> Iterator[None]:
    gpbo.surrogate.fit_success_gp = _fit
    gpbo.surrogate.log_probability_of_success = _log_p
    try:
        yield
    finally:
        gpbo.surrogate.fit_success_gp = _original_fit
        gpbo.surrogate.log_probability_of_success = _original_log_p


class ClassifierVariant(Bayes):
    def propose(self, history: Any, n: int) -> list[dict[str, Any]]:
        with _classifier():
            return super().propose(history, n)


_make = failexp.make_strategy


def make_strategy(alt: str) -> Bayes:
    if alt == "sg-gpc":
        return ClassifierVariant()
    return _make(alt)


failexp.make_strategy = make_strategy

if __name__ == "__main__":
    sys.exit(failexp.main())
