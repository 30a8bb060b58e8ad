r"""The acquisition functions of ``bayes_opt.acquisition``, mapped onto BoTorch's.

- ``UpperConfidenceBound(kappa)``: ``qUpperConfidenceBound`` with ``beta = kappa ** 2`` (for one
  point, ``mean + kappa * std`` as in ``bayes_opt``);
- ``ExpectedImprovement(xi)``: ``qLogExpectedImprovement`` with ``best_f + xi``;
- ``ProbabilityOfImprovement(xi)``: ``LogProbabilityOfImprovement`` with ``best_f + xi`` for one
  point, ``qProbabilityOfImprovement`` for a batch or with points still running.

``xi`` is in the target's units, as in ``bayes_opt``; the caller passes ``y_scale`` to turn it
into the GP's standardized units.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from gpbo.compat.bayes_opt.exception import UnsupportedFeatureError

if TYPE_CHECKING:
    import torch

__all__ = [
    "AcquisitionFunction",
    "ConstantLiar",
    "ExpectedImprovement",
    "ProbabilityOfImprovement",
    "UpperConfidenceBound",
]


class AcquisitionFunction:
    """Base of the acquisition functions: their parameters, decay, and the BoTorch counterpart.

    As in ``bayes_opt``, the exploration parameter (``kappa`` or ``xi``) is multiplied by
    ``exploration_decay`` after each suggested point, once ``exploration_decay_delay`` points
    have been suggested.

    Args:
        exploration_decay: Factor in ``(0, 1]`` applied after each suggestion; ``None``: none.
        exploration_decay_delay: Suggestions before the decay starts; ``None``: from the first.
        random_state: Ignored, with a ``DeprecationWarning`` (as in ``bayes_opt`` 3.x).
    """

    #: Name of the exploration parameter (``"kappa"`` or ``"xi"``).
    _param: ClassVar[str] = ""

    def __init__(
        self,
        random_state: Any = None,
        *,
        exploration_decay: float | None = None,
        exploration_decay_delay: int | None = None,
    ) -> None:
        if exploration_decay is not None and not (0 < exploration_decay <= 1):
            raise ValueError(
                "exploration_decay must be greater than 0 and less than or equal to 1."
            )
        if exploration_decay_delay is not None and (
            isinstance(exploration_decay_delay, bool)
            or not isinstance(exploration_decay_delay, int)
            or exploration_decay_delay < 0
        ):
            raise ValueError(
                "exploration_decay_delay must be an integer greater than or equal to 0."
            )
        if random_state is not None:
            warnings.warn(
                "Providing a random_state to an acquisition function is deprecated and ignored; "
                "the optimizer's random_state is used.",
                DeprecationWarning,
                stacklevel=3,
            )
        self.exploration_decay = exploration_decay
        self.exploration_decay_delay = exploration_decay_delay
        #: Points suggested so far (``bayes_opt``'s counter of the same name).
        self.i = 0

    def _exploration(self) -> float:
        return float(getattr(self, self._param))

    def _after_suggestion(self) -> None:
        """Count one suggested point and decay the exploration parameter."""
        self.i += 1
        if self.exploration_decay is not None and (
            self.exploration_decay_delay is None or self.exploration_decay_delay <= self.i
        ):
            setattr(self, self._param, self._exploration() * self.exploration_decay)
        mirror = getattr(self, "_mirror", None)
        if mirror is not None:  # the user's bayes_opt object decays as bayes_opt's would
            with contextlib.suppress(Exception):
                mirror.set_acquisition_params(self.get_acquisition_params())
                mirror.i = self.i

    def get_acquisition_params(self) -> dict[str, Any]:
        """The current parameters, as ``bayes_opt`` saves them."""
        return {
            self._param: self._exploration(),
            "exploration_decay": self.exploration_decay,
            "exploration_decay_delay": self.exploration_decay_delay,
        }

    def set_acquisition_params(self, params: Mapping[str, Any]) -> None:
        """Restore parameters saved by :meth:`get_acquisition_params`."""
        setattr(self, self._param, params[self._param])
        self.exploration_decay = params["exploration_decay"]
        self.exploration_decay_delay = params["exploration_decay_delay"]

    def botorch(
        self, model: Any, *, best_f: float, y_scale: float, X_pending: torch.Tensor | None, q: int
    ) -> Any:
        r"""The BoTorch acquisition function to maximize.

        Args:
            model: A fitted BoTorch model of the (warped) scores, larger is better.
            best_f: The best score the model was fitted to.
            y_scale: Target units per unit of score (``xi`` is divided by it).
            X_pending: A `p x d`-dim Tensor of points still running, or ``None``.
            q: Points chosen jointly.
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_acquisition_params().items())
        return f"{type(self).__name__}({params})"


