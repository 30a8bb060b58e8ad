"""gpbo: batch Bayesian optimization of PyTorch hyperparameters.

A Gaussian-process surrogate is fitted to every finished trial; ``q`` new configurations are
chosen jointly with a q-batch acquisition and trained at the same time, one per GPU (or CPU
worker). ``import gpbo`` stays light: torch and botorch are imported when first needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gpbo.context import current_trial, device
from gpbo.exceptions import (
    GpboError,
    GpboWarning,
    NoCompletedTrialError,
    SpaceError,
    SpaceExhausted,
    StopStudy,
    StudyError,
)
from gpbo.space import Choice, Int, Real, Space
from gpbo.trial import Result, Trial

if TYPE_CHECKING:
    from gpbo.loop import optimize
    from gpbo.study import Study, load

__version__ = "0.1.0"

__all__ = [
    "Choice",
    "GpboError",
    "GpboWarning",
    "Int",
    "NoCompletedTrialError",
    "Real",
    "Result",
    "Space",
    "SpaceError",
    "SpaceExhausted",
    "StopStudy",
    "Study",
    "StudyError",
    "Trial",
    "current_trial",
    "device",
    "load",
    "optimize",
]

_LAZY = {
    "optimize": ("gpbo.loop", "optimize"),
    "Study": ("gpbo.study", "Study"),
    "load": ("gpbo.study", "load"),
    "strategies": ("gpbo.strategies", None),
    "executors": ("gpbo.executors", None),
    "plots": ("gpbo.plots", None),
    "surrogate": ("gpbo.surrogate", None),  # gpbo.surrogate.AUTO_CUDA_FROM, as the README says
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module_name, attr = _LAZY[name]
        module = importlib.import_module(module_name)
        value = module if attr is None else getattr(module, attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gpbo' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
