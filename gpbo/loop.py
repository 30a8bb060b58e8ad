"""``optimize()``: ask a batch, run it on the executor, tell the results, journal, repeat."""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import logging
import math
import numbers
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from gpbo.exceptions import GpboError, SpaceExhausted, StopStudy, StudyError
from gpbo.executors import Executor, make_executor, resolve_slots
from gpbo.executors.base import TrialOutcome, TrialTask, remove_if_empty
from gpbo.report import ProgressReporter, error_summary, format_count
from gpbo.space import Int, Space
from gpbo.strategies import Bayes, Gradient, Strategy, default_n_init
from gpbo.study import Study
from gpbo.trial import ACTIVE_STATUSES, Direction, Result, Trial, best_of

if TYPE_CHECKING:
    from gpbo.command import CommandObjective

__all__ = ["optimize"]

logger = logging.getLogger(__name__)

#: A study whose ``timeout`` ends sooner than this after its first trials start skips the
#: warm-up import (1-3 s on two cores), which blocks the loop.
WARM_UP_MARGIN_S = 15.0


def load_gp_machinery() -> None:
    """Import botorch and what the first GP fit would load on first use (logged at DEBUG)."""
    started = time.perf_counter()
    try:
        import botorch  # noqa: F401
        import scipy.stats  # noqa: F401  (the score warping)
        import torch

        torch.broadcast_shapes((1,), (2,))  # its first call imports torch._refs
    except ImportError:  # the fit itself will say so
        return
    logger.debug("GP machinery loaded in %.2f s", time.perf_counter() - started)


Callback = Callable[[Study, Trial], Any]


def _first_line(exc: BaseException) -> str:
    """``exc``'s message in one line; one ending "failed with:" keeps the line that says how."""
    lines = str(exc).splitlines() or [repr(exc)]
    if lines[0].endswith(":") and len(lines) > 1:
        return f"{lines[0]} {lines[1]}"
    return lines[0]


@dataclass(frozen=True)
class _Settings:
    """The loop's options, checked once with messages that name the option."""

    n_trials: int
    batch_size: int | Literal["auto"]
    mode: Literal["sync", "async"]
    trial_timeout: float | None
    timeout: float | None
    max_consecutive_failures: int | None
    callbacks: tuple[Callback, ...]

    def __post_init__(self) -> None:
        for name in ("n_trials", "batch_size", "max_consecutive_failures"):
            value = getattr(self, name)
            if isinstance(value, numbers.Integral) and not isinstance(value, bool):
                object.__setattr__(self, name, int(value))  # np.int64(20): JSON takes ints
        _positive_int("n_trials", self.n_trials)
        if self.batch_size != "auto":
            _positive_int("batch_size", self.batch_size)
        if self.max_consecutive_failures is not None:
            _positive_int("max_consecutive_failures", self.max_consecutive_failures)
        if self.mode not in ("sync", "async"):
            raise GpboError(f"mode must be 'sync' or 'async', got {self.mode!r}")
        for name in ("trial_timeout", "timeout"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or value <= 0
            ):
                raise GpboError(
                    f"{name} must be a positive, finite number of seconds, or None for no "
                    f"limit, got {value!r}"
                )
        for callback in self.callbacks:
            if not callable(callback):
                raise GpboError(f"callbacks must be callables (study, trial), got {callback!r}")


def _add_warm_start(
    study: Study,
    warm_start: str | Path | Sequence[str | Path],
    reporter: ProgressReporter,
    *,
    n_trials: int,
) -> None:
    """Add the complete trials of earlier studies' journals (``optimize``'s ``warm_start``)."""
    from gpbo.study import load

    paths = [warm_start] if isinstance(warm_start, (str, os.PathLike)) else list(warm_start)
    if not all(isinstance(p, (str, os.PathLike)) for p in paths):
        raise GpboError(
            f"warm_start must be a journal path (or a gpbo run directory) or a list of them, "
            f"got {warm_start!r}"
        )
    if study.trials:
        logger.info("warm_start: the journal holds trials already (a resume); nothing added")
        return
    # Read and check every journal first, then add under held stop signals: an error in the
    # second journal, or Ctrl+C midway, left the first one's trials journaled, and since a
    # journal holding trials is a resume, the run again added nothing more.
    to_add: list[tuple[dict[str, Any], float | None, dict[str, float]]] = []
    lines: list[str] = []
    for path in paths:
        try:
            old = load(path)
        except GpboError as exc:
            raise GpboError(f"warm_start: {exc}") from None
        added, left_out, example = 0, 0, ""
        for trial in old.trials:
            if trial.status != "complete":
                continue
            metrics = dict(trial.metrics)
            if old.metric == study.metric:
                value = trial.value
            elif study.metric in metrics:  # the old study optimized another of its numbers
                value = metrics.pop(study.metric)
                metrics[old.metric] = trial.value
            else:
                raise GpboError(
                    f"warm_start: the trials of {str(path)!r} record the metric {old.metric!r}"
                    f" (extra numbers: {sorted(metrics) or 'none'}), and this study optimizes "
                    f"{study.metric!r}; set metric= to the one they share, or leave that "
                    "journal out"
                )
            params = {k: v for k, v in trial.params.items() if k in study.space.names}
            try:
                study.space.check(params)
            except GpboError as exc:  # a parameter missing or outside the space
                left_out += 1
                example = example or f" (trial {trial.number}: {exc})"
                continue
            to_add.append((params, value, metrics))
            added += 1
        lines.append(
            f"warm start: added {format_count(added, 'complete trial')} of {path}"
            + (f"; left out {left_out} outside this space{example}" if left_out else "")
        )
    with _StopSignals() as signals, signals.held():
        for params, value, metrics in to_add:
            study.add(params, value, metrics=metrics)
    for line in lines:
        logger.info("%s", line)
        if reporter.enabled:
            reporter.say(f"[gpbo] {line}")
    if len(study.trials) >= n_trials:
        logger.warning(
            "warm_start added %d trials and n_trials=%d: nothing is left to train (added "
            "trials count toward n_trials, as every trial in the journal does); raise n_trials",
            len(study.trials), n_trials,
        )


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise GpboError(f"{name} must be a positive int, got {value!r}")


