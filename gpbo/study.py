"""The ask/tell study: the trials so far, pending ones, and the strategy that proposes more.

A :class:`Study` turns trials into the arrays a strategy works on (:class:`History`) and the
strategy's proposals back into trials. With a journal, every change of a trial is recorded
before the call returns, and opening an existing journal resumes the study.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import tempfile
import time
from collections import Counter, deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from glob import escape as glob_escape
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from gpbo.exceptions import (
    GpboError,
    SpaceError,
    SpaceExhausted,
    warn_at_caller,
)
from gpbo.executors.base import parse_objective_value
from gpbo.receipt import ReceiptBook
from gpbo.report import format_count
from gpbo.space import Space
from gpbo.strategies import History, Strategy, make_strategy, strategy_from_config
from gpbo.trial import (
    ACTIVE_STATUSES,
    BestTrialMixin,
    Direction,
    Result,
    Trial,
    no_completed_trial_error,
    usually_maximized,
)

__all__ = ["Study", "load"]

logger = logging.getLogger(__name__)


class Study(BestTrialMixin):
    """An optimization you drive yourself: ask for trials, run them, tell their results.

    Example:
        >>> study = gpbo.Study({"x": gpbo.Real(-5, 5)}, seed=0)
        >>> for trial in study.ask(4):
        ...     study.tell(trial, (trial.params["x"] - 1) ** 2)

    Args:
        space: The search space (a :class:`~gpbo.Space` or a mapping accepted by it).
        direction: ``"minimize"`` or ``"maximize"`` the value. ``None``: the journal's when
            it resumes one, else ``"minimize"`` (with a warning where ``metric`` names a score
            usually maximized, such as ``"val_acc"``).
        strategy: A strategy name (``"bayes"``, ``"random"``, ``"sobol"``, ``"grid"``,
            ``"gradient"``) or a configured :class:`~gpbo.strategies.Strategy`.
        n_init: Quasi-random trials before the GP (``bayes`` and ``gradient``); ``None``
            for the default ``2 (d + 1)`` rounded down to whole batches.
        seed: Seed of every random choice; ``None`` draws one (recorded in the journal).
        surrogate_device: Where the GP runs: ``"cpu"``, ``"cuda:N"``, or ``"auto"``: CUDA
            where available once the GP is large enough to gain from it, else the CPU
            (:data:`gpbo.surrogate.AUTO_CUDA_FROM`).
        journal: A JSON-lines file that records every trial; an existing one is resumed.
        metric: The name of the value: the key of the metric when :meth:`tell` gets a
            mapping, and what summaries and plots call it. ``None``: the journal's, else
            ``"value"``.
    """

    def __init__(
        self,
        space: Space | Mapping[str, Any],
        *,
        direction: Direction | None = None,
        strategy: str | Strategy = "bayes",
        n_init: int | None = None,
        seed: int | None = None,
        surrogate_device: str = "auto",
        journal: str | Path | None = None,
        metric: str | None = None,
    ) -> None:
        self.space = Space(space)
        if metric is not None and (not isinstance(metric, str) or not metric):
            raise GpboError(f"metric must be a non-empty string or None, got {metric!r}")
        self._metric_given = metric is not None
        self.metric: str = metric if metric is not None else "value"
        if direction not in ("minimize", "maximize", None):
            raise GpboError(
                f"direction must be 'minimize', 'maximize' or None, got {direction!r}"
            )
        self._direction_given = direction is not None
        self.direction: Direction = direction if direction is not None else "minimize"
        self._n_init = n_init  # for a strategy set later by name
        self._strategy = make_strategy(strategy, n_init=n_init)
        if isinstance(seed, np.integer):
            seed = int(seed)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise GpboError(f"seed must be a non-negative int or None, got {seed!r}")
        self._seed_given = seed is not None
        self.seed: int = seed if seed is not None else int(np.random.SeedSequence().entropy % 2**63)
        if not isinstance(surrogate_device, str):
            raise GpboError(f"surrogate_device must be a string, got {surrogate_device!r}")
        if surrogate_device != "auto":  # a bad name fails here, not at the first GP fit
            from gpbo.surrogate import resolve_device

            resolve_device(surrogate_device)
        self.surrogate_device = surrogate_device
        self._trials: list[Trial] = []
        self._encoded: dict[int, np.ndarray] = {}
        self._proposed: dict[int, dict[str, Any]] = {}  # each trial's params as handed out
        self._encoded_count: Counter[bytes] = Counter()  # how many trials sit at each point
        self._rows: _TrialRows | None = None  # the strategies' arrays, kept across asks
        self._queue: deque[dict[str, Any]] = deque()
        self._rerun: deque[int] = deque()
        self._asks = 0
        self._journal: Any = None
        self._unwritable: str | None = None  # why this study records nothing more, if so
        self._unrecorded_strategy: dict[str, Any] | None = None  # a resume's, until it asks
        self._tmp_dir: Path | None = None
        self._receipts: ReceiptBook | None = None  # with a journal (see gpbo.receipt)
        self._attempt_receipts: dict[int, str] = {}  # running trials' receipt names
        self._started_in_driver: set[int] = set()  # trials marked running in_driver=True
        # failures marked as for an unreadable metric (see _reopen_unusable_failures)
        self._unusable_failures: set[int] = set()
        if journal is not None and not isinstance(journal, (str, os.PathLike)):
            raise GpboError(
                f"journal must be a file path (str or pathlib.Path) or None, got {journal!r}"
            )
        # "~/runs/j.jsonl" as the shell would read it, not a folder named "~" in the cwd
        self.journal_path = Path(journal).expanduser() if journal is not None else None
        self._journal_absolute = None if journal is None else self.journal_path.absolute()
        self._resumed = False
        if self.journal_path is not None:
            self._open_journal(self.journal_path)
        if not self._direction_given and not self._resumed and usually_maximized(self.metric):
            warn_at_caller(
                f"metric {self.metric!r} is minimized (the default direction); if larger is "
                "better, pass direction='maximize' (direction='minimize' silences this)"
            )

    # -- ask/tell ------------------------------------------------------------------------
    @property
    def strategy(self) -> Strategy:
        """What proposes the next points. It may be replaced between asks, by a name or a
        :class:`~gpbo.strategies.Strategy` (as ``strategy=``, with the study's ``n_init``):
        with a journal, the switch is recorded at the next ask, as a resume's with another
        ``strategy=`` is."""
        return self._strategy

    @strategy.setter
    def strategy(self, strategy: str | Strategy) -> None:
        new = make_strategy(strategy, n_init=self._n_init)
        if self._journal is not None:
            config = _as_recorded(new)
            if config != _as_recorded(self._strategy):
                # the journal named the strategy of before: a resume warned of a switch
                # back, and `gpbo show` named the wrong one
                self._unrecorded_strategy = config
        self._strategy = new

    def ask(self, n: int = 1) -> list[Trial]:
        """``n`` new trials to evaluate, proposed jointly, knowing which are still pending.

        Interrupted trials come first (same number, parameters and round), then enqueued
        parameter sets, then the strategy's proposals. An ask that only hands back interrupted
        trials does not count as a round. A resumed seeded study proposes what the
        uninterrupted one would have only if the interrupted trials are asked for by
        themselves first (``ask(k)`` with ``k`` the trials whose status is ``"interrupted"``),
        as :func:`gpbo.optimize` does; asked together with new points, those new points are
        chosen with the re-runs pending and differ.

        Raises:
            SpaceExhausted: The strategy has no new point left (e.g. the grid is used up) and
                nothing else is waiting.
        """
        self._check_writable()
        if isinstance(n, np.integer):
            n = int(n)
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise GpboError(f"ask(n) needs a positive int, got {n!r}")
        round_ = self._asks
        n_rerun = min(len(self._rerun), n)
        queued = list(self._queue)[: n - n_rerun]
        # The strategy first, with the queued points it will sit beside as pending: if it
        # raises (a failed fit, Ctrl+C), no rerun or queued point has been taken yet.
        proposals: list[dict[str, Any]] = []
        if n_rerun + len(queued) < n:
            history = self._history(extra_pending=queued)
            proposals = self._checked(
                self.strategy.propose(history, n - n_rerun - len(queued))
            )
        if self._unrecorded_strategy is not None:
            self._append_event({"event": "study", "kind": "strategy", "time": time.time(),
                                "strategy": self._unrecorded_strategy})
            self._unrecorded_strategy = None
        out: list[Trial] = []
        for _ in range(n_rerun):
            trial = self._trials[self._rerun.popleft()]
            trial.status, trial.error = "pending", None
            trial.started_at = trial.finished_at = None
            self._record(trial)
            out.append(trial)
        reruns = len(out)
        for _ in queued:
            out.append(self._new_trial(self._queue[0], round_, dequeued=True))
            self._queue.popleft()
        for params in proposals:
            if self._is_seen(params):
                logger.warning(
                    "strategy %s proposed a seen point %s; skipped", self.strategy.name, params
                )
                continue
            out.append(self._new_trial(params, round_))
        if not out:
            raise SpaceExhausted(
                f"strategy {self.strategy.name!r} has no new point left after "
                f"{len(self._trials)} trials"
                + (" (the grid is used up)" if self.strategy.name == "grid" else "")
            )
        if len(out) > reruns:
            self._asks += 1
        return out

    def _checked(self, proposals: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The strategy's points, checked against the space before anything is recorded."""
        try:
            return [self.space.check(params) for params in proposals]
        except SpaceError as exc:  # a user's strategy: say whose point it is
            raise SpaceError(
                f"strategy {self.strategy.name!r} proposed a point outside the space: {exc}"
            ) from exc

    def tell(
        self,
        trial: Trial | int,
        value: Any = None,
        *,
        error: str | BaseException | None = None,
        status: Literal["complete", "failed", "timeout", "interrupted"] | None = None,
        metrics: Mapping[str, float] | None = None,
    ) -> Trial:
        """Record how a trial ended.

        A trial asked before the study was reopened (``interrupted``, waiting to run again)
        may still be told: its result came back after a restart.

        Args:
            trial: The trial (or its number) from :meth:`ask`. Its ``params`` must be as
                :meth:`ask` handed them out (copy them before changing them).
            value: The metric, or a mapping of the metric (key :attr:`metric`, by default
                ``"value"``) and extra numbers. NaN, infinity, ``None`` or a non-number fails
                the trial with the reason.
            error: Marks the trial failed with this message (or exception); not with a
                ``value``.
            status: ``"timeout"`` or ``"interrupted"`` to record those endings; default
                ``complete``, or ``failed`` with an ``error``.
            metrics: Extra numbers to keep with the trial.

        Returns:
            The updated trial.
        """
        return self._tell(trial, value, error=error, status=status, metrics=metrics,
                          unusable=False)

    def _tell(
        self,
        trial: Trial | int,
        value: Any,
        *,
        error: str | BaseException | None,
        status: str | None,
        metrics: Mapping[str, float] | None,
        unusable: bool,
    ) -> Trial:
        """:meth:`tell`; ``unusable`` marks a failure as one for an unreadable metric while no
        trial had completed (the loop's: see :meth:`_reopen_unusable_failures`)."""
        self._check_writable()
        target = self._get(trial)
        if isinstance(value, BaseException):
            raise GpboError(
                f"trial {target.number}: tell() got an exception as the value; a failed trial's "
                "error goes in error=: study.tell(trial, error=exc)"
            )
        if error is not None and value is not None:
            raise GpboError(
                f"trial {target.number}: tell() got both a value and an error; a failed trial "
                "has no value (study.tell(trial, error=...)), a complete one no error "
                "(study.tell(trial, value))"
            )
        if status not in (None, "complete", "failed", "timeout", "interrupted"):
            raise GpboError(
                f"trial {target.number}: tell() got status={status!r}; give 'complete', "
                "'failed', 'timeout' or 'interrupted'"
            )
        if error is not None and status == "complete":
            raise GpboError(
                f"trial {target.number}: tell() got an error with status='complete'; a trial "
                "with an error failed: study.tell(trial, error=...) without the status"
            )
        if value is not None and status in ("failed", "timeout", "interrupted"):
            raise GpboError(
                f"trial {target.number}: tell() got a value with status={status!r}; a trial "
                f"recorded {status} has no value: study.tell(trial, status={status!r}) without "
                "it, or study.tell(trial, value) for a complete one"
            )
        late = self._check_still_open(target, "tell each trial once")
        self._check_params_unchanged(target)
        extra_metrics = _checked_metrics(metrics, trial=target.number)
        if isinstance(value, Mapping):
            twice = sorted(set(map(str, value)) & set(extra_metrics))
            if twice:
                raise GpboError(
                    f"trial {target.number}: {twice} given both in the value mapping and in "
                    "metrics=; give each once"
                )
        with self._undone_on_error(target):
            if late:
                self._rerun.remove(target.number)
            self._update(target, value, error=error, status=status, metrics=extra_metrics)
            unusable = unusable and target.status == "failed"
            self._record(target, extra={"unusable": True} if unusable else None)
        if unusable:
            self._unusable_failures.add(target.number)
        receipt = self._attempt_receipts.pop(target.number, None)
        if receipt is not None and self._receipts is not None:  # journaled: its work is done
            self._receipts.discard(receipt)
        return target

    def _check_still_open(self, target: Trial, hint: str) -> bool:
        """Refuse a trial that has ended; ``True`` where it is an interrupted one waiting to
        run again, which may still report (a cluster job asked before a restart went on)."""
        late = target.status == "interrupted" and target.number in self._rerun
        if target.status not in ACTIVE_STATUSES and not late:
            raise GpboError(f"trial {target.number} has already ended ({target.status}); {hint}")
        return late

    @contextlib.contextmanager
    def _undone_on_error(self, target: Trial) -> Iterator[None]:
        """Leave ``target`` and the re-run queue as they were if the body raises.

        The journal did not take the change (or it was refused): memory and journal must
        agree, so that a resume sees what this study sees.
        """
        saved = Trial.from_dict(target.to_dict())
        rerun_saved = list(self._rerun)
        try:
            yield
        except BaseException:
            target.__dict__.update(saved.__dict__)
            self._rerun.clear()
            self._rerun.extend(rerun_saved)
            raise

    def _check_params_unchanged(self, target: Trial) -> None:
        """Refuse a trial whose ``params`` dict was edited after :meth:`ask` handed it out.

        ``trial.params`` is the study's own record: an edit (a key added, a value changed)
        would go into the journal and the results while the model kept the point proposed.
        """
        try:
            same = set(target.params) == set(self.space.names) and bool(
                np.array_equal(self.space.encode([target.params])[0], self._encoded[target.number])
            )
        except Exception:
            same = False
        if not same:
            proposed = dict(self._proposed[target.number])
            target.params.clear()
            target.params.update(proposed)
            raise GpboError(
                f"trial {target.number}'s params were changed after ask(); they are the study's "
                f"record of the point it proposed, now put back to {proposed}. Copy them before "
                "changing them: params = dict(trial.params)"
            )

    def _update(
        self,
        target: Trial,
        value: Any,
        *,
        error: str | BaseException | None,
        status: str | None,
        metrics: dict[str, float],
    ) -> None:
        """Apply a :meth:`tell` to the trial in memory."""
        now = time.time()
        never_started = target.status == "pending" and target.started_at is None
        if not (status == "interrupted" and never_started):  # it has no start, nor duration
            target.started_at = target.started_at or now
            target.finished_at = now
        target.metrics.update(metrics)
        if status == "interrupted":
            target.status = "interrupted"
            self._rerun.append(target.number)
        elif status == "timeout":
            target.status, target.error = "timeout", str(error or "the trial timed out")
        elif error is not None or status == "failed":
            target.status = "failed"
            target.error = _error_text(error) if error is not None else "failed"
        else:
            try:
                number, extras = parse_objective_value(
                    value,
                    metric=self.metric,
                    metric_hint="pass the metric as value and the rest as tell(..., metrics=)",
                    source="tell() got",  # no objective here: the caller's own value
                    verb="pass",
                    trial=target.number,
                )
            except ValueError as exc:
                # recorded, as optimize() records such a return; but said, since in an ask/tell
                # loop it is as often a slip of the caller's (a str, a list) as a diverged run
                logger.warning("trial %d is recorded failed: %s", target.number, exc)
                target.status, target.error = "failed", str(exc)
            else:
                target.status, target.value = "complete", number
                target.metrics.update(extras)

    def _reopen(self, trial: Trial) -> None:
        """Record a failed trial ``interrupted``, to run again first on resume (for the loop:
        it failed for the study's setup, such as an unreadable metric, not its parameters)."""
        self._check_writable()
        target = self._get(trial)
        if target.status != "failed":
            raise GpboError(f"trial {target.number} is {target.status}; only a failed one reopens")
        with self._undone_on_error(target):
            target.status, target.error = "interrupted", None
            self._rerun.append(target.number)
            self._record(target, extra={"reopened": True})
        self._unusable_failures.discard(target.number)
        self._rows = None  # rebuilt: the kept arrays take trials as they end, not reopen

    def _reopen_unusable_failures(self) -> list[Trial]:
        """Reopen (see :meth:`_reopen`) the trials that failed for an unreadable metric, where
        no trial has completed; returns them.

        The loop ends a study whose first results are unusable, and reopens those trials once
        the running ones end. A driver stopped before that (Ctrl+C, ``kill -9``) leaves them
        failed in the journal, with a mark: a resume reopens them here, so they neither use
        up ``n_trials`` nor stay failed for the setup rather than their parameters.
        """
        reopened = self._unusable_failures_to_reopen()
        for trial in reopened:
            self._reopen(trial)
        return reopened

    def _unusable_failures_to_reopen(self) -> list[Trial]:
        """The trials :meth:`_reopen_unusable_failures` reopens, left as they are."""
        if any(t.status == "complete" for t in self._trials):
            return []  # the objective can give a metric: those failures were their own
        return [
            self._trials[number]
            for number in sorted(self._unusable_failures)
            if self._trials[number].status == "failed"
        ]

    def _reruns_waiting(self) -> int:
        """How many interrupted trials the next asks hand back first (for the loop)."""
        return len(self._rerun)

    def mark_running(
        self, trial: Trial | int, *, device: Any = None, in_driver: bool = False
    ) -> Trial:
        """Record that a trial started on ``device`` (the loop calls this; optional in ask/tell).

        Args:
            trial: The trial (or its number).
            device: Where it runs: a name such as ``"cuda:0"``, or a ``torch.device`` (kept
                as its name).
            in_driver: It runs in this (the driver's) process, so a crash of the objective
                kills the driver: a resume runs such a trial again once, and fails it when the
                driver died during it a second time (else every resume would crash on it). A
                trial still running when the study closes (the end of its ``with`` block,
                Ctrl+C) is recorded ``interrupted`` instead: that driver did not die.
        """
        # gpbo.device() gives a torch.device, which the journal's JSON could not hold
        name = None if device is None else str(device)
        return self._mark_running(trial, device=name, in_driver=in_driver, receipt=None)

    def _mark_running(
        self, trial: Trial | int, *, device: str | None, in_driver: bool, receipt: str | None
    ) -> Trial:
        """:meth:`mark_running`, for an attempt whose worker leaves its outcome at
        ``receipt`` (from :meth:`_new_receipt`; the loop's process executor)."""
        self._check_writable()
        target = self._get(trial)
        late = self._check_still_open(target, "mark_running() is for a trial asked, not told")
        extra: dict[str, Any] = {"in_driver": True} if in_driver else {}
        if receipt is not None:
            extra["receipt"] = Path(receipt).name  # beside the journal wherever it moves
        with self._undone_on_error(target):
            if late:  # started where it was asked before a restart: not the next ask's now
                self._rerun.remove(target.number)
            target.status, target.device, target.started_at = "running", device, time.time()
            self._record(target, extra=extra or None)
        if receipt is not None:
            self._attempt_receipts[target.number] = extra["receipt"]
        else:
            self._attempt_receipts.pop(target.number, None)
        if in_driver:
            self._started_in_driver.add(target.number)
        else:
            self._started_in_driver.discard(target.number)
        return target

    def enqueue(self, params: Mapping[str, Any], *, skip_if_seen: bool = True) -> bool:
        """Evaluate ``params`` next, before any proposal of the strategy.

        A point already queued, or already a trial (whatever its status), is not queued again:
        a script that enqueues its known configurations and runs again on its journal (a
        resume) trained them once more each time.

        Args:
            params: A value for every parameter of the space.
            skip_if_seen: ``False`` queues ``params`` even so (a repeat measurement of a noisy
                objective).

        Returns:
            Whether ``params`` was queued.

        Raises:
            SpaceError: ``params`` does not fit the space.
        """
        self._check_writable()
        checked = self.space.check(params)
        if skip_if_seen:
            key = _point_key(self.space.encode([checked])[0])
            queued = (
                {_point_key(row) for row in self.space.encode(list(self._queue))}
                if self._queue
                else set()
            )
            if key in self._encoded_count or key in queued:
                number = next(
                    (n for n, row in self._encoded.items() if _point_key(row) == key), None
                )
                logger.info(
                    "enqueue: %s is already %s; not queued again (skip_if_seen=False queues it)",
                    checked,
                    "queued" if number is None else f"trial {number}",
                )
                return False
        self._queue.append(checked)
        self._append_event({"event": "study", "kind": "enqueue", "params": checked})
        return True

    def add(
        self, params: Mapping[str, Any], value: Any, *, metrics: Mapping[str, float] | None = None
    ) -> Trial:
        """Record a result obtained elsewhere (e.g. an earlier study) as a complete trial.

        Raises:
            GpboError: ``value`` is not a finite number (or a mapping holding one under
                :attr:`metric`); nothing is recorded.
        """
        self._check_writable()
        try:
            parse_objective_value(
                value,
                metric=self.metric,
                metric_hint="give the metric as value",
                source="the value given is",  # add() calls no objective
                verb="give",
            )
        except ValueError as exc:
            raise GpboError(f"add() records a complete trial, and {exc}") from None
        trial = self._new_trial(self.space.check(params), None, record=False)
        try:
            return self.tell(trial, value, metrics=metrics)
        except BaseException:
            # not journaled: a later trial would take the next number and the journal could
            # not be resumed
            self._trials.pop()
            self._forget_point(trial.number)
            raise

    # -- results -------------------------------------------------------------------------
    @property
    def trials(self) -> list[Trial]:
        """Every trial, in number order."""
        return list(self._trials)

    @property
    def best_trial(self) -> Trial:
        """The complete trial with the best value.

        Raises:
            NoCompletedTrialError: No trial has completed yet.
        """
        # from the kept arrays, not best_of's loop over every trial: a callback reading it
        # after each trial made a long study of cheap trials quadratic
        number = self._trial_rows().best_number()
        if number is None:
            raise no_completed_trial_error(self._trials)
        return self._trials[number]

    def result(self, *, stop_reason: str = "") -> Result:
        """The study's trials as a :class:`~gpbo.Result`."""
        return Result(
            self._trials, direction=self.direction, stop_reason=stop_reason, seed=self.seed,
            space=self.space, metric=self.metric, trials_dir=self._trials_base(create=False),
        )

    def trial_dir(self, trial: Trial | int) -> Path:
        """The trial's own directory: beside the journal, else under a temporary directory.

        A re-run of an interrupted trial gets the same directory.
        """
        number = trial.number if isinstance(trial, Trial) else int(trial)
        base = self._trials_base(create=True)
        assert base is not None
        return base / f"{number:06d}"

    def _new_receipt(self, trial: Trial) -> str | None:
        """A receipt path for the attempt of ``trial`` about to start, for the executor and
        :meth:`_mark_running`; ``None`` without a journal (nothing would resume)."""
        if self._receipts is None or self._journal is None:
            return None
        return str(self._receipts.new_path(trial.number))

    def _trials_base(self, *, create: bool) -> Path | None:
        """The folder of the trials' directories; ``None`` for a study without a journal
        whose trials have had none yet (and ``create`` false)."""
        if self.journal_path is not None:
            # absolute, from where the study was opened: a worker with another current
            # directory (Ray's runtime_env working_dir, a serial objective's chdir) would
            # otherwise put its files elsewhere, where a re-run would not find them
            journal = self._journal_absolute or self.journal_path.absolute()
            return journal.with_name(journal.stem + ".trials")
        if self._tmp_dir is None and create:
            self._tmp_dir = Path(tempfile.mkdtemp(prefix="gpbo-study-"))
        return self._tmp_dir

    def _refuse_a_shared_trials_folder(self, base: Path) -> None:
        """Refuse a new journal whose trials folder another journal beside it has already.

        ``exp.jsonl`` and ``exp`` (or ``exp.json``) in one folder both have ``exp.trials``,
        and their locks (by full file name) do not meet: a trial found the other study's
        files (a checkpoint to resume from) and a resume's sweep of receipts deleted the
        other's, so a trial it had finished ran again. Checked for a new journal only: an
        existing one resumes beside a copy of it (``cp exp.jsonl exp.bak``).

        Raises:
            JournalError: A gpbo journal of the same stem lies beside this one.
        """
        from gpbo.journal import JournalError, is_journal_file

        assert self.journal_path is not None
        name = self.journal_path.name
        stem = Path(name).stem
        other = next(
            (
                p.name for p in sorted(base.parent.glob(glob_escape(stem) + "*"))
                if p.name != name and p.stem == stem and is_journal_file(p)
            ),
            None,
        )
        if other is not None:
            raise JournalError(
                f"the journals {name!r} and {other!r} in {base.parent} would share the trials "
                f"folder {base.name} (a trial would find the other study's files, and a resume "
                "would delete the records the other's resume needs); name this journal "
                f"differently before its extension, e.g. {stem + '_2' + Path(name).suffix!r}"
            )

    def _move_aside_a_gone_study_s_trials(self, base: Path) -> None:
        """Move aside the trials folder a new journal finds full: an earlier study's, whose
        journal was deleted to start over (its trial 0 files met the new trial 0)."""
        if not base.is_dir() or not any(base.iterdir()):
            return
        aside = next(
            base.with_name(f"{base.name}.old{i}") for i in range(1, 10**6)
            if not base.with_name(f"{base.name}.old{i}").exists()
        )
        base.rename(aside)
        logger.warning(
            "the trials folder %s held the trials of an earlier study whose journal is gone; "
            "moved to %s, so that this study's trials do not find its files (delete it if "
            "they are not needed)", base, aside,
        )

    def close(self) -> None:
        """Release the journal (and its lock). The study stays readable.

        Without a journal, the temporary folder of the trials' directories is removed if no
        trial wrote anything there (one that did is kept, and its path logged).
        """
        if self._journal is not None:
            self._interrupt_started_in_driver()
            if self._receipts is not None:
                self._receipts.tidy()  # empty once every outcome is journaled
            self._journal.close()
            self._journal = None
            self._unwritable = (
                f"the study's journal {self.journal_path} was closed (close() or the end of its "
                "`with` block), so this would not be recorded; open it again to go on: "
                "gpbo.Study(space, journal=path)"
            )
        if self._tmp_dir is not None:
            folder, self._tmp_dir = self._tmp_dir, None
            if _only_empty_folders(folder):
                shutil.rmtree(folder, ignore_errors=True)
            else:
                logger.info("the trials' files are kept in %s", folder)

    def _interrupt_started_in_driver(self) -> None:
        """Record ``interrupted`` the trials still running in this process as it closes.

        A closing driver (the end of a ``with`` block, Ctrl+C) did not die: left ``running``,
        such a trial counted as a death on resume, and a second Ctrl+C failed it for good.
        """
        for number in sorted(self._started_in_driver):
            trial = self._trials[number]
            if trial.status != "running":
                continue
            trial.status = "interrupted"
            try:
                self._record(trial, extra={"closed": True})
            except Exception as exc:  # a resume then counts it as a death, as before
                logger.warning("could not record trial %d as interrupted: %s", number, exc)
        self._started_in_driver.clear()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # at interpreter exit modules may be gone
            self.close()

    def __enter__(self) -> Study:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"Study(params={self.space.names}, direction={self.direction!r}, "
            f"strategy={self.strategy.name!r}, trials={len(self._trials)})"
        )

    # -- internals -----------------------------------------------------------------------
    def _get(self, trial: Trial | int) -> Trial:
        if isinstance(trial, (list, tuple)):
            raise GpboError(
                f"expected one trial (or its number), got a {type(trial).__name__} of "
                f"{len(trial)}; ask() returns a list: `trial, = study.ask()` or "
                "`for trial in study.ask(n):`"
            )
        number = trial.number if isinstance(trial, Trial) else trial
        if isinstance(number, np.integer):
            number = int(number)
        if (
            isinstance(number, bool)
            or not isinstance(number, int)
            or not (0 <= number < len(self._trials))
        ):
            raise GpboError(f"no trial {number!r} in this study ({len(self._trials)} trials)")
        stored = self._trials[number]
        if isinstance(trial, Trial) and trial is not stored and trial.params != stored.params:
            raise GpboError(
                f"the trial passed is number {number} with params {trial.params}, but this "
                f"study's trial {number} has {stored.params}: is it from another study, or "
                "were its params changed? Copy them before changing them: dict(trial.params)"
            )
        return stored

    def _new_trial(
        self,
        params: dict[str, Any],
        round_: int | None,
        *,
        dequeued: bool = False,
        record: bool = True,
    ) -> Trial:
        number = len(self._trials)
        seed = int(np.random.SeedSequence(self.seed, spawn_key=(number, 7)).generate_state(1)[0])
        trial = Trial(number=number, params=params, round=round_, seed=seed)
        encoded = self.space.encode([params])[0]
        # The journal first: a trial it did not take (a failed write) must not exist. A stop
        # signal as the line was being written (in fsync, say) leaves one the journal may
        # hold, so the study keeps it and the stop records it interrupted: a pending trial
        # outlived the driver's clean exit.
        failed = False
        try:
            if record:
                self._record(trial, dequeued=dequeued)
        except Exception:
            failed = True
            raise
        finally:
            if not failed:
                self._trials.append(trial)
                self._remember_point(number, params, encoded)
        return trial

    def _remember_point(self, number: int, params: dict[str, Any], encoded: np.ndarray) -> None:
        self._encoded[number] = encoded
        self._proposed[number] = dict(params)
        self._encoded_count[_point_key(encoded)] += 1

    def _forget_point(self, number: int) -> None:
        key = _point_key(self._encoded.pop(number))
        del self._proposed[number]
        self._encoded_count[key] -= 1
        if not self._encoded_count[key]:
            del self._encoded_count[key]

    def _is_seen(self, params: dict[str, Any]) -> bool:
        # a lookup, not a scan of every trial: asked one at a time, the scan made each ask
        # cost a few ms more per thousand trials
        return _point_key(self.space.encode([params])[0]) in self._encoded_count

    def _history(self, *, extra_pending: Sequence[Mapping[str, Any]] = ()) -> History:
        rows = self._trial_rows()
        X_pending = rows.pending()
        if extra_pending:
            X_pending = np.vstack([X_pending, self.space.encode([dict(p) for p in extra_pending])])
        return History(
            space=self.space,
            X=rows.complete(),
            scores=rows.scores(),
            X_failed=rows.failed(),
            X_pending=X_pending,
            params_seen=tuple(self._proposed.values()),
            n_total=len(self._trials) + len(extra_pending),  # as if queued trials existed
            seed=self.seed,
            surrogate_device=self.surrogate_device,
            first_round_size=rows.first_round_size,
        )

    def _trial_rows(self) -> _TrialRows:
        """The kept arrays of the trials, brought up to date."""
        if self._rows is None:
            sign = -1.0 if self.direction == "minimize" else 1.0
            self._rows = _TrialRows(self.space.n_columns, sign=sign)
        self._rows.update(self._trials, self._encoded)
        return self._rows

    # -- journal -------------------------------------------------------------------------
    def _header(self) -> dict[str, Any]:
        return {
            "space": self.space.to_dict(),
            "direction": self.direction,
            "strategy": self.strategy.config(),
            "seed": self.seed,
            "metric": self.metric,
        }

    def _adopt_stored_order(self, stored_space: Any) -> None:
        """Order the space's parameters as the journal does, where both have the same names.

        The order sets the unit-cube columns, so a resume with the parameters written in
        another order would see the GP's inputs permuted and propose other points than the
        uninterrupted run. A space that differs in more than order is left for the header
        comparison to refuse.
        """
        if not isinstance(stored_space, dict):
            return
        names = list(stored_space)
        if names != self.space.names and sorted(names) == sorted(self.space.names):
            self.space = Space({name: self.space[name] for name in names})

    def _open_journal(self, path: Path) -> None:
        from gpbo.journal import Journal, JournalContents, JournalError, JournalMismatchError

        if path.is_dir():
            raise JournalError(
                f"journal {path} is a directory; give a file path in it, e.g. "
                f"{path / 'journal.jsonl'}"
            )

        def header_for(stored: JournalContents | None) -> dict[str, Any]:
            if stored is not None and not self._seed_given and "seed" in stored.header:
                self.seed = int(stored.header["seed"])  # resume the recorded random streams
            self._resumed = stored is not None
            stored_direction = None if stored is None else stored.header.get("direction")
            if not self._direction_given and stored_direction in ("minimize", "maximize"):
                self.direction = stored_direction
            if stored is not None:
                stored_space.update(stored.header.get("space") or {})
                self._adopt_stored_order(stored.header.get("space"))
                if not self._metric_given:
                    self.metric = recorded_metric(stored.header, stored.events)
            return self._header()

        trials_base = self._trials_base(create=False)
        assert trials_base is not None  # there is a journal
        if not path.is_file() or path.stat().st_size == 0:  # a new study, before it is made
            self._refuse_a_shared_trials_folder(trials_base)
        stored_space: dict[str, Any] = {}
        keys = ("space",) + ("direction",) * self._direction_given + ("seed",) * self._seed_given
        try:
            self._journal, events = Journal.open(path, header=header_for, compare=keys)
        except JournalMismatchError as exc:
            if "space" not in exc.keys:
                raise
            # widening a range whose best trial sits at its edge is the usual next step
            added = [name for name in self.space.names if name not in stored_space]
            params = "t.params"
            if any(name not in self.space.names for name in stored_space):
                params = "{k: v for k, v in t.params.items() if k in new.space.names}"
            if added:
                # the old trials have no value for it: add() refuses them as they are
                params = "{**" + params + ", " + ", ".join(f"{n!r}: VALUE" for n in added) + "}"
            # this call's settings: a later optimize(..., journal=NEW_PATH) with them resumes
            # it (a Study's defaults, minimize and a random seed, would be refused there)
            settings = f"direction={self.direction!r}"
            if self.metric != "value":
                settings += f", metric={self.metric!r}"
            if self._seed_given:
                settings += f", seed={self.seed!r}"
            if self.strategy.name != "bayes":
                settings += f", strategy={self.strategy.name!r}"
            # optimize's warm_start does it in one argument, but an added parameter has no
            # value in the old trials: those need the recipe's VALUE
            easier = (
                "" if added else f"optimize(..., journal=NEW_PATH, warm_start={str(path)!r}); "
                "or by hand: "
            )
            raise JournalMismatchError(
                f"{exc}; or, to search the new space and keep what this study learned, give a "
                f"new journal and add the complete trials that lie in the new space: {easier}"
                f"new = gpbo.Study(space, journal=NEW_PATH, {settings}), then "
                f"new.add({params}, t.value, metrics=t.metrics) "
                f"for each t in gpbo.load({str(path)!r}).trials whose status is 'complete' "
                + (f"(VALUE: what the old trials ran {', '.join(map(repr, added))} at) "
                   if added else "")
                + "(a later optimize(..., journal=NEW_PATH) resumes from them)",
                keys=exc.keys,
            ) from None
        if not events:
            self._move_aside_a_gone_study_s_trials(trials_base)
        self._receipts = ReceiptBook(trials_base / ".receipts")
        try:
            self._replay(events)
            recorded = recorded_strategy(self._journal.header, events)
            current = _as_recorded(self.strategy)
            if events and recorded != current:
                # a resume may switch strategies (e.g. random -> bayes); recorded so that
                # summaries and `gpbo show` name the one now proposing, once it proposes: a
                # study opened to look (with the default strategy) leaves the record alone
                _warn_strategy_changed(path, recorded, current)
                self._unrecorded_strategy = current
            stored_metric = recorded_metric(self._journal.header, events)
            if stored_metric != self.metric:
                self._refuse_a_metric_recorded_beside(stored_metric, path)
                # a renamed key in the objective's return, say: the values go on, under the
                # name now given, which summaries of the journal take from here on
                # a journal from before the metric was recorded says nothing to differ from
                known = "metric" in self._journal.header or any(
                    event.get("kind") == "metric" for event in events
                )
                if known and any(event.get("event") == "trial" for event in events):
                    warn_at_caller(
                        f"resuming the study of {path} with metric {self.metric!r} where it "
                        f"recorded {stored_metric!r}; the trials so far keep their values, and "
                        "summaries call them by the new name"
                    )
                self._append_event(
                    {"event": "study", "kind": "metric", "time": time.time(),
                     "metric": self.metric}
                )
        except BaseException:
            # release the lock: a retry in this process (after repairing the file) must not
            # find the journal held by itself
            self._journal.close()
            self._journal = None
            raise

    def _refuse_a_metric_recorded_beside(self, stored_metric: str, path: Path) -> None:
        """Refuse a resume whose new metric the trials so far recorded beside their values.

        A metric renamed in the objective's return goes on under the new name; but where the
        trials also returned the new one, their values are another quantity (a loss where
        the accuracy is now asked for), and the GP would fit the two as one.
        """
        from gpbo.journal import JournalMismatchError

        beside = [t.number for t in self._trials if self.metric in (t.metrics or {})]
        if beside:
            shown = ", ".join(map(str, beside[:5])) + (", ..." if len(beside) > 5 else "")
            raise JournalMismatchError(
                f"{path} records {stored_metric!r} as the trials' value, and {self.metric!r} "
                f"beside it (trial {shown}): optimizing {self.metric!r} now would fit the GP "
                f"to two quantities as one; resume with metric={stored_metric!r}, or give "
                f"another journal path for a study of {self.metric!r}"
            )

    def _replay(self, events: Sequence[Mapping[str, Any]]) -> None:
        """Resume from journal events: trials that were running are run again first.

        A trial that ran in the driver's process when the driver died twice is failed instead
        (see :meth:`mark_running`): its objective most likely killed the process.
        """
        self._fold_events(events)
        starts = _last_starts(events)
        recovered = 0
        for trial in self._trials:
            receipt = starts.receipts.get(trial.number) if trial.status == "running" else None
            if receipt is not None and self._record_from_receipt(trial, receipt):
                recovered += 1
            elif trial.status == "running" and trial.number in starts.in_driver:
                if starts.deaths.get(trial.number, 0) + 1 >= _DRIVER_DEATHS_TO_FAIL:
                    trial.status, trial.finished_at = "failed", time.time()
                    trial.error = (
                        f"the driver process died each of the {_DRIVER_DEATHS_TO_FAIL} times "
                        "this trial ran in it (os._exit, a crash in native code, or the "
                        "out-of-memory killer?); it is not run again. Run trials in worker "
                        'processes (executor="process") so that a crash fails only its trial. '
                        "Where the driver was killed from outside (kill -9, a preempted job), "
                        "the trial is not to blame: study.enqueue(params, skip_if_seen=False) "
                        "runs its parameters again"
                    )
                    logger.warning("trial %d: %s", trial.number, trial.error)
                    self._record(trial)
                    continue
                trial.status = "interrupted"
                self._record(trial, extra={"driver_died": True})
                self._rerun.append(trial.number)
            elif trial.status in ("pending", "running", "interrupted"):
                if trial.status != "interrupted":
                    trial.status = "interrupted"
                    self._record(trial)
                self._rerun.append(trial.number)
        if self._receipts is not None:
            self._receipts.sweep()  # the rest are of attempts that are over
        rounds = [t.round for t in self._trials if t.round is not None]
        self._asks = max(rounds) + 1 if rounds else 0
        if self._trials:
            finished = sum(t.finished for t in self._trials)
            logger.info(
                "resumed %s: %d trials (%d finished, %d to run again)%s",
                self.journal_path,
                len(self._trials),
                finished,
                len(self._rerun),
                f"; {format_count(recovered, 'trial')} recorded from the outcome that its "
                "worker left as the driver died" if recovered else "",
            )

    def _record_from_receipt(self, trial: Trial, name: str) -> bool:
        """Record how a trial the journal left running ended, from its worker's receipt
        ``name`` (the running attempt's).

        Its result reached the driver's pipe, but the driver died before it journaled it.
        Returns whether there was a receipt to trust.
        """
        if self._receipts is None:
            return False
        receipt = self._receipts.take(
            name, number=trial.number, params=trial.params, metric=self.metric
        )
        if receipt is None:
            return False
        with self._undone_on_error(trial):
            self._update(
                trial,
                receipt.value if receipt.status == "complete" else None,
                error=(receipt.error or "failed") if receipt.status == "failed" else None,
                status=None,
                metrics=dict(receipt.metrics),
            )
            trial.started_at = receipt.started_at or trial.started_at
            trial.finished_at = receipt.finished_at or trial.finished_at
            # the worker marks every failure for an unreadable metric; the loop reopens them
            # only while no trial has completed, and where max_consecutive_failures is set
            unusable = receipt.unusable and trial.status == "failed"
            self._record(trial, extra={"from_receipt": True, "unusable": True} if unusable
                         else {"from_receipt": True})
        if unusable:
            self._unusable_failures.add(trial.number)
        logger.info(
            "trial %d ended (%s) before the driver died; recorded from its outcome receipt",
            trial.number,
            trial.status,
        )
        return True

    def _fold_events(self, events: Sequence[Mapping[str, Any]]) -> None:
        """Rebuild the trials (latest state of each) and the enqueued parameter sets."""
        for event in events:
            kind = event.get("event")
            if kind == "study" and event.get("kind") == "enqueue":
                self._queue.append(dict(event["params"]))
            elif kind == "trial":
                try:
                    trial = Trial.from_dict(event["trial"])
                except (KeyError, TypeError, ValueError) as exc:
                    from gpbo.journal import JournalError

                    raise JournalError(
                        f"journal {self.journal_path}: a trial event is damaged ({exc!r} in "
                        f"{str(event)[:200]}); remove or repair that line to resume"
                    ) from exc
                if event.get("unusable") and trial.status == "failed":
                    self._unusable_failures.add(trial.number)
                else:
                    self._unusable_failures.discard(trial.number)
                if trial.number == len(self._trials):
                    self._trials.append(trial)
                    self._remember_point(
                        trial.number, trial.params, self.space.encode([trial.params])[0]
                    )
                    if event.get("dequeued") and self._queue:
                        self._queue.popleft()
                elif 0 <= trial.number < len(self._trials):
                    self._trials[trial.number] = trial
                else:
                    from gpbo.journal import JournalError

                    # numbers are given in ask order, so a gap means lost or foreign lines
                    problem = (
                        f"comes before any event of trial {len(self._trials)}"
                        if trial.number > 0
                        else "has a negative number"
                    )
                    raise JournalError(
                        f"journal {self.journal_path}: the event of trial {trial.number} "
                        f"{problem} (trials are journaled in the order they are asked, "
                        "numbered from 0: was a line removed, or lines of two journals "
                        "joined?); restore the missing lines or remove that trial's lines to "
                        "resume"
                    )

    def _record(
        self, trial: Trial, *, dequeued: bool = False, extra: Mapping[str, Any] | None = None
    ) -> None:
        event: dict[str, Any] = {"event": "trial", "time": time.time(), "trial": trial.to_dict()}
        if dequeued:
            event["dequeued"] = True
        event.update(extra or {})
        self._append_event(event)

    def _check_writable(self) -> None:
        if self._unwritable is not None:
            raise GpboError(self._unwritable)

    def _append_event(self, event: dict[str, Any]) -> None:
        if self._journal is not None:
            self._journal.append(event)
        else:
            self._check_writable()  # a closed or loaded study: the event would be lost


