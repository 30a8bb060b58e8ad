"""The process executor: one long-lived spawned worker process per slot.

Each slot (a device name such as ``"cpu"`` or ``"cuda:2"``; a device may appear several times)
gets a worker started with the ``spawn`` context of :mod:`torch.multiprocessing`. The worker

* starts with ``CUDA_VISIBLE_DEVICES`` set to its GPU alone (``""`` for a CPU slot), since
  unpickling the objective may import code that initialises CUDA; inside it the device is
  ``"cuda:0"`` (or ``"cpu"``), while outcomes name the driver's slot (``"cuda:2"``);
* runs in a session and process group of its own (``os.setsid``), so that the worker and every
  process the objective starts are stopped together;
* limits torch (and OpenMP/MKL) to its share of the cores;
* writes its ``stdout`` line by line, so that a killed worker loses nothing its trials printed;
  where the driver replaced ``sys.stdout`` or ``sys.stderr`` (``gpbo run``'s live status line,
  a notebook), the worker's stream goes through a pipe to the replacement, whole lines at a
  time (:mod:`gpbo.executors._relay`);
* exits, with its process group, within a second of its driver dying, even by ``SIGKILL``;
* runs the trials sent to it through :func:`gpbo.executors.base.evaluate`.

A trial whose worker dies (a signal, ``os._exit``, a segfault) fails with the exit code or the
signal's name; a trial past its ``timeout`` gets ``SIGTERM`` (its whole process group), then
``SIGKILL`` after ``grace_period`` seconds, and is reported as ``timeout``; a CUDA
out-of-memory error fails the trial with an error that starts ``"out of memory:"``. In each
case the slot gets a fresh worker and the other trials go on, as it does after a trial that
left CUDA unusable (a device-side assert). After every trial a worker that used CUDA gives
torch's cached GPU memory back, for the other workers on its GPU.

Like any spawn-based code, a driver script needs an ``if __name__ == "__main__":`` guard: each
worker re-imports the script. :func:`exit_if_bootstrapping_worker`, called first thing by
:func:`gpbo.optimize`, turns a missing guard into a clear :class:`~gpbo.exceptions.GpboError`
in the driver instead of every worker starting a study of its own.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import gc
import logging
import math
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_for_ready
from typing import Any, Literal

from gpbo.exceptions import GpboError
from gpbo.executors._relay import OutputRelay, streams_to_relay
from gpbo.executors._sending import serialize_objective, unimportable_main_hidden
from gpbo.executors.base import (
    Executor,
    Objective,
    OutcomeQueue,
    OutcomeStatus,
    OutOfMemoryWatch,
    TrialOutcome,
    TrialTask,
    check_number,
    describe_exception,
    describe_exit,
    evaluate,
)
from gpbo.receipt import mark_stopped, write_receipt

__all__ = ["BOOTSTRAP_EXIT_CODE", "WORKER_ENV_VAR", "Process", "exit_if_bootstrapping_worker"]

logger = logging.getLogger(__name__)

#: Set (to ``"1"``) in the environment a worker process starts with; removed once it runs.
WORKER_ENV_VAR = "GPBO_WORKER"
#: Exit code of a worker that found the driver script calling gpbo without a main guard.
BOOTSTRAP_EXIT_CODE = 78

# Seconds between two checks of a worker that its driver is still alive.
_PARENT_POLL_S = 0.25
# A slot whose worker fails to start this many times in a row is given up.
_MAX_START_FAILURES = 3
# Longest single sleep in wait(), so that nothing is missed for long even if a wake-up is.
_MAX_NAP_S = 1.0
#: A worker killed by a stop signal gpbo did not send (SIGTERM, SIGINT, SIGHUP) may be one of
#: many processes a job scheduler or systemd is stopping, its driver next: the trial's end is
#: held this long (seconds) and reported as ``interrupted`` if the driver is stopped meanwhile.
_STOP_SIGNAL_HOLD_S = 1.0
_STOP_SIGNALS = frozenset(
    -int(getattr(signal, name)) for name in ("SIGTERM", "SIGINT", "SIGHUP") if hasattr(signal, name)
)

# Set by the worker entry point once the worker runs (the main module is imported by then).
_worker_running = False
# Set in a worker that stopped cleanly (told to, or its driver went away): it exits fast.
_clean_exit = False
# os.environ is process-wide: two executors starting workers at once must not mix theirs.
_environ_lock = threading.Lock()

_GUARD_NOTE = (
    "gpbo: this worker process stopped while importing the driver script, which calls gpbo at "
    'module level without an `if __name__ == "__main__":` guard (see the driver\'s error)\n'
)

_GUARD_ERROR = (
    "a worker process stopped while importing the driver script: the driver script has no "
    '`if __name__ == "__main__":` guard. Worker processes are started with "spawn", which '
    "re-imports the script, so without the guard each worker would start optimizing by itself. "
    "Wrap the call:\n\n"
    '    if __name__ == "__main__":\n'
    "        gpbo.optimize(...)\n\n"
    "(the same for the bayes_opt front end's optimizer.maximize(...); or run the trials in "
    'the driver with executor="serial")'
)

WorkerState = Literal["dead", "starting", "idle", "busy", "stopping", "broken"]


def exit_if_bootstrapping_worker() -> None:
    """Exit at once when called in a gpbo worker that is still importing the main module.

    A worker started with ``spawn`` re-imports the driver script before it runs. If the script
    calls :func:`gpbo.optimize` at module level (no ``if __name__ == "__main__":`` guard), that
    call lands here first: it writes a short note to ``stderr`` and ends the process with
    :data:`BOOTSTRAP_EXIT_CODE`, which the driver turns into a :class:`GpboError` showing the
    guard. Anywhere else (the driver, a running worker) it does nothing.
    """
    if _worker_running or not os.environ.get(WORKER_ENV_VAR):
        return
    with contextlib.suppress(Exception):
        sys.stderr.write(_GUARD_NOTE)
        sys.stderr.flush()
    os._exit(BOOTSTRAP_EXIT_CODE)


@dataclass(eq=False)
class _Worker:
    """The driver's record of one slot and the worker process serving it."""

    slot: str
    device: str
    cuda_visible: str | None
    state: WorkerState = "dead"
    process: Any = None
    conn: Connection | None = None
    pid: int | None = None
    task: TrialTask | None = None
    started_at: float | None = None  # wall clock, when the task was sent
    deadline: float | None = None  # monotonic, when the task times out
    start_deadline: float | None = None  # monotonic, when a starting worker is given up
    kill_at: float | None = None  # monotonic, when a stopping worker gets SIGKILL
    stopped_at: float | None = None  # wall clock, when gpbo sent its task's group SIGTERM
    start_failures: int = 0
    start_error: str | None = None
    exitcode: int | None = None


