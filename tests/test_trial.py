"""Tests for gpbo/trial.py: Trial records and Result."""

from __future__ import annotations

import builtins
import io

import pytest

import gpbo
from gpbo.exceptions import NoCompletedTrialError
from gpbo.report import write_csv
from gpbo.trial import Result, Trial, best_of, count_by_status, format_counts


def make_trials():
    return [
        Trial(number=0, params={"x": 1.0}, value=3.0, status="complete", started_at=10.0,
              finished_at=12.5, metrics={"acc": 0.5}),
        Trial(number=1, params={"x": 2.0}, status="failed", error="boom"),
        Trial(number=2, params={"x": 3.0}, value=1.0, status="complete"),
        Trial(number=3, params={"x": 4.0}, value=1.0, status="complete"),
    ]


def test_round_trip_and_duration():
    trial = make_trials()[0]
    assert Trial.from_dict(trial.to_dict()) == trial
    assert trial.duration == 2.5 and trial.finished
    assert Trial(number=9, params={}).duration is None


def test_best_of_respects_direction_and_ties():
    trials = make_trials()
    assert best_of(trials, "minimize").number == 2  # the earliest of a tie
    assert best_of(trials, "maximize").number == 0
    assert best_of(trials[1:2], "minimize") is None


def test_result_best_and_counts():
    result = Result(make_trials(), direction="minimize", stop_reason="4 trials finished")
    assert result.best_value == 1.0 and result.best_params == {"x": 3.0}
    assert result.status_counts() == {"complete": 3, "failed": 1}
    assert "best=1.0 at trial 2" in repr(result)
    empty = Result(make_trials()[1:2], direction="minimize")
    with pytest.raises(NoCompletedTrialError, match="failed=1"):
        _ = empty.best_trial


def test_to_dataframe_or_a_clear_message(monkeypatch):
    result = Result(make_trials(), direction="minimize")
    try:
        import pandas
    except ImportError:
        pass
    else:
        frame = result.to_dataframe()
        assert list(frame["number"]) == [0, 1, 2, 3]
        assert "params_x" in frame.columns and "metrics_acc" in frame.columns
        started = {t.number: t.started_at for t in result.trials}
        for row in frame.itertuples():
            if started[row.number] is None:
                assert pandas.isna(row.started_at)
            else:
                assert row.started_at.timestamp() == pytest.approx(started[row.number])
                assert str(row.started_at.tz) == "UTC"
        # no trials (a timeout before the first): the columns, no KeyError
        empty = Result([], direction="minimize").to_dataframe()
        assert empty.empty and list(empty.columns)[:3] == ["number", "status", "value"]
        assert list(empty.columns)[-1] == "error"
        # the CSV's columns in the CSV's order, also where the first trial reports no metric
        trials = make_trials()[1:] + make_trials()[:1]
        space = gpbo.Space({"x": gpbo.Real(0, 5), "y": gpbo.Real(0, 1)})
        frame = Result(trials, direction="minimize", space=space).to_dataframe()
        stream = io.StringIO()
        write_csv(trials, stream, param_names=space.names)
        header = stream.getvalue().splitlines()[0].split(",")
        assert list(frame.columns) == header
        assert header[:6] == ["number", "status", "value", "params_x", "params_y", "metrics_acc"]
        assert header[-1] == "error" and frame["params_y"].isna().all()
    real_import = builtins.__import__

    def no_pandas(name, *args, **kwargs):
        if name == "pandas":
            raise ImportError("no pandas here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pandas)
    monkeypatch.delitem(__import__("sys").modules, "pandas", raising=False)
    hint = r'to_dataframe\(\) needs the optional package .pandas.* pip install "pandas>=1.5"'
    with pytest.raises(ImportError, match=hint):
        result.to_dataframe()


def test_count_by_status_in_order_of_first_occurrence():
    trials = [Trial(0, {}, status="failed"), Trial(1, {}, value=1.0, status="complete"),
              Trial(2, {}, status="failed")]
    assert list(count_by_status(trials).items()) == [("failed", 2), ("complete", 1)]
    assert format_counts(count_by_status(trials)) == "2 failed, 1 complete"
    assert format_counts({}, empty="no trials yet") == "no trials yet"