#: How many deaths of the driver during one in-driver trial make a resume fail it.
_DRIVER_DEATHS_TO_FAIL = 2


@dataclass
class _LastStarts:
    """What the journal says of each trial's last start (for a resume)."""

    #: Trials whose last start was in the driver's process.
    in_driver: set[int] = field(default_factory=set)
    #: How often a resume found the driver dead during a trial (``driver_died`` marks).
    deaths: dict[int, int] = field(default_factory=dict)
    #: The receipt name of a last start whose worker writes one (see :mod:`gpbo.receipt`).
    receipts: dict[int, str] = field(default_factory=dict)


def _last_starts(events: Sequence[Mapping[str, Any]]) -> _LastStarts:
    """Read the trials' starts and deaths from the journal's events, in order."""
    starts = _LastStarts()
    for event in events:
        trial = event.get("trial")
        if event.get("event") != "trial" or not isinstance(trial, Mapping):
            continue
        number, status = trial.get("number"), trial.get("status")
        if not isinstance(number, int):
            continue
        if status == "running":
            if event.get("in_driver"):
                starts.in_driver.add(number)
            else:
                starts.in_driver.discard(number)
            receipt = event.get("receipt")
            if isinstance(receipt, str):
                starts.receipts[number] = receipt
            else:
                starts.receipts.pop(number, None)
        elif event.get("driver_died"):
            starts.deaths[number] = starts.deaths.get(number, 0) + 1
    return starts


