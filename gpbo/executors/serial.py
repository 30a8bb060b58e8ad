"""The serial executor: trials run one at a time in the driver process.

For debugging, notebooks and lambdas. A trial's exception fails that trial; a crash of the
interpreter (segfault, ``os._exit``) takes the driver with it, which is why a GPU trial runs in
a worker process by default.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import deque
from collections.abc import Sequence

from gpbo.executors.base import (
    Executor,
    Objective,
    OutcomeQueue,
    TrialOutcome,
    TrialTask,
    TrialTimeout,
    check_number,
    evaluate,
)

logger = logging.getLogger(__name__)


class Serial(Executor):
    """Run each trial in the calling process, one after the other.

    ``trial_timeout`` is enforced with ``SIGALRM`` where the driver runs on the main thread of
    a POSIX process (the objective gets a :class:`~gpbo.executors.base.TrialTimeout` raised
    inside it); elsewhere it cannot be and a warning says so.

    Args:
        grace_period: Seconds a stopped command trial's process group (``gpbo run`` with
            ``command:``) gets between ``SIGTERM`` and ``SIGKILL``; a Python trial is stopped
            by the exception raised inside it. The default, 1 s, is also what a command gets
            under ``executor: auto`` (half the process executor's default).
    """

    runs_in_driver = True

    def __init__(self, *, grace_period: float = 1.0) -> None:
        self.grace_period = check_number("Serial", "grace_period", grace_period, unit="seconds")
        self._objective: Objective | None = None
        self._device = "cpu"
        self._metric = "value"
        self._queue: deque[TrialTask] = deque()
        self._outcomes = OutcomeQueue()
        self._warned_timeout = False

    def start(self, objective: Objective, *, slots: Sequence[str], metric: str) -> None:
        self._objective = objective
        self._device = slots[0] if slots else "cpu"
        self._metric = metric
        if len(slots) > 1:
            logger.warning(
                "the serial executor runs one trial at a time on %s; the other %d slot(s) "
                "are unused (use executor='process' to run them in parallel)",
                self._device,
                len(slots) - 1,
            )

    @property
    def free_slots(self) -> int:
        return 0 if self._queue else 1

    @property
    def running(self) -> int:
        return len(self._queue)

    def submit(self, task: TrialTask) -> str:
        self._queue.append(task)
        return self._device

    def wait(self, timeout: float | None = None) -> list[TrialOutcome]:
        """Run the next trial here and return how it ended.

        A trial cannot go on in the background, so ``timeout`` (the study's time left) bounds
        it: a trial still running then is stopped as for ``trial_timeout`` and reported
        ``interrupted`` (to run again on resume); with no time left none starts.
        """
        self._outcomes.acknowledge()
        if not self._queue:
            return []
        if self._objective is None:
            raise RuntimeError("Serial.wait() before start()")
        if timeout is not None and timeout <= 0:
            return []  # the caller's time is up: interrupt() reports the queued trials
        task = self._queue.popleft()
        cut_by_caller = timeout is not None and (task.timeout is None or timeout < task.timeout)
        started = time.time()
        alarm = self._alarm(timeout if cut_by_caller else task.timeout)
        try:
            with alarm:
                outcome = evaluate(self._objective, task, metric=self._metric, device=self._device)
            if alarm.fired:
                # the objective caught the TrialTimeout (a bare `except:`, a retry loop) and
                # returned: what it returned is not a result within the limit
                raise TrialTimeout()
        except TrialTimeout:
            outcome = TrialOutcome(
                number=task.number,
                status="interrupted" if cut_by_caller else "timeout",
                error=None
                if cut_by_caller
                else f"the trial ran past its trial_timeout of {task.timeout:g} s",
                device=self._device,
                started_at=started,
                finished_at=time.time(),
            )
        self._outcomes.append(outcome)
        return self._outcomes.hand_over()

    def interrupt(self) -> list[TrialOutcome]:
        outcomes = self._outcomes.take_all()
        outcomes += [
            TrialOutcome(number=t.number, status="interrupted", device=self._device)
            for t in self._queue
        ]
        self._queue.clear()
        return outcomes

    def _alarm(self, seconds: float | None) -> _Alarm:
        usable = (
            hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
        )
        if seconds is not None and not usable and not self._warned_timeout:
            self._warned_timeout = True
            logger.warning(
                "trial_timeout and timeout cannot stop a running trial of the serial executor "
                "off the main thread; use executor='process'"
            )
        return _Alarm(seconds if usable else None)


#: Seconds between further :class:`TrialTimeout`\ s once the first was raised and the trial
#: goes on (training code that swallowed it).
REFIRE_INTERVAL_S = 1.0


class _Alarm:
    """Raise :class:`TrialTimeout` in the main thread after ``seconds`` (POSIX only), and
    again every :data:`REFIRE_INTERVAL_S` until the trial ends: an objective that catches
    ``BaseException`` (or retries on any error) would otherwise run on past its limit."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.fired = False
        self._previous = None

    def __enter__(self) -> _Alarm:
        if self.seconds is not None:
            self._previous = signal.signal(signal.SIGALRM, self._fire)
            signal.setitimer(signal.ITIMER_REAL, max(self.seconds, 1e-3), REFIRE_INTERVAL_S)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.seconds is None:
            return
        while True:
            # ignored first: a TrialTimeout raised here, with the timer still set, would fire
            # on in the driver after the trial
            try:
                signal.signal(signal.SIGALRM, signal.SIG_IGN)
                break
            except TrialTimeout:
                continue
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self._previous or signal.SIG_DFL)

    def _fire(self, signum: int, frame: object) -> None:
        self.fired = True
        raise TrialTimeout()
