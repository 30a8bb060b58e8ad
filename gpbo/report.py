"""Progress lines and summaries: what a study shows the person who started it.

Only the progress the user asked for (``verbose=True``) is written to the terminal; everything
else goes through :mod:`logging`.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import logging
import re
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from gpbo.trial import (
    Direction,
    Trial,
    best_of,
    count_by_status,
    format_counts,
    is_better,
    table_columns,
)

logger = logging.getLogger(__name__)


def format_value(value: Any) -> str:
    """A number in a short, readable form; a string as it is, quoted where it holds
    whitespace or control characters (a line of ``name=value`` pairs stays readable)."""
    if isinstance(value, float):
        return f"{value + 0.0:.6g}"  # -0.0 (a maximized 0, negated) reads "0", not "-0"
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
            where = describe_slots(slots)
        extra = f", resuming after {resumed} finished" if resumed else ""
        count = format_count(self.n_trials, "trial")
        self._write(f"[gpbo] {count}, strategy {strategy}, {where}{extra}")

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
            # 160: a command's reason quotes the line it could not read after ~70 characters;
            # its end names the fix and the trial's log
            body = f"{trial.status.upper()}" + (
                f" ({shorten(reason[0], 160, keep_end=70)})" if reason else ""
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
        count_text = format_counts(count_by_status(trials), empty="no trials")
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


def describe_slots(slots: Sequence[str]) -> str:
    """``"3 slot(s) on cuda:0, cuda:1"``."""
    return f"{len(slots)} slot(s) on {', '.join(sorted(set(slots)))}"


def shorten(text: str, limit: int = 80, *, keep_end: int = 0) -> str:
    """``text`` made :func:`printable` and cut to ``limit`` characters, with ``...`` where it
    was cut: at the end, or before its last ``keep_end`` characters (an error's end says how
    to fix it and where its log is)."""
    text = printable(text)
    if len(text) <= limit:
        return text
    keep_end = min(keep_end, limit - 3)
    return text[: limit - 3 - keep_end] + "..." + (text[-keep_end:] if keep_end else "")


# -- whole studies: gpbo run's summary, gpbo show, gpbo export ---------------------------


def summarize(study: Any, *, stop_reason: str = "") -> dict[str, Any]:
    """A JSON-ready summary of a study: counts by status and the best trial."""
    counts = count_by_status(study.trials)
    best = best_of(study.trials, study.direction)
    starts = [t.started_at for t in study.trials if t.started_at is not None]
    ends = [t.finished_at for t in study.trials if t.finished_at is not None]
    return {
        "journal": str(study.journal_path),
        "direction": study.direction,
        "metric": study.metric,
        "strategy": study.strategy.config(),
        "trials": len(study.trials),
        "counts": counts,
        "stop_reason": stop_reason,
        "wall_time_s": (max(ends) - min(starts)) if starts and ends else None,
        "written_at": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "best": None
        if best is None
        else {
            "number": best.number,
            "value": best.value,
            "params": best.params,
            "metrics": best.metrics,
            "device": best.device,
            "duration_s": best.duration,
        },
    }


def render_study(
    study: Any, *, sort: str = "number", title: str | None = None, driver_running: bool = True
) -> str:
    """The trials as a text table, the counts, the best trial and why trials failed.

    ``driver_running=False`` (no gpbo holds the journal): trials recorded as running were cut
    off, so their time is not counted on, and a note says they run again on resume.
    """
    trials = list(study.trials)
    best = best_of(trials, study.direction)
    names = list(study.space.names)
    if sort == "value":
        sign = -1.0 if study.direction == "maximize" else 1.0
        trials.sort(
            key=lambda t: (
                t.value is None or t.status != "complete",
                sign * t.value if t.value is not None else 0.0,
                t.number,
            )
        )
    left, right = ["#", "status", study.metric], ["device", "duration"]
    # a parameter named as a fixed column (`value`, `device`) is told apart as in the CSV
    params = [f"params_{n}" if n in left or n in right else n for n in names]
    header = [*left, *params, *right]
    now = time.time()

    def shown_status(trial: Trial) -> str:
        # a dead run's table headed "2 running" while the note below said none runs
        return "cut off" if trial.status == "running" and not driver_running else trial.status

    rows = []
    for trial in trials:
        if trial.duration is not None:
            duration = format_duration(trial.duration)
        elif trial.status == "running" and trial.started_at is not None and driver_running:
            duration = format_duration(now - trial.started_at) + "+"
        else:
            duration = ""
        mark = "*" if best is not None and trial.number == best.number else ""
        rows.append(
            [
                f"{trial.number}{mark}",
                shown_status(trial),
                format_value(trial.value) if trial.value is not None else "",
                *[format_value(trial.params.get(n, "")) for n in names],
                trial.device or "",
                duration,
            ]
        )
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=False)]
    numeric = {0, 2, len(header) - 1} | {
        i
        for i in range(3, 3 + len(names))
        if rows and all(_is_numeric_cell(row[i]) for row in rows if row[i])
    }

    def line(cells: Sequence[str]) -> str:
        out = []
        for i, (cell, width) in enumerate(zip(cells, widths, strict=False)):
            out.append(cell.rjust(width) if i in numeric else cell.ljust(width))
        return "  ".join(out).rstrip()

    out = io.StringIO()
    counts = Counter(shown_status(trial) for trial in study.trials)  # in order of occurrence
    count_text = format_counts(counts, empty="no trials yet")
    out.write(
        f"{title or study.journal_path}: {format_count(len(study.trials), 'trial')} "
        f"({count_text}); "
        f"{study.direction}, strategy {study.strategy.name}\n\n"
    )
    out.write(line(header) + "\n")
    out.write(line(["-" * w for w in widths]) + "\n")
    for row in rows:
        out.write(line(row) + "\n")
    out.write("\n")
    if best is None:
        out.write("best: no trial completed yet\n")
    else:
        params = ", ".join(f"{k}={format_value(v)}" for k, v in best.params.items())
        extras = ", ".join(f"{k}={format_value(v)}" for k, v in best.metrics.items())
        out.write(
            f"best: trial {best.number}, {study.metric} {format_value(best.value)}"
            + (f" ({extras})" if extras else "")
            + f"\n      {params}\n"
        )
    cut_off = [t for t in study.trials if t.status in ("running", "pending")]
    if cut_off and not driver_running:
        out.write(
            f"\nno gpbo is running this study: {format_count(len(cut_off), 'trial')} recorded as "
            f"running or pending {'was' if len(cut_off) == 1 else 'were'} cut off, and "
            f"{'runs' if len(cut_off) == 1 else 'run'} again first when it is resumed\n"
        )
    # marked failures for an unreadable metric that the loop's end would have reopened
    reopened: set[int] = set()
    if not driver_running and hasattr(study, "_unusable_failures_to_reopen"):
        reopened = {t.number for t in study._unusable_failures_to_reopen()}
    if reopened:
        out.write(
            f"\n{format_count(len(reopened), 'trial')} failed for an unreadable metric before "
            "any completed, and the run was stopped before it reopened "
            f"{'it' if len(reopened) == 1 else 'them'}: "
            f"{'it runs' if len(reopened) == 1 else 'they run'} again first when it is resumed "
            f"(fix the metric first; max_consecutive_failures=None keeps "
            f"{'it' if len(reopened) == 1 else 'them'} failed)\n"
        )
    failed = [t for t in study.trials if t.status in ("failed", "timeout") and t.error]
    if failed:
        out.write("\nwhy trials failed:\n")
        located = False
        for trial in failed[-10:]:
            first, *quoted = error_summary(trial.error).splitlines() or [""]
            where = _innermost_frame(trial.error or "")
            located = located or bool(where)
            status = f"{trial.status}, runs again" if trial.number in reopened else trial.status
            # whole: the end of a long reason says how to fix it and where the trial's log is
            out.write(f"  #{trial.number} {status}: {printable(first)}{where}\n")
            out.writelines(f"    {shorten(line, 160)}\n" for line in quoted)
        if len(failed) > 10:
            out.write(f"  ... and {len(failed) - 10} more (gpbo export --csv has them all)\n")
        if located:
            out.write("  (whole tracebacks: gpbo export RUN --csv -, column error)\n")
    return out.getvalue()


_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<function>.+)$')


def _innermost_frame(error: str) -> str:
    """`` (at train.py:12, in step)``: where a Python trial's traceback ends, or ``""``."""
    frames = [m for m in map(_FRAME.match, error.splitlines()) if m]
    if not frames:
        return ""
    last = frames[-1]
    return f" (at {Path(last['file']).name}:{last['line']}, in {last['function']})"


