"""Variants of the success GP (``Bayes(failed="feasibility")``, the default) against the
failures it spends: run ``failexp.py``'s problems with alternatives ``sg-<variant>``.

Twenty-first session. The success GP fits labels (1 complete, 0 failed) by GP regression; at a
sharp failing boundary its fitted lengthscale shrinks to a few hundredths of the unit cube, so
between failed points inside the failing region it reverts to the mean success rate and the
acquisition probes there (a Choice x Real study: 9-10 of 20 trials failed). Variants bound
the lengthscale from below or the noise from below so the fit cannot shrink to the step:

    python successgp.py --problems quad3edge,quad3,branin,hart6 --failures systematic \\
        --alts gpbo,sg-ls01,sg-ls02,sg-noise --seeds 0-7 --q 1 --out /tmp/sg_q1.jsonl

The output rows are ``failexp.py``'s (``adopted.py``/``analyze.py`` read them).

Twenty-seventh session: ``tp-<power>`` counts the log probability of success ``power`` times,
``hy-local``/``hy-local2``/``hy-local3`` impute only failed points in a failing region (their
nearest other trials failed), ``lt-pow3`` both; ``hy-local3`` was adopted as the default
(README, last section; ``versus_default.py`` writes the table).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

import failexp

import gpbo.surrogate
from gpbo.strategies import Bayes

_original_build = gpbo.surrogate._build_success_gp

#: variant: (lengthscale lower bound, noise lower bound), in the unit cube and in the
#: standardized labels' variance
VARIANTS = {"ls01": (0.1, None), "ls02": (0.2, None), "noise": (None, 0.05)}


def _builder(lengthscale: float | None, noise: float | None) -> Any:
    from gpytorch.constraints import GreaterThan

    def build(X: Any, labels: Any) -> Any:
        model = _original_build(X, labels)
        if lengthscale is not None:
            model.covar_module.register_constraint(
                "raw_lengthscale", GreaterThan(lengthscale, initial_value=max(lengthscale, 0.5))
            )
            model.covar_module.lengthscale = max(lengthscale * 1.5, 0.5)
        if noise is not None:
            noise_covar = model.likelihood.noise_covar
            noise_covar.register_constraint("raw_noise", GreaterThan(noise))
            noise_covar.noise = noise * 2
        return model.to(X)

    return build


@contextlib.contextmanager
def _success_gp(variant: str) -> Iterator[None]:
    gpbo.surrogate._build_success_gp = _builder(*VARIANTS[variant])
    try:
        yield
    finally:
        gpbo.surrogate._build_success_gp = _original_build


def _local_mask(history: Any, k_nn: int, share: float) -> Any:
    """Failed rows at least ``share`` of whose ``k_nn`` nearest other trials failed."""
    import numpy as np

    failed = history.X_failed
    every = np.vstack([history.X, failed])
    is_failed = np.arange(every.shape[0]) >= history.X.shape[0]
    out = np.zeros(failed.shape[0], dtype=bool)
    for i in range(failed.shape[0]):
        dist = np.linalg.norm(every - failed[i], axis=1)
        dist[history.X.shape[0] + i] = np.inf
        nearest = np.argsort(dist)[: min(k_nn, every.shape[0] - 1)]
        out[i] = is_failed[nearest].mean() >= share - 1e-9
    return out


#: hybrid: failed points also enter the objective's GP, at this quantile of the complete
#: trials' scores (0: the worst, as ``failed="worst"``), beside the success GP's weight
HYBRIDS = {"worst": 0.0, "q25": 0.25, "median": 0.5}
#: ... and at the worst score only where most of a failed point's 4 nearest trials failed
#: too (a failing region rather than a lone crash; twenty-seventh session)
LOCAL_HYBRIDS = {"local": (4, 0.5), "local3": (3, 1.0), "local2": (2, 1.0)}


@contextlib.contextmanager
def _imputed(
    quantile: float, local: bool = False, k_nn: int = 4, share: float = 0.5
) -> Iterator[None]:
    import numpy as np
    import torch

    import gpbo.strategies
    from gpbo.surrogate import fit_gp, warp_scores

    original = gpbo.strategies._fit_or_warn

    def fit(history: Any, **_: Any) -> Any:
        failed = history.X_failed
        if local:  # only failed points most of whose nearest neighbours failed too
            failed = failed[_local_mask(history, k_nn, share)]
        X = np.vstack([history.X, failed])
        value = float(np.quantile(history.scores, quantile))
        y = warp_scores(np.concatenate([history.scores,
                                        np.full(failed.shape[0], value)]))
        model = fit_gp(torch.as_tensor(X), torch.as_tensor(y))
        return model, float(np.max(y[: history.X.shape[0]]))

    gpbo.strategies._fit_or_warn = fit
    try:
        yield
    finally:
        gpbo.strategies._fit_or_warn = original


class HybridVariant(Bayes):
    def __init__(self, variant: str) -> None:
        super().__init__()
        self.variant = variant

    def propose(self, history: Any, n: int) -> list[dict[str, Any]]:
        if self.variant in LOCAL_HYBRIDS:
            k_nn, share = LOCAL_HYBRIDS[self.variant]
            context = _imputed(0.0, local=True, k_nn=k_nn, share=share)
        else:
            context = _imputed(HYBRIDS[self.variant])
        with context:
            return super().propose(history, n)


class SuccessVariant(Bayes):
    def __init__(self, variant: str) -> None:
        super().__init__()
        self.variant = variant

    def propose(self, history: Any, n: int) -> list[dict[str, Any]]:
        with _success_gp(self.variant):
            return super().propose(history, n)


#: tempered: the log probability of success counts this many times in the acquisition and
#: the exploitation point (P(success) ** k), so a point half likely to fail needs 2 ** k times
#: the improvement (twenty-seventh session)
TEMPERED = {"pow2": 2.0, "pow3": 3.0, "pow5": 5.0}


@contextlib.contextmanager
def _tempered(power: float) -> Iterator[None]:
    import gpbo.cached_gp
    from gpbo.surrogate import log_probability_of_success

    original = gpbo.cached_gp.SuccessWeighted.forward

    def forward(self: Any, X: Any) -> Any:
        return self.acqf(X) + power * log_probability_of_success(self.success_gp, X).sum(-1)

    gpbo.cached_gp.SuccessWeighted.forward = forward
    try:
        yield
    finally:
        gpbo.cached_gp.SuccessWeighted.forward = original


class PatchedVariant(Bayes):
    """The default ``Bayes``, proposing inside the context managers ``patches()`` returns:
    ``tp-pow3`` tempered, ``lt-pow3`` tempered with ``hy-local``'s imputation."""

    def __init__(self, patches: Callable[[], list[Any]]) -> None:
        super().__init__()
        self.patches = patches

    def propose(self, history: Any, n: int) -> list[dict[str, Any]]:
        with contextlib.ExitStack() as stack:
            for patch in self.patches():
                stack.enter_context(patch)
            return super().propose(history, n)


_make = failexp.make_strategy


def make_strategy(alt: str) -> Bayes:
    if alt.startswith("sg-"):
        return SuccessVariant(alt[len("sg-"):])
    if alt.startswith(("lt-", "tp-")):
        power = TEMPERED[alt[len("tp-"):]]
        if alt.startswith("lt-"):
            return PatchedVariant(lambda: [_imputed(0.0, local=True), _tempered(power)])
        return PatchedVariant(lambda: [_tempered(power)])
    if alt.startswith("hy-"):
        return HybridVariant(alt[len("hy-"):])
    return _make(alt)


failexp.make_strategy = make_strategy

if __name__ == "__main__":
    sys.exit(failexp.main())