class UpperConfidenceBound(AcquisitionFunction):
    r"""Upper confidence bound, :math:`\mu(x) + \kappa \sigma(x)`.

    Maximized as BoTorch's ``qUpperConfidenceBound`` with ``beta = kappa ** 2``.

    Args:
        kappa: The exploration weight, ``>= 0``: larger explores more.
        exploration_decay: Factor applied to ``kappa`` after each suggestion.
        exploration_decay_delay: Suggestions before the decay starts.
        random_state: Ignored (deprecated in ``bayes_opt`` 3.x).
    """

    _param: ClassVar[str] = "kappa"

    def __init__(
        self,
        kappa: float = 2.576,
        exploration_decay: float | None = None,
        exploration_decay_delay: int | None = None,
        random_state: Any = None,
    ) -> None:
        if kappa < 0:
            raise ValueError("kappa must be greater than or equal to 0.")
        super().__init__(
            exploration_decay=exploration_decay,
            exploration_decay_delay=exploration_decay_delay,
            random_state=random_state,
        )
        self.kappa = kappa

    def botorch(
        self, model: Any, *, best_f: float, y_scale: float, X_pending: torch.Tensor | None, q: int
    ) -> Any:
        from botorch.acquisition import qUpperConfidenceBound

        return qUpperConfidenceBound(model, beta=float(self.kappa) ** 2, X_pending=X_pending)


class _ImprovementAcquisition(AcquisitionFunction):
    """Shared by the acquisitions with an improvement margin ``xi`` (EI and PI)."""

    _param: ClassVar[str] = "xi"

    def __init__(
        self,
        xi: float,
        exploration_decay: float | None = None,
        exploration_decay_delay: int | None = None,
        random_state: Any = None,
    ) -> None:
        if xi < 0:
            raise ValueError("xi must be greater than or equal to 0.")
        super().__init__(
            exploration_decay=exploration_decay,
            exploration_decay_delay=exploration_decay_delay,
            random_state=random_state,
        )
        self.xi = xi


class ExpectedImprovement(_ImprovementAcquisition):
    r"""Expected improvement over the best target plus ``xi``.

    Maximized as BoTorch's ``qLogExpectedImprovement`` with ``best_f + xi``.

    Args:
        xi: The improvement margin, ``>= 0``, in the target's units: larger explores more.
        exploration_decay: Factor applied to ``xi`` after each suggestion.
        exploration_decay_delay: Suggestions before the decay starts.
        random_state: Ignored (deprecated in ``bayes_opt`` 3.x).
    """

    def botorch(
        self, model: Any, *, best_f: float, y_scale: float, X_pending: torch.Tensor | None, q: int
    ) -> Any:
        from botorch.acquisition.logei import qLogExpectedImprovement

        return qLogExpectedImprovement(
            model, best_f=best_f + float(self.xi) / y_scale, X_pending=X_pending
        )


class ProbabilityOfImprovement(_ImprovementAcquisition):
    r"""Probability of improving on the best target plus ``xi``.

    Maximized as BoTorch's analytic ``LogProbabilityOfImprovement`` for one point with nothing
    running, else as ``qProbabilityOfImprovement`` (BoTorch has no q-batch log-PI yet).

    Args:
        xi: The improvement margin, ``>= 0``, in the target's units: larger explores more.
        exploration_decay: Factor applied to ``xi`` after each suggestion.
        exploration_decay_delay: Suggestions before the decay starts.
        random_state: Ignored (deprecated in ``bayes_opt`` 3.x).
    """

    def botorch(
        self, model: Any, *, best_f: float, y_scale: float, X_pending: torch.Tensor | None, q: int
    ) -> Any:
        threshold = best_f + float(self.xi) / y_scale
        if q == 1 and X_pending is None:
            from botorch.acquisition.analytic import LogProbabilityOfImprovement

            return LogProbabilityOfImprovement(model, best_f=threshold)
        from botorch.acquisition.monte_carlo import qProbabilityOfImprovement

        return qProbabilityOfImprovement(model, best_f=threshold, X_pending=X_pending)