def _is_numeric_cell(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def write_csv(trials: Sequence[Any], stream: TextIO, *, param_names: Sequence[str] = ()) -> None:
    """One row per trial, the columns of :func:`~gpbo.trial.table_columns`.

    ``param_names`` (the space's) come first, so a study without trials yet has its columns.
    """
    header = table_columns(trials, param_names=param_names)
    params = [c.removeprefix("params_") for c in header if c.startswith("params_")]
    metrics = [c.removeprefix("metrics_") for c in header if c.startswith("metrics_")]
    writer = csv.writer(stream)
    writer.writerow(header)
    for trial in trials:
        writer.writerow(
            [
                trial.number,
                trial.status,
                "" if trial.value is None else repr(trial.value),
                *[_cell(trial.params.get(k)) for k in params],
                *[_cell(trial.metrics.get(k)) for k in metrics],
                trial.device or "",
                "" if trial.round is None else trial.round,
                _iso(trial.started_at),
                _iso(trial.finished_at),
                "" if trial.duration is None else f"{trial.duration:.3f}",
                trial.error or "",
            ]
        )


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _iso(timestamp: float | None) -> str:
    if timestamp is None:
        return ""
    # milliseconds: trials of a fast study would all show the same second
    return _dt.datetime.fromtimestamp(timestamp).astimezone().isoformat(timespec="milliseconds")
