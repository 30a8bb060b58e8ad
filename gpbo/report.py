"""Progress lines and summaries: what a study shows the person who started it.

Only the progress the user asked for (``verbose=True``) is written to the terminal; everything
else goes through :mod:`logging`.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from typing import Any, TextIO

from gpbo.trial import Direction, Trial, best_of, is_better

logger = logging.getLogger(__name__)


def format_value(value: Any) -> str:
    """A number in a short, readable form; a string as it is, quoted where it holds
    whitespace or control characters (a line of ``name=value`` pairs stays readable)."""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, str) and (value == "" or _UNSAFE_IN_A_VALUE.search(value)):
        return repr(value)
    return str(value)


_UNSAFE_IN_A_VALUE = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")
# ANSI escape sequences (a colour, a cursor move) and the other control characters but tab: a
# command's coloured stderr quoted in a failure line would colour what follows it
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` without ANSI escape sequences, its other control characters escaped."""
    text = _ANSI_ESCAPE.sub("", text)
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def format_params(params: dict[str, Any]) -> str:
    """``name=value`` pairs separated by spaces."""
    return " ".join(f"{k}={format_value(v)}" for k, v in params.items())


def format_count(count: int, noun: str) -> str:
    """``"1 trial"``, ``"3 trials"``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def format_duration(seconds: float) -> str:
    """``42.1s``, ``3m05s`` or ``2h07m``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


#: Lines of a failed command's stderr that a failure summary quotes (the log has them all).
QUOTED_LINES = 5


def error_summary(error: str | None) -> str:
    """A trial's error without its traceback: the first line, then any quoted output.

    A command trial's error quotes the last lines of its stderr, each as ``"  | line"``, after
    its first line; they are what says why it failed, so the last :data:`QUOTED_LINES` of them
    are kept. A Python trial's traceback is left out (``gpbo export`` and the journal have it).
    """
    lines = (error or "").strip().splitlines()
    if not lines:
        return ""
    quoted: list[str] = []
    for line in lines[1:]:
        if not line.startswith("  | "):
            break
        quoted.append(line)
    return "\n".join([lines[0], *quoted[-QUOTED_LINES:]])


