"""Trials, their statuses, and the result of a study.

A :class:`Trial` is plain data: it holds no reference to the study, the objective or the GP,
so it pickles, journals and crosses process boundaries as it is.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from gpbo.exceptions import NoCompletedTrialError

if TYPE_CHECKING:
    from gpbo.space import Space

TrialStatus = Literal["pending", "running", "complete", "failed", "timeout", "interrupted"]

STATUSES: tuple[str, ...] = ("pending", "running", "complete", "failed", "timeout", "interrupted")
#: Statuses that count towards ``n_trials``: the trial ran to an end.
FINISHED_STATUSES: frozenset[str] = frozenset({"complete", "failed", "timeout"})
#: Statuses of a trial that has not ended.
ACTIVE_STATUSES: frozenset[str] = frozenset({"pending", "running"})

Direction = Literal["minimize", "maximize"]

#: Metric names that are usually maximized (``val_acc``, ``top1_accuracy``, ``f1``...): a study
#: or config that names one without a direction is warned that it will be minimized.
_LARGER_IS_BETTER = re.compile(
    r"(?:^|[^a-z])(?:acc|accuracy|auc|auroc|f1|precision|recall|reward|return|score|iou|bleu|r2)"
    r"(?:[^a-z]|$)",
    re.IGNORECASE,
)


def usually_maximized(metric: str) -> bool:
    """Whether ``metric`` names a score usually maximized (``val_acc``, ``f1``, ``reward``)."""
    return _LARGER_IS_BETTER.search(metric) is not None


@dataclass
class Trial:
    """One evaluation of the objective at one parameter set.

    Attributes:
        number: Position in the study, from 0; a re-run of an interrupted trial keeps it.
        params: The parameter values, keyed by name, in the space's order.
        value: The metric, for a ``complete`` trial; ``None`` otherwise.
        status: One of ``pending``, ``running``, ``complete``, ``failed``, ``timeout``,
            ``interrupted``.
        error: Why a trial failed or timed out (message, often with a traceback).
        device: The device the trial ran on (``"cpu"``, ``"cuda:0"``, ...).
        round: The ask that proposed it (synchronous mode: the round number).
        started_at: Unix time the objective started.
        finished_at: Unix time the objective returned or was stopped.
        metrics: Extra numbers the objective returned beside the metric.
        seed: A seed for the trial's own randomness, derived from the study seed.
    """

    number: int
    params: dict[str, Any]
    value: float | None = None
    status: TrialStatus = "pending"
    error: str | None = None
    device: str | None = None
    round: int | None = None
    started_at: float | None = None
    finished_at: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    seed: int | None = None

    @property
    def duration(self) -> float | None:
        """Seconds between start and finish, where both are known."""
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    @property
    def finished(self) -> bool:
        """Whether the trial ran to an end (``complete``, ``failed`` or ``timeout``)."""
        return self.status in FINISHED_STATUSES

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy of the trial."""
        return {
            "number": self.number,
            "params": dict(self.params),
            "value": self.value,
            "status": self.status,
            "error": self.error,
            "device": self.device,
            "round": self.round,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "metrics": dict(self.metrics),
            "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Trial:
        """The inverse of :meth:`to_dict`."""
        return cls(
            number=int(data["number"]),
            params=dict(data["params"]),
            value=data.get("value"),
            status=data.get("status", "pending"),
            error=data.get("error"),
            device=data.get("device"),
            round=data.get("round"),
            started_at=data.get("started_at"),
            finished_at=data.get("finished_at"),
            metrics=dict(data.get("metrics") or {}),
            seed=data.get("seed"),
        )


def is_better(a: float, b: float, direction: Direction) -> bool:
    """Whether value ``a`` is strictly better than ``b`` under ``direction``."""
    return a < b if direction == "minimize" else a > b


def best_of(trials: Sequence[Trial], direction: Direction) -> Trial | None:
    """The complete trial with the best value (the earliest among ties), or ``None``."""
    best: Trial | None = None
    for trial in trials:
        if trial.status != "complete" or trial.value is None or not math.isfinite(trial.value):
            continue
        if best is None or is_better(trial.value, best.value, direction):  # type: ignore[arg-type]
            best = trial
    return best


def count_by_status(trials: Iterable[Trial]) -> dict[str, int]:
    """How many trials are in each status that occurs, in order of first occurrence."""
    counts: dict[str, int] = {}
    for trial in trials:
        counts[trial.status] = counts.get(trial.status, 0) + 1
    return counts


def no_completed_trial_error(trials: Iterable[Trial]) -> NoCompletedTrialError:
    """The error of a best trial asked for where none completed: the trials by status, and
    where the failed ones say why."""
    by_status = count_by_status(trials)
    counts = ", ".join(f"{k}={v}" for k, v in by_status.items()) or "no trials"
    hint = (
        "; look at the failed trials' `error` to see why"
        if by_status.get("failed") or by_status.get("timeout")
        else ""
    )
    return NoCompletedTrialError(f"no trial completed (trials by status: {counts}){hint}")


def format_counts(counts: dict[str, int], *, empty: str = "no trials") -> str:
    """``"8 complete, 1 failed"``; ``empty`` where there are none."""
    return ", ".join(f"{n} {status}" for status, n in counts.items()) or empty


class BestTrialMixin:
    """``best_params`` and ``best_value`` from a class's ``best_trial`` (Study, Result)."""

    best_trial: Trial

    @property
    def best_params(self) -> dict[str, Any]:
        """The parameters of :attr:`best_trial`."""
        return dict(self.best_trial.params)

    @property
    def best_value(self) -> float:
        """The value of :attr:`best_trial`."""
        return float(self.best_trial.value)  # type: ignore[arg-type]  # complete: has one


def table_columns(trials: Sequence[Trial], *, param_names: Sequence[str] = ()) -> list[str]:
    """The columns of a table of ``trials``, as :meth:`Result.to_dataframe` and ``gpbo export
    --csv`` both have them: ``number``, ``status``, ``value``, ``params_*``, ``metrics_*``,
    ``device``, ``round``, ``started_at``, ``finished_at``, ``duration``, ``error``.

    ``param_names`` (the space's) come first, so a study without trials yet has its columns;
    the metrics in the order trials first report them.
    """
    params: dict[str, None] = dict.fromkeys(param_names)
    metrics: dict[str, None] = {}
    for trial in trials:
        params.update(dict.fromkeys(trial.params))
        metrics.update(dict.fromkeys(trial.metrics))
    return [
        "number",
        "status",
        "value",
        *[f"params_{k}" for k in params],
        *[f"metrics_{k}" for k in metrics],
        "device",
        "round",
        "started_at",
        "finished_at",
        "duration",
        "error",
    ]


class Result(BestTrialMixin):
    """What :func:`gpbo.optimize` returns: every trial, and the best one.

    Args:
        trials: All trials of the study, in number order.
        direction: ``"minimize"`` or ``"maximize"``.
        stop_reason: Why the study ended, in words.
        seed: The study's seed (the one drawn where ``seed=None`` was passed): the same
            ``seed=`` proposes the same points again.
        space: The study's search space (:class:`~gpbo.Space`), where known: :meth:`plot`
            draws its log-scaled parameters on log axes and its choices in their order.
        metric: The name of the value (``metric=`` of :func:`gpbo.optimize`), for plots and
            summaries.
        trials_dir: The folder holding each trial's own directory (:meth:`trial_dir`).
    """

    def __init__(
        self,
        trials: Sequence[Trial],
        *,
        direction: Direction,
        stop_reason: str = "",
        seed: int | None = None,
        space: Space | None = None,
        metric: str = "value",
        trials_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.trials: list[Trial] = list(trials)
        self.metric = metric
        self.trials_dir = Path(trials_dir) if trials_dir is not None else None
        self.direction: Direction = direction
        self.stop_reason = stop_reason
        self.seed = seed
        self.space = space

    @property
    def best_trial(self) -> Trial:
        """The complete trial with the best value.

        Raises:
            NoCompletedTrialError: No trial completed.
        """
        best = best_of(self.trials, self.direction)
        if best is None:
            raise no_completed_trial_error(self.trials)
        return best

    def status_counts(self) -> dict[str, int]:
        """The number of trials in each status that occurs."""
        return count_by_status(self.trials)

    def trial_dir(self, trial: Trial | int) -> Path | None:
        """The directory a trial wrote its files in (``gpbo.current_trial().dir`` while it
        ran: checkpoints, logs), or ``None`` where it wrote nothing.

        Beside the journal (``run.jsonl`` -> ``run.trials/000007``), or, for a study without
        one, under a temporary folder that is kept while a trial's files are in it.
        """
        if self.trials_dir is None:
            return None
        number = trial.number if isinstance(trial, Trial) else int(trial)
        folder = self.trials_dir / f"{number:06d}"
        return folder if folder.is_dir() else None

    def to_dataframe(self) -> Any:
        """The trials as a ``pandas.DataFrame``, one row each, a column per parameter.

        Columns, in the order of ``gpbo export --csv``: ``number``, ``status``, ``value``,
        ``params_*``, ``metrics_*``, ``device``, ``round``, ``started_at`` and ``finished_at``
        (time-zone aware, in UTC; ``NaT`` for a trial not started or not finished),
        ``duration`` (seconds), ``error``. Needs the ``pandas`` extra
        (``pip install "pandas>=1.5"``).
        """
        from gpbo._optional import import_optional

        pd = import_optional("pandas", extra="pandas", feature="to_dataframe()")
        rows = []
        for trial in self.trials:
            row = {
                "number": trial.number,
                "status": trial.status,
                "value": trial.value,
                "device": trial.device,
                "round": trial.round,
                "started_at": trial.started_at,
                "finished_at": trial.finished_at,
                "duration": trial.duration,
            }
            row.update({f"params_{k}": v for k, v in trial.params.items()})
            row.update({f"metrics_{k}": v for k, v in trial.metrics.items()})
            row["error"] = trial.error
            rows.append(row)
        # the columns given: a metric first reported by a later trial came after "error", and
        # a study without trials (a timeout before the first) was a frame without columns
        names = self.space.names if self.space is not None else ()
        frame = pd.DataFrame(rows, columns=table_columns(self.trials, param_names=names))
        for column in ("started_at", "finished_at"):
            # UTC: one offset for all, where a study ran across a change of daylight saving
            frame[column] = pd.to_datetime(
                frame[column].astype("float64"), unit="s", utc=True
            )
        return frame

    def plot(self, path: str | os.PathLike[str] | None = None, **kwargs: Any) -> Any:
        """Draw the study with :func:`gpbo.plots.plot` (needs ``gpbo[plot]``); return the figure."""
        from gpbo.plots import plot

        return plot(self, path, **kwargs)

    def __repr__(self) -> str:
        best = best_of(self.trials, self.direction)
        best_text = "none" if best is None else f"{best.value!r} at trial {best.number}"
        return f"Result(trials={len(self.trials)}, best={best_text})"
