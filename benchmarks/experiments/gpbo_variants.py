"""Scratch variants of gpbo's ``bayes`` strategy, measured with the quality benchmark.

Nothing here changes gpbo: each variant is a configured or subclassed
:class:`gpbo.strategies.Bayes`, a different way of driving the study, or a temporary
monkeypatch of ``gpbo.surrogate`` (the strategy imports ``fit_gp`` and ``warp_scores`` from that
module at each ask, so patching the module attribute reaches it). Load it as a plugin:

    python scripts/benchmark_quality.py --plugin benchmarks/experiments/gpbo_variants.py \\
        --methods exp-nowarp-q1,exp-seq-q4 --seeds 3 --threads 1 \\
        --out benchmarks/results/experiments --resume

The baseline (``gpbo-bayes-q1`` / ``gpbo-bayes-q4``) is in the main quality results; seeded runs
are deterministic, so the same seeds compare like with like.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

Method = Callable[[Any, int, int], list[float]]


def _space(problem: Any) -> dict[str, Any]:
    import gpbo

    return {f"x{i}": gpbo.Real(lo, hi) for i, (lo, hi) in enumerate(problem.bounds)}


def drive(
    problem: Any, budget: int, seed: int, *, strategy: Any, q: int, sequential: bool = False
) -> list[float]:
    """Run a :class:`gpbo.Study` for ``budget`` evaluations in rounds of ``q``.

    Args:
        problem: A benchmark problem (``dim``, ``bounds``, callable on a point).
        budget: Evaluations.
        seed: The study seed.
        strategy: A strategy name or object.
        q: Points per round.
        sequential: Ask the round's points one at a time (each ask sees the earlier ones as
            pending, so qLogEI picks them greedily, refitting each time) instead of jointly.
    """
    import gpbo

    study = gpbo.Study(_space(problem), strategy=strategy, seed=seed)
    names = [f"x{i}" for i in range(problem.dim)]
    values: list[float] = []
    while len(values) < budget:
        k = min(q, budget - len(values))
        trials = [t for _ in range(k) for t in study.ask(1)] if sequential else study.ask(k)
        for trial in trials:
            value = problem([trial.params[n] for n in names])
            study.tell(trial, value)
            values.append(value)
    return values


@contextlib.contextmanager
def patched(module: Any, name: str, value: Any) -> Iterator[None]:
    """Set ``module.name`` to ``value`` for the block."""
    old = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, old)


def _identity(y: np.ndarray) -> np.ndarray:
    return np.asarray(y, dtype=np.float64)


def warp_bad_tail_only(y: np.ndarray) -> np.ndarray:
    """``gpbo.surrogate.warp_scores`` applied only where it compresses the bad (low) tail.

    A Yeo-Johnson lambda below 1 compresses the high side: the good scores, whose differences
    the acquisition needs (Hartmann6: a few good values far above the rest). Then the scores
    are only standardized.
    """
    from scipy import stats

    y = np.asarray(y, dtype=np.float64)
    std = float(np.std(y))
    if y.shape[0] < 3 or std == 0.0 or not np.isfinite(std):
        return y
    z = (y - np.mean(y)) / std
    try:
        warped, lmbda = stats.yeojohnson(z)
    except (ValueError, FloatingPointError):
        return y
    if lmbda < 1.0 or not np.all(np.isfinite(warped)):
        return z
    return np.asarray(warped, dtype=np.float64)


def fit_gp_input_warped(X: Any, y: Any) -> Any:
    """``gpbo.surrogate.fit_gp`` plus a Kumaraswamy input warp (botorch ``Warp``) per input."""
    import torch
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from botorch.models.transforms.input import Warp
    from botorch.models.transforms.outcome import Standardize
    from gpytorch.mlls import ExactMarginalLogLikelihood
    from gpytorch.priors import LogNormalPrior

    from gpbo.surrogate import SurrogateFitError

    d = X.shape[-1]
    bounds = torch.stack([torch.zeros(d), torch.ones(d)]).to(X)
    warp = Warp(d=d, indices=list(range(d)), bounds=bounds,
                concentration1_prior=LogNormalPrior(0.0, 0.75**0.5),
                concentration0_prior=LogNormalPrior(0.0, 0.75**0.5))
    try:
        model = SingleTaskGP(X, y.unsqueeze(-1), input_transform=warp,
                             outcome_transform=Standardize(m=1))
        fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
    except Exception as exc:
        raise SurrogateFitError(f"{type(exc).__name__}: {exc}") from exc
    model.eval()
    return model


def fit_gp_low_noise(X: Any, y: Any) -> Any:
    """``gpbo.surrogate.fit_gp`` with a noise prior and floor for near-deterministic objectives.

    The noise variance gets a ``LogNormal(-10, 1.5)`` prior (mode ~2e-6 instead of BoTorch's
    ``LogNormal(-4, 1)``, mode ~7e-3, in standardized units) and a floor of 1e-6 (not 1e-4).
    """
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from botorch.models.transforms.outcome import Standardize
    from gpytorch.constraints import GreaterThan
    from gpytorch.likelihoods import GaussianLikelihood
    from gpytorch.mlls import ExactMarginalLogLikelihood
    from gpytorch.priors import LogNormalPrior

    from gpbo.surrogate import SurrogateFitError

    likelihood = GaussianLikelihood(noise_prior=LogNormalPrior(-10.0, 1.5),
                                    noise_constraint=GreaterThan(1e-6))
    try:
        model = SingleTaskGP(X, y.unsqueeze(-1), likelihood=likelihood,
                             outcome_transform=Standardize(m=1))
        fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
    except Exception as exc:
        raise SurrogateFitError(f"{type(exc).__name__}: {exc}") from exc
    model.eval()
    return model


def build_gp_matern(X: Any, y: Any) -> Any:
    """``gpbo.surrogate._build_gp`` with a Matern-5/2 kernel (BoTorch's dimension-scaled
    lengthscale prior) instead of the default RBF; the same noise prior."""
    from botorch.models import SingleTaskGP
    from botorch.models.transforms.outcome import Standardize
    from botorch.models.utils.gpytorch_modules import get_covar_module_with_dim_scaled_prior
    from gpytorch.constraints import GreaterThan
    from gpytorch.likelihoods import GaussianLikelihood
    from gpytorch.priors import LogNormalPrior

    import gpbo.surrogate as surrogate

    likelihood = GaussianLikelihood(
        noise_prior=LogNormalPrior(surrogate.NOISE_PRIOR_LOC, surrogate.NOISE_PRIOR_SCALE),
        noise_constraint=GreaterThan(surrogate.NOISE_FLOOR),
    )
    covar = get_covar_module_with_dim_scaled_prior(ard_num_dims=X.shape[-1], use_rbf_kernel=False)
    return SingleTaskGP(X, y.unsqueeze(-1), likelihood=likelihood, covar_module=covar,
                        outcome_transform=Standardize(m=1)).to(X)


def build_gp_lengthscales(kind: str, noise: str = "gpbo") -> Callable[[Any, Any], Any]:
    """``gpbo.surrogate._build_gp`` with another lengthscale prior or bound on the Matern-5/2.

    ``kind``: ``"optuna"``, Optuna GPSampler's penalty ``-(0.1 / x + 0.1 x)`` on the inverse
    squared lengthscale ``x`` (about ``0.1 l^2`` for long lengthscales ``l``); ``"cap2"`` /
    ``"cap4"``, BoTorch's dimension-scaled prior with lengthscales bounded above by 2 / 4 (the
    cube is 1 wide); ``"default"``, gpbo's (no output scale); ``"scaled"``, that with a fitted
    output scale (gpbo's default since). ``noise``: ``"gpbo"`` (the low-noise prior) or
    ``"optuna"``, Optuna's ``Gamma(1.1, 30)`` on the noise variance (mode 3e-3, mean 4e-2, in
    standardized units; floor 1e-6).
    """

    def build(X: Any, y: Any) -> Any:
        import torch
        from botorch.models import SingleTaskGP
        from botorch.models.transforms.outcome import Standardize
        from botorch.models.utils.gpytorch_modules import (
            get_covar_module_with_dim_scaled_prior,
        )
        from gpytorch.constraints import GreaterThan, Interval
        from gpytorch.kernels import MaternKernel, ScaleKernel
        from gpytorch.likelihoods import GaussianLikelihood
        from gpytorch.priors import GammaPrior, LogNormalPrior, NormalPrior

        import gpbo.surrogate as surrogate

        class OptunaLengthscalePrior(NormalPrior):
            def log_prob(self, x: torch.Tensor) -> torch.Tensor:
                return -(0.1 * x**2 + 0.1 / x**2)

        noise_prior = (
            GammaPrior(1.1, 30.0) if noise == "optuna"
            else LogNormalPrior(surrogate.NOISE_PRIOR_LOC, surrogate.NOISE_PRIOR_SCALE)
        )
        likelihood = GaussianLikelihood(
            noise_prior=noise_prior, noise_constraint=GreaterThan(surrogate.NOISE_FLOOR)
        )
        d = X.shape[-1]
        if kind in ("default", "scaled"):
            covar = get_covar_module_with_dim_scaled_prior(ard_num_dims=d, use_rbf_kernel=False)
            if kind == "scaled":  # a fitted output scale, Optuna's Gamma(2, 1) prior on it
                covar = ScaleKernel(covar, outputscale_prior=GammaPrior(2.0, 1.0))
        elif kind == "optuna":
            covar = MaternKernel(
                nu=2.5, ard_num_dims=d, lengthscale_prior=OptunaLengthscalePrior(0.0, 1.0),
                lengthscale_constraint=GreaterThan(2.5e-2, transform=None, initial_value=1.0),
            )
        else:
            upper = {"cap2": 2.0, "cap4": 4.0}[kind]
            covar = get_covar_module_with_dim_scaled_prior(ard_num_dims=d, use_rbf_kernel=False)
            covar.register_constraint(
                "raw_lengthscale",
                Interval(2.5e-2, upper, transform=None, initial_value=min(upper / 2, 1.0)),
            )
        return SingleTaskGP(X, y.unsqueeze(-1), likelihood=likelihood, covar_module=covar,
                            outcome_transform=Standardize(m=1)).to(X)

    return build


def optimize_acqf_from_incumbents(original: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap ``botorch.optim.optimize_acqf`` so half the L-BFGS-B starts (q=1) are Gaussian
    perturbations (sd 0.01 to 0.1 of the cube) of the best observed points, the other half
    BoTorch's usual starts chosen from ``raw_samples``."""

    def wrapper(acq_function: Any, bounds: Any, q: int, num_restarts: int, raw_samples: int,
                **kwargs: Any) -> Any:
        import torch
        from botorch.optim.initializers import gen_batch_initial_conditions

        model = getattr(acq_function, "model", None)
        if q != 1 or model is None or "batch_initial_conditions" in kwargs:
            return original(acq_function, bounds, q, num_restarts, raw_samples, **kwargs)
        X = model.train_inputs[0]
        y = model.train_targets
        top = X[torch.argsort(y, descending=True)[:3]]
        n_local = num_restarts // 2
        scales = torch.logspace(-2, -1, n_local, dtype=X.dtype, device=X.device)
        centers = top[torch.arange(n_local) % top.shape[0]]
        local = (centers + scales.unsqueeze(-1) * torch.randn_like(centers)).clamp(0.0, 1.0)
        rest = gen_batch_initial_conditions(acq_function, bounds, q=1,
                                            num_restarts=num_restarts - n_local,
                                            raw_samples=raw_samples)
        starts = torch.cat([local.unsqueeze(1), rest])
        return original(acq_function, bounds, q, num_restarts, raw_samples,
                        batch_initial_conditions=starts, **kwargs)

    return wrapper