class Process(Executor):
    """Run trials in parallel, one long-lived spawned worker process per slot.

    Args:
        grace_period: Seconds a stopped trial's process group gets between ``SIGTERM`` and
            ``SIGKILL`` (on timeout, :meth:`interrupt` and :meth:`shutdown`).
        start_timeout: Seconds a worker may take to start and load the objective.

    Raises:
        GpboError: An option is not a finite non-negative number (``start_timeout`` must be
            positive).

    Example:
        >>> executor = Process(grace_period=5.0)
        >>> gpbo.optimize(train, space, executor=executor, devices=2)  # doctest: +SKIP
    """

    writes_receipts = True

    def __init__(self, *, grace_period: float = 2.0, start_timeout: float = 120.0) -> None:
        self.grace_period = check_number(
            "Process", "grace_period", grace_period, unit="seconds"
        )
        self.start_timeout = check_number(
            "Process", "start_timeout", start_timeout, positive=True, unit="seconds"
        )
        self._workers: list[_Worker] = []
        self._outcomes = OutcomeQueue()
        # (release time, outcome) of trials whose worker a stop signal killed (see
        # _STOP_SIGNAL_HOLD_S): failed once released, interrupted if interrupt() comes first
        self._held: list[tuple[float, TrialOutcome]] = []
        self._payload = b""
        self._metric = "value"
        self._threads = 1
        self._context: Any = None
        self._atexit_hook: Any = None
        self._relayed: tuple[str, ...] = ()  # the worker streams sent through self._relay
        self._relay: OutputRelay | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self, objective: Objective, *, slots: Sequence[str], metric: str) -> None:
        """Start one worker per slot and wait until every one has loaded the objective.

        Args:
            objective: The user's function of one parameter dict; sent to the workers pickled
                (with cloudpickle where plain pickle cannot, if it is installed).
            slots: One device name per worker, e.g. ``["cuda:0", "cuda:0", "cuda:1"]``.
            metric: Key of the metric when the objective returns a mapping.

        Raises:
            GpboError: The objective cannot be sent to a worker; a slot is not a device name;
                a worker failed to start or to load the objective (its traceback is in the
                message); or the driver script lacks its ``if __name__ == "__main__":`` guard.
        """
        # here, not only in optimize(): the bayes_opt front end and ask/tell users start
        # workers too, and a script without the guard got "exited with code 1 while starting"
        exit_if_bootstrapping_worker()
        if self._workers:
            raise GpboError("Process.start() was called twice; call shutdown() before again")
        slots = list(slots)
        if not slots:
            raise GpboError("the process executor needs at least one slot, got none")
        workers = [_Worker(str(slot), *_slot_device(str(slot))) for slot in slots]
        self._payload = serialize_objective(objective)
        self._metric = metric
        self._threads = max(1, _usable_cpus() // len(slots))
        import torch.multiprocessing

        self._context = torch.multiprocessing.get_context("spawn")
        self._relayed = streams_to_relay()
        if self._relayed:
            self._relay = OutputRelay()
        self._workers = workers
        self._atexit_hook = functools.partial(_shutdown_at_exit, weakref.ref(self))
        atexit.register(self._atexit_hook)
        try:
            for worker in workers:
                self._spawn(worker)
            self._await_startup()
        except BaseException:
            self.shutdown()
            raise
        logger.info(
            "started %d worker process(es) on %s, %d torch thread(s) each",
            len(workers),
            ", ".join(slots),
            self._threads,
        )

    def shutdown(self) -> None:
        """Stop every worker and its process group within ``grace_period`` (+ about 1 s).

        Idle workers are asked to exit; busy ones get ``SIGTERM``, then everything left gets
        ``SIGKILL``. Trials still running are dropped (call :meth:`interrupt` first to have
        them reported). Safe to call twice and after an error.
        """
        if self._atexit_hook is not None:
            atexit.unregister(self._atexit_hook)
            self._atexit_hook = None
        workers, self._workers = self._workers, []
        live = [w for w in workers if w.process is not None]
        for worker in live:
            if worker.state == "idle":
                try:
                    worker.conn.send(None)  # type: ignore[union-attr]
                except Exception:
                    _signal_group(worker, signal.SIGTERM)
            elif worker.state != "stopping":
                _signal_group(worker, signal.SIGTERM)
        _wait_exited(live, self.grace_period)
        for worker in live:
            self._reap(worker)
            worker.state = "dead"
        if self._relay is not None:
            self._relay.close()
            self._relay = None

    # -- running trials ---------------------------------------------------------------------

    @property
    def free_slots(self) -> int:
        """How many more tasks :meth:`submit` accepts now."""
        return sum(1 for w in self._workers if w.task is None and w.state != "broken")

    @property
    def running(self) -> int:
        """How many submitted tasks have not been reported by :meth:`wait` yet."""
        busy = sum(1 for w in self._workers if w.task is not None)
        return busy + len(self._outcomes) + len(self._held)

    @property
    def worker_pids(self) -> list[int | None]:
        """The process id of each slot's current worker (``None`` where none runs)."""
        return [w.pid if w.process is not None else None for w in self._workers]

    def submit(self, task: TrialTask) -> str:
        """Send ``task`` to a free worker.

        Args:
            task: The trial to run.

        Returns:
            The slot's device name as the driver knows it (e.g. ``"cuda:2"``).

        Raises:
            GpboError: Called before :meth:`start` or with no free slot.
        """
        if not self._workers:
            raise GpboError("Process.submit() was called before start()")
        free = [w for w in self._workers if w.task is None and w.state != "broken"]
        if not free:
            raise GpboError(
                f"Process.submit() was called with no free slot ({self.running} trial(s) "
                "running); wait() for one to end first"
            )
        rank = {"idle": 0, "starting": 1}
        worker = min(free, key=lambda w: rank.get(w.state, 2))
        worker.task = task
        worker.started_at = time.time()
        if worker.state == "idle":
            self._send_task(worker)
        elif worker.state == "dead":
            self._restart(worker)  # the task waits in the driver until the worker is ready
        return worker.slot

    def wait(self, timeout: float | None = None) -> list[TrialOutcome]:
        """Block until at least one trial ended, or ``timeout`` seconds passed.

        Args:
            timeout: Seconds to wait at most; ``None`` to wait for an outcome.

        Returns:
            The outcomes of the trials that ended (empty on timeout or when nothing runs).
            A trial whose worker died, timed out or ran out of memory is an outcome, never an
            exception.

        Raises:
            GpboError: Every slot's worker failed to start again and again.
        """
        self._outcomes.acknowledge()
        end = None if timeout is None else time.monotonic() + max(0.0, float(timeout))
        while True:
            self._poll()
            if self._outcomes:
                return self._outcomes.hand_over()
            if self.running == 0:
                if self._workers and all(w.state == "broken" for w in self._workers):
                    raise GpboError(
                        "every worker process of the process executor failed to start "
                        f"{_MAX_START_FAILURES} times in a row; see the errors logged above"
                    )
                return []
            now = time.monotonic()
            if end is not None and now >= end:
                return []
            wake = [now + _MAX_NAP_S] if end is None else [end, now + _MAX_NAP_S]
            wake += [release for release, _ in self._held]
            for w in self._workers:
                if w.state == "busy" and w.deadline is not None:
                    wake.append(w.deadline)
                elif w.state == "stopping" and w.kill_at is not None:
                    wake.append(w.kill_at)
                elif w.state == "starting" and w.start_deadline is not None:
                    wake.append(w.start_deadline)
            handles: list[Any] = []
            for w in self._workers:
                if w.process is not None:
                    handles.append(w.process.sentinel)
                    if w.conn is not None and w.state != "stopping":
                        handles.append(w.conn)
            wait_for_ready(handles, timeout=max(0.0, min(wake) - now))

    def interrupt(self) -> list[TrialOutcome]:
        """Stop every running trial and report it.

        Each running trial's process group gets ``SIGTERM``, then ``SIGKILL`` after
        ``grace_period`` seconds. Returns those trials as ``interrupted`` (one that was already
        being stopped for its timeout as ``timeout``), together with the outcomes of trials
        that ended before and were not reported yet. The stopped slots get a fresh worker only
        when a task is submitted to them again.
        """
        self._poll()
        held, self._held = self._held, []
        for _, outcome in held:  # killed by the same stop as the driver, most likely
            outcome.status, outcome.error = "interrupted", None
            self._outcomes.append(outcome)
        queued = [w for w in self._workers if w.task is not None and w.state == "starting"]
        for worker in queued:  # the trial never started: its worker can stay
            self._outcomes.append(self._driver_outcome(worker, "interrupted", None))
        victims = [w for w in self._workers if w.task is not None and w.process is not None]
        for worker in victims:
            if worker.state != "stopping":
                _signal_group(worker, signal.SIGTERM)
        _wait_exited(victims, self.grace_period)
        for worker in victims:
            messages = self._reap(worker)
            finished = [m[1] for m in messages if m[0] == "outcome"]
            if (
                finished
                and worker.task is not None
                and finished[0].number == worker.task.number
                and _ended_before_the_stop(worker, finished[0])
            ):
                finished[0].device = worker.slot
                self._outcomes.append(finished[0])
                worker.task = None
            elif worker.state == "stopping":
                self._outcomes.append(self._timeout_outcome(worker))
            else:
                self._outcomes.append(self._driver_outcome(worker, "interrupted", None))
            worker.state = "dead"
        return self._outcomes.take_all()

    # -- worker management ------------------------------------------------------------------

    def _spawn(self, worker: _Worker) -> None:
        """Start a worker process for ``worker``'s slot (state ``starting``)."""
        ctx = self._context
        driver_end, worker_end = ctx.Pipe(duplex=True)
        # the write ends of the relayed streams' pipes, sent as connections so that spawn
        # passes their descriptors on; the worker puts them in place of its own
        outputs = {
            name: Connection(self._relay.open(worker, name), readable=False)
            for name in self._relayed
            if self._relay is not None
        }
        process = ctx.Process(
            target=_worker_main,
            args=(
                worker_end,
                self._payload,
                self._metric,
                worker.device,
                self._threads,
                os.getpid(),
                multiprocessing.get_start_method(allow_none=True),
                outputs,
            ),
            name=f"gpbo-worker[{worker.slot}]",
            daemon=False,  # a daemon process may not start children (DataLoader workers)
        )
        environment = {
            WORKER_ENV_VAR: "1",
            "OMP_NUM_THREADS": str(self._threads),
            "MKL_NUM_THREADS": str(self._threads),
        }
        if worker.cuda_visible is not None:
            environment["CUDA_VISIBLE_DEVICES"] = worker.cuda_visible
        try:
            with _environment(environment), unimportable_main_hidden():
                process.start()
        finally:
            worker_end.close()
            for output in outputs.values():
                output.close()
        worker.process = process
        worker.conn = driver_end
        worker.pid = process.pid
        worker.state = "starting"
        worker.start_error = None
        worker.start_deadline = time.monotonic() + self.start_timeout
        logger.debug("started worker process %s for slot %s", process.pid, worker.slot)

    def _await_startup(self) -> None:
        """Wait until every worker is ready; raise on the first that fails to start."""
        while True:
            starting = [w for w in self._workers if w.state == "starting"]
            if not starting:
                return
            now = time.monotonic()
            for worker in starting:
                for message in _drain(worker):
                    if message[0] == "ready":
                        worker.state = "idle"
                        worker.pid = message[1]
                    elif message[0] == "error":
                        hint = (
                            "\n(the worker imports the driver script as __mp_main__ without "
                            'running its `if __name__ == "__main__":` block: define what the '
                            "objective uses at module level, above the guard)"
                            if "__mp_main__" in str(message[1])
                            else ""
                        )
                        raise GpboError(
                            f"the worker process for slot {worker.slot!r} could not load the "
                            "objective (it is unpickled there, which imports its module):\n"
                            f"{message[1]}{hint}"
                        )
                if worker.state != "starting":
                    continue
                if _has_exited(worker):
                    self._reap(worker)
                    code = worker.exitcode
                    if code == BOOTSTRAP_EXIT_CODE:
                        raise GpboError(_GUARD_ERROR)
                    raise GpboError(
                        f"the worker process for slot {worker.slot!r} {describe_exit(code)} "
                        "while starting, before it could load the objective; its output above "
                        "may say why"
                    )
                if worker.start_deadline is not None and now >= worker.start_deadline:
                    raise GpboError(
                        f"the worker process for slot {worker.slot!r} did not start within "
                        f"start_timeout={self.start_timeout:g} s; raise start_timeout if "
                        "importing the objective's module is that slow"
                    )
            starting = [w for w in self._workers if w.state == "starting"]
            if starting:
                nearest = min(w.start_deadline or now for w in starting)
                wait_for_ready(
                    [h for w in starting for h in (w.conn, w.process.sentinel)],
                    timeout=min(_MAX_NAP_S, max(0.0, nearest - now)),
                )

    def _reap(self, worker: _Worker) -> list[tuple[Any, ...]]:
        """:func:`_reap`, then what the worker's process group printed is copied out."""
        messages = _reap(worker)
        if self._relay is not None:
            self._relay.discard(worker)
        return messages

    def _restart(self, worker: _Worker) -> None:
        """Give ``worker``'s slot a fresh worker; a task of its own waits until it is ready."""
        if worker.process is not None:
            self._reap(worker)
        try:
            self._spawn(worker)
        except Exception as exc:
            logger.error("could not start a worker process for slot %s: %s", worker.slot, exc)
            worker.start_failures = _MAX_START_FAILURES
            worker.start_error = describe_exception(exc)
            self._give_up(worker)

    def _give_up(self, worker: _Worker) -> None:
        """Mark a slot whose worker keeps failing to start as unusable."""
        worker.state = "broken"
        logger.error(
            "the worker process for slot %s failed to start %d times in a row; the slot is no "
            "longer used. Last error: %s",
            worker.slot,
            worker.start_failures,
            worker.start_error,
        )
        if worker.task is not None:
            self._outcomes.append(
                self._driver_outcome(
                    worker,
                    "failed",
                    f"the worker process for slot {worker.slot} could not be started: "
                    f"{worker.start_error}",
                )
            )

    def _send_task(self, worker: _Worker) -> None:
        """Send ``worker.task`` to the ready worker (state ``busy``)."""
        task = worker.task
        if task is None:
            return
        worker.stopped_at = None
        try:
            worker.conn.send(task)  # type: ignore[union-attr]
        except (OSError, EOFError):
            logger.warning(
                "the worker process for slot %s had died before trial %d was sent; restarting it",
                worker.slot,
                task.number,
            )
            self._restart(worker)
            return
        except Exception as exc:  # the parameters cannot be pickled: that trial fails
            self._outcomes.append(
                self._driver_outcome(
                    worker,
                    "failed",
                    "the trial's parameters cannot be sent to the worker process: "
                    + describe_exception(exc),
                )
            )
            return
        worker.state = "busy"
        worker.started_at = time.time()
        limit = task.timeout
        if limit is not None and math.isfinite(limit):
            worker.deadline = time.monotonic() + max(0.0, limit)
        else:
            worker.deadline = None

    def _poll(self) -> None:
        """Take in whatever happened without blocking: messages, deaths, deadlines."""
        if self._held:
            now = time.monotonic()
            for release, outcome in self._held:
                if release <= now:
                    self._outcomes.append(outcome)
            self._held = [h for h in self._held if h[0] > now]
        for worker in self._workers:
            if worker.state in ("starting", "idle", "busy"):
                for message in _drain(worker):
                    self._handle_message(worker, message)
        now = time.monotonic()
        for worker in self._workers:
            if worker.state in ("starting", "idle", "busy") and _has_exited(worker):
                self._handle_death(worker)
            elif worker.state == "busy" and worker.deadline is not None and now >= worker.deadline:
                logger.warning(
                    "trial %d on %s ran past its timeout of %g s; stopping it",
                    worker.task.number,  # type: ignore[union-attr]
                    worker.slot,
                    worker.task.timeout,  # type: ignore[union-attr]
                )
                _signal_group(worker, signal.SIGTERM)
                worker.state = "stopping"
                worker.kill_at = now + self.grace_period
            elif (
                worker.state == "starting"
                and worker.start_deadline is not None
                and now >= worker.start_deadline
            ):
                worker.start_error = (
                    f"it did not start within start_timeout={self.start_timeout:g} s"
                )
                self._reap(worker)
                self._start_failed(worker)
        for worker in self._workers:
            if worker.state == "stopping" and (
                _has_exited(worker) or time.monotonic() >= (worker.kill_at or 0.0)
            ):
                messages = self._reap(worker)
                done = [m[1] for m in messages if m[0] == "outcome"]
                if (
                    done
                    and worker.task is not None
                    and done[0].number == worker.task.number
                    and _ended_before_the_stop(worker, done[0])
                ):
                    done[0].device = worker.slot  # it finished just in time
                    self._outcomes.append(done[0])
                    worker.task = None
                else:
                    self._outcomes.append(self._timeout_outcome(worker))
                self._restart(worker)

    def _handle_message(self, worker: _Worker, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "ready":
            worker.pid = message[1]
            worker.start_failures = 0
            worker.state = "idle"
            if worker.task is not None:
                self._send_task(worker)
        elif kind == "error":
            worker.start_error = message[1]
        elif kind == "outcome":
            outcome, restart = message[1], message[2]
            if worker.task is None or outcome.number != worker.task.number:
                logger.warning("ignoring an unexpected outcome from slot %s", worker.slot)
                return
            if self._relay is not None:
                self._relay.drain(worker)  # the trial's output before the line reporting it
            outcome.device = worker.slot
            self._outcomes.append(outcome)
            worker.task = None
            worker.deadline = None
            worker.state = "idle"
            if restart:
                logger.warning(
                    "trial %d %s on %s; giving the slot a fresh worker process",
                    outcome.number,
                    restart,
                    worker.slot,
                )
                worker.state = "stopping"  # it exits by itself; SIGTERM if it does not
                _wait_exited([worker], self.grace_period)
                self._restart(worker)

    def _handle_death(self, worker: _Worker) -> None:
        state = worker.state
        for message in self._reap(worker):  # what it said before it died still counts
            if (
                message[0] == "outcome"
                and worker.task is not None
                and (message[1].number == worker.task.number)
            ):
                message[1].device = worker.slot
                self._outcomes.append(message[1])
                worker.task = None
            elif message[0] == "error":
                worker.start_error = message[1]
        code = worker.exitcode
        pid = worker.pid
        worker.state = "dead"
        if state == "busy" and worker.task is not None:
            task = worker.task
            logger.warning(
                "the worker process %s on %s %s while running trial %d; restarting it",
                pid,
                worker.slot,
                describe_exit(code),
                task.number,
            )
            outcome = self._driver_outcome(
                worker,
                "failed",
                f"worker process {pid} on {worker.slot} {describe_exit(code)} while "
                "running the trial (what it printed to the driver's stderr before it died "
                "may say why)",
            )
            if code in _STOP_SIGNALS:
                self._held.append((time.monotonic() + _STOP_SIGNAL_HOLD_S, outcome))
            else:
                self._outcomes.append(outcome)
            self._restart(worker)
        elif state in ("busy", "idle"):
            logger.warning(
                "the worker process %s on %s %s between trials; restarting it",
                pid,
                worker.slot,
                describe_exit(code),
            )
            self._restart(worker)
        else:
            if worker.start_error is None:
                worker.start_error = f"it {describe_exit(code)} while starting"
            self._start_failed(worker)

    def _start_failed(self, worker: _Worker) -> None:
        worker.start_failures += 1
        worker.state = "dead"
        if worker.start_failures >= _MAX_START_FAILURES:
            self._give_up(worker)
        else:
            logger.warning(
                "the worker process for slot %s failed to start (%s); trying again",
                worker.slot,
                worker.start_error,
            )
            self._restart(worker)

    def _driver_outcome(
        self, worker: _Worker, status: OutcomeStatus, error: str | None
    ) -> TrialOutcome:
        """An outcome for ``worker.task`` that the driver reports itself; frees the slot."""
        task = worker.task
        worker.task = None
        worker.deadline = None
        return TrialOutcome(
            number=task.number if task is not None else -1,
            status=status,
            error=error,
            device=worker.slot,
            started_at=worker.started_at,
            finished_at=time.time(),
        )

    def _timeout_outcome(self, worker: _Worker) -> TrialOutcome:
        limit = worker.task.timeout if worker.task is not None else None
        shown = "its" if limit is None else f"{limit:g} s"
        return self._driver_outcome(
            worker,
            "timeout",
            f"the trial ran past its trial_timeout of {shown} and was stopped (SIGTERM to its "
            f"process group, SIGKILL at most {self.grace_period:g} s later)",
        )


# -- driver-side helpers --------------------------------------------------------------------


def _shutdown_at_exit(ref: weakref.ref[Process]) -> None:
    # Without this, multiprocessing's own exit handler would join workers that never end.
    executor = ref()
    if executor is not None:
        executor.shutdown()


def _slot_device(slot: str) -> tuple[str, str | None]:
    """The device a slot's worker sees, and the ``CUDA_VISIBLE_DEVICES`` it starts with."""
    name = slot.strip()
    if name == "cpu":
        return "cpu", ""
    if name == "cuda":
        name = "cuda:0"
    if name.startswith("cuda:") and name[5:].isdigit():
        index = int(name[5:])
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if visible is None:
            return "cuda:0", str(index)
        entries = [entry.strip() for entry in visible.split(",") if entry.strip()]
        if index >= len(entries):
            usable = f"cuda:0..cuda:{len(entries) - 1} or 'cpu'" if entries else "'cpu'"
            raise GpboError(
                f"slot {slot!r} is not visible: CUDA_VISIBLE_DEVICES={visible!r} shows "
                f"{len(entries)} GPU(s); use {usable}"
            )
        return "cuda:0", entries[index]
    raise GpboError(
        f"slot {slot!r} is not a device the process executor can use; use 'cpu' or 'cuda:N'"
    )


@contextlib.contextmanager
def _environment(updates: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the block (a spawned child starts with them)."""
    with _environ_lock:
        saved = {key: os.environ.get(key) for key in updates}
        try:
            os.environ.update(updates)
            yield
        finally:
            for key, old in saved.items():
                if old is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = old


def _drain(worker: _Worker) -> list[tuple[Any, ...]]:
    """Every message waiting on ``worker``'s pipe, without blocking."""
    messages: list[tuple[Any, ...]] = []
    conn = worker.conn
    if conn is None:
        return messages
    try:
        while conn.poll():
            messages.append(conn.recv())
    except (EOFError, OSError):
        pass  # the worker is gone; its exit is seen through the process
    except Exception as exc:  # a message that cannot be unpickled
        logger.warning("unreadable message from the worker on %s: %s", worker.slot, exc)
    return messages


def _has_exited(worker: _Worker) -> bool:
    """Whether the worker process ended (without reaping it, so its pid stays reserved)."""
    process = worker.process
    if process is None:
        return True
    if hasattr(os, "waitid"):
        try:
            flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
            return os.waitid(os.P_PID, process.pid, flags) is not None
        except ChildProcessError:
            return True
        except OSError:
            pass
    return bool(wait_for_ready([process.sentinel], 0))


def _already_reaped(pid: int) -> bool:
    """Whether ``pid`` was collected already (e.g. by ``multiprocessing``'s own clean-up)."""
    if not hasattr(os, "waitid"):
        return False
    try:
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    except OSError:
        pass
    return False


def _wait_exited(workers: Sequence[_Worker], seconds: float) -> None:
    """Wait up to ``seconds`` for the workers to exit (without reaping them)."""
    end = time.monotonic() + seconds
    pending = [w for w in workers if w.process is not None]
    while pending:
        pending = [w for w in pending if not _has_exited(w)]
        now = time.monotonic()
        if not pending or now >= end:
            return
        wait_for_ready([w.process.sentinel for w in pending], timeout=min(0.05, end - now))


def _ended_before_the_stop(worker: _Worker, outcome: TrialOutcome) -> bool:
    """Whether ``outcome`` was made before gpbo's ``SIGTERM`` reached the trial.

    One made after it is not the trial's result: a training loop that catches ``SIGTERM`` (to
    checkpoint on preemption) returns its loss so far, or raises, and that truncated value was
    recorded as ``complete`` (or ``failed``), never to run again.
    """
    return worker.stopped_at is None or (
        outcome.finished_at is not None and outcome.finished_at < worker.stopped_at
    )


def _signal_group(worker: _Worker, signum: int) -> None:
    """Send ``signum`` to the worker's process group (the worker alone before its setsid)."""
    if signum == signal.SIGTERM and worker.stopped_at is None and worker.task is not None:
        worker.stopped_at = time.time()
        if worker.task.receipt is not None:  # a result made from here on is not the trial's
            mark_stopped(worker.task.receipt, worker.stopped_at)
    process = worker.process
    if process is None or process.pid is None or _already_reaped(process.pid):
        return  # a reaped pid may belong to someone else by now
    try:
        os.killpg(process.pid, signum)  # the group exists once the worker called setsid
    except ProcessLookupError:
        with contextlib.suppress(OSError):
            os.kill(process.pid, signum)
    except OSError:
        pass


def _reap(worker: _Worker) -> list[tuple[Any, ...]]:
    """Kill what is left of the worker's process group, collect the worker, close its pipe.

    Returns the messages that were still waiting on the pipe.
    """
    messages = _drain(worker)
    process = worker.process
    if process is not None:
        _signal_group(worker, signal.SIGKILL)  # before reaping: the pid is still ours
        process.join(timeout=5)
        worker.exitcode = process.exitcode
        with contextlib.suppress(Exception):
            process.close()
        worker.process = None
    if worker.conn is not None:
        with contextlib.suppress(Exception):
            worker.conn.close()
        worker.conn = None
    return messages


def _usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, as a batch scheduler or ``taskset``
    sets it), not all the machine has: 64 cores split among 2 workers of a job given 4 made
    each spawn 32 threads."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


# -- the worker process ---------------------------------------------------------------------


def _worker_main(
    conn: Connection,
    payload: bytes,
    metric: str,
    device: str,
    n_threads: int,
    parent_pid: int,
    start_method: str | None = None,
    outputs: dict[str, Connection] | None = None,
) -> None:
    """Entry point of a worker process: load the objective, then run trials until told to stop.

    ``start_method`` is the driver's ``multiprocessing`` start method (``None``: the
    platform's default), which the objective's own processes (a ``DataLoader``'s workers)
    get as they would in the user's script; spawn's bootstrap had made it ``"spawn"``, and a
    loader without ``persistent_workers`` re-imported torch and the main script every epoch.
    ``outputs`` maps ``"stdout"``/``"stderr"`` to the pipe that replaces the worker's stream
    (the driver relays it; see :mod:`gpbo.executors._relay`).

    Messages to the driver: ``("ready", pid)``, ``("error", traceback)`` (the objective could
    not be loaded), ``("outcome", TrialOutcome, restart)`` where ``restart`` is ``None`` or
    why the worker exits after it (out of memory, CUDA left unusable). From the driver: a
    :class:`TrialTask`, or ``None`` to exit.
    """
    global _worker_running, _clean_exit
    for name, output in (outputs or {}).items():
        with contextlib.suppress(Exception):
            getattr(sys, name).flush()
            # the descriptor, not sys.stdout alone: C code and the objective's own processes
            # (a command it runs) write there too
            os.dup2(output.fileno(), 1 if name == "stdout" else 2)
        with contextlib.suppress(Exception):
            output.close()
    with contextlib.suppress(OSError):
        os.setsid()  # one process group with everything the objective starts
    _worker_running = True
    # Registered first, so it runs last: after every exit handler of torch and of the
    # objective's code, it skips the interpreter's teardown (about a second with torch loaded).
    atexit.register(_skip_teardown_after_clean_exit)
    os.environ.pop(WORKER_ENV_VAR, None)  # processes the objective starts are no workers
    threading.Thread(
        target=_watch_parent, args=(parent_pid,), name="gpbo-parent-watch", daemon=True
    ).start()
    with contextlib.suppress(Exception):
        multiprocessing.set_start_method(start_method, force=True)  # None: the default
    with contextlib.suppress(Exception):
        import faulthandler

        faulthandler.enable()  # a segfault prints the Python stack to stderr
    with contextlib.suppress(Exception):
        # Into a pipe or a file stdout is block-buffered: a worker killed by a crash or a
        # timeout would take with it what its trials printed, the last trial's clues included.
        sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    try:
        import torch

        torch.set_num_threads(n_threads)
        with contextlib.suppress(RuntimeError):  # possible only before any inter-op work
            # its pool too: k workers of a machine's n cores would each start n of them
            torch.set_num_interop_threads(n_threads)
        objective = pickle.loads(payload)
    except BaseException as exc:
        with contextlib.suppress(Exception):
            conn.send(("error", describe_exception(exc)))
        raise SystemExit(1) from None
    conn.send(("ready", os.getpid()))
    _run_tasks(conn, OutOfMemoryWatch(objective), metric=metric, device=device)
    _clean_exit = True


def _run_tasks(conn: Connection, guarded: OutOfMemoryWatch, *, metric: str, device: str) -> None:
    """Run the trials the driver sends until it sends ``None`` or goes away."""
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            # The driver is gone (killed: it would have sent None). What an earlier trial left
            # running in this group (a server, a DataLoader's workers) goes with us, as where
            # the parent watch sees it first; a clean return would orphan them.
            _kill_own_group()
            return
        if task is None:
            return
        guarded.hit = False
        outcome = evaluate(guarded, task, metric=metric, device=device)
        restart = _release_cuda()
        if guarded.hit:
            outcome.error = f"out of memory: {outcome.error}"
            restart = "ran out of memory"
        if task.receipt is not None:  # the driver may be busy for a while (an import, a fit)
            write_receipt(task.receipt, outcome, params=task.params, metric=metric)
        try:
            conn.send(("outcome", outcome, restart))
        except OSError:  # BrokenPipeError: the driver was killed during the trial
            _kill_own_group()
            return
        if restart:
            return  # a fresh process gets a clean CUDA context


def _release_cuda() -> str | None:
    """After a trial: give its GPU memory back; why the worker must be replaced, if it must.

    torch's caching allocator keeps what a trial freed, out of reach of another worker on the
    same GPU (``workers_per_device`` > 1), so it is emptied after each trial. An error such as
    a device-side assert or an illegal memory access leaves the process's CUDA context unusable
    for good: every later trial of the worker would fail with it, so the slot needs a fresh
    process. Nothing is done where the trial never initialised CUDA.

    Returns:
        ``None`` where the worker can go on, else the reason (for the driver's log).
    """
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_initialized():
        return None
    try:
        torch.cuda.synchronize()  # a sticky CUDA error shows up at the first sync
        if torch.cuda.memory_allocated():
            gc.collect()  # tensors kept alive only by reference cycles, e.g. a traceback's
        torch.cuda.empty_cache()
    except Exception as exc:
        first = (str(exc).splitlines() or [""])[0]
        return f"left CUDA unusable in its worker ({type(exc).__name__}: {first})"
    return None


def _skip_teardown_after_clean_exit() -> None:
    """The worker's last exit handler: after a clean stop, end the process at once.

    The interpreter's teardown (freeing every module, torch's included) takes about a second
    and does nothing a worker needs; exit handlers have run and the standard streams are
    flushed here, as a forked ``multiprocessing`` child would end. Anything else (a worker
    that failed to load the objective) exits the normal way, with its own exit code.
    """
    if not _clean_exit:
        return
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(0)


def _watch_parent(parent_pid: int) -> None:
    """End the worker and its process group once the driver is gone (even after SIGKILL)."""
    while os.getppid() == parent_pid:
        time.sleep(_PARENT_POLL_S)
    _kill_own_group()
    os._exit(1)


def _kill_own_group() -> None:
    """``SIGKILL`` the worker's process group, the worker included."""
    with contextlib.suppress(Exception):
        if os.getpgid(0) == os.getpid():  # never the driver's group, should setsid have failed
            os.killpg(os.getpid(), signal.SIGKILL)
