"""The Gaussian-process surrogate: build and fit it on a device.

Works on tensors only: unit-cube inputs and scores to maximize. It never sees a trial.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from gpbo.exceptions import GpboError, warn_at_caller

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)


class SurrogateFitError(GpboError, RuntimeError):
    """The GP could not be fitted (the caller falls back to quasi-random points)."""


#: ``surrogate_device="auto"`` puts the GP on CUDA from this many training points on. Below it
#: the matrices are small, each L-BFGS-B step of the acquisition is a handful of tiny kernels
#: plus a device-to-host copy for SciPy, and the CPU does a round faster. Measured on an H100
#: machine (docs/benchmarks.md, "GPU"): a q=8 round took 1.6 s on one CPU thread and 2.7 s on
#: the GPU at n=1000, 3.3 s and 2.4 s at n=2000; at n=5000 the CPU took 7.5 s (16 threads), the
#: GPU 2.5 s. The q=1 rounds cross at the same place (0.54 vs 0.56 s at 1000, 0.74 vs 0.58 s at
#: 2000). Staying on the CPU below it also keeps the driver from opening a CUDA context on a GPU
#: that trials are using. Those CPU times predate the pending-point cache (``cached_gp``), which
#: made a q=8 CPU round at n=2000 1.6x faster on the 2-core machine (2.87 s to 1.79 s), so the
#: q=8 crossover has probably moved above 2000; q=1 is unchanged. Kept until remeasured on a GPU.
AUTO_CUDA_FROM = 2000


def resolve_device(surrogate_device: str, *, n_train: int | None = None) -> torch.device:
    """The device the GP runs on.

    Args:
        surrogate_device: ``"auto"``, ``"cpu"`` or a CUDA device name. ``"auto"`` is CUDA where
            it is available and the GP has at least :data:`AUTO_CUDA_FROM` training points,
            else the CPU.
        n_train: Training points of the GP (``None``: as many as it takes for CUDA).
    """
    import torch

    if surrogate_device == "auto":
        large = n_train is None or n_train >= AUTO_CUDA_FROM
        return torch.device("cuda" if large and torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(surrogate_device)
    except (RuntimeError, TypeError) as exc:
        raise GpboError(
            f"surrogate_device={surrogate_device!r} is not a device; use 'auto', 'cpu' or 'cuda:N'"
        ) from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GpboError(
            f"surrogate_device={surrogate_device!r} but CUDA is not available; use 'auto' or 'cpu'"
        )
    return device


#: From this many training points on the CPU, :func:`warn_if_the_gp_is_large` warns once.
LARGE_CPU_GP = 5000
#: Bytes per squared training point that an ask's GP holds at its peak on the CPU: the kernel
#: matrix, its Cholesky factor and their temporaries (measured: 0.69 GB at n=4000, d=6).
GP_BYTES_PER_POINT_SQUARED = 48
_warned_large = False


def warn_if_the_gp_is_large(n_train: int, device: torch.device) -> None:
    """Warn, once per process, that a CPU GP of ``n_train`` points is getting costly.

    Memory grows with the square of the points and time with the cube; nothing failed yet, so
    it is said once, with what it costs now and what would help.
    """
    global _warned_large
    if _warned_large or device.type != "cpu" or n_train < LARGE_CPU_GP:
        return
    _warned_large = True
    gigabytes = GP_BYTES_PER_POINT_SQUARED * n_train**2 / 1e9
    warn_at_caller(
        f"the GP now conditions on {n_train} trials on the CPU: each ask holds about "
        f"{gigabytes:.1f} GB of memory and takes seconds to minutes, 4x the memory and about "
        f"8x the time at {2 * n_train} trials. A GPU takes large GPs faster "
        "(surrogate_device='auto' uses one from "
        f"{AUTO_CUDA_FROM} trials where torch sees it); without one, a study this long may "
        "go on with strategy='random' or 'sobol' from its journal"
    )


#: Below this many training points the GP runs on one CPU thread (see :func:`gp_threads`).
SINGLE_THREAD_BELOW = 1000


@contextlib.contextmanager
def gp_threads(n_train: int) -> Iterator[None]:
    """Run the block's CPU tensor work on one thread while the GP is small.

    For a few hundred points the matrices are too small to gain from threads, and when the
    cores are busy (CPU trials in worker processes, other jobs) torch's spinning worker threads
    made a fit and an acquisition 3-20x slower than one thread (measured on a 2-core machine at
    load 10; equal speed when idle). The caller's setting is restored afterwards.

    Args:
        n_train: Training points of the GP about to be fitted.
    """
    import torch

    previous = torch.get_num_threads()
    if n_train >= SINGLE_THREAD_BELOW or previous == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def warp_scores(y: np.ndarray) -> np.ndarray:
    r"""Standardize scores and pull in their heavy tails with a fitted Yeo-Johnson transform.

    Objective values often span orders of magnitude (a diverged training run next to good
    ones); a GP fitted to them raw spends its flexibility on the outliers. The transform keeps
    the order of the scores (so the incumbent stays the incumbent) and is fitted by maximum
    likelihood, so roughly Gaussian scores are left nearly as they are.

    One extreme score can defeat it: standardized by a standard deviation the outlier sets, the
    good scores differ by less than the GP's noise floor, and no monotone warp of them brings
    the differences back. Where the better half of the warped scores spreads over less than
    :data:`SQUEEZED_SPREAD` of the whole, the bad tail is first clipped at ``q25 - 1.5 IQR``
    (the worst scores then tie; the better ones keep their order). The spread is measured over
    the distinct scores: a fixed penalty returned for many diverged runs (``return 1e6``)
    counts once, or it would be the whole lower half and more. Where many penalties make the
    quartiles the penalty itself (nothing to clip) or a plateau of equal scores makes them one
    value, the warp falls back to normal scores of the ranks, which keep every distinct score
    apart (the penalties tied, last). On the benchmark suite's traces the spread never fell
    below 1.6e-3, so their runs are unchanged.

    Args:
        y: An `n`-vector of scores, larger is better.

    Returns:
        An `n`-vector of warped scores in the same order (ties only among clipped bad ones).
    """
    y = np.asarray(y, dtype=np.float64)
    if y.size and float(np.max(np.abs(y))) > LOG_ABOVE:
        # a diverged loss of 1e200, say: np.std squares the scores and overflows from about
        # 1e154 (the raw scores then reached the GP), and standardized by such an outlier the
        # others tie to the last bit. A signed log keeps the order and the others' differences
        y = np.sign(y) * np.log1p(np.abs(y))
    warped = _standardized_yeo_johnson(y)
    if warped is y or not _better_half_squeezed(y, warped):
        return warped
    q25, q75 = np.percentile(y, [25, 75])
    if q75 > q25:
        clipped = _standardized_yeo_johnson(np.maximum(y, q25 - 1.5 * (q75 - q25)))
        if not _better_half_squeezed(y, clipped):
            return clipped
    from scipy import stats

    return stats.norm.ppf((stats.rankdata(y) - 0.5) / y.shape[0])


#: Where a score is larger than this in magnitude, all go through a signed log before the warp
#: (see :func:`warp_scores`); no benchmark score comes near it, so their runs are unchanged.
LOG_ABOVE = 1e100

#: See :func:`warp_scores`: the better half's standard deviation, relative to all scores', below
#: which the GP (noise floor 1e-6 in variance, 1e-3 in standard deviation) cannot tell the good
#: scores apart.
SQUEEZED_SPREAD = 1e-3


def _better_half_squeezed(y: np.ndarray, warped: np.ndarray) -> bool:
    """Whether the better half of the distinct scores ``y`` spreads over less than
    :data:`SQUEEZED_SPREAD` of all of them, once ``warped`` (a monotone map of ``y``)."""
    _, first = np.unique(y, return_index=True)
    distinct = warped[first]  # one warped value per distinct score, in the scores' order
    if distinct.shape[0] < 3:
        return False
    whole = float(np.std(distinct))
    better = distinct[distinct.shape[0] // 2 :]
    return whole > 0 and float(np.std(better)) < SQUEEZED_SPREAD * whole


def _standardized_yeo_johnson(y: np.ndarray) -> np.ndarray:
    """Standardized, then Yeo-Johnson; ``y`` itself where that is not possible."""
    std = float(np.std(y))
    if 0.0 <= std < 1e-150 and y.shape[0] >= 3:
        # scores of 1e-200 (a loss scaled so): np.std squares them and underflows to 0, and the
        # raw scores went to the GP, which took them for constants. Scaled to O(1) first
        # (only here, so every other study's numbers stay the same to the last bit).
        centered = y - np.mean(y)
        scale = float(np.max(np.abs(centered)))
        if scale > 0.0:
            y = centered / scale
            std = float(np.std(y))
    if y.shape[0] < 3 or std == 0.0 or not np.isfinite(std):
        return y
    z = (y - np.mean(y)) / std
    from scipy import stats

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the MLE of lambda may warn on tiny samples
        try:
            warped, _ = stats.yeojohnson(z)
        except (ValueError, FloatingPointError):
            return y
    if not np.all(np.isfinite(warped)):
        return y
    return np.asarray(warped, dtype=np.float64)


#: The noise variance's prior (log-normal, in standardized score units) and floor. BoTorch's
#: default, ``LogNormal(-4, 1)`` with a 1e-4 floor, expects noise near 1e-2: on our
#: noise-free benchmark problems that blurred the incumbent's neighbourhood. This prior's mode is
#: ~5e-6, but it is wide (sd 1.5 in log space), so the marginal likelihood still raises the noise
#: when repeated or nearby scores disagree (tested on a noisy objective in
#: ``tests/test_surrogate.py``). Measured in docs/benchmarks.md.
NOISE_PRIOR_LOC = -10.0
NOISE_PRIOR_SCALE = 1.5
NOISE_FLOOR = 1e-6

#: The output scale's prior, ``Gamma(concentration, rate)`` (Optuna GPSampler's: mode 1, mean
#: 2), or ``None`` for a unit output scale (BoTorch's default since 0.12, on standardized
#: scores). A fitted scale lets the GP say how far the scores vary beyond the standardized
#: spread; on the benchmark suite it ended better on 26 of 30 seeds of Hartmann6 and of Ackley
#: (q=1), and costs fit time (one more hyperparameter). docs/benchmarks.md, change log.
OUTPUT_SCALE_PRIOR: tuple[float, float] | None = (2.0, 1.0)

#: Above this many points the hyperparameters are fitted on a random subset of this size and
#: the GP then conditions on every point with them (one Cholesky factor instead of one per
#: optimizer step; see :func:`fit_gp`).
FIT_SUBSET = 256


def fit_gp(X: torch.Tensor, y: torch.Tensor, *, subset: int = FIT_SUBSET) -> Any:
    r"""Fit a ``SingleTaskGP`` with standardized outcomes by maximizing the marginal likelihood.

    The kernel is Matern-5/2 with BoTorch's dimension-scaled log-normal lengthscale prior and
    a fitted output scale (:data:`OUTPUT_SCALE_PRIOR`); the noise has a low-noise prior
    (:data:`NOISE_PRIOR_LOC`). With more than ``subset`` points
    the hyperparameters are fitted on ``subset`` of them drawn at random (seeded by ``n``, so
    the same data give the same model) and the returned GP holds all ``n``: each step of the
    hyperparameter optimization costs a Cholesky factorization and its backward pass, cubic in
    the points used, while a few hundred points already pin down a handful of hyperparameters.

    Args:
        X: An `n x d` float64 tensor of unit-cube inputs.
        y: An `n`-dim tensor of scores (larger is better).
        subset: The most points the hyperparameters are fitted on.

    Returns:
        The fitted ``botorch.models.SingleTaskGP`` in eval mode, on ``X``'s device.

    Raises:
        SurrogateFitError: The fit failed (non-finite data, a numerical error...).
    """
    import torch

    if X.ndim != 2 or y.ndim != 1 or X.shape[0] != y.shape[0]:
        raise SurrogateFitError(f"bad training data shapes: X {tuple(X.shape)}, y {tuple(y.shape)}")
    if not (torch.isfinite(X).all() and torch.isfinite(y).all()):
        raise SurrogateFitError("the training data hold non-finite values")
    return _fit(_build_gp, X, y, subset=subset)


def fit_success_gp(X: torch.Tensor, succeeded: torch.Tensor, *, subset: int = FIT_SUBSET) -> Any:
    r"""Fit a GP to where trials succeeded: label 1 for a complete trial, 0 for a failed one.

    A GP regression on the labels, the usual stand-in for a classifier in constrained Bayesian
    optimization (BoTorch's default noise prior, which expects labels to disagree nearby,
    and a Matern-5/2 kernel with the dimension-scaled lengthscale prior, no output scale): a
    GP classifier would need approximate inference, several times the fit time, for a
    probability that only weights the acquisition. :func:`log_probability_of_success` reads it.

    Args:
        X: An `n x d` float64 tensor of unit-cube inputs, complete and failed trials.
        succeeded: An `n`-dim boolean tensor, ``True`` where the trial completed.
        subset: The most points the hyperparameters are fitted on (as in :func:`fit_gp`).

    Returns:
        The fitted ``botorch.models.SingleTaskGP`` in eval mode.

    Raises:
        SurrogateFitError: The fit failed.
    """
    if X.ndim != 2 or succeeded.shape != X.shape[:1]:
        raise SurrogateFitError(
            f"bad training data shapes: X {tuple(X.shape)}, labels {tuple(succeeded.shape)}"
        )
    return _fit(_build_success_gp, X, succeeded.to(X.dtype), subset=subset)


def log_probability_of_success(success_gp: Any, X: torch.Tensor) -> torch.Tensor:
    r"""The log of the probability that trials at ``X`` succeed: `log P(f(x) > 1/2)`.

    ``f`` is the latent function of :func:`fit_success_gp`'s GP (labels 1 for success, 0 for
    failure), its posterior taken point by point (the joint batch's correlations are left out,
    as they are in the usual constrained expected improvement's product of probabilities).

    Args:
        success_gp: The GP (or its :func:`gpbo.cached_gp.cache_posterior`).
        X: A `... x q x d` tensor of points.

    Returns:
        A `... x q` tensor of log probabilities, differentiable in ``X``.
    """
    import torch

    from gpbo.cached_gp import CachedGP

    if isinstance(success_gp, CachedGP):
        mean, covariance = success_gp.joint(X)
        variance = covariance.diagonal(dim1=-2, dim2=-1)
    else:
        posterior = success_gp.posterior(X)
        mean, variance = posterior.mean[..., 0], posterior.variance[..., 0]
    return torch.special.log_ndtr((mean - 0.5) / variance.clamp_min(1e-12).sqrt())


def _fit(build: Any, X: torch.Tensor, y: torch.Tensor, *, subset: int) -> Any:
    """A model of ``build(X, y)``, its hyperparameters fitted on at most ``subset`` points."""
    import torch

    n = X.shape[0]
    try:
        with numerical_warnings_to_debug_log("GP fit"):
            if n <= subset:
                model = build(X, y)
                _maximize_likelihood(model)
            else:
                rows = np.random.default_rng(n).choice(n, size=subset, replace=False)
                index = torch.as_tensor(np.sort(rows), device=X.device)
                fitted = build(X[index], y[index])
                _maximize_likelihood(fitted)
                model = build(X, y)
                model.covar_module.load_state_dict(fitted.covar_module.state_dict())
                model.likelihood.load_state_dict(fitted.likelihood.state_dict())
                model.mean_module.load_state_dict(fitted.mean_module.state_dict())
    except _numerical_errors() as exc:
        # a fit that fails on the data (NotPSDError, a singular matrix, ModelFittingError...);
        # a TypeError or AttributeError is a bug, and would only hide behind the fallback
        raise SurrogateFitError(f"{type(exc).__name__}: {exc}") from exc
    model.eval()
    return model


def _build_success_gp(X: torch.Tensor, labels: torch.Tensor) -> Any:
    from botorch.models import SingleTaskGP
    from botorch.models.transforms.outcome import Standardize
    from botorch.models.utils.gpytorch_modules import (
        get_covar_module_with_dim_scaled_prior,
        get_gaussian_likelihood_with_lognormal_prior,
    )

    return SingleTaskGP(
        X,
        labels.unsqueeze(-1),
        likelihood=get_gaussian_likelihood_with_lognormal_prior(),
        covar_module=get_covar_module_with_dim_scaled_prior(
            ard_num_dims=X.shape[-1], use_rbf_kernel=False
        ),
        outcome_transform=Standardize(m=1),
    ).to(X)


def _build_gp(X: torch.Tensor, y: torch.Tensor) -> Any:
    from botorch.models import SingleTaskGP
    from botorch.models.transforms.outcome import Standardize
    from botorch.models.utils.gpytorch_modules import get_covar_module_with_dim_scaled_prior
    from gpytorch.constraints import GreaterThan
    from gpytorch.kernels import ScaleKernel
    from gpytorch.likelihoods import GaussianLikelihood
    from gpytorch.priors import GammaPrior, LogNormalPrior

    likelihood = GaussianLikelihood(
        noise_prior=LogNormalPrior(NOISE_PRIOR_LOC, NOISE_PRIOR_SCALE),
        noise_constraint=GreaterThan(NOISE_FLOOR),
    )
    # Matern-5/2 rather than BoTorch's default RBF: rougher sample paths keep more uncertainty
    # between points, and on the benchmark suite that escaped Hartmann6's local optimum
    # (docs/benchmarks.md). Same dimension-scaled log-normal lengthscale prior.
    kernel = get_covar_module_with_dim_scaled_prior(ard_num_dims=X.shape[-1], use_rbf_kernel=False)
    if OUTPUT_SCALE_PRIOR is not None:
        kernel = ScaleKernel(kernel, outputscale_prior=GammaPrior(*OUTPUT_SCALE_PRIOR))
    return SingleTaskGP(
        X,
        y.unsqueeze(-1),
        likelihood=likelihood,
        covar_module=kernel,
        outcome_transform=Standardize(m=1),
    ).to(X)


def _maximize_likelihood(model: Any) -> None:
    from botorch.fit import fit_gpytorch_mll
    from gpytorch.mlls import ExactMarginalLogLikelihood

    from gpbo.gp_likelihood import marginal_likelihood_closure

    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    # BoTorch runs the optimizer (and its retries); the closure computes the same loss and
    # gradient with a hand-written backward pass, in a third of the time from n = 200
    fit_gpytorch_mll(mll, closure=marginal_likelihood_closure(mll))


def _numerical_errors() -> tuple[type[BaseException], ...]:
    """What a GP fit raises when the data or the optimizer defeat it."""
    from botorch.exceptions.errors import BotorchError

    # RuntimeError covers torch's LinAlgError and linear_operator's NotPSDError and NanError
    return (RuntimeError, ValueError, ArithmeticError, BotorchError)


# Where warnings re-emitted by numerical_warnings_to_debug_log() are remembered, so that the
# default "once per place" filter holds for them as for any other warning
_REEMITTED: dict[Any, Any] = {}


@contextlib.contextmanager
def numerical_warnings_to_debug_log(what: str) -> Iterator[None]:
    """Send the numerical and optimizer warnings of a GP fit or an acquisition optimization
    to the debug log; let every other warning through.

    botorch, gpytorch and linear_operator warn of the optimizer's own retries and jitter,
    which they handle and users act on nothing in; a warning of another kind (a deprecation,
    a user's own) is re-emitted as it was raised, under the caller's filters.

    Args:
        what: What the block does, for the log lines (``"GP fit"``).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    quiet = _numerical_warnings()
    for w in caught:
        if issubclass(w.category, quiet) or _is_botorch_retry(w):
            logger.debug("%s: %s: %s", what, w.category.__name__, w.message)
        else:
            warnings.warn_explicit(
                w.message, w.category, w.filename, w.lineno, registry=_REEMITTED,
                source=w.source,
            )


def _is_botorch_retry(caught: warnings.WarningMessage) -> bool:
    """BoTorch's note that L-BFGS-B failed and ``optimize_acqf`` tries again from new starts:
    a plain ``RuntimeWarning``, which the retry it announces handles."""
    return issubclass(caught.category, RuntimeWarning) and str(caught.message).startswith(
        "Optimization failed in `gen_candidates_scipy`"
    )


def _numerical_warnings() -> tuple[type[Warning], ...]:
    from botorch.exceptions.warnings import BotorchWarning
    from gpytorch.utils.warnings import GPInputWarning
    from gpytorch.utils.warnings import NumericalWarning as GPyTorchNumericalWarning
    from linear_operator.utils.warnings import NumericalWarning

    return (BotorchWarning, GPInputWarning, GPyTorchNumericalWarning, NumericalWarning)
