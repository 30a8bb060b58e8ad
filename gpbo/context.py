"""What an objective can ask about the trial it is running: :func:`device`, :func:`current_trial`.

Executors set the context around each call of the objective (in the driver for the serial
executor, in the worker process for the others).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gpbo.exceptions import GpboError

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class TrialContext:
    """The running trial, as its objective sees it.

    Attributes:
        number: The trial's number in the study.
        device: The ``torch.device`` the trial was given.
        seed: A seed for the trial's own randomness, derived from the study seed.
        dir: A directory of this trial's own; a re-run of an interrupted trial gets the same
            one, so training code can resume from a checkpoint it left there.
        params: The trial's parameters.
    """

    number: int
    device: torch.device
    seed: int | None
    dir: Path
    params: dict


_current: TrialContext | None = None


def current_trial() -> TrialContext:
    """The trial the calling objective is running in.

    Raises:
        GpboError: Called outside an objective run by gpbo.
    """
    if _current is None:
        raise GpboError(
            "gpbo.current_trial() was called outside a trial; it is only available inside an "
            "objective that gpbo.optimize() or a gpbo executor is running"
        )
    return _current


def device() -> torch.device:
    """The ``torch.device`` this trial runs on.

    Outside a trial (e.g. when the training code is run by hand) it is ``cuda`` where a GPU is
    visible and ``cpu`` otherwise, so the same code runs both ways.
    """
    import torch

    if _current is not None:
        return _current.device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@contextlib.contextmanager
def trial_context(context: TrialContext) -> Iterator[TrialContext]:
    """Make ``context`` the current trial for the duration of the block."""
    global _current
    previous = _current
    _current = context
    try:
        yield context
    finally:
        _current = previous