def optimize(
    objective: Callable[[dict[str, Any]], Any],
    space: Space | Mapping[str, Any],
    *,
    n_trials: int,
    batch_size: int | Literal["auto"] = 1,
    direction: Direction | None = None,
    metric: str | None = None,
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
    enqueue: Sequence[Mapping[str, Any]] = (),
    warm_start: str | Path | Sequence[str | Path] | None = None,
    _progress: ProgressReporter | None = None,
) -> Result:
    """Run a whole study: propose, train, record, repeat, and return every trial.

    Args:
        objective: A function of one ``dict`` of parameters returning the metric (a float), or
            a mapping holding it under ``metric`` plus extra numbers kept with the trial.
        space: The search space (:class:`~gpbo.Space` or a mapping accepted by it).
        n_trials: Trials to finish (complete, failed or timed out); a resumed study counts the
            ones already in its journal.
        batch_size: Points proposed jointly per round (synchronous mode); ``"auto"``: as many
            as the executor runs at once once started (its slots; for Ray, what the cluster
            holds).
        direction: ``"minimize"`` or ``"maximize"``; ``None``: the journal's when resuming,
            else ``"minimize"`` (with a warning where ``metric`` names a score usually
            maximized, such as ``"val_acc"``).
        metric: Key of the metric when the objective returns a mapping; ``None``: the
            journal's when resuming, else ``"value"``.
        strategy: ``"bayes"``, ``"random"``, ``"sobol"``, ``"grid"``, ``"gradient"`` or a
            configured strategy object.
        n_init: Quasi-random trials before the GP (default ``2 (d + 1)`` rounded down to whole
            batches).
        devices: ``"auto"`` (every GPU, or one CPU slot without one), an int, or device names.
        workers_per_device: Trials run at once on each device.
        executor: ``"auto"``, ``"serial"``, ``"process"``, ``"ray"`` (the ``ray`` extra), or an
            executor object.
        mode: ``"sync"``: rounds of ``batch_size`` points, refit after each; ``"async"``: a new
            point whenever a slot frees, with running trials as pending points (no use for
            ``batch_size``; the order trials finish in shapes the proposals, so a seed does not
            reproduce an async run).
        surrogate_device: Where the GP runs: ``"auto"``, ``"cpu"``, ``"cuda:N"``.
        trial_timeout: Seconds a trial may run before it is stopped and recorded as
            ``timeout``.
        timeout: Wall-clock seconds for the whole study; no trial starts after it, and
            running ones are interrupted (a resumed study runs them again).
        max_consecutive_failures: End the study with an error after this many failed trials in
            a row, counted on from a resumed journal's last ones (``None``: never); no new
            trial starts then, and the study ends once the running trials end, unless one of
            them completes (quick failures come in before a round's slow trainings). Unless
            ``None``, a trial that leaves no readable metric (a returned mapping without
            ``metric``, a value that is no number, a command that prints none) before any
            trial has completed also ends it, once the running trials end and none of them
            completed: every trial would most likely fail the same way.
        journal: A JSON-lines file recording every trial; an existing one is resumed.
        seed: Seed of every random choice of the study.
        verbose: Print a line per finished trial and a summary.
        callbacks: Called as ``callback(study, trial)`` after each finished trial; raising
            :class:`gpbo.StopStudy` ends the study once the running trials finish. Any other
            exception a callback raises ends it at once (running trials are recorded
            ``interrupted``) and reaches the caller, with the trials on its ``result``.
        enqueue: Parameter sets to evaluate first (known good configurations), before the
            strategy's proposals; on a resume, those already queued or tried are skipped
            (:meth:`gpbo.Study.enqueue`).
        warm_start: Journals (or ``gpbo run`` run directories) of earlier studies whose
            complete trials are added to this one (:meth:`gpbo.Study.add`) before its first
            trial, so the GP starts from what they learned; nothing is added where the journal
            already holds trials (a resume). Parameters the space lacks are dropped; a trial
            without a value for one of the space's, or outside its ranges, is left out (said
            in a line). Their metric is this study's (or one of their extra numbers of that
            name). Added trials count toward ``n_trials``, as every trial in the journal does.
        _progress: Internal (the ``gpbo`` command's live display): a reporter that replaces
            the one ``verbose`` selects.

    Returns:
        A :class:`~gpbo.Result` with every trial and the best one.

    Raises:
        gpbo.StudyError: ``max_consecutive_failures`` trials failed in a row. This and any
            other exception that ends the study (a callback's, ``KeyboardInterrupt``) carry
            the trials so far as ``exc.result``, a :class:`~gpbo.Result`.
    """
    _exit_if_bootstrapping_worker()
    if not callable(objective):
        raise GpboError(f"objective must be callable, got {objective!r}")
    space = Space(space)  # once: its warnings (an int range read as a Real) once
    _check_takes_one_dict(objective, space.names)
    if isinstance(enqueue, Mapping) or not all(isinstance(p, Mapping) for p in enqueue):
        raise GpboError(
            f"enqueue must be a list of parameter dicts, got {enqueue!r}; wrap a single one "
            "in a list"
        )
    if callable(callbacks) or isinstance(callbacks, (str, bytes)):
        raise GpboError(
            f"callbacks must be a list of callables (study, trial), got {callbacks!r}; "
            "wrap a single one in a list"
        )
    settings = _Settings(
        n_trials=n_trials,
        batch_size=batch_size,
        mode=mode,
        trial_timeout=trial_timeout,
        timeout=timeout,
        max_consecutive_failures=max_consecutive_failures,
        callbacks=tuple(callbacks),
    )
    batch_size = settings.batch_size  # an int where a NumPy one was given
    slots = resolve_slots(devices, workers_per_device=workers_per_device)
    runner = make_executor(executor, slots=slots)
    if (
        mode == "sync"
        and isinstance(batch_size, int)
        and batch_size < len(slots)
        and not runner.runs_in_driver
        and type(runner).__name__ != "Ray"  # its slots are the cluster's, known once started
    ):
        # devices=4 (or "auto" on a 4-GPU machine) with the default batch_size=1 ran one trial
        # at a time on a single GPU, without a word
        logger.warning(
            "%d slots (%s) but batch_size=%d: each round runs %d trial%s at a time and the "
            "other slots wait; pass batch_size=%d (or 'auto'), or mode='async'",
            len(slots), ", ".join(slots), batch_size, batch_size,
            "" if batch_size == 1 else "s", len(slots),
        )
    if mode == "async" and batch_size != 1:
        # async asks as many points as slots are free; a batch_size given there did nothing
        logger.warning(
            "batch_size=%r has no effect in mode='async': a new point is proposed whenever a "
            "slot frees up (as many at once as slots are free); use mode='sync' for rounds of "
            "batch_size points",
            batch_size,
        )
    study = Study(
        space,
        direction=direction,
        strategy=strategy,
        n_init=n_init,
        seed=seed,
        surrogate_device=surrogate_device,
        journal=journal,
        metric=metric,
    )
    with study:
        for params in enqueue:
            study.enqueue(params)
        expected = _check_grid_budget(study, settings.n_trials)
        _warn_if_the_design_takes_the_budget(
            study, settings.n_trials,
            len(slots) if mode == "async" or batch_size == "auto" else int(batch_size),
        )
        reporter = _progress or ProgressReporter(
            direction=study.direction, n_trials=expected, enabled=verbose,
            metric=study.metric,
        )
        reporter.n_trials = min(reporter.n_trials, expected)  # the CLI's, made before the study
        if warm_start is not None:
            _add_warm_start(study, warm_start, reporter, n_trials=settings.n_trials)
        result = _Loop(study, runner, slots, settings, reporter=reporter).run(objective)
    # after the study closed: a journal-less study's folder is gone where nothing was written
    wrote = [t.number for t in result.trials if result.trial_dir(t) is not None] if verbose else []
    if wrote and _progress is None:
        reporter.say(
            f"[gpbo] files of {format_count(len(wrote), 'trial')} in {result.trials_dir}"
            f" (result.trial_dir(n) gives trial n's folder)"
        )
    return result


