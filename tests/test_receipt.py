"""Tests for gpbo/receipt.py: a worker's outcome receipt, written whole and read back only for
the attempt, trial, parameters and metric it belongs to."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest

from gpbo.executors.base import TrialOutcome
from gpbo.receipt import clear_receipt, mark_stopped, read_receipt, write_receipt

PARAMS = {"lr": 0.01, "layers": 3, "act": "relu"}
DONE = TrialOutcome(number=7, status="complete", value=0.25, metrics={"acc": 0.9},
                    started_at=100.0, finished_at=160.0)


def _write(path: Path, outcome: TrialOutcome = DONE) -> None:
    write_receipt(path, outcome, params=PARAMS, metric="loss")


def _read(path: Path, **changes: object) -> TrialOutcome | None:
    options = {"number": 7, "params": dict(PARAMS), "metric": "loss", **changes}
    return read_receipt(path, **options)  # type: ignore[arg-type]


def test_a_receipt_reads_back_as_written_and_clear_removes_it(tmp_path):
    path = tmp_path / ".receipts" / "000007.json"  # its folder is made on the first write
    assert _read(path) is None
    _write(path)
    assert _read(path) == DONE
    assert sorted(p.name for p in path.parent.iterdir()) == ["000007.json"]  # no partial left
    failed = TrialOutcome(number=7, status="failed", error="ValueError: boom", started_at=1.0,
                          finished_at=2.0)
    _write(path, failed)
    assert _read(path) == failed
    unusable = dataclasses.replace(failed, unusable=True)  # no readable metric: kept as such
    _write(path, unusable)
    assert _read(path) == unusable
    mark_stopped(path, 3.0)
    clear_receipt(path)
    assert list(path.parent.iterdir()) == []
    clear_receipt(path)  # nothing there: no error


@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"number": 8}, "not trial 8's"),
        ({"params": {**PARAMS, "lr": 0.02}}, "not trial 7's"),
        ({"metric": "val_acc"}, "holds metric 'loss', the study now 'val_acc'"),
    ],
)
def test_a_receipt_of_another_trial_or_metric_is_refused(tmp_path, caplog, changes, said):
    path = tmp_path / "000007.json"
    _write(path)
    with caplog.at_level(logging.INFO, logger="gpbo.receipt"):
        assert _read(path, **changes) is None
    assert said in caplog.text


@pytest.mark.parametrize(
    "text",
    ["", '{"number": 7', '{"number": 7, "params": {}}', "[1, 2]",
     '{"number": 7, "params": {"lr": 0.01, "layers": 3, "act": "relu"}, "metric": "loss", '
     '"status": "complete", "value": null}'],
)
def test_a_damaged_receipt_is_refused_with_a_warning(tmp_path, caplog, text):
    path = tmp_path / "000007.json"
    path.write_text(text)
    with caplog.at_level(logging.WARNING, logger="gpbo.receipt"):
        assert _read(path) is None
    assert "is damaged" in caplog.text and "trial 7 runs again" in caplog.text


def test_a_result_made_after_gpbo_stopped_the_trial_is_refused(tmp_path):
    # a training loop that catches SIGTERM returns its loss so far: not the trial's result
    path = tmp_path / "000007.json"
    _write(path)
    mark_stopped(path, 150.0)  # stopped at 150, the result came at 160
    assert _read(path) is None
    mark_stopped(path, 170.0)  # stopped after the trial ended by itself: its result stands
    assert _read(path) == DONE
    path.with_suffix(".stopped").write_text("garbled")  # unreadable: taken as stopped first
    assert _read(path) is None


def test_an_unwritable_receipt_warns_once_and_leaves_nothing(tmp_path, caplog, monkeypatch):
    import gpbo.receipt as receipt_module

    monkeypatch.setattr(receipt_module, "_warned_unwritable", False)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with caplog.at_level(logging.WARNING, logger="gpbo.receipt"):
        _write(blocker / "000007.json")  # its folder cannot be made
        _write(blocker / "000007-2.json")
    assert caplog.text.count("could not write the outcome receipt") == 1
    assert "will run that trial again" in caplog.text
