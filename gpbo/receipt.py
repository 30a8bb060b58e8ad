"""Outcome receipts: what a worker process leaves on disk before it reports a trial's end.

A worker sends its trial's outcome to the driver through a pipe, and the driver journals it
when it next looks, which can be a second or more later: while it imports botorch for its
first fit, or fits the GP in asynchronous mode. A driver killed in that gap (``kill -9``, a
preempted job) lost the outcome, and the resume trained the trial again. So the worker first
writes the outcome to the trial's receipt, and a resume records a trial that the journal left
``running`` from its receipt instead of running it again.

A receipt belongs to one attempt of a trial: its file name is new for each attempt, and the
journal's ``running`` event of the attempt names it, so a resume reads only the receipt of the
attempt the journal left running (not one of an earlier attempt, or of an earlier study at
the same path). Where the driver stops the trial (``SIGTERM``, for a timeout or a stop
signal), it first leaves a stop mark with the time; a result made after it is the truncated
one of a training loop that caught the signal, and a resume does not take it (as
:meth:`gpbo.executors.process.Process.interrupt` does not). A ``SIGTERM`` from outside gpbo (a
scheduler stopping the whole job) leaves no mark: a loop that catches it and returns has its
result taken, from the pipe as from the receipt.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gpbo.executors.base import TrialOutcome

logger = logging.getLogger(__name__)

_warned_unwritable = False


class ReceiptBook:
    """The receipts of one journaled study's trials, in a folder of their own.

    Args:
        folder: Where they are kept (``<journal>.trials/.receipts``).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def new_path(self, number: int) -> Path:
        """A receipt path for a new attempt of trial ``number`` (its folder made)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        return self.folder / f"{number:06d}-{uuid.uuid4().hex[:12]}.json"

    def take(
        self, name: str, *, number: int, params: Mapping[str, Any], metric: str
    ) -> TrialOutcome | None:
        """The receipt ``name`` (see :func:`read_receipt`); its files are removed either way,
        as its attempt is over."""
        path = self._path(name)
        try:
            return read_receipt(path, number=number, params=params, metric=metric)
        finally:
            clear_receipt(path)

    def discard(self, name: str) -> None:
        """Remove the receipt ``name`` (its outcome was journaled)."""
        clear_receipt(self._path(name))

    def _path(self, name: str) -> Path:
        return self.folder / Path(name).name  # a name, never a path out of the folder

    def sweep(self) -> None:
        """Remove every receipt: after a resume has read those it needs, the rest belong to
        attempts that are over (a driver killed before it journaled their start)."""
        with contextlib.suppress(OSError):
            for leftover in self.folder.iterdir():
                with contextlib.suppress(OSError):
                    leftover.unlink()
        self.tidy()

    def tidy(self) -> None:
        """Remove the folder where it is empty (it is made again for the next attempt)."""
        with contextlib.suppress(OSError):
            self.folder.rmdir()


def _stop_mark(path: Path) -> Path:
    return path.with_suffix(".stopped")


def _partial(path: Path) -> Path:
    return path.with_suffix(".partial")


def clear_receipt(path: str | os.PathLike[str]) -> None:
    """Remove a receipt, its partial write and its stop mark (its attempt is over)."""
    path = Path(path)
    for leftover in (path, _partial(path), _stop_mark(path)):
        with contextlib.suppress(OSError):
            leftover.unlink()


def write_receipt(
    path: str | os.PathLike[str],
    outcome: TrialOutcome,
    *,
    params: Mapping[str, Any],
    metric: str,
) -> None:
    """Write ``outcome`` (``complete`` or ``failed``), of the trial run at ``params``, whole
    or not at all (in the worker).

    A failure to write is logged once per process and otherwise ignored: the pipe still
    carries the outcome, and only a driver killed before reading it is affected.
    """
    global _warned_unwritable
    path = Path(path)
    record = {
        "number": outcome.number,
        "params": dict(params),
        "metric": metric,
        "status": outcome.status,
        "value": outcome.value,
        "metrics": outcome.metrics,
        "error": outcome.error,
        "unusable": outcome.unusable,
        "started_at": outcome.started_at,
        "finished_at": outcome.finished_at,
    }
    partial = _partial(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # no fsync: it guards against the driver's death, not the machine's, and a trial's
        # end should not wait on the disk
        partial.write_text(json.dumps(record, default=str), encoding="utf-8")
        os.replace(partial, path)
    except (OSError, TypeError, ValueError) as exc:
        if not _warned_unwritable:
            _warned_unwritable = True
            logger.warning(
                "could not write the outcome receipt %s (%s); a driver killed before it "
                "records a finished trial will run that trial again",
                path,
                exc,
            )
        with contextlib.suppress(OSError):
            partial.unlink()


def mark_stopped(path: str | os.PathLike[str], at: float) -> None:
    """Note that the driver is stopping the trial at ``at`` (``time.time()``), before it
    signals it."""
    mark = _stop_mark(Path(path))
    try:
        mark.parent.mkdir(parents=True, exist_ok=True)
        mark.write_text(repr(at), encoding="utf-8")
    except OSError as exc:
        logger.warning(
            "could not leave the stop mark %s (%s): should the driver die before it records "
            "the trial, a resume may take a result the trial made after it was stopped",
            mark,
            exc,
        )


def read_receipt(
    path: str | os.PathLike[str], *, number: int, params: Mapping[str, Any], metric: str
) -> TrialOutcome | None:
    """The receipt of trial ``number``, or ``None`` where there is none to trust.

    A receipt is refused (logged) where it is damaged, names another trial, other parameters
    or another metric (the study was resumed with a new ``metric``), or was made after a stop
    mark.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        logger.warning("cannot read the outcome receipt %s (%s); trial %d runs again",
                       path, exc, number)
        return None
    try:
        record = json.loads(text)
        same_trial = (
            record["number"] == number
            and record["params"] == json.loads(json.dumps(dict(params), default=str))
        )
        status = record["status"]
        value = record["value"]
        receipt = TrialOutcome(
            number=number,
            status=status,
            value=None if value is None else float(value),
            metrics={str(k): float(v) for k, v in (record.get("metrics") or {}).items()},
            error=None if record.get("error") is None else str(record["error"]),
            started_at=_time_or_none(record.get("started_at")),
            unusable=record.get("unusable") is True,
            finished_at=_time_or_none(record.get("finished_at")),
        )
        if status not in ("complete", "failed") or (status == "complete" and value is None):
            raise ValueError(f"status {status!r} with value {value!r}")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        logger.warning("the outcome receipt %s is damaged (%s); trial %d runs again",
                       path, exc, number)
        return None
    if not same_trial:
        logger.warning("the outcome receipt %s is not trial %d's; it runs again", path, number)
        return None
    if record.get("metric") != metric:
        logger.info(
            "trial %d's outcome receipt holds metric %r, the study now %r; it runs again",
            number, record.get("metric"), metric,
        )
        return None
    stopped_at = _stopped_at(path)
    if stopped_at is not None and (
        receipt.finished_at is None or not receipt.finished_at < stopped_at
    ):
        logger.info("trial %d's outcome came after gpbo stopped it; it runs again", number)
        return None
    return receipt


def _time_or_none(x: Any) -> float | None:
    if x is None:
        return None
    t = float(x)
    if not math.isfinite(t):
        raise ValueError(f"time {x!r}")
    return t


def _stopped_at(path: Path) -> float | None:
    """The time of the receipt's stop mark; ``-inf`` for an unreadable one (taken as a stop
    before anything), ``None`` without one."""
    try:
        text = _stop_mark(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError:
        return -math.inf
    try:
        return float(text)
    except ValueError:
        return -math.inf
