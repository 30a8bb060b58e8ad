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
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
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


#: hybrid: failed points also enter the objective's GP, at this quantile of the complete
#: trials' scores (0: the worst, as ``failed="worst"``), beside the success GP's weight
HYBRIDS = {"worst": 0.0, "q25": 0.25, "median": 0.5}


@contextlib.contextmanager
def _imputed(quantile: float) -> Iterator[None]:
    import numpy as np
    import torch

    import gpbo.strategies
    from gpbo.surrogate import fit_gp, warp_scores

    original = gpbo.strategies._fit_or_warn

    def fit(history: Any, *, failed_as_worst: bool = True) -> Any:
        X = np.vstack([history.X, history.X_failed])
        value = float(np.quantile(history.scores, quantile))
        y = warp_scores(np.concatenate([history.scores,
                                        np.full(history.X_failed.shape[0], value)]))
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
        with _imputed(HYBRIDS[self.variant]):
            return super().propose(history, n)


class SuccessVariant(Bayes):
    def __init__(self, variant: str) -> None:
        super().__init__()
        self.variant = variant

    def propose(self, history: Any, n: int) -> list[dict[str, Any]]:
        with _success_gp(self.variant):
            return super().propose(history, n)


_make = failexp.make_strategy


def make_strategy(alt: str) -> Bayes:
    if alt.startswith("sg-"):
        return SuccessVariant(alt[len("sg-"):])
    if alt.startswith("hy-"):
        return HybridVariant(alt[len("hy-"):])
    return _make(alt)


failexp.make_strategy = make_strategy

if __name__ == "__main__":
    sys.exit(failexp.main())