def batch_bayes(choose: Callable[..., np.ndarray], *, min_batch: int = 2) -> Any:
    """A :class:`gpbo.strategies.Bayes` whose batches of ``min_batch`` or more points come from
    ``choose(strategy, history, model, best_f, n)`` (a `k x d` array); the design, smaller
    batches and a failed fit go as in the library."""
    from gpbo.strategies import (
        Bayes,
        _decode_and_top_up,
        _fit_or_warn,
        _gp_work,
        default_n_init,
        sobol_points,
    )

    class BatchBayes(Bayes):
        def propose(self, history: Any, n: int) -> list[dict[str, Any]]:
            n_init = default_n_init(history.space, n)
            if n < min_batch or history.n_total < n_init or history.X.shape[0] < 2:
                return super().propose(history, n)
            with _gp_work(history):
                fitted = _fit_or_warn(history)
                if fitted is None:
                    return sobol_points(history, n)
                X = choose(self, history, *fitted, n)
            return _decode_and_top_up(history, X, n)

    return BatchBayes()


def exploitation_point(model: Any, history: Any, seen: np.ndarray, radius: float = 0.1
                       ) -> np.ndarray:
    """The library's exploitation point: the posterior mean's maximum near the best trial."""
    from gpbo.acquisition import AcquisitionOptions, optimize_posterior_mean

    return optimize_posterior_mean(
        model, space=history.space, center=history.X[int(np.argmax(history.scores))],
        radius=radius, q=1, seen=seen,
        options=AcquisitionOptions(num_restarts=8, raw_samples=256, maxiter=200),
        generator=history.rng(),
    )


