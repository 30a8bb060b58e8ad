"""gpbo's GP strategy driven by a ``bayes_opt`` acquisition function."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from gpbo.compat.bayes_opt.acquisition import AcquisitionFunction, UpperConfidenceBound
from gpbo.strategies import Bayes, History

__all__ = ["BayesOptStrategy"]


@dataclass
class BayesOptStrategy(Bayes):
    r"""gpbo's GP strategy with a ``bayes_opt`` acquisition function.

    As :class:`gpbo.strategies.Bayes` (scrambled-Sobol points first, then a ``SingleTaskGP`` on
    every finished trial and a jointly optimized q-batch, pending trials as ``X_pending``), with
    the acquisition given by ``acquisition`` instead of qLogEI. Usable with
    :func:`gpbo.optimize` too: ``strategy=BayesOptStrategy(acquisition=UpperConfidenceBound(1.0))``.

    Args:
        n_init: Quasi-random points before the GP; default :func:`gpbo.strategies.default_n_init`.
        num_restarts: L-BFGS-B starts for the acquisition.
        raw_samples: Random batches scored to choose the starts.
        maxiter: L-BFGS-B iterations per start.
        acquisition: The acquisition function; default ``UpperConfidenceBound(kappa=2.576)``.
        exploit_radius: As for ``Bayes``, but off by default: a batch here is what the chosen
            acquisition picks, as code written against ``bayes_opt`` expects.
        failed: As for ``Bayes``, but ``"worst"`` by default: ``"feasibility"`` adds a log
            probability to the acquisition's value, which suits qLogEI's log scale, not the
            score units of ``bayes_opt``'s UCB or its probability of improvement (with it,
            failed trials in a failing region also enter the GP at the worst score, and
            UCB's scale, taken from the complete trials' scores, is off as with ``"worst"``).
    """

    acquisition: AcquisitionFunction = field(default_factory=UpperConfidenceBound)
    exploit_radius: float | None = None
    failed: str = "worst"
    name: ClassVar[str] = "bayes_opt"

    def make_acquisition(self, model: Any, *, best_f: float, history: History, q: int) -> Any:
        import torch

        pending = history.X_pending
        tkwargs: dict[str, Any] = {"dtype": torch.float64, "device": model.train_inputs[0].device}
        return self.acquisition.botorch(
            model,
            best_f=best_f,
            y_scale=_score_scale(history.scores),
            X_pending=torch.as_tensor(pending, **tkwargs) if pending.shape[0] else None,
            q=q,
        )

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "acquisition": type(self.acquisition).__name__,
            "acquisition_params": self.acquisition.get_acquisition_params(),
        }


def _score_scale(scores: np.ndarray) -> float:
    """Target units per unit of the GP's scores: the standard deviation once gpbo standardizes
    (three scores or more, see :func:`gpbo.surrogate.warp_scores`), else 1."""
    std = float(np.std(scores)) if scores.shape[0] >= 3 else 0.0
    return std if std > 0 and math.isfinite(std) else 1.0