class ProgressReporter:
    """One line per finished trial, and a summary at the end.

    Args:
        direction: The study's direction, to tell a new best.
        n_trials: The study's budget, shown as ``done/total``.
        enabled: ``False`` writes nothing.
        stream: Where to write (default ``sys.stdout``).
        resume_hint: How to resume this study, said when it is interrupted (default: how
            to call :func:`gpbo.optimize` again); the CLI says to rerun its command.
        metric: What to call the value (``metric=`` of :func:`gpbo.optimize`).
    """

    def __init__(
        self,
        *,
        direction: Direction,
        n_trials: int,
        enabled: bool = True,
        stream: TextIO | None = None,
        resume_hint: str | None = None,
        metric: str = "value",
    ) -> None:
        self.direction = direction
        self.metric = metric
        self.n_trials = n_trials
        self.enabled = enabled
        self.stream = stream
        self.resume_hint = resume_hint
        self.resume_hint_shown = False
        self.started = time.monotonic()  # a clock set back gave "done in -120.0s"
        self._best: float | None = None
        self._best_number: int | None = None
        self._done = 0
        self.timeout: float | None = None
        self.output_closed = False

    def say(self, line: str) -> None:
        """Write a line of the caller's own among the progress lines (the CLI's); like them,
        it is dropped once the output's reader went away."""
        self._write(line)

    def _write(self, line: str) -> None:
        self._emit(line + "\n")

    def _emit(self, text: str) -> None:
        """Write ``text``; a reader that went away turns the display off, not the study."""
        if self.output_closed:
            return
        stream = self.stream or sys.stdout
        try:
            try:
                stream.write(text)
            except UnicodeEncodeError:
                # an output that cannot show a character (cp1252 on Windows, ASCII, say) of a
                # choice or an error message: escaped, not an error that ends the study
                encoding = getattr(stream, "encoding", None) or "ascii"
                stream.write(text.encode(encoding, "backslashreplace").decode(encoding))
            stream.flush()
        except OSError as exc:
            # `gpbo run ... | head` or a pager quit early (a closed pipe), the disk of a
            # redirected log full, the terminal gone (EIO after a hang-up): hours of training
            # must not end because the progress lines cannot be written any more
            self.output_closed = True
            self.enabled = False
            why = (
                "its reader went away (a closed pipe)"
                if isinstance(exc, BrokenPipeError)
                else f"writing it failed ({exc})"
            )
            logger.warning(
                "the progress output stopped: %s; the study goes on without progress lines",
                why,
            )

    def start(
        self,
        *,
        strategy: str,
        slots: list[str],
        resumed: int = 0,
        where: str | None = None,
        timeout: float | None = None,
    ) -> None:
        """The opening line: what runs where (``where``, else the ``slots``); ``timeout``:
        the study's own limit in seconds from now, which bounds an estimate of the time left."""
        self._done = resumed
        self.timeout = timeout
        if not self.enabled:
            return
        if where is None:
            from gpbo.executors.base import describe_slots

            where = describe_slots(slots)
        extra = f", resuming after {resumed} finished" if resumed else ""
        self._write(f"[gpbo] {self.n_trials} trials, strategy {strategy}, {where}{extra}")

    def seed_best(self, trials: list[Trial]) -> None:
        """Take the best so far from trials already finished (a resumed study)."""
        best = best_of(trials, self.direction)
        if best is not None:
            self._best, self._best_number = best.value, best.number

    def trial_started(self, trial: Trial) -> None:
        """A trial was sent to a slot (the line-per-trial display shows nothing yet)."""

    def trial_finished(self, trial: Trial) -> None:
        """One line: number, status, value, best so far, parameters; a new best marked."""
        self._done += 1
        new_best = (
            trial.status == "complete"
            and trial.value is not None
            and (
                self._best is None
                or is_better(trial.value, self._best, self.direction)
                # a tie goes to the lower number, as in the summary (best_of)
                or (trial.value == self._best and trial.number < (self._best_number or 0))
            )
        )
        if new_best:
            self._best, self._best_number = trial.value, trial.number
        if not self.enabled:
            return
        width = len(str(self.n_trials))
        head = f"[gpbo] {self._done:>{width}}/{self.n_trials} trial {trial.number:>{width}}"
        if trial.status == "complete":
            body = f"{self.metric}={format_value(trial.value)}"
        else:
            reason = (trial.error or "").strip().splitlines()
            # 160: a command's reason quotes the line it could not read after ~70 characters
            body = f"{trial.status.upper()}" + (
                f" ({shorten(reason[0], 160)})" if reason else ""
            )
        if new_best:
            best = "  * new best"
        elif self._best is not None:
            best = f"  best={format_value(self._best)} (#{self._best_number})"
        else:
            best = ""
        where = []
        if trial.device:
            where.append(trial.device)
        if trial.duration is not None:
            where.append(format_duration(trial.duration))
        suffix = f"  [{', '.join(where)}]" if where else ""
        self._write(f"{head}  {body}{best}  {format_params(trial.params)}{suffix}")
        if trial.status != "complete":
            # a failed command's stderr tail: why it failed, without opening the log
            for line in error_summary(trial.error).splitlines()[1:]:
                self._write(f"[gpbo]   {shorten(line, 160)}")

    def interrupted(self, hint: str) -> None:
        """The driver was stopped: one line saying how to resume."""
        self.resume_hint_shown = True
        if self.enabled:
            self._write(f"[gpbo] interrupted: {hint}")

    def finish(self, trials: list[Trial], *, stop_reason: str) -> None:
        """The summary: counts by status, time, and the best trial."""
        if not self.enabled:
            return
        counts: dict[str, int] = {}
        for trial in trials:
            counts[trial.status] = counts.get(trial.status, 0) + 1
        count_text = ", ".join(f"{v} {k}" for k, v in counts.items()) or "no trials"
        elapsed = format_duration(time.monotonic() - self.started)
        self._write(f"[gpbo] done in {elapsed}: {count_text}; {stop_reason}")
        best = best_of(trials, self.direction)
        if best is None:
            self._write("[gpbo] no trial completed")
        else:
            self._write(
                f"[gpbo] best {self.metric} {format_value(best.value)} at trial {best.number}: "
                f"{format_params(best.params)}"
            )


def shorten(text: str, limit: int = 80) -> str:
    """``text`` made :func:`printable` and cut to ``limit`` characters, ending in ``...`` where
    it was cut."""
    text = printable(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."