def _check_takes_one_dict(objective: Callable[..., Any], names: Sequence[str]) -> None:
    """Refuse an objective that cannot be called with one dict of parameters, before any
    trial: ``def train(lr, hidden)`` failed every trial with the same ``TypeError``."""
    try:
        signature = inspect.signature(objective)
    except (TypeError, ValueError):  # a builtin or an extension type: let it be called
        return
    try:
        signature.bind({})
    except TypeError as exc:
        name = getattr(objective, "__name__", None) or type(objective).__name__
        wrapper = ""
        if set(signature.parameters) & set(names):
            wrapper = (
                f", or wrap it: def objective(params): return {name}(**params) (each "
                "parameter of the space as a keyword)"
            )
        raise GpboError(
            f"the objective {name}{signature} cannot be called as {name}(params) ({exc}): "
            f"gpbo calls it with one dict of the trial's parameters, e.g. "
            f"{{{', '.join(f'{n!r}: ...' for n in names[:3])}{', ...' * (len(names) > 3)}}}; "
            f"write def {name}(params): and read params[...] inside{wrapper}"
        ) from None


def _check_grid_budget(study: Study, n_trials: int) -> int:
    """The trials the study will run: ``n_trials``, or a smaller grid's size (logged), so
    that the progress display counts to where the study ends. A grid runs in order, so a
    budget below its size covers a corner of the space: warned about."""
    from gpbo.strategies import Grid

    if not isinstance(study.strategy, Grid):
        return n_trials
    levels = study.strategy.levels
    size = study.space.grid_size(levels=levels)
    if size < n_trials and not study.trials and not study._queue:
        # (a resume's or an enqueued point may lie off the grid: those count n_trials)
        logger.info("the grid has %d points: the study ends after them (n_trials=%d)",
                    size, n_trials)
        return size
    if n_trials < size:
        # levels thin only the Reals (and log-scaled Ints): an Int's grid is every integer in
        # its range, so a wide one (hidden: Int(32, 512)) makes the grid whatever the levels
        counts = [
            (len(param.grid_values(levels)), name)
            for name, param in study.space.params.items()
            if isinstance(param, Int)
        ]
        wide = [(count, name) for count, name in counts if count > levels]
        shown = ""
        if wide:
            count, name = max(wide)
            shown = (
                f"; {name!r} alone gives {count} values (a grid takes every integer of an Int "
                "without log=True): list the values to try instead, as a Choice"
            )
        logger.warning(
            "the grid has %d points and n_trials=%d runs only the first %d, in order (the "
            "last parameter varies fastest, the first stays at its first values); raise "
            "n_trials, lower the grid's levels, or use strategy='sobol' or 'random' to spread "
            "a smaller budget over the space%s",
            size,
            n_trials,
            n_trials,
            shown,
        )
    return n_trials