def _only_empty_folders(folder: Path) -> bool:
    """Whether ``folder`` holds nothing but (nested) empty folders."""
    try:
        return all(not files for _, _, files in os.walk(folder))
    except OSError:
        return False


def _checked_metrics(metrics: Mapping[str, Any] | None, *, trial: int) -> dict[str, float]:
    """``tell``'s extra numbers as floats; a clear error for a non-number, NaN or infinity."""
    out: dict[str, float] = {}
    if metrics is not None and not isinstance(metrics, Mapping):
        raise GpboError(
            f"metrics for trial {trial} must be a mapping of names to numbers, got "
            f"{type(metrics).__name__} {metrics!r}"
        )
    for key, number in (metrics or {}).items():
        try:
            value = float(number)
        except (TypeError, ValueError):
            raise GpboError(
                f"metrics[{key!r}] for trial {trial} is {number!r}, not a number"
            ) from None
        if not math.isfinite(value):
            raise GpboError(
                f"metrics[{key!r}] for trial {trial} is {value}; extra metrics must be finite "
                "(leave a diverged one out)"
            )
        out[str(key)] = value
    return out


def _error_text(error: str | BaseException) -> str:
    if isinstance(error, BaseException):
        from gpbo.executors.base import describe_exception

        return describe_exception(error)
    # error="" left a failed trial that gpbo show could give no reason for
    return str(error) if str(error).strip() else "failed (tell() was given an empty error)"


