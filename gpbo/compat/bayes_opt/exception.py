"""The exceptions of ``bayes_opt.exception``, and the drop-in's own for what it leaves out.

Every one derives from :class:`gpbo.GpboError` (so from ``Exception``, as ``bayes_opt``'s do).
"""

from __future__ import annotations

from gpbo.exceptions import GpboError

__all__ = [
    "BayesianOptimizationError",
    "ConstraintNotSupportedError",
    "NoValidPointRegisteredError",
    "NotUniqueError",
    "TargetSpaceEmptyError",
    "UnsupportedFeatureError",
]


class BayesianOptimizationError(GpboError):
    """Root of the drop-in's errors, as ``bayes_opt.exception.BayesianOptimizationError``.

    Like ``bayes_opt``'s, it derives from ``Exception`` (through :class:`gpbo.GpboError`).
    """


class NotUniqueError(BayesianOptimizationError):
    """A point was registered twice and ``allow_duplicate_points`` is ``False``."""


class ConstraintNotSupportedError(BayesianOptimizationError):
    """Constrained optimization was asked for; the drop-in does not support it."""


class NoValidPointRegisteredError(BayesianOptimizationError):
    """An acquisition needs a registered point and there is none (kept for ``except`` clauses)."""


class TargetSpaceEmptyError(BayesianOptimizationError):
    """The target space is empty (kept for ``except`` clauses)."""


class UnsupportedFeatureError(BayesianOptimizationError, NotImplementedError):
    """A ``bayes_opt`` feature the drop-in does not provide; the message names it."""
