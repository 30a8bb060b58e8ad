"""The exceptions and the warning class gpbo raises.

Every error gpbo raises on purpose derives from :class:`GpboError`; every warning from
:class:`GpboWarning`, so users can filter both in one line.
"""

from __future__ import annotations

from typing import Any


class GpboError(Exception):
    """Root of gpbo's own errors."""


class SpaceError(GpboError, ValueError):
    """A search space or a parameter set does not fit its definition."""


class StudyError(GpboError, RuntimeError):
    """A study cannot go on (e.g. too many consecutive failed trials).

    Attributes:
        result: Raised by :func:`gpbo.optimize`, the study's trials so far (a
            :class:`gpbo.Result`), so that trials completed before the error are not lost
            where no journal keeps them; ``None`` elsewhere.
    """

    result: Any = None


class UnusableResultError(GpboError, ValueError):
    """A trial ended but left no metric gpbo can read: a returned mapping without the metric's
    key, a value that is no number, a command that printed no metric.

    Unlike a NaN or a crash, which the trial's parameters may cause, this is most often a
    mistake in the objective that every trial repeats: before any trial of a study has
    completed, it ends the study once the running trials end (see :func:`gpbo.optimize`).
    """


class NoCompletedTrialError(GpboError, ValueError):
    """A best trial was asked for, but no trial has completed yet."""


class StopStudy(Exception):  # noqa: N818 - the public name promised in the design
    """Raise from a callback to end a study cleanly after the current trial."""


class SpaceExhausted(GpboError):  # noqa: N818 - a signal, not a failure
    """The strategy has no new point left (the grid is used up, or a small discrete space)."""


class GpboWarning(UserWarning):
    """Root of gpbo's own warnings."""


def warn_at_caller(message: str, category: type[Warning] = GpboWarning) -> None:
    """``warnings.warn`` naming the first line outside gpbo: the user's call of ``Study()``,
    ``optimize()`` or ``ask()``, however deep in gpbo the warning is raised (a fixed
    ``stacklevel`` named gpbo's own line when the same code was reached through ``optimize``).
    """
    import os
    import sys
    import warnings

    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame = sys._getframe(1)
    level = 2
    while frame.f_back is not None and os.path.abspath(frame.f_code.co_filename).startswith(
        package
    ):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)