def load(journal_path: str | Path) -> Study:
    """The study recorded in a journal, for analysis (or to resume, by passing the path as
    ``journal=``). Takes no lock: a driver may still be writing it.

    Trials keep the statuses recorded; one that was running when its driver died reads as
    ``running`` here. A resume runs it again, or records it from the outcome its worker left
    where it had ended (see :mod:`gpbo.receipt`).

    Args:
        journal_path: The journal file, or a ``gpbo run`` run directory holding
            ``journal.jsonl``.
    """
    from gpbo.journal import read_journal

    path = Path(journal_path).expanduser()
    if path.is_dir():
        if not (path / "journal.jsonl").is_file():
            raise GpboError(
                f"{str(path)!r} is a directory without a journal.jsonl; pass the journal file "
                f"(the path given as journal=) or a gpbo run directory"
            )
        path = path / "journal.jsonl"
    if not path.exists():
        raise GpboError(f"no journal at {str(path)!r}")
    contents = read_journal(path)
    if contents is None or not contents.header:
        raise GpboError(f"{str(path)!r} is an empty journal")
    header = contents.header
    config = recorded_strategy(header, contents.events)
    try:
        strategy: Strategy = strategy_from_config(config)
    except GpboError:
        # a user's own strategy: reading the trials does not need it, and its name is kept
        # (the default's name was shown instead)
        logger.info("strategy %r is not known here; the trials are read without it",
                    config.get("name"))
        strategy = _RecordedStrategy(config)
    study = Study(
        Space.from_dict(header["space"]),
        direction=header["direction"],
        strategy=strategy,
        seed=header.get("seed"),
        metric=recorded_metric(header, contents.events),
    )
    study.journal_path = path
    study._fold_events(contents.events)
    study._unwritable = (
        f"gpbo.load() reads {path} for analysis and records nothing; to go on with the study, "
        f"open its journal with its settings: gpbo.Study(space, journal={str(path)!r}, "
        f"direction={study.direction!r}, strategy={strategy.name!r})"
        + ("" if set(config) <= {"name"} else f" (its strategy's options: {_show_options(config)})")
    )
    return study


