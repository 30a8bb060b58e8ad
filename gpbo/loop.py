"""``optimize()``: ask a batch, run it on the executor, tell the results, journal, repeat."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from gpbo.exceptions import GpboError, SpaceExhausted, StopStudy, StudyError
from gpbo.executors import Executor, make_executor, resolve_slots
from gpbo.executors.base import TrialOutcome, TrialTask
from gpbo.report import ProgressReporter
from gpbo.space import Space
from gpbo.strategies import Strategy
from gpbo.study import Study
from gpbo.trial import Direction, Result, Trial

__all__ = ["optimize"]

logger = logging.getLogger(__name__)

Callback = Callable[[Study, Trial], Any]


@dataclass(frozen=True)
class _Settings:
    """The loop's options, checked once with messages that name the option."""

    n_trials: int
    batch_size: int
    mode: Literal["sync", "async"]
    trial_timeout: float | None
    timeout: float | None
    max_consecutive_failures: int | None
    metric: str
    callbacks: tuple[Callback, ...]

    def __post_init__(self) -> None:
        _positive_int("n_trials", self.n_trials)
        _positive_int("batch_size", self.batch_size)
        if self.max_consecutive_failures is not None:
            _positive_int("max_consecutive_failures", self.max_consecutive_failures)
        if self.mode not in ("sync", "async"):
            raise GpboError(f"mode must be 'sync' or 'async', got {self.mode!r}")
        for name in ("trial_timeout", "timeout"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0
            ):
                raise GpboError(
                    f"{name} must be a positive number of seconds or None, got {value!r}"
                )
        if not isinstance(self.metric, str) or not self.metric:
            raise GpboError(f"metric must be a non-empty string, got {self.metric!r}")
        for callback in self.callbacks:
            if not callable(callback):
                raise GpboError(f"callbacks must be callables (study, trial), got {callback!r}")


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise GpboError(f"{name} must be a positive int, got {value!r}")


def optimize(
    objective: Callable[[dict[str, Any]], Any],
    space: Space | Mapping[str, Any],
    *,
    n_trials: int,
    batch_size: int = 1,
    direction: Direction = "minimize",
    metric: str = "value",
    strategy: str | Strategy = "bayes",
    n_init: int | None = None,
    devices: str | int | Sequence[str] = "auto",
    workers_per_device: int = 1,
    executor: str | Executor = "auto",
    mode: Literal["sync", "async"] = "sync",
    surrogate_device: str = "auto",
    trial_timeout: float | None = None,
    timeout: float | None = None,
    max_consecutive_failures: int | None = 5,
    journal: str | Path | None = None,
    seed: int | None = None,
    verbose: bool = True,
    callbacks: Sequence[Callback] = (),
    _progress: ProgressReporter | None = None,
) -> Result:
    """Run a whole study: propose, train, record, repeat, and return every trial.

    Args:
        objective: A function of one ``dict`` of parameters returning the metric (a float), or
            a mapping holding it under ``metric`` plus extra numbers kept with the trial.
        space: The search space (:class:`~gpbo.Space` or a mapping accepted by it).
        n_trials: Trials to finish (complete, failed or timed out); a resumed study counts the
            ones already in its journal.
        batch_size: Points proposed jointly per round (synchronous mode).
        direction: ``"minimize"`` or ``"maximize"``.
        metric: Key of the metric when the objective returns a mapping.
        strategy: ``"bayes"``, ``"random"``, ``"sobol"``, ``"grid"``, ``"gradient"`` or a
            configured strategy object.
        n_init: Quasi-random trials before the GP (default ``max(2 (d + 1), batch_size)``).
        devices: ``"auto"`` (every GPU, or one CPU slot without one), an int, or device names.
        workers_per_device: Trials run at once on each device.
        executor: ``"auto"``, ``"serial"``, ``"process"``, or an executor object.
        mode: ``"sync"``: rounds of ``batch_size`` points, refit after each; ``"async"``: a new
            point whenever a slot frees, with running trials as pending points.
        surrogate_device: Where the GP runs: ``"auto"``, ``"cpu"``, ``"cuda:N"``.
        trial_timeout: Seconds a trial may run before it is stopped and recorded as
            ``timeout``.
        timeout: Wall-clock seconds for the whole study; no trial starts after it, and
            running ones are interrupted (a resumed study runs them again).
        max_consecutive_failures: End the study with an error after this many failed trials in
            a row (``None``: never).
        journal: A JSON-lines file recording every trial; an existing one is resumed.
        seed: Seed of every random choice of the study.
        verbose: Print a line per finished trial and a summary.
        callbacks: Called as ``callback(study, trial)`` after each finished trial; raising
            :class:`gpbo.StopStudy` ends the study once the running trials finish.
        _progress: Internal (the ``gpbo`` command's live display): a reporter that replaces
            the one ``verbose`` selects.

    Returns:
        A :class:`~gpbo.Result` with every trial and the best one.

    Raises:
        StudyError: ``max_consecutive_failures`` trials failed in a row.
    """
    _exit_if_bootstrapping_worker()
    if not callable(objective):
        raise GpboError(f"objective must be callable, got {objective!r}")
    settings = _Settings(
        n_trials=n_trials,
        batch_size=batch_size,
        mode=mode,
        trial_timeout=trial_timeout,
        timeout=timeout,
        max_consecutive_failures=max_consecutive_failures,
        metric=metric,
        callbacks=tuple(callbacks),
    )
    slots = resolve_slots(devices, workers_per_device=workers_per_device)
    runner = make_executor(executor, slots=slots)
    study = Study(
        space,
        direction=direction,
        strategy=strategy,
        n_init=n_init,
        seed=seed,
        surrogate_device=surrogate_device,
        journal=journal,
    )
    with study:
        reporter = _progress or ProgressReporter(
            direction=study.direction, n_trials=settings.n_trials, enabled=verbose
        )
        return _Loop(study, runner, slots, settings, reporter=reporter).run(objective)


