"""Shared fixtures: fast strategy settings, an executor whose trials end together, and the
`cuda` marker's skip."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

import gpbo
from gpbo.executors import Executor
from gpbo.executors.base import TrialOutcome, TrialTask, evaluate


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl+C as in a terminal, however the suite was started: one started in the background
    (``nohup pytest &``) ignores ``SIGINT``, so the tests that stop a study with it, in this
    process or in a driver it starts (which inherits the disposition), waited or failed."""
    import signal

    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def fast_bayes(**kwargs: object) -> gpbo.strategies.Bayes:
    """A Bayes strategy with a small acquisition budget: tests stay fast, assertions stay."""
    options = {"num_restarts": 3, "raw_samples": 64, "maxiter": 50}
    options.update(kwargs)
    return gpbo.strategies.Bayes(**options)  # type: ignore[arg-type]


@pytest.fixture
def make_fast_bayes():
    return fast_bayes


class RunsTogether(Executor):
    """Two slots whose trials run, in this process, when waited on, and all end in that wait.

    ``batches`` records how many trials each wait ran.
    """

    def __init__(self) -> None:
        self.batches: list[int] = []
        self._tasks: list[TrialTask] = []

    def start(self, objective: Any, *, slots: Sequence[str], metric: str) -> None:
        self._objective = objective
        self._metric = metric

    @property
    def free_slots(self) -> int:
        return 2 - len(self._tasks)

    @property
    def running(self) -> int:
        return len(self._tasks)

    def submit(self, task: TrialTask) -> str:
        self._tasks.append(task)
        return "cpu"

    def wait(self, timeout: float | None = None) -> list[TrialOutcome]:
        self.batches.append(len(self._tasks))
        tasks, self._tasks = self._tasks, []
        return [evaluate(self._objective, t, metric=self._metric, device="cpu") for t in tasks]

    def interrupt(self) -> list[TrialOutcome]:
        tasks, self._tasks = self._tasks, []
        return [TrialOutcome(number=t.number, status="interrupted") for t in tasks]