def _show_options(config: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in config.items() if key != "name")


class _RecordedStrategy(Strategy):
    """A strategy known only by its journal record (a user's own): named, never proposing."""

    name: ClassVar[str] = "recorded"

    def __init__(self, config: dict[str, Any]) -> None:
        self._config = dict(config)
        self.name = str(config.get("name", "unknown"))  # type: ignore[misc]

    def propose(self, history: History, n: int) -> list[dict[str, Any]]:
        raise GpboError(
            f"strategy {self.name!r} is the journal's record of a strategy not known here; "
            "pass the strategy object itself to gpbo.Study(space, strategy=..., journal=path)"
        )

    def config(self) -> dict[str, Any]:
        return dict(self._config)


def _warn_strategy_changed(
    path: Path, recorded: Mapping[str, Any], current: Mapping[str, Any]
) -> None:
    """Warn where a resume proposes with another strategy, or other options, than the
    journal's study last did: ``strategy=`` is not read from the journal (unlike the seed),
    so leaving it out, or ``"grid"`` for a ``Grid(levels=3)`` run, silently changed course.

    Options the journal did not record (written by an older gpbo) are not compared, except
    those :data:`OPTIONS_BEFORE_RECORDED` gives (:func:`recorded_strategy` fills them in).
    """
    if recorded.get("name") != current.get("name"):
        change = f"strategy {current.get('name')!r} where it ran {recorded.get('name')!r}"
    else:
        changed = sorted(
            key for key in current if key in recorded and recorded[key] != current[key]
        )
        if not changed:
            return
        change = f"strategy {current.get('name')!r} (" + ", ".join(
            f"{key}={current[key]!r}, was {recorded[key]!r}" for key in changed
        ) + ")"
    warn_at_caller(
        f"resuming the study of {path} with {change}; pass the journal's strategy to go on as "
        "it was (`gpbo show` names it), or ignore this if the change is meant"
    )