class _Loop:
    """The state of one ``optimize()`` call."""

    def __init__(
        self,
        study: Study,
        executor: Executor,
        slots: list[str],
        settings: _Settings,
        *,
        reporter: ProgressReporter,
    ) -> None:
        self.study = study
        self.executor = executor
        self.slots = slots
        self.settings = settings
        self.reporter = reporter
        self.finished = sum(t.finished for t in study.trials)
        self.running: dict[int, Trial] = {}
        self._pending: list[Trial] = []
        self.consecutive_failures: list[Trial] = []
        self.stop_reason = ""
        self.deadline = None if settings.timeout is None else time.monotonic() + settings.timeout

    def run(self, objective: Callable[[dict[str, Any]], Any]) -> Result:
        self.reporter.start(
            strategy=self.study.strategy.name, slots=self.slots, resumed=self.finished
        )
        self.reporter.seed_best(self.study.trials)
        self.executor.start(objective, slots=self.slots, metric=self.settings.metric)
        try:
            with _sigterm_as_keyboard_interrupt():
                self._drive()
        except KeyboardInterrupt:
            self._interrupt("the driver was stopped (Ctrl+C or SIGTERM)")
            hint = (
                f"run the same call again with journal={str(self.study.journal_path)!r} to resume"
                if self.study.journal_path
                else "pass journal='path.jsonl' to make a study resumable"
            )
            logger.warning("study interrupted; %s", hint)
            if self.reporter.enabled:
                print(f"[gpbo] interrupted: {hint}", flush=True)
            raise
        except BaseException:
            self._interrupt("the driver stopped on an error")
            raise
        finally:
            self.executor.shutdown()
        self.reporter.finish(self.study.trials, stop_reason=self.stop_reason)
        return self.study.result(stop_reason=self.stop_reason)

    # -- driving ---------------------------------------------------------------------------
    def _drive(self) -> None:
        stopping = False
        while True:
            if not stopping:
                stopping = self._should_stop()
            if not stopping:
                stopping = not self._launch()
            if not self.running:
                if stopping or self.finished >= self.settings.n_trials:
                    break
                continue
            for outcome in self.executor.wait(timeout=self._wait_timeout()):
                stopping = self._finish(outcome) or stopping
            if self.deadline is not None and time.monotonic() >= self.deadline and self.running:
                self.stop_reason = self.stop_reason or (
                    f"the study timeout of {self.settings.timeout:g} s passed"
                )
                self._interrupt("the study timeout passed")
                stopping = True
        if self._pending:  # proposed, never started: run first when the study resumes
            self._interrupt("the study stopped before they started")
        if not self.stop_reason:
            self.stop_reason = f"{self.finished} trials finished"

    def _should_stop(self) -> bool:
        if self.finished >= self.settings.n_trials:
            self.stop_reason = f"{self.finished} trials finished"
            return True
        if self.deadline is not None and time.monotonic() >= self.deadline:
            self.stop_reason = f"the study timeout of {self.settings.timeout:g} s passed"
            return True
        return False

    def _launch(self) -> bool:
        """Submit new trials where the mode allows; ``False`` once the space is used up."""
        remaining = self.settings.n_trials - self.finished - len(self.running)
        if remaining <= 0:
            return True
        if self.settings.mode == "sync":
            if self.running:  # a round runs to its end before the next one is proposed
                return True
            n = min(self.settings.batch_size, remaining)
        else:
            n = min(self.executor.free_slots, remaining)
        if n <= 0:
            return True
        try:
            trials = self.study.ask(n)
        except SpaceExhausted as exc:
            self.stop_reason = str(exc)
            logger.info("%s", exc)
            return False
        self._pending = list(trials)
        self._submit_pending()
        return True

    def _submit_pending(self) -> None:
        while self._pending and self.executor.free_slots > 0:
            trial = self._pending.pop(0)
            task = TrialTask(
                number=trial.number,
                params=dict(trial.params),
                seed=trial.seed,
                dir=str(self.study.trial_dir(trial)),
                timeout=self.settings.trial_timeout,
            )
            device = self.executor.submit(task)
            self.study.mark_running(trial, device=device)
            self.running[trial.number] = trial
            self.reporter.trial_started(trial)

    def _wait_timeout(self) -> float | None:
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.monotonic())

    def _finish(self, outcome: TrialOutcome) -> bool:
        """Record one outcome; ``True`` when the study must stop launching trials."""
        trial = self.running.pop(outcome.number)
        trial.started_at = outcome.started_at or trial.started_at
        trial.device = outcome.device or trial.device
        if outcome.status == "complete":
            self.study.tell(trial, outcome.value, metrics=outcome.metrics)
        else:
            self.study.tell(trial, error=outcome.error, status=outcome.status)
        if outcome.finished_at is not None:
            trial.finished_at = outcome.finished_at
        self._submit_pending()
        if trial.status == "interrupted":
            return False
        self.finished += 1
        self.reporter.trial_finished(trial)
        stop = False
        if trial.status == "complete":
            self.consecutive_failures.clear()
        else:
            logger.warning(
                "trial %d %s: %s",
                trial.number,
                trial.status,
                ((trial.error or "").strip().splitlines() or [""])[0],
            )
            self.consecutive_failures.append(trial)
            limit = self.settings.max_consecutive_failures
            if limit is not None and len(self.consecutive_failures) >= limit:
                first = self.consecutive_failures[0]
                raise StudyError(
                    f"{limit} trials in a row failed; the first of them (trial {first.number}, "
                    f"params {first.params}) failed with:\n{first.error}"
                )
        for callback in self.settings.callbacks:
            try:
                callback(self.study, trial)
            except StopStudy as exc:
                self.stop_reason = (
                    f"a callback stopped the study{': ' + str(exc) if str(exc) else ''}"
                )
                stop = True
        return stop

    def _interrupt(self, why: str) -> None:
        """Stop running trials; record them (and any not yet started) as interrupted."""
        unstarted, self._pending = self._pending, []
        try:
            outcomes = self.executor.interrupt()
        except Exception:  # the workers are going away anyway; record what is known
            logger.exception("stopping the running trials failed")
            outcomes = []
        for outcome in outcomes:
            if outcome.number not in self.running:
                continue
            if outcome.status == "interrupted":
                self.study.tell(self.running.pop(outcome.number), status="interrupted")
            else:  # it ended before it could be stopped: keep its real result
                with contextlib.suppress(StudyError):
                    self._finish(outcome)
        for trial in [*self.running.values(), *unstarted]:
            if trial.status in ("pending", "running"):
                self.study.tell(trial, status="interrupted")
        self.running.clear()
        logger.info("running trials interrupted: %s", why)


def _exit_if_bootstrapping_worker() -> None:
    """In a spawned worker still importing a guard-less driver script: exit with a message."""
    try:
        from gpbo.executors.process import exit_if_bootstrapping_worker
    except ImportError:  # the process executor is optional in a minimal install
        return
    exit_if_bootstrapping_worker()


@contextlib.contextmanager
def _sigterm_as_keyboard_interrupt() -> Iterator[None]:
    """Treat SIGTERM like Ctrl+C while the loop runs, so trials are recorded as interrupted."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
