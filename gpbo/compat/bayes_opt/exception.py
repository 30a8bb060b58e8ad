"""The exceptions of ``bayes_opt.exception``, and the drop-in's own for what it leaves out.

Every one derives from :class:`gpbo.GpboError` (so from ``Exception``, as ``bayes_opt``'s do).
"""

from __future__ import annotations

import sys
from functools import cache

from gpbo.exceptions import GpboError

__all__ = [
    "BayesianOptimizationError",
    "ConstraintNotSupportedError",
    "NoValidPointRegisteredError",
    "NotUniqueError",
    "TargetSpaceEmptyError",
    "UnsupportedFeatureError",
    "as_raised",
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


@cache
def _joined(cls: type[BayesianOptimizationError], theirs: type[Exception]) -> type[Exception]:
    return type(cls.__name__, (cls, theirs), {"__module__": cls.__module__, "__doc__": cls.__doc__})


def as_raised(cls: type[BayesianOptimizationError]) -> type[Exception]:
    """``cls``, or where the program imported ``bayes_opt.exception`` too, a class deriving from
    both it and ``bayes_opt``'s class of that name.

    Code that swapped only ``BayesianOptimization``'s import keeps ``from bayes_opt.exception
    import NotUniqueError`` and its ``except NotUniqueError:``, which ours alone would escape.
    Looked up at raise time, so importing the drop-in never imports ``bayes_opt`` (a second).
    """
    module = sys.modules.get("bayes_opt.exception")
    theirs = getattr(module, cls.__name__, None) if module is not None else None
    if not (isinstance(theirs, type) and issubclass(theirs, Exception)):
        return cls
    return _joined(cls, theirs)