def exploit_bayes(radius: float) -> Any:
    """``Bayes`` whose batches of two or more give one point to pure exploitation, first.

    That point maximizes the GP posterior mean in a box of half-width ``radius`` (unit cube)
    around the incumbent; the other ``q - 1`` maximize qLogEI with it pending. (The library's
    default puts the same point after the qLogEI points: ``Bayes(exploit_radius=...)``.)
    """
    from gpbo.acquisition import optimize_acquisition, qlogei

    def choose(strategy: Any, history: Any, model: Any, best_f: float, n: int) -> np.ndarray:
        x_mean = exploitation_point(model, history, history.seen, radius)
        pending = np.vstack([history.X_pending, x_mean])
        X = optimize_acquisition(
            qlogei(model, best_f=best_f, pending=pending), space=history.space,
            q=n - x_mean.shape[0], seen=np.vstack([history.seen, x_mean]),
            options=strategy._options, generator=history.rng(),
        )
        return np.vstack([x_mean, X])

    return batch_bayes(choose)


def _exploit_variant(q: int, radius: float) -> Method:
    def method(problem: Any, budget: int, seed: int) -> list[float]:
        return drive(problem, budget, seed, strategy=exploit_bayes(radius), q=q)

    return method


def qlogei_with_tau_max(tau_max: float) -> Callable[..., Any]:
    """``gpbo.acquisition.qlogei`` with the fat-max temperature ``tau_max`` (BoTorch: 1e-2).

    qLogEI smooths the max over the batch (pending points included) with temperature
    ``tau_max``. The hypothesis tested: that smoothing inflates the value of a point whose
    samples tie with a pending point's and misleads the greedy steps after the first. It does
    not matter much: the max is taken over log-improvements, so the inflation is at most
    ``tau_max * log q`` in log space (0.7% at q=2), and the measurements agree (no effect).
    """

    def qlogei(model: Any, *, best_f: float, pending: np.ndarray) -> Any:
        import torch
        from botorch.sampling import SobolQMCNormalSampler

        from gpbo.acquisition import MC_SAMPLES, _model_device
        from gpbo.cached_gp import CachedQLogEI, cache_posterior

        tkwargs: dict[str, Any] = {"dtype": torch.float64, "device": _model_device(model)}
        X_pending = torch.as_tensor(pending, **tkwargs) if pending.shape[0] else None
        return CachedQLogEI(
            cache_posterior(model), best_f=best_f,
            sampler=SobolQMCNormalSampler(sample_shape=torch.Size([MC_SAMPLES])),
            X_pending=X_pending, tau_max=tau_max,
        )

    return qlogei


