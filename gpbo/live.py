"""The live progress display of ``gpbo run``.

On a terminal, :class:`LiveReporter` keeps one status line at the bottom (trials done of the
total, the trials running on each device, the best so far, the time elapsed and an estimate
of the time left), redrawn in place with ``\\r`` every second, and writes the usual
per-trial lines of :class:`~gpbo.report.ProgressReporter` above it. Where the output is not a
terminal (a log file, CI) it writes plain lines instead: one when a trial starts, and after
each finished trial its line followed by the same status as a line of its own.

Pass it to :func:`gpbo.optimize` through the internal ``_progress=`` keyword.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from gpbo.report import ProgressReporter, format_duration, format_params, format_value
from gpbo.trial import Direction, Trial

__all__ = ["LiveReporter"]

_CLEAR = "\r\x1b[K"
#: Below this many columns no status line is drawn.
_MIN_WIDTH = 20


class LiveReporter(ProgressReporter):
    """Per-trial lines plus a live status line (a terminal) or status lines (elsewhere).

    Args:
        direction: The study's direction, to tell a new best.
        n_trials: The study's budget.
        enabled: ``False`` writes nothing.
        stream: Where to write (default ``sys.stdout``).
        live: Redraw a status line in place; ``None`` does so where ``stream`` is a terminal.
        refresh: Seconds between redraws of the status line.
        resume_hint: How to resume, shown when the study is interrupted.
        on_start: Called when the study starts, that is once it holds its journal's lock
            (``gpbo run`` writes the run directory's ``config.yaml`` there, so that a driver
            refused the journal leaves the other's record alone).
        metric: What to call the value.
    """

    def __init__(
        self,
        *,
        direction: Direction,
        n_trials: int,
        enabled: bool = True,
        stream: TextIO | None = None,
        live: bool | None = None,
        refresh: float = 1.0,
        resume_hint: str | None = None,
        on_start: Callable[[], None] | None = None,
        metric: str = "value",
    ) -> None:
        super().__init__(
            direction=direction,
            n_trials=n_trials,
            enabled=enabled,
            stream=stream,
            resume_hint=resume_hint,
            metric=metric,
        )
        if live is None:
            isatty = getattr(stream or sys.stdout, "isatty", None)
            # a dumb terminal (Emacs' shell) shows the line's escape codes as text
            live = bool(isatty and isatty()) and os.environ.get("TERM") != "dumb"
        self.live = bool(live and enabled)
        self.refresh = refresh
        self._running: dict[int, Trial] = {}
        self._session_done = 0
        self._slot_count = 1
        self._durations: list[float] = []  # of the trials finished in this session
        # the monotonic clock: a wall clock set back showed "-120.0s elapsed"
        self._session_started = time.monotonic()
        self._last_finished = self._session_started
        self._status_shown = False
        self._started = False  # no status line before the opening one (nor after a no-op run)
        # a print of the training code that has not ended its line: no status line after it
        self._user_line_open = False
        self._replaced: dict[str, _AboveTheStatusLine] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._on_start = on_start

    # -- ProgressReporter hooks -----------------------------------------------------------------

    def start(
        self,
        *,
        strategy: str,
        slots: list[str],
        resumed: int = 0,
        where: str | None = None,
        timeout: float | None = None,
    ) -> None:
        """The opening line; starts the redraw timer on a terminal."""
        if self._on_start is not None:
            self._on_start()
        self._session_started = time.monotonic()
        self._slot_count = max(1, len(slots))
        if self.live and self.stream is None:
            self._route_prints_above_the_status_line()
        super().start(strategy=strategy, slots=slots, resumed=resumed, where=where,
                      timeout=timeout)
        self._started = True
        if self.live and self._ticker is None:
            self._ticker = threading.Thread(target=self._tick, name="gpbo-live", daemon=True)
            self._ticker.start()

    def trial_started(self, trial: Trial) -> None:
        """Note the running trial (a line of its own where the output is not a terminal)."""
        with self._lock:
            self._running[trial.number] = trial
            if not self.enabled:
                return
            if self.live:
                if self._can_draw():
                    self._draw()
            else:
                self._write(
                    f"[gpbo] trial {trial.number} started on {trial.device or '?'}: "
                    f"{format_params(trial.params)}"
                )

    def trial_finished(self, trial: Trial) -> None:
        """The trial's line; then the status (redrawn, or as a line)."""
        with self._lock:
            self._running.pop(trial.number, None)
            self._session_done += 1
            self._last_finished = time.monotonic()
            if trial.duration is not None and trial.duration >= 0:
                self._durations.append(trial.duration)
            super().trial_finished(trial)
            if self.enabled and not self.live:
                self._write("[gpbo] " + self.status())

    def interrupted(self, hint: str) -> None:
        """Stop the status line for good (the study is over), then the line."""
        self.suspend()
        super().interrupted(hint)

    def finish(self, trials: list[Trial], *, stop_reason: str) -> None:
        """Stop the status line, then the summary."""
        self.close()
        with self._lock:
            super().finish(trials, stop_reason=stop_reason)

    # -- the status -----------------------------------------------------------------------------

    def status(self) -> str:
        """``7/20 done | best 0.97 (#4) | 2m13s elapsed, ~4m05s left | running cuda:0 #8 1m05s,
        cuda:1 #9 12.0s``: the running trials last, where a narrow terminal cuts the line."""
        now = time.monotonic()
        parts = [f"{self._done}/{self.n_trials} done"]
        if self._best is not None:
            parts.append(f"best {format_value(self._best)} (#{self._best_number})")
        elapsed = now - self._session_started
        left = max(0, self.n_trials - self._done)
        if left == 0:
            eta = ""
        elif self._durations and self._session_done < self._slot_count:
            estimate = self._work_left(left)
            eta = f", ~{format_duration(estimate)} left"
        elif self._session_done:
            # the pace up to the last finish, counted down since: elapsed / done * left grew
            # all the while a trial ran; where the trials run late, that estimate comes back
            per_trial = (self._last_finished - self._session_started) / self._session_done
            since = now - self._last_finished
            estimate = per_trial * left - since
            if estimate <= 0:
                estimate = elapsed / self._session_done * left
            eta = f", ~{format_duration(estimate)} left"
        else:
            estimate = math.inf
            eta = ", estimating time left"
        if left and self.timeout is not None and self.timeout - elapsed < estimate:
            # the study's timeout comes first: the pace would promise hours it does not have
            eta = f", {format_duration(max(0.0, self.timeout - elapsed))} left (timeout)"
        parts.append(f"{format_duration(elapsed)} elapsed{eta}")
        if self._running:
            wall = time.time()  # trials' start times are wall-clock times
            by_device: dict[str, list[str]] = {}
            for number, trial in sorted(self._running.items()):
                since = (
                    f" {format_duration(max(0.0, wall - trial.started_at))}"
                    if trial.started_at
                    else ""
                )
                by_device.setdefault(trial.device or "?", []).append(f"#{number}{since}")
            running = ", ".join(f"{dev} {' '.join(items)}" for dev, items in by_device.items())
            parts.append(f"running {running}")
        return " | ".join(parts)

    def _work_left(self, left: int) -> float:
        """The time left before each slot has finished a trial: the trials' mean duration
        times those left, less what the running ones have done, shared by the slots.

        The pace so far (time / trials finished) counted a whole trial's time per trial
        while k ran at once: ``~3m51s left`` for a 50 s run on two slots.
        """
        mean = sum(self._durations) / len(self._durations)
        wall = time.time()
        done_by_running = sum(
            min(max(0.0, wall - trial.started_at), mean)
            for trial in self._running.values()
            if trial.started_at
        )
        return max(0.0, left * mean - done_by_running) / min(self._slot_count, left)

    def note(self, message: str, *, stream: TextIO | None = None) -> None:
        """Write ``message`` above the status line (e.g. a log record), on ``stream``."""
        with self._lock:
            replaced = self._replaced.get("stderr")
            out = stream or (replaced.target if replaced is not None else sys.stderr)
            if self._status_shown:
                self._raw(_CLEAR)
                self._status_shown = False
            # a log record cannot be written (the terminal gone, a full disk): it is lost, and
            # logging it would come back here
            with contextlib.suppress(OSError):
                out.write(message.rstrip("\n") + "\n")
                out.flush()
            if self._can_draw():
                self._draw()

    def suspend(self) -> None:
        """Stop redrawing and clear the status line; later output is plain (e.g. on Ctrl+C)."""
        self.close()
        self.live = False

    def close(self) -> None:
        """Stop the redraw timer and clear the status line. Safe to call twice."""
        self._stop.set()
        ticker, self._ticker = self._ticker, None
        if ticker is not None and ticker is not threading.current_thread():
            ticker.join(timeout=2)
        with self._lock:
            if self._status_shown:
                self._raw(_CLEAR)
                self._status_shown = False
            for name, proxy in self._replaced.items():
                if getattr(sys, name) is proxy:  # not where the caller has since replaced it
                    setattr(sys, name, proxy.target)
            self._replaced.clear()

    def log_handler(self, level: int = logging.WARNING) -> logging.Handler:
        """A logging handler that writes records above the status line (to stderr)."""
        return _NoteHandler(self, level)

    # -- drawing --------------------------------------------------------------------------------

    def _write(self, line: str) -> None:
        with self._lock:
            if self._status_shown:
                self._raw(_CLEAR)
                self._status_shown = False
            super()._write(line)
            if self._can_draw():
                self._draw()

    def _can_draw(self) -> bool:
        return (
            self.live and self._started and not self._stop.is_set() and not self._user_line_open
        )

    def _route_prints_above_the_status_line(self) -> None:
        """Replace ``sys.stdout``/``sys.stderr`` until :meth:`close` with writers that clear
        the status line first: training code run in the driver (the serial executor) printed
        after the status line, and each redraw left a stale copy in the scrollback. Output of
        worker processes goes to the terminal directly and is not covered."""
        self.stream = sys.stdout  # gpbo's own lines: the real stream, not the replacement
        for name in ("stdout", "stderr"):
            proxy = _AboveTheStatusLine(self, getattr(sys, name))
            self._replaced[name] = proxy
            setattr(sys, name, proxy)

    def _raw(self, text: str) -> None:
        self._emit(text)
        if self.output_closed:
            self.live = False

    def _draw(self) -> None:
        width = shutil.get_terminal_size((100, 24)).columns
        if width < _MIN_WIDTH:  # a line cut to a few characters says nothing, and may wrap
            return
        line = "[gpbo] " + self.status()
        if len(line) > width - 1:
            line = line[: width - 4] + "..."
        self._raw(_CLEAR + line)
        self._status_shown = True

    def _tick(self) -> None:
        while not self._stop.wait(self.refresh):
            with self._lock:
                if self._can_draw():
                    self._draw()


class _AboveTheStatusLine:
    """A stand-in for ``sys.stdout``/``sys.stderr`` while the status line is live: the status
    line is cleared before each write and drawn again once the written text ends its line."""

    def __init__(self, reporter: LiveReporter, target: TextIO) -> None:
        self.reporter = reporter
        self.target = target

    def write(self, text: str) -> int:
        reporter = self.reporter
        with reporter._lock:
            if reporter._status_shown:
                reporter._raw(_CLEAR)
                reporter._status_shown = False
            written = self.target.write(text)
            self.target.flush()  # before the status line is drawn on the other stream
            if text:
                reporter._user_line_open = not text.endswith("\n")
            if reporter._can_draw():
                reporter._draw()
            return written

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding, flush...
        return getattr(self.target, name)


class _NoteHandler(logging.Handler):
    """Log records written above the live status line."""

    def __init__(self, reporter: LiveReporter, level: int) -> None:
        super().__init__(level)
        self.reporter = reporter
        self.setFormatter(logging.Formatter("[gpbo] %(levelname)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)
            if record.name == "gpbo.loop" and "interrupted" in str(record.msg):
                self.reporter.suspend()  # the loop prints its own line next
            self.reporter.note(message)
        except Exception:
            self.handleError(record)
