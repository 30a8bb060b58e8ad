"""Executors: where and how trials run.

Pass one by name to :func:`gpbo.optimize` (``executor="serial"``, ``"process"``, ``"ray"``,
``"auto"``) or as a configured object (``executor=gpbo.executors.Ray(gpus_per_trial=1)``).
"""

from __future__ import annotations

from typing import Any

from gpbo.exceptions import GpboError
from gpbo.executors.base import Executor, TrialOutcome, TrialTask, resolve_slots
from gpbo.executors.serial import Serial

__all__ = ["Executor", "Serial", "TrialOutcome", "TrialTask", "make_executor", "resolve_slots"]


def _process_executor() -> Executor:
    from gpbo.executors.process import Process

    return Process()


def _ray_executor() -> Executor:
    from gpbo.executors.ray import Ray

    return Ray()


_REGISTRY: dict[str, Any] = {
    "serial": Serial,
    "process": _process_executor,
    "ray": _ray_executor,
}


def make_executor(spec: str | Executor, *, slots: list[str]) -> Executor:
    """The executor that ``spec`` names, or ``spec`` itself when already one.

    ``"auto"`` is the serial executor for a single CPU slot and the process executor
    otherwise, so that a GPU trial (or several parallel ones) never runs in the driver.
    """
    if isinstance(spec, Executor):
        return spec
    if spec == "auto":
        spec = "serial" if slots == ["cpu"] else "process"
    factory = _REGISTRY.get(spec) if isinstance(spec, str) else None
    if factory is None:
        raise GpboError(
            f"executor={spec!r} is not known; use one of {sorted([*_REGISTRY, 'auto'])} or an "
            "instance of gpbo.executors.Executor"
        )
    return factory()


def __getattr__(name: str) -> Any:
    # Process and Ray import their heavy machinery only when asked for.
    if name == "Process":
        from gpbo.executors.process import Process

        return Process
    if name == "Ray":  # importing the class does not import ray; making one does
        from gpbo.executors.ray import Ray

        return Ray
    raise AttributeError(f"module 'gpbo.executors' has no attribute {name!r}")