def split_init_bayes() -> Any:
    """``Bayes`` whose batch that straddles the end of the initial design is split: the Sobol
    points still due, then GP points for the rest of the batch with those pending (the library
    gives the whole batch to Sobol, so q=4 on Branin spends 8 points, not 6, on the design)."""
    from dataclasses import replace

    from gpbo.strategies import Bayes, default_n_init, sobol_points

    class SplitInitBayes(Bayes):
        def propose(self, history: Any, n: int) -> list[dict[str, Any]]:
            n_init = self.n_init if self.n_init is not None else default_n_init(history.space)
            due = n_init - history.n_total
            if not 0 < due < n or history.X.shape[0] < 2:
                return super().propose(history, n)
            design = sobol_points(history, due)
            rest = replace(
                history,
                X_pending=np.vstack([history.X_pending, history.space.encode(design)]),
                params_seen=(*history.params_seen, *design),
                n_total=history.n_total + due,
            )
            return design + super().propose(rest, n - due)

    return SplitInitBayes


def exploit_at_best_mean(original: Callable[..., Any]) -> Callable[..., Any]:
    """``gpbo.acquisition.optimize_posterior_mean`` (the batch's exploitation point) centred on
    the training point with the largest posterior mean instead of the best observed score.
    Hypothesis: on a noisy objective the best observed score is often a lucky draw, so the box
    around it misses the region the model believes best; without noise the two agree."""

    def wrapped(model: Any, *, center: np.ndarray, **kwargs: Any) -> np.ndarray:
        import torch

        X = model.train_inputs[0]
        with torch.no_grad():
            mean = model.posterior(X).mean.reshape(-1)
        best = X[int(torch.argmax(mean))].detach().cpu().numpy()
        return original(model, center=best, **kwargs)

    return wrapped


def plugin_incumbent(original: Callable[..., Any]) -> Callable[..., Any]:
    """``gpbo.strategies._fit_or_warn`` with ``best_f`` the largest posterior mean at the
    complete trials instead of their largest (noisy) score: the plug-in incumbent of noisy EI.
    Without noise the two agree to the noise floor."""

    def fit_or_warn(history: Any) -> Any:
        import torch

        fitted = original(history)
        if fitted is None:
            return None
        model, _ = fitted
        X = torch.as_tensor(history.X, dtype=torch.float64, device=model.train_inputs[0].device)
        with torch.no_grad():
            mean = model.posterior(X).mean.reshape(-1)
        return model, float(mean.max())

    return fit_or_warn


def warm_started(original: Callable[[Any], None]) -> Callable[[Any], None]:
    """``gpbo.surrogate._maximize_likelihood`` starting from the hyperparameters the previous
    call ended at (this run's previous round) instead of the priors' defaults each round."""
    last: dict[str, Any] = {}

    def maximize(model: Any) -> None:
        parts = {"covar": model.covar_module, "lik": model.likelihood, "mean": model.mean_module}
        if last:
            for key, module in parts.items():
                module.load_state_dict(last[key])
        original(model)
        last.update({key: module.state_dict() for key, module in parts.items()})

    return maximize


def qlognei(model: Any, *, best_f: float, pending: np.ndarray) -> Any:
    """BoTorch's ``qLogNoisyExpectedImprovement`` over the GP's training points (128 QMC
    samples, pruned baseline) in place of gpbo's qLogEI; ``best_f`` is unused."""
    import torch
    from botorch.acquisition.logei import qLogNoisyExpectedImprovement
    from botorch.sampling import SobolQMCNormalSampler

    X_pending = torch.as_tensor(pending, dtype=torch.float64) if pending.shape[0] else None
    return qLogNoisyExpectedImprovement(
        model, X_baseline=model.train_inputs[0], X_pending=X_pending, prune_baseline=True,
        sampler=SobolQMCNormalSampler(sample_shape=torch.Size([128])), cache_root=False,
    )