#: Options added to a strategy after journals were written without them, with the value
#: such a journal's study ran with (its default then): ``Bayes`` counted a failed trial at
#: the worst score and then, with ``failed="feasibility"``, had no failing-region rule, and
#: ``Gradient`` never restarted.
OPTIONS_BEFORE_RECORDED: dict[str, dict[str, Any]] = {
    "bayes": {"failed": "worst", "failing_region": None},
    "gradient": {"restart": False},
}


def _as_recorded(strategy: Strategy) -> dict[str, Any]:
    """``strategy``'s configuration as a journal records it (tuples as lists)."""
    return json.loads(json.dumps(strategy.config()))


def recorded_strategy(
    header: Mapping[str, Any], events: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """The configuration of the strategy a journal's study last ran with: the header's, or
    that of the latest strategy change recorded on a resume (with the options an older gpbo
    did not record, :data:`OPTIONS_BEFORE_RECORDED`)."""
    config: Any = header.get("strategy") or {"name": "bayes"}
    for event in events:
        if event.get("event") == "study" and event.get("kind") == "strategy":
            config = event.get("strategy") or config
    return {**OPTIONS_BEFORE_RECORDED.get(config.get("name"), {}), **config}


def recorded_metric(header: Mapping[str, Any], events: Sequence[Mapping[str, Any]]) -> str:
    """The name of the metric a journal's study last ran with (``"value"`` where the journal
    predates its record)."""
    metric = header.get("metric") or "value"
    for event in events:
        if event.get("event") == "study" and event.get("kind") == "metric":
            metric = event.get("metric") or metric
    return str(metric)


def _point_key(encoded: np.ndarray) -> bytes:
    """A hashable key of an encoded point; equal for rows ``np.array_equal`` calls equal."""
    return (np.asarray(encoded, dtype=np.float64) + 0.0).tobytes()  # -0.0 as 0.0


class _TrialRows:
    """The unit-cube rows of a study's trials by how they ended, kept from ask to ask.

    A trial that ended (complete, failed, timeout) does not change again, so an ask looks only
    at the trials added since the last one and at those still open then: rebuilding every row
    in Python on every ask cost 9 ms per ask at 5,000 trials, quadratic over a long run of
    cheap trials. Rows stay in trial-number order, as the GP has always been given them.
    """

    _OPEN, _COMPLETE, _FAILED, _UNSCORED = 0, 1, 2, 3

    def __init__(self, d: int, *, sign: float) -> None:
        self.d, self.sign = d, sign
        self._clear()

    def _clear(self) -> None:
        self.n = 0
        self.rows = np.zeros((64, self.d))
        self.codes = np.zeros(64, dtype=np.int8)
        self.values = np.zeros(64)
        self.open: dict[int, Trial] = {}  # number -> the trial object, still open at the last look
        self.first_round: int | None = None
        self.first_round_size: int | None = None

    def update(self, trials: Sequence[Trial], encoded: Mapping[int, np.ndarray]) -> None:
        """Take in the trials added since the last call and those that have ended since."""
        if len(trials) < self.n or any(trials[k] is not t for k, t in self.open.items()):
            self._clear()  # trials taken back or replaced (none of gpbo's paths does): start over
        if len(trials) > self.rows.shape[0]:
            size = max(len(trials), 2 * self.rows.shape[0])
            self.rows = np.resize(self.rows, (size, self.d))
            self.codes = np.resize(self.codes, size)
            self.values = np.resize(self.values, size)
        for number in range(self.n, len(trials)):
            trial = trials[number]
            self.rows[number] = encoded[number]
            self.open[number] = trial
            if trial.round is not None:
                if self.first_round is None or trial.round < self.first_round:
                    self.first_round, self.first_round_size = trial.round, 0
                if trial.round == self.first_round:
                    self.first_round_size = (self.first_round_size or 0) + 1
        self.n = len(trials)
        for number, trial in list(self.open.items()):
            code = self._code(trial)
            self.codes[number] = code
            if code == self._COMPLETE:
                self.values[number] = self.sign * trial.value  # type: ignore[operator]
            if code != self._OPEN:
                del self.open[number]

    @classmethod
    def _code(cls, trial: Trial) -> int:
        if trial.status == "complete":
            if trial.value is not None and math.isfinite(trial.value):
                return cls._COMPLETE
            return cls._UNSCORED  # kept apart from new points, as the pending ones are
        if trial.status in ("failed", "timeout"):
            return cls._FAILED
        return cls._OPEN  # pending, running, and interrupted ones waiting to run again

    def best_number(self) -> int | None:
        """The number of the complete trial with the best score (the earliest among ties)."""
        complete = np.flatnonzero(self.codes[: self.n] == self._COMPLETE)
        if not complete.shape[0]:
            return None
        return int(complete[np.argmax(self.values[complete])])

    def complete(self) -> np.ndarray:
        return self.rows[: self.n][self.codes[: self.n] == self._COMPLETE]

    def scores(self) -> np.ndarray:
        return self.values[: self.n][self.codes[: self.n] == self._COMPLETE]

    def failed(self) -> np.ndarray:
        return self.rows[: self.n][self.codes[: self.n] == self._FAILED]

    def pending(self) -> np.ndarray:
        codes = self.codes[: self.n]
        return self.rows[: self.n][(codes == self._OPEN) | (codes == self._UNSCORED)]