class ConstantLiar(AcquisitionFunction):
    """Suggestions that stay pending until registered, for several evaluations at once.

    As ``bayes_opt``'s ``ConstantLiar``, ``suggest()`` called again before the earlier points
    are registered goes elsewhere (without it, it returns the same point, as in
    ``bayes_opt``). Rather than a constant lie, the earlier points are BoTorch's pending
    points (``X_pending``: the acquisition integrates over their outcomes), so ``strategy``
    (``"max"``, ``"min"``, ``"mean"`` or a number) is kept for saving but not used. A
    suggestion never registered stays pending, as a ``bayes_opt`` dummy does; a registered
    point within 1% of each range of a suggestion takes its place.

    Args:
        base_acquisition: The acquisition that picks each point (UCB, EI or PI).
        strategy: ``bayes_opt``'s lie; see above.
        random_state: Ignored, with a ``DeprecationWarning`` (as in ``bayes_opt`` 3.x).
        atol: Kept for saving (gpbo matches suggestions within 1% of each range).
        rtol: Kept for saving.
    """

    def __init__(
        self,
        base_acquisition: AcquisitionFunction,
        strategy: str | float = "max",
        random_state: Any = None,
        atol: float = 1e-5,
        rtol: float = 1e-8,
    ) -> None:
        super().__init__(random_state)
        if not (isinstance(strategy, (int, float)) or strategy in ("min", "mean", "max")):
            raise ValueError(
                f"Received invalid argument {strategy} for strategy. Valid options are 'min', "
                "'mean', 'max' or a float."
            )
        self.base_acquisition = _as_acquisition(base_acquisition)
        if isinstance(self.base_acquisition, ConstantLiar):
            raise UnsupportedFeatureError("ConstantLiar(ConstantLiar(...)): nest it once")
        self.strategy = strategy
        self.atol = atol
        self.rtol = rtol

    def _after_suggestion(self) -> None:
        self.i += 1
        self.base_acquisition._after_suggestion()

    def get_acquisition_params(self) -> dict[str, Any]:
        """The parameters as ``bayes_opt`` saves them (``dummies`` empty: the pending
        suggestions are not saved)."""
        return {
            "dummies": [],
            "base_acquisition_params": self.base_acquisition.get_acquisition_params(),
            "strategy": self.strategy,
            "atol": self.atol,
            "rtol": self.rtol,
        }

    def set_acquisition_params(self, params: Mapping[str, Any]) -> None:
        """Restore saved parameters; saved ``dummies`` are dropped (nothing is pending after
        a load)."""
        self.base_acquisition.set_acquisition_params(params["base_acquisition_params"])
        self.strategy = params["strategy"]
        self.atol = params["atol"]
        self.rtol = params["rtol"]

    def botorch(
        self, model: Any, *, best_f: float, y_scale: float, X_pending: torch.Tensor | None, q: int
    ) -> Any:
        return self.base_acquisition.botorch(
            model, best_f=best_f, y_scale=y_scale, X_pending=X_pending, q=q
        )

    def __repr__(self) -> str:
        return (
            f"ConstantLiar(base_acquisition={self.base_acquisition!r}, "
            f"strategy={self.strategy!r})"
        )


_ACQUISITIONS: dict[str, type[AcquisitionFunction]] = {
    "UpperConfidenceBound": UpperConfidenceBound,
    "ExpectedImprovement": ExpectedImprovement,
    "ProbabilityOfImprovement": ProbabilityOfImprovement,
}


def _as_acquisition(spec: Any) -> AcquisitionFunction:
    """The drop-in's acquisition for ``spec``: one of ours, or ``bayes_opt``'s own of the same
    kind (its parameters are copied), or ``None`` for the default ``UCB(kappa=2.576)``."""
    if spec is None:
        return UpperConfidenceBound(kappa=2.576)
    if isinstance(spec, AcquisitionFunction):
        if type(spec).botorch is AcquisitionFunction.botorch:
            # a bayes_opt-style custom acquisition (base_acq over numpy): found out only after
            # the initial points had been evaluated, as a bare NotImplementedError
            raise UnsupportedFeatureError(
                f"acquisition_function={type(spec).__name__}(...): a custom acquisition "
                "function is not supported "
                "by gpbo's bayes_opt drop-in (gpbo maximizes a BoTorch acquisition jointly over "
                "a batch, not base_acq); use UpperConfidenceBound, ExpectedImprovement or "
                "ProbabilityOfImprovement, or bayes_opt itself"
            )
        return spec
    if type(spec).__name__ == "ConstantLiar" and type(spec).__module__.startswith("bayes_opt"):
        liar = ConstantLiar(
            spec.base_acquisition, strategy=spec.strategy, atol=spec.atol, rtol=spec.rtol
        )
        liar._mirror = spec  # type: ignore[attr-defined]
        return liar
    cls = _ACQUISITIONS.get(type(spec).__name__)
    if cls is not None and type(spec).__module__.startswith("bayes_opt"):
        converted = cls.__new__(cls)
        AcquisitionFunction.__init__(converted)
        converted.set_acquisition_params(spec.get_acquisition_params())
        converted.i = int(getattr(spec, "i", 0))
        converted._mirror = spec
        return converted
    raise UnsupportedFeatureError(
        f"acquisition_function={spec!r} is not supported by gpbo's bayes_opt drop-in; use "
        f"one of {sorted(_ACQUISITIONS)} from gpbo.compat.bayes_opt.acquisition, or "
        "ConstantLiar(one of them)"
    )