def _variant(q: int, *, options: dict[str, Any] | None = None, n_init: Callable[[int], int]
             | None = None, warp: bool = True, input_warp: bool = False,
             sequential: bool = False, low_noise: bool = False,
             incumbent_starts: bool = False, lbfgs: dict[str, float] | None = None,
             botorch_noise: bool = False, matern: bool = False,
             constants: dict[str, Any] | None = None, split_init: bool = False,
             plugin: bool = False, exploit_mean: bool = False, warm: bool = False) -> Method:
    """A :class:`gpbo.strategies.Bayes` variant; ``constants`` maps ``"module.NAME"`` to a
    temporary value of a gpbo module constant (e.g. ``"gpbo.acquisition.MC_SAMPLES"``)."""

    def method(problem: Any, budget: int, seed: int) -> list[float]:
        import dataclasses
        import importlib

        import gpbo.surrogate
        from gpbo.strategies import Bayes

        cls = split_init_bayes() if split_init else Bayes
        strategy = cls(n_init=n_init(problem.dim) if n_init else None, **(options or {}))
        if lbfgs:
            strategy._options = dataclasses.replace(strategy._options, **lbfgs)
        with contextlib.ExitStack() as stack:
            if not warp:
                stack.enter_context(patched(gpbo.surrogate, "warp_scores", _identity))
            if input_warp:
                stack.enter_context(patched(gpbo.surrogate, "fit_gp", fit_gp_input_warped))
            if low_noise:
                stack.enter_context(patched(gpbo.surrogate, "fit_gp", fit_gp_low_noise))
            if matern:
                stack.enter_context(patched(gpbo.surrogate, "_build_gp", build_gp_matern))
            if botorch_noise:
                stack.enter_context(patched(gpbo.surrogate, "NOISE_PRIOR_LOC", -4.0))
                stack.enter_context(patched(gpbo.surrogate, "NOISE_PRIOR_SCALE", 1.0))
                stack.enter_context(patched(gpbo.surrogate, "NOISE_FLOOR", 1e-4))
            for dotted, value in (constants or {}).items():
                module_name, name = dotted.rsplit(".", 1)
                stack.enter_context(patched(importlib.import_module(module_name), name, value))
            if warm:
                maximize = warm_started(gpbo.surrogate._maximize_likelihood)
                stack.enter_context(patched(gpbo.surrogate, "_maximize_likelihood", maximize))
            if plugin:
                import gpbo.strategies

                fit = plugin_incumbent(gpbo.strategies._fit_or_warn)
                stack.enter_context(patched(gpbo.strategies, "_fit_or_warn", fit))
            if exploit_mean:
                import gpbo.strategies

                centred = exploit_at_best_mean(gpbo.strategies.optimize_posterior_mean)
                stack.enter_context(patched(gpbo.strategies, "optimize_posterior_mean", centred))
            if incumbent_starts:
                import botorch.optim

                wrapped = optimize_acqf_from_incumbents(botorch.optim.optimize_acqf)
                stack.enter_context(patched(botorch.optim, "optimize_acqf", wrapped))
            return drive(problem, budget, seed, strategy=strategy, q=q, sequential=sequential)

    return method