def _warn_if_the_design_takes_the_budget(study: Study, n_trials: int, batch_size: int) -> None:
    """A GP strategy whose initial design is the whole budget is quasi-random search; the
    progress lines still say ``bayes`` (20 parameters and 30 trials: a design of 42)."""
    strategy = study.strategy
    if not isinstance(strategy, (Bayes, Gradient)):
        return
    finished = sum(t.finished for t in study.trials)
    if n_trials <= finished + len(study._queue):
        return  # the strategy proposes none: the trials are the enqueued points
    if strategy.n_init is not None:
        n_init, why = strategy.n_init, f"n_init={strategy.n_init}"
    else:
        n_init = default_n_init(study.space, batch_size)
        why = (
            f"its initial design, {n_init} quasi-random trials for {len(study.space)} "
            f"parameter{'' if len(study.space) == 1 else 's'}"
        )
    if n_trials <= n_init:
        logger.warning(
            "strategy %r fits its GP after %s, and n_trials=%d ends the study before then: "
            "every trial it proposes is quasi-random; raise n_trials above %d, or pass a "
            "smaller n_init (the GP wants a few points per parameter)",
            strategy.name, why, n_trials, n_init,
        )


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
        # as the study does when it stops for them (max_consecutive_failures=None runs on,
        # failing them for good); its driver was stopped first
        if study.journal_path is not None and settings.max_consecutive_failures is not None:
            reopened = study._reopen_unusable_failures()
            if reopened:
                line = (
                    f"trial{'' if len(reopened) == 1 else 's'} "
                    f"{', '.join(str(t.number) for t in reopened)} left no readable metric "
                    "and none completed, and the study was stopped before it reopened "
                    f"{'it' if len(reopened) == 1 else 'them'}: run again first"
                )
                self._say(line)
        self.finished = sum(t.finished for t in study.trials)
        self.running: dict[int, Trial] = {}
        self._pending: list[Trial] = []
        # counted on from a resumed journal: a run killed after four failures in a row and
        # resumed trained five more of them before the limit of five ended it
        self.consecutive_failures: list[Trial] = []
        for trial in sorted(
            (t for t in study.trials if t.finished), key=lambda t: t.finished_at or 0.0
        ):
            if trial.status == "complete":
                self.consecutive_failures.clear()
            else:
                self.consecutive_failures.append(trial)
        # the first trial that left no readable metric while none had completed: no new
        # trial starts until one completes, and the study ends once the running ones end
        self._unusable: Trial | None = None
        self._unusable_failed: list[Trial] = []  # while no trial has completed
        # max_consecutive_failures reached: no new trial starts, and the study ends with this
        # error once the running ones end, unless one of them completes (quick failures, a
        # diverged learning rate say, come in before a round's slow trainings)
        self._too_many_failures: StudyError | None = None
        self.stop_reason = ""
        self.signals = _StopSignals()
        self._warmed_up = False
        self._in_driver = executor.runs_in_driver
        self._command: CommandObjective | None = None
        self.deadline = None if settings.timeout is None else time.monotonic() + settings.timeout

    def run(self, objective: Callable[[dict[str, Any]], Any]) -> Result:
        # A trial "runs in the driver" (two driver deaths during it fail it for good) only if
        # its code does: a command objective's process is a child the driver outlives or kills
        self._in_driver = self.executor.runs_in_driver and not getattr(
            objective, "runs_in_child_process", False
        )
        # a command's log, named in its timeout's reason: the executor that stopped it
        # does not know where the command wrote (its other failures name the log themselves)
        from gpbo.command import CommandObjective

        self._command = objective if isinstance(objective, CommandObjective) else None
        self.reporter.start(
            strategy=self.study.strategy.name,
            slots=self.slots,
            resumed=self.finished,
            where=self.executor.describe(self.slots),
            timeout=self.settings.timeout,
        )
        self.reporter.seed_best(self.study.trials)
        if self._should_stop():
            # a resume whose n_trials are already finished: no worker to start (seconds each)
            if self.finished >= self.settings.n_trials:
                self.stop_reason = (
                    f"n_trials={self.settings.n_trials} already reached: the study has "
                    f"{format_count(self.finished, 'finished trial')}; raise n_trials to go on"
                )
            self.reporter.finish(self.study.trials, stop_reason=self.stop_reason)
            return self.study.result(stop_reason=self.stop_reason)
        with self.signals:
            try:
                self.executor.start(objective, slots=self.slots, metric=self.study.metric)
                # ray.init installs its own SIGTERM handler (sys.exit at once, inside the
                # sections that must not be cut): the study's stop signals are ours again
                self.signals.reclaim()
                if self.settings.batch_size == "auto":
                    # known only now: a Ray executor learns the cluster's size when it connects
                    self.settings = dataclasses.replace(
                        self.settings, batch_size=max(1, self.executor.free_slots)
                    )
                    logger.info("batch_size auto: %d", self.settings.batch_size)
                self._drive()
            except KeyboardInterrupt as exc:
                self._interrupt("the driver was stopped (Ctrl+C or SIGTERM)")
                self._hint_resume()
                self._attach_result(exc, "interrupted (Ctrl+C or SIGTERM)")
                raise
            except BaseException as exc:
                self._interrupt("the driver stopped on an error")
                self._attach_result(exc, _first_line(exc))
                raise
            finally:
                with self.signals.absorbed():
                    self.executor.shutdown()
        self.reporter.finish(self.study.trials, stop_reason=self.stop_reason)
        return self.study.result(stop_reason=self.stop_reason)

    def _attach_result(self, exc: BaseException, stop_reason: str) -> None:
        """Put the study's trials on ``exc.result``: without a journal the trials that
        completed live only here (a StudyError, a callback's own error, a Ctrl+C)."""
        if getattr(exc, "result", None) is None:
            with contextlib.suppress(AttributeError, TypeError):  # an exception without a dict
                exc.result = self.study.result(stop_reason=stop_reason)  # type: ignore[attr-defined]

    def _hint_resume(self) -> None:
        """One line saying how to resume (or how to make a study resumable)."""
        if self.reporter.resume_hint:
            hint = self.reporter.resume_hint
        elif self.study.journal_path:
            hint = (
                f"run the same call again with journal={str(self.study.journal_path)!r} to resume"
            )
        else:
            hint = "pass journal='path.jsonl' to make a study resumable"
        # through the reporter: a live display clears its status line first
        self.reporter.interrupted(hint)
        if not self.reporter.enabled:
            logger.warning("study interrupted; %s", hint)

    # -- driving ---------------------------------------------------------------------------
    def _drive(self) -> None:
        stopping = False
        while True:
            if not stopping:
                stopping = self._should_stop()
            if not stopping and self._launching():
                stopping = not self._launch()
                self._warm_up_strategy()
            if not self.running:
                if self._unusable is not None:
                    unusable = self._unusable_error()  # quotes the error, which reopening drops
                    self._reopen_unusable()
                    raise unusable
                if self._too_many_failures is not None:
                    raise self._too_many_failures
                if stopping or self.finished >= self.settings.n_trials:
                    break
                if self._pending or self.executor.free_slots <= 0:
                    self.executor.wait(timeout=0)  # an executor that knows why says so
                    raise StudyError(
                        "no slot of the executor can take a trial (none is running); see the "
                        "errors logged above"
                    )
                continue
            callback_error: BaseException | None = None
            outcomes = self.executor.wait(timeout=self._wait_timeout())
            stop_signal = self.signals.requested
            if stop_signal is not None and self._in_driver:
                # Ctrl+C reached an objective running here, which caught the KeyboardInterrupt
                # (Lightning's graceful shutdown returns the loss so far, or exits): its result
                # is cut short, so it runs again on resume
                outcomes = [
                    dataclasses.replace(o, status="interrupted", value=None, metrics={},
                                        error=None)
                    for o in outcomes
                ]
            ended: list[Trial] = []
            try:
                with self.signals.held():  # every outcome at hand is recorded before stopping
                    ended = [t for t in map(self._record_outcome, outcomes) if t is not None]
                if stop_signal is not None:  # swallowed where it was raised: still stops
                    raise KeyboardInterrupt(f"stopped by {signal.Signals(stop_signal).name}")
            except KeyboardInterrupt:
                # recorded, these count as finished on resume: shown and called back now, or
                # never (a new best missing from the display, a callback's log one short)
                self._after_trials_when_stopping(ended)
                raise
            # Only then the reports and callbacks: a callback that raises must not leave
            # another trial's result unrecorded (it would run again on resume).
            for trial in ended:
                try:
                    stop = self._after_trial(trial)
                except Exception as exc:
                    callback_error = callback_error or exc
                    continue
                stopping = stopping or stop
            if callback_error is not None:
                raise callback_error
            if not stopping and self._launching():
                # the rest of a round larger than the slots; a stopping study leaves it to
                # _interrupt below, which records it to run first on resume
                self._submit_pending()
            if self.deadline is not None and time.monotonic() >= self.deadline and self.running:
                self.stop_reason = self.stop_reason or (
                    f"the study timeout of {self.settings.timeout:g} s passed"
                )
                self._interrupt("the study timeout passed")
                stopping = True
        if self._pending:  # proposed, never started: run first when the study resumes
            self._interrupt("the study stopped before they started")
        if not self.stop_reason:
            self.stop_reason = f"{format_count(self.finished, 'trial')} finished"

    def _launching(self) -> bool:
        """Whether new trials may start: not while a study whose trials keep failing waits
        for its running ones (see ``_unusable`` and ``_too_many_failures``)."""
        return self._unusable is None and self._too_many_failures is None

    def _warm_up_strategy(self) -> None:
        """Load the GP machinery while the first trials run, once per study.

        The first GP fit of a study otherwise starts by importing botorch and scipy.stats and
        by torch loading its reference implementations on first use (about a second on two
        cores), with every slot idle in synchronous mode. Done only where the study will fit
        a GP.
        """
        if self._warmed_up or not self.running:
            return
        self._warmed_up = True
        if self.executor.runs_in_driver:
            # nothing runs beside it: it would only delay the trial marked as running in the
            # driver, so a driver killed meanwhile counted a death the objective never saw
            return
        strategy = self.study.strategy
        if not isinstance(strategy, (Bayes, Gradient)) or "botorch" in sys.modules:
            return
        n_init = strategy.n_init or default_n_init(self.study.space, self.settings.batch_size)
        if self.settings.n_trials <= n_init:
            return
        if self.deadline is not None and self.deadline - time.monotonic() < WARM_UP_MARGIN_S:
            # the loop cannot see the deadline while it imports: a study this short would end
            # late by the rest of the import
            return
        load_gp_machinery()

    def _should_stop(self) -> bool:
        if self.finished >= self.settings.n_trials:
            self.stop_reason = f"{format_count(self.finished, 'trial')} finished"
            return True
        if self.deadline is not None and time.monotonic() >= self.deadline:
            self.stop_reason = f"the study timeout of {self.settings.timeout:g} s passed"
            return True
        return False

    def _launch(self) -> bool:
        """Submit new trials where the mode allows; ``False`` once the space is used up.

        Synchronous mode asks for a whole round (``batch_size`` points, proposed jointly) once
        the previous round has ended, and runs it in waves where it exceeds the free slots. A
        resumed study first re-runs the interrupted trials by themselves, completing their
        round as the uninterrupted study did, so later rounds propose the same points.
        Asynchronous mode asks for as many points as there are free slots, the running trials
        being pending points.
        """
        remaining = self.settings.n_trials - self.finished - len(self.running) - len(self._pending)
        if remaining <= 0:
            return True
        if self.settings.mode == "sync":
            if self.running or self._pending:  # a round runs to its end before the next one
                return True
            n = min(self.settings.batch_size, remaining)
            reruns = self.study._reruns_waiting()
            if reruns:
                n = min(n, reruns)
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
            # A stop signal waits until the trial is both running and recorded as running.
            with self.signals.held():
                trial = self._pending[0]
                task = TrialTask(
                    number=trial.number,
                    params=dict(trial.params),
                    seed=trial.seed,
                    dir=str(self.study.trial_dir(trial)),
                    timeout=self.settings.trial_timeout,
                    receipt=(
                        self.study._new_receipt(trial) if self.executor.writes_receipts
                        else None
                    ),
                )
                device = self.executor.submit(task)
                self._pending.pop(0)
                self.running[trial.number] = trial
                self.study._mark_running(
                    trial, device=device, in_driver=self._in_driver, receipt=task.receipt
                )
            self.reporter.trial_started(trial)

    def _wait_timeout(self) -> float | None:
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.monotonic())

    def _finish(self, outcome: TrialOutcome) -> bool:
        """Record one outcome, then report it and run the callbacks (see :meth:`_after_trial`)."""
        trial = self._record_outcome(outcome)
        if trial is None:
            return False
        return self._after_trial(trial)

    def _record_outcome(self, outcome: TrialOutcome) -> Trial | None:
        """Tell the study how a running trial ended; ``None`` for a trial not running."""
        trial = self.running.get(outcome.number)
        if trial is None:
            logger.warning("ignoring an outcome for trial %d, which is not running", outcome.number)
            return None
        with self.signals.held():
            del self.running[outcome.number]
            trial.started_at = outcome.started_at or trial.started_at
            trial.device = outcome.device or trial.device
            if outcome.status == "complete":
                self.study.tell(trial, outcome.value, metrics=outcome.metrics)
            else:
                unusable = (
                    outcome.unusable
                    and self.settings.max_consecutive_failures is not None
                    and not any(t.status == "complete" for t in self.study.trials)
                )
                # marked in the journal: a driver stopped before the study ends reopens it
                # on resume (Study._reopen_unusable_failures)
                self.study._tell(trial, None, error=self._with_log(outcome, trial),
                                 status=outcome.status, metrics=None, unusable=unusable)
                # a killed worker (timeout, crash) could not remove the folder it made
                remove_if_empty(self.study.trial_dir(trial))
                if unusable:
                    self._unusable = self._unusable or trial
                    self._unusable_failed.append(trial)
            if outcome.finished_at is not None:
                trial.finished_at = outcome.finished_at
        return trial

    def _with_log(self, outcome: TrialOutcome, trial: Trial) -> str | None:
        """A timed-out command's reason, with where its output is."""
        if outcome.status != "timeout" or self._command is None:
            return outcome.error
        log = self._command.log_path(trial.number, self.study.trial_dir(trial))
        if not log.exists() or str(log) in (outcome.error or ""):
            return outcome.error
        return f"{outcome.error or 'the trial timed out'} (full output in {log})"

    def _after_trials_when_stopping(self, trials: Sequence[Trial]) -> None:
        """Report and call back trials recorded as a stop signal came; the study stops anyway,
        so a callback's error or stop request is only logged."""
        for trial in trials:
            try:
                self._after_trial(trial)
            except Exception:
                logger.exception(
                    "a callback failed on trial %d while the study was stopping", trial.number
                )

    def _after_trial(self, trial: Trial) -> bool:
        """Report a recorded trial, count failures in a row, run the callbacks.

        ``max_consecutive_failures`` failures in a row set the error that ends the study once
        the running trials end, unless one of them completes.

        Returns:
            Whether the study must stop launching trials.

        Raises:
            Exception: What a callback raised (other than :class:`StopStudy`).
        """
        if trial.status == "interrupted":
            return False
        self.finished += 1
        self.reporter.trial_finished(trial)
        stop = False
        if trial.status == "complete":
            self.consecutive_failures.clear()
            if self._too_many_failures is not None:
                self._say("a running trial completed after the failures in a row: going on")
            self._too_many_failures = None
            self._unusable = None  # the objective can give a metric: go on
            self._unusable_failed.clear()  # and those failures were their parameters' own
        else:
            # the progress display already shows the failure: a second copy through Python's
            # last-resort handler would only repeat it
            logger.log(
                logging.INFO if self.reporter.enabled else logging.WARNING,
                "trial %d %s: %s",
                trial.number,
                trial.status,
                error_summary(trial.error),
            )
            self.consecutive_failures.append(trial)
            limit = self.settings.max_consecutive_failures
            if limit is not None and len(self.consecutive_failures) >= limit:
                if self._too_many_failures is None and self.running:
                    self._say(
                        f"{len(self.consecutive_failures)} trials in a row failed: no new trial "
                        f"starts, and the study ends unless one of the "
                        f"{format_count(len(self.running), 'running trial')} completes"
                    )
                first = self.consecutive_failures[0]
                best = best_of(self.study.trials, self.study.direction)
                kept = (
                    "no trial completed"
                    if best is None
                    else f"best so far: trial {best.number}, value {best.value:g}, "
                    f"params {best.params}"
                )
                kept += (
                    f"; the journal {self.study.journal_path} keeps every trial, and a "
                    "resume counts the failed ones toward n_trials (a new journal starts over)"
                    if self.study.journal_path
                    else "; this error's .result holds the trials"
                )
                self._too_many_failures = StudyError(
                    f"{len(self.consecutive_failures)} trials in a row failed "
                    f"(max_consecutive_failures={limit}; {kept}); the first of them (trial "
                    f"{first.number}, params {first.params}) failed with:\n{first.error}"
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

    def _say(self, line: str) -> None:
        """A line on the progress display (or the log, without one)."""
        logger.info("%s", line)
        if self.reporter.enabled:
            self.reporter.say(f"[gpbo] {line}")

    def _reopen_unusable(self) -> None:
        """Record ``interrupted`` the trials that left no readable metric, none completed
        (with a journal: without one nothing resumes).

        They failed for the setup (the metric's key or format, the command line), so the run,
        once fixed and resumed, trains them again instead of counting them toward
        ``n_trials``.
        """
        if self.study.journal_path is not None:
            self.study._reopen_unusable_failures()  # the failures journaled with the mark

    def _unusable_error(self) -> StudyError:
        """The error that ends a study whose trials left no readable metric, none completed
        (see :meth:`_reopen_unusable`)."""
        trial = self._unusable
        assert trial is not None
        error = trial.error
        if self.study.journal_path is not None:
            kept = (
                f"the journal {self.study.journal_path} records "
                f"{format_count(len(self._unusable_failed), 'trial')} that failed so as "
                "interrupted, to run again when the study resumes"
            )
        else:
            kept = "this error's .result holds the trials"
        return StudyError(
            f"trial {trial.number} (params {trial.params}) left no metric gpbo can read"
            + (" (or its command line was refused)" if self._command is not None else "")
            + ", and no trial has completed, so every trial would most likely fail the same "
            f"way: the study stopped launching trials ({kept}); fix the "
            "objective and run again (or set max_consecutive_failures to None, null in a "
            f"config, to run on regardless). The trial failed with:\n{error}"
        )

    def _interrupt(self, why: str) -> None:
        """Stop running trials; record them (and any not yet started) as interrupted.

        Every trial of the study still pending or running afterwards is recorded as
        ``interrupted`` (also one an interrupted ``ask`` had just made), so that the journal
        never shows a trial running once the driver has stopped. Stop signals that arrive
        meanwhile are absorbed: this is the stopping.
        """
        with self.signals.absorbed():
            self._pending = []
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
                    try:
                        self._finish(outcome)
                    except Exception:
                        logger.exception("recording trial %d failed", outcome.number)
            self.running.clear()
            for trial in self.study.trials:
                if trial.status in ACTIVE_STATUSES:
                    self.study.tell(trial, status="interrupted")
        logger.info("running trials interrupted: %s", why)


def _exit_if_bootstrapping_worker() -> None:
    """In a spawned worker still importing a guard-less driver script: exit with a message."""
    try:
        from gpbo.executors.process import exit_if_bootstrapping_worker
    except ImportError:  # the process executor is optional in a minimal install
        return
    exit_if_bootstrapping_worker()


class _StopSignals:
    """While the loop runs, SIGINT (Ctrl+C) and SIGTERM stop the study as ``KeyboardInterrupt``.

    Installed on the main thread only, and only over Python's defaults (a handler of the
    user's own stays in place). Inside :meth:`held` sections, short steps that must not be cut
    in half (a trial handed to a worker but not yet recorded as running), the signal waits
    until the section ends.
    """

    _SIGNALS = ("SIGINT", "SIGTERM")

    def __init__(self) -> None:
        self._depth = 0
        self._held: int | None = None
        self._previous: dict[int, Any] = {}
        #: The stop signal received, kept: the code it was raised in may catch it.
        self.requested: int | None = None

    def __enter__(self) -> _StopSignals:
        if threading.current_thread() is not threading.main_thread():
            return self
        for name in self._SIGNALS:
            signum = getattr(signal, name, None)
            if signum is None:
                continue
            current = signal.getsignal(signum)
            if current in (signal.default_int_handler, signal.SIG_DFL):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        previous, self._previous = self._previous, {}
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    def reclaim(self) -> None:
        """Take back the signals this object handles that something replaced since (the
        executor's start); :meth:`__exit__` still restores the handlers from before."""
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in self._previous:
            if signal.getsignal(signum) != self._handle:
                replaced_by = signal.getsignal(signum)
                signal.signal(signum, self._handle)
                logger.debug("took back %s from %r", signal.Signals(signum).name, replaced_by)

    def _handle(self, signum: int, frame: object) -> None:
        self.requested = signum
        if self._depth:
            self._held = signum
            return
        raise KeyboardInterrupt(f"stopped by {signal.Signals(signum).name}")

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """A section a stop signal does not cut: it takes effect when the section ends."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if not self._depth and self._held is not None:
            signum, self._held = self._held, None
            raise KeyboardInterrupt(f"stopped by {signal.Signals(signum).name}")

    @contextlib.contextmanager
    def absorbed(self) -> Iterator[None]:
        """A section during which stop signals are noted and dropped (the study is stopping)."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._held is not None:
                logger.info("a stop signal arrived while the study was stopping; ignored")
                self._held = None