METHODS: dict[str, Method] = {
    # the score warp (Yeo-Johnson) off
    "exp-nowarp-q1": _variant(1, warp=False),
    "exp-nowarp-q4": _variant(4, warp=False),
    # a smaller initial design: min(2d + 1, 10), as in the BoTorch loop
    "exp-ninit-q1": _variant(1, n_init=lambda d: min(2 * d + 1, 10)),
    # twice the acquisition budget
    "exp-acq2x-q1": _variant(1, options={"num_restarts": 20, "raw_samples": 1024}),
    "exp-acq2x-q4": _variant(4, options={"num_restarts": 20, "raw_samples": 1024}),
    # the score warp only where it compresses the bad tail
    "exp-warpbad-q1": _variant(1, constants={"gpbo.surrogate.warp_scores": warp_bad_tail_only}),
    "exp-warpbad-q4": _variant(4, constants={"gpbo.surrogate.warp_scores": warp_bad_tail_only}),
    # a larger initial design: 3 (d + 1)
    "exp-ninit3-q1": _variant(1, n_init=lambda d: 3 * (d + 1)),
    # batches chosen greedily, one ask(1) per point with the earlier ones pending
    "exp-seq-q4": _variant(4, sequential=True),
    # a Kumaraswamy input warp in the GP
    "exp-inwarp-q1": _variant(1, input_warp=True),
    # a noise prior for near-deterministic objectives (the default since; kept to reproduce)
    "exp-lownoise-q1": _variant(1, low_noise=True),
    # BoTorch's noise prior, LogNormal(-4, 1) with a 1e-4 floor (gpbo's default before)
    "exp-botorchnoise-q1": _variant(1, botorch_noise=True),
    "exp-botorchnoise-q4": _variant(4, botorch_noise=True),
    # a Matern-5/2 kernel (as Optuna's GPSampler and scikit-optimize use) instead of RBF
    "exp-matern-q1": _variant(1, matern=True),
    # a smaller initial design with the low-noise prior
    "exp-ninit10-q1": _variant(1, n_init=lambda d: min(2 * d + 1, 10)),
    # q=4 with a smaller initial design (more GP rounds): d + 1 and 1.5 (d + 1) points, each
    # rounded up to whole batches
    "exp-ninitd1-q4": _variant(4, n_init=lambda d: d + 1),
    "exp-ninit15-q4": _variant(4, n_init=lambda d: 3 * (d + 1) // 2),
    # SciPy's L-BFGS-B tolerances for the acquisition (gpbo's default before)
    "exp-scipytol-q1": _variant(1, lbfgs={"factr": 1e7, "pgtol": 1e-5}),
    "exp-scipytol-q4": _variant(4, lbfgs={"factr": 1e7, "pgtol": 1e-5}),
    # half the acquisition starts around the incumbents (as Optuna's GPSampler does)
    "exp-incstart-q1": _variant(1, incumbent_starts=True),
    # one point of each batch maximizes the posterior mean near the incumbent (local / global)
    "exp-exploit-q4": _exploit_variant(4, radius=0.1),
    "exp-exploitg-q4": _exploit_variant(4, radius=1.0),
    # the same point added after q - 1 qLogEI points instead of before them: the library's
    # default since commit 19a2328 (a plugin before it; the same regrets on all 50 runs of
    # seeds 0-9). Variants run before that commit had no exploitation point; to repeat one,
    # add options={"exploit_radius": None}.
    "exp-exploitlast-q4": _variant(4, options={"exploit_radius": 0.1}),
    # the exploitation point's box half as wide / twice as wide as the default 0.1
    "exp-radius005-q4": _variant(4, options={"exploit_radius": 0.05}),
    "exp-radius02-q4": _variant(4, options={"exploit_radius": 0.2}),
    # the exploitation point the posterior mean's maximum over the whole cube
    "exp-radius1-q4": _variant(4, options={"exploit_radius": 1.0}),
    # the exploitation point's box centred on the largest posterior mean at the trials
    "exp-exploitmean-q4": _variant(4, exploit_mean=True),
    # the batch that straddles the initial design's end is split between Sobol and the GP
    "exp-split-q4": _variant(4, split_init=True),
    # 512 QMC samples in qLogEI (BoTorch's default) instead of 128
    "exp-mc512-q4": _variant(4, constants={"gpbo.acquisition.MC_SAMPLES": 512}),
    "exp-mc256-q4": _variant(4, constants={"gpbo.acquisition.MC_SAMPLES": 256}),
    "exp-mc1024-q4": _variant(4, constants={"gpbo.acquisition.MC_SAMPLES": 1024}),
    "exp-mc512-q1": _variant(1, constants={"gpbo.acquisition.MC_SAMPLES": 512}),
    # every greedy step of a batch starts from fresh points (none from the previous step)
    "exp-fresh-q4": _variant(4, constants={"gpbo.acquisition.FRESH_SHARE": 1.0}),
    # the fat-max temperature of qLogEI over the batch: 1e-4 / 1e-6 instead of BoTorch's 1e-2
    "exp-tau4-q4": _variant(4, constants={"gpbo.strategies.qlogei": qlogei_with_tau_max(1e-4)}),
    "exp-tau6-q4": _variant(4, constants={"gpbo.strategies.qlogei": qlogei_with_tau_max(1e-6)}),
    # a lower noise floor (1e-8 instead of 1e-6)
    "exp-floor8-q1": _variant(1, constants={"gpbo.surrogate.NOISE_FLOOR": 1e-8}),
    "exp-floor8-q4": _variant(4, constants={"gpbo.surrogate.NOISE_FLOOR": 1e-8}),
    # noisy EI: the plug-in incumbent (largest posterior mean at the trials) / BoTorch's qLogNEI
    "exp-plugin-q1": _variant(1, plugin=True),
    "exp-plugin-q4": _variant(4, plugin=True),
    # hyperparameters warm-started from the previous round's fit (fifteenth session)
    "exp-warm-q1": _variant(1, warm=True),
    "exp-warm-q4": _variant(4, warm=True),
    "exp-nei-q1": _variant(1, constants={"gpbo.strategies.qlogei": qlognei}),
    # long lengthscales switch a dimension off; Hartmann6's stuck runs had l = 20 on x2
    **{
        f"exp-ls{kind}-q{q}": _variant(
            q, constants={"gpbo.surrogate._build_gp": build_gp_lengthscales(kind)}
        )
        for kind in ("optuna", "cap2", "cap4", "scaled")
        for q in (1, 4)
    },
    # Optuna's noise prior (a noisier model), alone and with Optuna's lengthscale prior
    **{
        f"exp-noiseoptuna{'' if kind == 'default' else '-ls' + kind}-q{q}": _variant(
            q, constants={"gpbo.surrogate._build_gp": build_gp_lengthscales(kind, "optuna")}
        )
        for kind in ("default", "optuna")
        for q in (1, 4)
    },
}


def local_batch_bayes(radius: float, n_global: int = 1) -> Any:
    """``Bayes`` whose batches keep all but ``n_global`` qLogEI points near the incumbent.

    Points 1..``n_global`` maximize qLogEI over the whole cube as in the library; the rest of
    the qLogEI points maximize it (earlier points pending) only inside a box of half-width
    ``radius`` (unit cube) around the best trial; the batch then ends with the library's
    exploitation point. The hypothesis tested: a batch's later points spend the budget on
    exploration that a one-at-a-time run spends refining the optimum (the Ackley q=4 gap).
    """
    import torch

    from gpbo.acquisition import _sequential_greedy, optimize_acquisition, qlogei

    def choose(strategy: Any, history: Any, model: Any, best_f: float, n: int) -> np.ndarray:
        center = history.X[int(np.argmax(history.scores))]
        X = optimize_acquisition(
            qlogei(model, best_f=best_f, pending=history.X_pending), space=history.space,
            q=n_global, seen=history.seen, options=strategy._options, generator=history.rng(),
        )
        acqf = qlogei(model, best_f=best_f, pending=np.vstack([history.X_pending, X]))
        box = torch.as_tensor(
            np.stack([np.clip(center - radius, 0, 1), np.clip(center + radius, 0, 1)]),
            dtype=torch.float64,
        )
        local = _sequential_greedy(acqf, bounds=box, q=n - 1 - n_global,
                                   options=strategy._options)
        X = np.vstack([X, history.space.project(local.detach().numpy())])
        return np.vstack([X, exploitation_point(model, history, np.vstack([history.seen, X]))])

    return batch_bayes(choose, min_batch=2 + n_global)


def _local_variant(q: int, radius: float, n_global: int = 1) -> Method:
    def method(problem: Any, budget: int, seed: int) -> list[float]:
        return drive(problem, budget, seed, strategy=local_batch_bayes(radius, n_global), q=q)

    return method


METHODS.update({
    "exp-local01-q4": _local_variant(4, 0.1),
    "exp-local02-q4": _local_variant(4, 0.2),
    "exp-local02g2-q4": _local_variant(4, 0.2, n_global=2),
})


def kriging_believer_bayes(*, exploit: bool = True) -> Any:
    """``Bayes`` whose greedy batch steps condition on the earlier points' posterior means.

    The Kriging believer: after each point the GP is conditioned on (point, its posterior
    mean) and the next point maximizes LogEI (q=1) on that model over the new best, instead of
    qLogEI with the earlier points pending. With ``exploit`` the batch ends with the library's
    exploitation point, as the defaults do. The hypothesis tested: on Ackley's funnel q=1
    descends four steps in the time q=4's batch takes one, because qLogEI's later points
    explore; a believer continues the descent as if the earlier points had returned their
    predicted values.
    """
    import torch

    from gpbo.acquisition import optimize_acquisition, qlogei

    def choose(strategy: Any, history: Any, model: Any, best_f: float, n: int) -> np.ndarray:
        believer = model
        chosen: list[np.ndarray] = []
        for _ in range(n - 1 if exploit else n):
            taken = np.vstack([history.seen, *chosen]) if chosen else history.seen
            x = optimize_acquisition(
                qlogei(believer, best_f=best_f, pending=history.X_pending),
                space=history.space, q=1, seen=taken, options=strategy._options,
                generator=history.rng(),
            )
            chosen.append(x)
            xt = torch.as_tensor(x, dtype=torch.float64)
            with torch.no_grad():
                mean = believer.posterior(xt).mean.reshape(-1, 1)
            believer = believer.condition_on_observations(X=xt, Y=mean)
            believer.__dict__.pop("_gpbo_cached_posterior", None)
            best_f = max(best_f, float(mean.max()))
        X = np.vstack(chosen)
        if exploit:
            X = np.vstack([X, exploitation_point(model, history, np.vstack([history.seen, X]))])
        return X

    return batch_bayes(choose)


def _believer_variant(q: int, *, exploit: bool) -> Method:
    def method(problem: Any, budget: int, seed: int) -> list[float]:
        return drive(problem, budget, seed, strategy=kriging_believer_bayes(exploit=exploit), q=q)

    return method


METHODS.update({
    "exp-kb-q4": _believer_variant(4, exploit=True),
    "exp-kbnoexp-q4": _believer_variant(4, exploit=False),
})


def line_step_bayes(factor: float = 2.0) -> Any:
    """``Bayes`` whose batch replaces its last qLogEI point with a longer step.

    The batch is qLogEI's first ``q - 2`` points, then ``incumbent + factor * (x1 -
    incumbent)`` (``x1`` the first qLogEI point, clipped to the cube), then the exploitation
    point. The hypothesis tested: a batch in a descent takes the same small step four times
    (Hartmann6 seed 2 at q=4); a longer step along the first point's direction imitates where
    a one-at-a-time run would be after two steps.
    """
    from gpbo.acquisition import is_new, optimize_acquisition, qlogei

    def choose(strategy: Any, history: Any, model: Any, best_f: float, n: int) -> np.ndarray:
        center = history.X[int(np.argmax(history.scores))]
        X = optimize_acquisition(
            qlogei(model, best_f=best_f, pending=history.X_pending), space=history.space,
            q=n - 2, seen=history.seen, options=strategy._options, generator=history.rng(),
        )
        step = history.space.project(np.clip(center + factor * (X[0] - center), 0, 1)[None, :])
        if is_new(step[0], np.vstack([history.seen, X])):
            X = np.vstack([X, step])
        return np.vstack([X, exploitation_point(model, history, np.vstack([history.seen, X]))])

    return batch_bayes(choose, min_batch=3)


def _line_variant(q: int, factor: float) -> Method:
    def method(problem: Any, budget: int, seed: int) -> list[float]:
        return drive(problem, budget, seed, strategy=line_step_bayes(factor), q=q)

    return method


METHODS.update({"exp-line2-q4": _line_variant(4, 2.0)})


def thompson_points(model: Any, history: Any, k: int, seen: np.ndarray) -> np.ndarray:
    """``k`` Thompson-sampling points (`k x d`): each the maximum of one posterior sample path.

    The paths are BoTorch's pathwise (Matheron) samples of the fitted GP; each is maximized
    over 2048 Sobol points of the cube and 2048 Gaussian perturbations (sd 0.05) of the five
    best trials, then polished by L-BFGS-B from its best candidate.
    """
    import torch
    from botorch.generation.gen import gen_candidates_scipy
    from botorch.sampling.pathwise import draw_matheron_paths

    from gpbo.acquisition import is_new

    d = history.X.shape[1]
    rng = history.rng()
    paths = draw_matheron_paths(model, sample_shape=torch.Size([k]))
    sobol = torch.quasirandom.SobolEngine(d, scramble=True, seed=int(rng.integers(2**31)))
    top = history.X[np.argsort(history.scores)[-5:]]
    local = top[rng.integers(len(top), size=2048)] + 0.05 * rng.standard_normal((2048, d))
    candidates = torch.cat([
        sobol.draw(2048, dtype=torch.float64),
        torch.as_tensor(np.clip(local, 0.0, 1.0), dtype=torch.float64),
    ])
    with torch.no_grad():
        values = paths(candidates)  # `k x m`
    chosen: list[np.ndarray] = []
    bounds = torch.zeros(d, dtype=torch.float64), torch.ones(d, dtype=torch.float64)
    for i in range(k):
        start = candidates[int(values[i].argmax())].reshape(1, 1, d)

        def path_i(X: Any, i: int = i) -> Any:
            return paths(X.reshape(-1, d))[i]

        x, _ = gen_candidates_scipy(start, path_i, lower_bounds=bounds[0], upper_bounds=bounds[1],
                                    options={"maxiter": 100})
        point = history.space.project(x.detach().reshape(1, d).numpy())
        if is_new(point[0], np.vstack([seen, *chosen])):
            chosen.append(point)
    return np.vstack(chosen) if chosen else np.empty((0, d))


def thompson_bayes(*, n_qlogei: int, exploit: bool) -> Any:
    """``Bayes`` whose batch is ``n_qlogei`` qLogEI points, Thompson-sampling points for the
    rest, and (``exploit``) the exploitation point last.

    The hypothesis tested: a batch of qLogEI points clusters where the expected improvement
    is (Hartmann6 seed 2: four points within 0.15 of the incumbent); independent posterior
    samples spread a batch the way the model's uncertainty does, as TuRBO's batches are.
    """
    from gpbo.acquisition import optimize_acquisition, qlogei

    def choose(strategy: Any, history: Any, model: Any, best_f: float, n: int) -> np.ndarray:
        parts = [np.empty((0, history.X.shape[1]))]
        if n_qlogei:
            parts.append(optimize_acquisition(
                qlogei(model, best_f=best_f, pending=history.X_pending), space=history.space,
                q=n_qlogei, seen=history.seen, options=strategy._options,
                generator=history.rng(),
            ))
        n_ts = n - n_qlogei - int(exploit)
        if n_ts > 0:
            parts.append(thompson_points(model, history, n_ts, np.vstack([history.seen, *parts])))
        X = np.vstack(parts)
        if exploit:
            X = np.vstack([X, exploitation_point(model, history, np.vstack([history.seen, X]))])
        return X

    return batch_bayes(choose, min_batch=n_qlogei + 1 + int(exploit))


def _thompson_variant(q: int, *, n_qlogei: int, exploit: bool) -> Method:
    def method(problem: Any, budget: int, seed: int) -> list[float]:
        strategy = thompson_bayes(n_qlogei=n_qlogei, exploit=exploit)
        return drive(problem, budget, seed, strategy=strategy, q=q)

    return method


METHODS.update({
    "exp-ts-q4": _thompson_variant(4, n_qlogei=0, exploit=False),
    "exp-ts2-q4": _thompson_variant(4, n_qlogei=1, exploit=True),
})


def two_scale_exploit_bayes(radii: tuple[float, float] = (0.1, 0.02)) -> Any:
    """``Bayes`` whose batch ends with two exploitation points: the posterior mean's maximum
    in a box of half-width ``radii[0]`` around the incumbent, then in one of ``radii[1]``.

    The hypothesis tested: on Hartmann6 the q=4 runs that find the global optimum end 0.8
    decades less precise than q=1's (-3.81 against -4.58, 30 seeds), and q=1 places four
    times as many points where the mean says the optimum is; a second, tighter exploitation
    point per batch refines around the incumbent at a finer scale.
    """
    from gpbo.acquisition import optimize_acquisition, qlogei

    def choose(strategy: Any, history: Any, model: Any, best_f: float, n: int) -> np.ndarray:
        X = optimize_acquisition(
            qlogei(model, best_f=best_f, pending=history.X_pending), space=history.space,
            q=n - 2, seen=history.seen, options=strategy._options, generator=history.rng(),
        )
        for radius in radii:
            X = np.vstack([X, exploitation_point(model, history, np.vstack([history.seen, X]),
                                                 radius)])
        return X

    return batch_bayes(choose, min_batch=3)


def _two_scale_variant(q: int) -> Method:
    def method(problem: Any, budget: int, seed: int) -> list[float]:
        return drive(problem, budget, seed, strategy=two_scale_exploit_bayes(), q=q)

    return method


METHODS.update({"exp-exploit2-q4": _two_scale_variant(4)})
