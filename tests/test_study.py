"""Tests for gpbo/study.py: ask/tell, enqueue, add, bad values, the journal seam, load()."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import gpbo
import gpbo.journal as journal_module
from gpbo.exceptions import NoCompletedTrialError
from gpbo.executors.base import TrialOutcome
from gpbo.receipt import write_receipt
from tests.conftest import fast_bayes

SPACE = {"x": gpbo.Real(-5, 5), "n": gpbo.Int(1, 8)}


def f(params):
    return (params["x"] - 1) ** 2 + abs(params["n"] - 3)


def test_ask_tell_and_best():
    study = gpbo.Study(SPACE, strategy="sobol", seed=0)
    with pytest.raises(NoCompletedTrialError, match=r"no trial completed \(trials by status: "
                       r"no trials\)$"):
        _ = study.best_value
    trials = study.ask(4)
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert all(t.status == "pending" and t.round == 0 for t in trials)
    for trial in trials:
        study.tell(trial, f(trial.params))
    values = [f(t.params) for t in trials]
    assert study.best_value == min(values)
    assert study.best_params == trials[int(np.argmin(values))].params
    assert study.best_trial.status == "complete"
    assert study.ask(1)[0].round == 1


def test_maximize_direction():
    study = gpbo.Study(SPACE, direction="maximize", strategy="random", seed=0)
    for trial in study.ask(5):
        study.tell(trial, f(trial.params))
    assert study.best_value == max(t.value for t in study.trials)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [(math.nan, "not a finite"), (math.inf, "not a finite"), (None, "not a number"),
     ("0.5", "not a number"), (True, "not a number"), ({"loss": 1.0}, "without the metric")],
)
def test_bad_values_fail_the_trial_with_the_reason(value, fragment):
    study = gpbo.Study(SPACE, strategy="random", seed=0)
    (trial,) = study.ask(1)
    study.tell(trial, value)
    assert trial.status == "failed"
    assert fragment in trial.error


def test_tell_accepts_mappings_numpy_and_tensors():
    import torch

    study = gpbo.Study(SPACE, strategy="random", seed=0)
    a, b, c, d = study.ask(4)
    study.tell(a, {"value": 0.5, "accuracy": 0.9})
    study.tell(b, np.float32(0.25))
    study.tell(c, torch.tensor(0.125))
    study.tell(d, torch.tensor([0.0625]))  # a loss of shape (1,)
    assert (a.value, a.metrics) == (0.5, {"accuracy": 0.9})
    assert (b.value, c.value, d.value) == (0.25, 0.125, 0.0625)


def test_tell_without_the_value_key_says_how_to_pass_the_metric(caplog):
    study = gpbo.Study(SPACE, strategy="random", seed=0)
    (trial,) = study.ask(1)
    study.tell(trial, {"loss": 1.0})
    assert trial.status == "failed"
    assert "tell(..., metrics=)" in trial.error and "pass metric=" not in trial.error
    (text,) = study.ask(1)
    caplog.clear()
    with caplog.at_level("WARNING", logger="gpbo.study"):
        study.tell(text, "0.3")  # a slip of the caller's is recorded, and said
    assert text.status == "failed"
    assert text.error == "tell() got '0.3' (str), not a number; pass a float (or a mapping " \
        "holding the metric)"
    assert [r.getMessage() for r in caplog.records] == [f"trial 1 is recorded failed: {text.error}"]
    with pytest.raises(gpbo.GpboError, match=r"got a list of 1; ask\(\) returns a list"):
        study.tell(study.ask(1), 1.0)


def test_tell_errors_timeouts_and_twice():
    study = gpbo.Study(SPACE, strategy="random", seed=0)
    a, b = study.ask(2)
    study.tell(a, error=RuntimeError("CUDA error"))
    assert a.status == "failed" and a.error == "RuntimeError: CUDA error"  # said once
    study.tell(b.number, status="timeout")
    assert b.status == "timeout"
    with pytest.raises(gpbo.GpboError, match="already ended"):
        study.tell(a, 1.0)
    with pytest.raises(gpbo.GpboError, match="no trial 7"):
        study.tell(7, 1.0)


def test_enqueue_comes_first_and_is_validated():
    study = gpbo.Study(SPACE, strategy="random", seed=0)
    study.enqueue({"x": 1.0, "n": 3})
    with pytest.raises(ValueError, match="'n'"):
        study.enqueue({"x": 1.0, "n": 30})
    trials = study.ask(2)
    assert trials[0].params == {"x": 1.0, "n": 3}
    assert trials[1].params != trials[0].params


def test_enqueue_skips_a_point_already_queued_or_tried_unless_told(tmp_path, caplog):
    path = tmp_path / "j.jsonl"
    known = {"x": 0.5, "n": 2}

    def run_script() -> list[gpbo.Trial]:  # a script that enqueues, asks, tells; run twice
        study = gpbo.Study(SPACE, strategy="random", seed=0, journal=path)
        study.enqueue(known)
        for trial in study.ask(2):
            study.tell(trial, trial.params["x"])
        return study.trials

    first = run_script()
    with caplog.at_level(logging.INFO, logger="gpbo.study"):
        second = run_script()  # the resume: the known point is trial 0 already
    assert first[0].params == known and len(second) == 4
    assert [t.params for t in second].count(known) == 1
    assert "already trial 0; not queued again" in caplog.text
    study = gpbo.Study(SPACE, strategy="random", seed=0)
    assert study.enqueue(known) is True and study.enqueue(dict(known)) is False
    assert study.enqueue({"x": 0.5, "n": 2.0}) is False  # the same point, written otherwise
    assert study.enqueue(known, skip_if_seen=False) is True
    assert [t.params for t in study.ask(3)][:2] == [known, known]


def test_add_records_results_from_elsewhere_and_informs_the_strategy():
    study = gpbo.Study(SPACE, strategy=fast_bayes(n_init=3), seed=0)
    for x in (-4.0, 0.0, 4.0):
        study.add({"x": x, "n": 3}, f({"x": x, "n": 3}))
    assert [t.status for t in study.trials] == ["complete"] * 3
    trials = study.ask(2)  # past n_init already: the GP proposes
    assert all(t.number >= 3 for t in trials)


def test_interrupted_trials_are_asked_again_with_the_same_number_and_params():
    study = gpbo.Study(SPACE, strategy="random", seed=0)
    a, b = study.ask(2)
    study.tell(a, 1.0)
    study.tell(b, status="interrupted")
    (again,) = study.ask(1)
    assert again.number == b.number and again.params == b.params and again.status == "pending"


def test_trial_seeds_and_dirs_are_stable(tmp_path):
    study = gpbo.Study(SPACE, strategy="random", seed=5, journal=tmp_path / "s.jsonl")
    (trial,) = study.ask(1)
    assert study.trial_dir(trial) == tmp_path / "s.trials" / "000000"
    other = gpbo.Study(SPACE, strategy="random", seed=5)
    assert other.ask(1)[0].seed == trial.seed
    assert other.trial_dir(0).parent.exists()
    study.close()


def test_journal_resume_replays_finished_trials_and_reruns_pending(tmp_path, monkeypatch):
    path = tmp_path / "study.jsonl"
    study = gpbo.Study(SPACE, strategy="sobol", seed=1, journal=path)
    first = study.ask(3)
    for trial in first[:2]:
        study.tell(trial, f(trial.params))
    study.close()  # trial 2 was left running: the driver "died"

    reads = []
    read_journal = journal_module.read_journal
    monkeypatch.setattr(
        journal_module, "read_journal", lambda p: reads.append(p) or read_journal(p)
    )
    resumed = gpbo.Study(SPACE, strategy="sobol", journal=path)  # seed read from the journal
    assert resumed.seed == 1
    assert reads == [path]  # once, under the lock (a 20k-trial journal takes ~0.5 s a read)
    assert [t.status for t in resumed.trials] == ["complete", "complete", "interrupted"]
    (again, new) = resumed.ask(2)
    assert again.number == 2 and again.params == first[2].params
    reference = gpbo.Study(SPACE, strategy="sobol", seed=1)
    assert new.params == reference.ask(4)[3].params  # the uninterrupted run's 4th point
    resumed.close()

    loaded = gpbo.load(path)
    assert [t.number for t in loaded.trials] == [0, 1, 2, 3]
    assert loaded.best_value == min(f(t.params) for t in first[:2])


def test_a_resume_with_the_parameters_in_another_order_proposes_what_the_run_would_have(tmp_path):
    space = {"a": gpbo.Real(0, 1), "b": gpbo.Real(0, 10), "c": gpbo.Int(1, 100)}
    path = tmp_path / "study.jsonl"
    study = gpbo.Study(space, strategy="sobol", seed=2, journal=path)
    for trial in study.ask(3):
        study.tell(trial, trial.params["a"])
    study.close()

    reordered = {name: space[name] for name in ("c", "a", "b")}
    resumed = gpbo.Study(reordered, strategy="sobol", journal=path)
    assert resumed.space.names == ["a", "b", "c"]  # the journal's order: its columns
    reference = gpbo.Study(space, strategy="sobol", seed=2)
    assert [t.params for t in resumed.ask(3)] == [t.params for t in reference.ask(6)[3:]]
    resumed.close()


def test_journal_header_mismatch_is_refused(tmp_path):
    path = tmp_path / "study.jsonl"
    gpbo.Study(SPACE, seed=1, journal=path).close()
    with pytest.raises(gpbo.GpboError, match="direction"):
        gpbo.Study(SPACE, direction="maximize", journal=path)
    with pytest.raises(gpbo.GpboError, match="'x'"):
        gpbo.Study({"x": gpbo.Real(-1, 1), "n": gpbo.Int(1, 8)}, journal=path)


def test_direction_not_given_is_the_journals_or_minimize_with_a_warning_for_accuracy(tmp_path):
    path = tmp_path / "study.jsonl"
    with gpbo.Study(SPACE, direction="maximize", strategy="random", seed=1, journal=path) as st:
        st.tell(st.ask(1)[0], 0.25)
    with gpbo.Study(SPACE, strategy="random", journal=path) as resumed:  # was refused
        assert resumed.direction == "maximize"
        resumed.tell(resumed.ask(1)[0], 0.75)
        assert resumed.best_value == 0.75
    with pytest.raises(gpbo.GpboError, match="direction"):  # a direction given must agree
        gpbo.Study(SPACE, direction="minimize", journal=path)
    with pytest.warns(gpbo.GpboWarning, match=r"metric 'val_acc' is minimized .*'maximize'"):
        assert gpbo.Study(SPACE, metric="val_acc").direction == "minimize"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gpbo.Study(SPACE, metric="val_acc", direction="minimize")  # said so: no warning
        gpbo.Study(SPACE, metric="val_loss")
        accuracy = tmp_path / "acc.jsonl"
        gpbo.Study(SPACE, metric="val_acc", direction="maximize", journal=accuracy).close()
        assert gpbo.Study(SPACE, metric="val_acc", journal=accuracy).direction == "maximize"


def test_bad_arguments():
    with pytest.raises(gpbo.GpboError, match="direction"):
        gpbo.Study(SPACE, direction="min")  # type: ignore[arg-type]
    with pytest.raises(gpbo.GpboError, match="seed"):
        gpbo.Study(SPACE, seed="0")  # type: ignore[arg-type]
    with pytest.raises(gpbo.GpboError, match="non-negative"):
        gpbo.Study(SPACE, seed=-1)  # numpy's seeding refuses it at the first ask
    with pytest.raises(gpbo.GpboError, match="is not a device"):
        gpbo.Study(SPACE, surrogate_device="gpu0")  # at construction, not at the first fit
    with pytest.raises(gpbo.GpboError, match="positive int"):
        gpbo.Study(SPACE).ask(0)


def test_a_non_finite_extra_number_is_left_out_and_the_journal_keeps_the_trial(tmp_path):
    path = tmp_path / "run.jsonl"

    def diverged(params):
        return {"value": f(params), "accuracy": float("nan"), "loss": 1.5}

    result = gpbo.optimize(diverged, SPACE, n_trials=3, strategy="random", executor="serial",
                           seed=0, journal=path, verbose=False)
    assert [t.status for t in result.trials] == ["complete"] * 3
    assert all(t.metrics == {"loss": 1.5} for t in result.trials)
    assert [t.status for t in gpbo.load(path).trials] == ["complete"] * 3


def test_tell_refuses_a_non_finite_metric_before_changing_the_trial(tmp_path):
    study = gpbo.Study(SPACE, strategy="random", seed=0, journal=tmp_path / "j.jsonl")
    trial = study.ask(1)[0]
    with pytest.raises(gpbo.GpboError, match=r"metrics\['acc'\].*must be finite"):
        study.tell(trial, 1.0, metrics={"acc": float("inf")})
    with pytest.raises(gpbo.GpboError, match="not a number"):
        study.tell(trial, 1.0, metrics={"acc": "high"})
    assert trial.status == "pending" and trial.value is None
    study.tell(trial, 1.0, metrics={"acc": 0.5})
    assert trial.status == "complete" and trial.metrics == {"acc": 0.5}


def test_a_journal_write_that_fails_leaves_memory_as_the_journal_has_it(tmp_path, monkeypatch):
    path = tmp_path / "j.jsonl"
    study = gpbo.Study(SPACE, strategy="random", seed=0, journal=path)
    journal = study._journal
    real_append = journal.append

    def disk_full(event):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(journal, "append", disk_full)
    with pytest.raises(OSError):
        study.add({"x": 0.5, "n": 2}, 1.0)
    with pytest.raises(OSError):
        study.ask(2)
    assert study.trials == []
    monkeypatch.setattr(journal, "append", real_append)
    trial = study.ask(1)[0]
    assert trial.number == 0
    monkeypatch.setattr(journal, "append", disk_full)
    with pytest.raises(OSError):
        study.tell(trial, 2.0)
    assert trial.status == "pending" and trial.value is None  # as the journal has it
    monkeypatch.setattr(journal, "append", real_append)
    study.tell(trial, 2.0)
    study.add({"x": 0.5, "n": 2}, 1.0)
    study.close()
    resumed = gpbo.Study(SPACE, strategy="random", seed=0, journal=path)
    assert [(t.number, t.status, t.value) for t in resumed.trials] == [
        (0, "complete", 2.0), (1, "complete", 1.0)
    ]
    resumed.close()


def test_a_damaged_event_is_a_journal_error_and_the_lock_is_released(tmp_path):
    import json

    from gpbo.journal import JournalError

    path = tmp_path / "j.jsonl"
    with gpbo.Study(SPACE, strategy="random", seed=0, journal=path) as study:
        study.tell(study.ask(1)[0], 1.0)
    good = path.read_text()
    with path.open("a") as fh:
        fh.write(json.dumps({"event": "trial", "trial": {"number": 1}}) + "\n")
    with pytest.raises(JournalError, match=r"damaged.*repair that line"):
        gpbo.Study(SPACE, strategy="random", seed=0, journal=path)
    path.write_text(good)
    with gpbo.Study(SPACE, strategy="random", seed=0, journal=path) as study:
        assert [t.status for t in study.trials] == ["complete"]


def test_tell_refuses_a_value_and_an_error_together():
    study = gpbo.Study(SPACE, strategy="random", seed=0)
    (trial,) = study.ask(1)
    with pytest.raises(gpbo.GpboError, match="both a value and an error"):
        study.tell(trial, 2.0, error="oops")  # was recorded failed, the value dropped silently
    assert trial.status == "pending"
    study.tell(trial, 2.0)
    assert (trial.status, trial.value) == ("complete", 2.0)


def test_a_trial_interrupted_before_it_started_has_no_start_or_duration():
    study = gpbo.Study(SPACE, strategy="random", seed=0)
    started, never = study.ask(2)
    study.mark_running(started, device="cpu")
    study.tell(started, status="interrupted")
    study.tell(never, status="interrupted")  # e.g. the rest of a round a StopStudy cut
    assert started.started_at is not None and started.duration is not None
    assert never.started_at is None and never.duration is None
    result = study.result()
    with pytest.raises(gpbo.NoCompletedTrialError) as info:
        _ = result.best_trial
    assert "interrupted=2" in str(info.value) and "failed trials" not in str(info.value)


def test_tell_refuses_an_unknown_status_or_an_error_called_complete_before_the_value():
    study = gpbo.Study(SPACE, strategy="random", seed=0)
    (trial,) = study.ask(1)
    with pytest.raises(gpbo.GpboError, match=r"^trial 0: tell\(\) got status='done'"):
        study.tell(trial, "not a number", status="done")  # the status is what is wrong
    with pytest.raises(gpbo.GpboError, match="an error with status='complete'"):
        study.tell(trial, error="boom", status="complete")  # was recorded failed silently
    assert trial.status == "pending"
    study.tell(trial, np.float64(0.5), status="complete")
    assert (trial.status, trial.value) == ("complete", 0.5)


def test_numpy_integers_are_taken_as_counts_and_a_journal_that_is_no_path_refused(tmp_path):
    study = gpbo.Study(SPACE, strategy=gpbo.strategies.Bayes(n_init=np.int64(3)), seed=0)
    assert len(study.ask(np.int64(2))) == 2 and study.strategy.n_init == 3
    assert type(study.strategy.n_init) is int
    assert gpbo.strategies.Grid(levels=np.int32(3)).levels == 3
    result = gpbo.optimize(lambda p: p["x"], SPACE, n_trials=np.int64(3),
                           batch_size=np.int64(1), strategy="random", seed=0, verbose=False,
                           journal=tmp_path / "j.jsonl")
    assert len(result.trials) == 3  # and the journal, JSON, took the counts
    with pytest.raises(gpbo.GpboError, match=r"journal must be a file path .* got 123"):
        gpbo.Study(SPACE, journal=123)


@pytest.mark.parametrize("status", ["failed", "timeout", "interrupted"])
def test_tell_refuses_a_value_with_a_status_that_has_none(status):
    study = gpbo.Study(SPACE, strategy="random", seed=0)
    (trial,) = study.ask(1)
    with pytest.raises(gpbo.GpboError, match=f"a value with status='{status}'"):
        study.tell(trial, 1.0, status=status)  # the value was dropped silently
    assert trial.status == "pending"
    study.tell(trial, status=status)
    assert trial.status == status and trial.value is None


def test_mark_running_refuses_a_trial_that_ended_and_takes_a_waiting_rerun(tmp_path):
    journal = tmp_path / "j.jsonl"
    study = gpbo.Study(SPACE, strategy="random", seed=0, journal=journal)
    done, waiting = study.ask(2)
    study.tell(done, 0.1)
    with pytest.raises(gpbo.GpboError, match=r"trial 0 has already ended \(complete\)"):
        study.mark_running(done, device="cuda:0")  # it reopened the trial, its value lost
    assert (done.status, study.best_value) == ("complete", 0.1)

    study.tell(waiting, status="interrupted")
    study.mark_running(waiting, device="cpu")  # started elsewhere, e.g. a cluster job's hook
    assert waiting.status == "running"
    assert [t.number for t in study.ask(1)] == [2]  # not handed out a second time
    study.close()
    assert [t.status for t in gpbo.load(journal).trials] == ["complete", "running", "pending"]


def test_params_edited_after_ask_are_put_back_exactly_and_the_tell_then_taken():
    # values rebuilt from the unit-cube encoding were an ulp off for some, so the trial was
    # refused as edited at every later tell
    study = gpbo.Study({"v": gpbo.Real(0.1, 0.7)}, strategy="random", seed=0)
    trials = study.ask(200)
    proposed = [dict(t.params) for t in trials]
    for trial in trials:
        trial.params["v"] = 0.1
        with pytest.raises(gpbo.GpboError, match="changed after ask"):
            study.tell(trial, 1.0)
        study.tell(trial, 1.0)
    assert [t.params for t in study.trials] == proposed


def test_a_journal_path_starting_with_a_tilde_is_in_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    with gpbo.Study(SPACE, strategy="random", seed=0, journal="~/runs/j.jsonl") as study:
        study.tell(study.ask(1)[0], 1.0)
    assert (tmp_path / "home" / "runs" / "j.jsonl").is_file()
    assert not (tmp_path / "~").exists()  # was a folder named "~" in the working directory
    assert [t.value for t in gpbo.load("~/runs/j.jsonl").trials] == [1.0]


def test_a_journal_missing_a_trials_lines_names_the_file_and_the_gap(tmp_path):
    import json

    from gpbo.journal import JournalError

    path = tmp_path / "j.jsonl"
    with gpbo.Study(SPACE, strategy="random", seed=0, journal=path) as study:
        for trial in study.ask(3):
            study.tell(trial, 1.0)
    lines = path.read_text().splitlines(keepends=True)
    kept = [
        line for line in lines
        if json.loads(line).get("trial", {}).get("number") != 1
    ]
    path.write_text("".join(kept))
    with pytest.raises(JournalError) as caught:
        gpbo.Study(SPACE, strategy="random", seed=0, journal=path)
    message = str(caught.value)
    assert str(path) in message
    assert "trial 2 comes before any event of trial 1" in message
    path.write_text("".join(lines))  # the lock was released: the repaired journal opens
    with gpbo.Study(SPACE, strategy="random", seed=0, journal=path) as study:
        assert [t.number for t in study.trials] == [0, 1, 2]


def test_an_ask_whose_strategy_raises_takes_no_queued_or_interrupted_trial():
    from gpbo.strategies import Random

    class Flaky(Random):
        calls = 0

        def propose(self, history, n):
            Flaky.calls += 1
            if Flaky.calls == 1:
                raise KeyboardInterrupt
            # the queued point handed out beside these is pending for the strategy
            assert history.X_pending.shape[0] == 1
            return super().propose(history, n)

    study = gpbo.Study(SPACE, strategy=Flaky(), seed=0)
    study.enqueue({"x": 0.5, "n": 2})
    with pytest.raises(KeyboardInterrupt):
        study.ask(2)
    assert study.trials == []
    trials = study.ask(2)
    assert trials[0].params == {"x": 0.5, "n": 2}
    assert [t.number for t in trials] == [0, 1]


def test_load_reads_a_journal_written_with_a_users_own_strategy(tmp_path):
    from gpbo.strategies import Random

    class MyRandom(Random):
        name = "myrandom"

    path = tmp_path / "j.jsonl"
    with gpbo.Study(SPACE, strategy=MyRandom(), seed=0, journal=path) as study:
        study.tell(study.ask(1)[0], 1.0)
    loaded = gpbo.load(path)
    assert [t.value for t in loaded.trials] == [1.0]
    assert loaded.strategy.name == "myrandom"  # was shown as "bayes", the default's name
    assert loaded.strategy.config() == MyRandom().config()


def test_close_removes_the_temporary_trial_folders_only_if_nothing_was_written():
    study = gpbo.Study(SPACE, strategy="random", seed=0)
    empty = study.trial_dir(study.ask(1)[0])
    empty.mkdir(parents=True)
    study.close()
    assert not empty.parent.exists()

    study = gpbo.Study(SPACE, strategy="random", seed=0)
    kept = study.trial_dir(study.ask(1)[0])
    kept.mkdir(parents=True)
    (kept / "checkpoint.pt").write_bytes(b"weights")
    study.close()
    assert (kept / "checkpoint.pt").read_bytes() == b"weights"  # a user's file is never lost
    import shutil

    shutil.rmtree(kept.parent)


def test_tell_refuses_a_trial_of_another_study():
    first = gpbo.Study(SPACE, strategy="random", seed=0)
    second = gpbo.Study(SPACE, strategy="random", seed=1)
    foreign = first.ask(1)[0]
    second.ask(1)
    with pytest.raises(gpbo.GpboError, match="is it from another study"):
        second.tell(foreign, 0.5)
    assert second.trials[0].status == "pending"
    second.tell(0, 0.5)  # by number, as documented
    assert second.trials[0].value == 0.5


def test_a_strategy_changed_on_resume_is_recorded_once_and_loaded(tmp_path):
    import json

    path = tmp_path / "j.jsonl"
    with gpbo.Study(SPACE, strategy="random", seed=0, journal=path) as study:
        study.tell(study.ask(1)[0], 1.0)
    with gpbo.Study(SPACE, strategy="random", journal=path) as study:
        pass  # the same strategy again: nothing to record
    assert gpbo.load(path).strategy.name == "random"
    with (
        pytest.warns(gpbo.GpboWarning, match="strategy 'sobol' where it ran 'random'"),
        gpbo.Study(SPACE, strategy="sobol", journal=path) as study,
    ):
        study.tell(study.ask(1)[0], 2.0)
    with gpbo.Study(SPACE, strategy="sobol", journal=path) as study:
        pass
    with (
        pytest.warns(gpbo.GpboWarning, match="strategy 'bayes' where it ran 'sobol'"),
        gpbo.Study(SPACE, journal=path),  # opened to look, with the default strategy
    ):
        pass
    events = [json.loads(line) for line in path.read_text().splitlines()[1:]]
    changes = [e for e in events if e.get("kind") == "strategy"]
    assert [e["strategy"]["name"] for e in changes] == ["sobol"]
    loaded = gpbo.load(path)
    assert loaded.strategy.name == "sobol"
    assert [t.value for t in loaded.trials] == [1.0, 2.0]


def test_a_strategy_set_between_asks_is_made_and_recorded(tmp_path, recwarn):
    path = tmp_path / "j.jsonl"
    with gpbo.Study(SPACE, strategy="random", seed=0, journal=path) as study:
        study.tell(study.ask(1)[0], 1.0)
        study.strategy = "sobol"  # a name, as strategy= takes (was kept as a str)
        assert isinstance(study.strategy, gpbo.strategies.Sobol)
        study.tell(study.ask(1)[0], 2.0)
    assert gpbo.load(path).strategy.name == "sobol"
    with gpbo.Study(SPACE, strategy="sobol", journal=path) as study:
        pass  # the journal's strategy: no warning of a switch
    assert not [w for w in recwarn if "where it ran" in str(w.message)]
    with pytest.raises(gpbo.GpboError, match="is not known; use one of"):
        study.strategy = "nelder-mead"
    study = gpbo.Study(SPACE, strategy="random", n_init=3)
    study.strategy = "gradient"
    assert study.strategy.n_init == 3  # the study's, as strategy="gradient" would get


def test_a_resume_with_other_strategy_options_warns_unless_the_journal_lacks_them(tmp_path):
    import json
    import warnings

    # strategy="grid" on a Grid(levels=3) journal ran a 5-level grid, said only at INFO level
    path = tmp_path / "j.jsonl"
    with gpbo.Study(SPACE, strategy=gpbo.strategies.Grid(levels=3), seed=0, journal=path) as s:
        s.tell(s.ask(1)[0], 1.0)
    with pytest.warns(gpbo.GpboWarning, match=r"'grid' \(levels=5, was 3\)"):
        gpbo.Study(SPACE, strategy="grid", journal=path).close()
    # an option the journal's gpbo did not record is not a change
    lines = path.read_text().splitlines()
    header = json.loads(lines[0])
    header["strategy"] = {"name": "gradient", "n_init": None, "radius": 0.2, "min_radius": 1e-3}
    old = tmp_path / "old.jsonl"
    old.write_text("\n".join([json.dumps(header), *lines[1:2]]) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error", gpbo.GpboWarning)
        gpbo.Study(SPACE, strategy=gpbo.strategies.Gradient(restart=False), journal=old).close()
    # except one added since, at the value the journal's study ran with: gradient never
    # restarted, and resumed, it began to without a word
    assert gpbo.load(old).strategy.restart is False
    with pytest.warns(gpbo.GpboWarning, match=r"'gradient' \(restart=True, was False\)"):
        gpbo.Study(SPACE, strategy="gradient", journal=old).close()


def _journal_as_written_before(path: Path, change: Callable[[dict], None]) -> None:
    """A one-trial journal at ``path`` whose header ``change`` makes as an earlier gpbo
    wrote it."""
    import json

    with gpbo.Study(SPACE, strategy="random", seed=0, journal=path) as study:
        study.tell(study.ask(1)[0], 1.0)
    lines = path.read_text().splitlines()
    header = json.loads(lines[0])
    change(header)
    path.write_text("\n".join([json.dumps(header, separators=(",", ":")), *lines[1:]]) + "\n")


@pytest.mark.parametrize(
    ("missing", "change", "as_it_ran"),
    [
        # before the failed option (and so the failing-region rule): failed trials at worst
        (("failed", "failing_region"), r"failed='feasibility', was 'worst'", {"failed": "worst"}),
        # before the failing-region rule: feasibility without it
        (("failing_region",), r"failing_region=3, was None", {"failing_region": None}),
    ],
)
def test_a_journal_from_before_an_option_resumes_as_it_ran(tmp_path, missing, change, as_it_ran):
    import warnings

    path = tmp_path / "j.jsonl"
    older = {k: v for k, v in gpbo.strategies.Bayes().config().items() if k not in missing}
    _journal_as_written_before(path, lambda header: header.update(strategy=older))
    original = path.read_text()
    with pytest.warns(gpbo.GpboWarning, match=change):
        gpbo.Study(SPACE, strategy="bayes", journal=path).close()
    path.write_text(original)
    with warnings.catch_warnings():
        warnings.simplefilter("error", gpbo.GpboWarning)
        gpbo.Study(SPACE, strategy=gpbo.strategies.Bayes(**as_it_ran), journal=path).close()
    recorded = gpbo.load(path).strategy  # the journal's, filled in
    assert all(getattr(recorded, key) == value for key, value in as_it_ran.items())


def test_a_closed_or_loaded_study_refuses_what_it_could_not_record(tmp_path):
    # both took ask/tell/enqueue and dropped them: the results were gone on resume
    path = tmp_path / "j.jsonl"
    with gpbo.Study(SPACE, strategy="random", seed=0, journal=path) as study:
        study.tell(study.ask(1)[0], 1.0)
        pending = study.ask(1)[0]
    for write in (lambda: study.ask(1), lambda: study.tell(pending, 0.5),
                  lambda: study.enqueue({"x": 0.2, "y": 0.3}),
                  lambda: study.add({"x": 0.2, "y": 0.3}, 0.1)):
        with pytest.raises(gpbo.GpboError, match="was closed"):
            write()
    assert study.best_value == 1.0  # still readable
    loaded = gpbo.load(path)
    with pytest.raises(gpbo.GpboError, match=r"gpbo.load\(\) reads .* records nothing"
                       r".*direction='minimize', strategy='random'\)$"):
        loaded.ask(1)
    with pytest.raises(gpbo.GpboError, match="records nothing"):
        loaded.tell(1, 0.5)
    assert [t.value for t in loaded.trials] == [1.0, None]
    with gpbo.Study(SPACE, strategy="random", journal=path) as reopened:  # the way on
        reopened.tell(reopened.ask(1)[0], 0.5)
    assert sorted(t.value for t in gpbo.load(path).trials if t.value is not None) == [0.5, 1.0]


def test_add_refuses_a_value_that_is_no_result_and_tell_an_exception_as_value():
    study = gpbo.Study(SPACE, seed=0)
    for value in (None, float("nan"), "0.5"):
        with pytest.raises(gpbo.GpboError, match="add\\(\\) records a complete trial") as err:
            study.add({"x": 0.2, "y": 0.3}, value)
        # no objective ran: the message speaks of the value given
        assert "the value given is" in str(err.value) and "objective" not in str(err.value)
    assert study.trials == []  # was: a failed trial recorded without a word
    trial = study.ask(1)[0]
    with pytest.raises(gpbo.GpboError, match="error=exc"):
        study.tell(trial, ValueError("diverged"))
    assert trial.status == "pending"
    study.tell(trial, error=ValueError("diverged"))
    assert trial.status == "failed"


def test_load_takes_a_run_directory_and_says_what_a_directory_lacks(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    with gpbo.Study(SPACE, seed=0, journal=run / "journal.jsonl") as study:
        study.tell(study.ask(1)[0], 2.0)
    assert [t.value for t in gpbo.load(run).trials] == [2.0]
    with pytest.raises(gpbo.GpboError, match=r"directory without a journal\.jsonl"):
        gpbo.load(tmp_path)


def _die(study):
    """Let go of the study's journal as a killed driver does: nothing more recorded."""
    study._journal.close()
    study._journal = None


def _start_and_die(journal, *, in_driver: bool):
    """Open the study, start its first unfinished trial and die."""
    study = gpbo.Study(SPACE, strategy="random", seed=0, journal=journal)
    (trial,) = study.ask(1)
    study.mark_running(trial, device="cpu", in_driver=in_driver)
    _die(study)
    return trial.number


def test_a_trial_the_driver_died_in_twice_is_failed_on_resume(tmp_path):
    journal = tmp_path / "j.jsonl"
    assert _start_and_die(journal, in_driver=True) == 0
    assert _start_and_die(journal, in_driver=True) == 0  # run again once: maybe not its fault
    with gpbo.Study(SPACE, strategy="random", seed=0, journal=journal) as study:
        assert study.trials[0].status == "failed"
        assert "driver process died each of the 2 times" in study.trials[0].error
        assert 'executor="process"' in study.trials[0].error
        # a driver killed from outside is no fault of the trial: the error says how to rerun
        assert "killed from outside" in study.trials[0].error
        (trial,) = study.ask(1)
        assert trial.number == 1  # the study goes on
        failed = study.trials[0].params
        assert study.enqueue(failed) is False  # tried already
        assert study.enqueue(failed, skip_if_seen=False) is True
        assert study.ask(1)[0].params == failed


def test_a_trial_in_a_worker_is_run_again_however_often_the_driver_died(tmp_path):
    journal = tmp_path / "j.jsonl"
    for _ in range(3):  # the driver's death is not the worker's trial's doing
        assert _start_and_die(journal, in_driver=False) == 0
    # a Ctrl+C'd in-driver run (recorded interrupted) is no death either
    with gpbo.Study(SPACE, strategy="random", seed=0, journal=journal) as study:
        (trial,) = study.ask(1)
        study.mark_running(trial, in_driver=True)
        study.tell(trial, status="interrupted")
    assert _start_and_die(journal, in_driver=True) == 0
    with gpbo.Study(SPACE, strategy="random", seed=0, journal=journal) as study:
        assert study.trials[0].status == "interrupted"


def test_a_trial_running_in_the_driver_as_it_closes_is_interrupted_not_a_death(tmp_path):
    # a Ctrl+C ending a `with` block twice failed the trial as "the driver process died"
    journal = tmp_path / "j.jsonl"
    for _ in range(3):
        with (
            pytest.raises(KeyboardInterrupt),
            gpbo.Study(SPACE, strategy="random", seed=0, journal=journal) as study,
        ):
            (trial,) = study.ask(1)
            assert trial.number == 0
            study.mark_running(trial, in_driver=True)
            raise KeyboardInterrupt
        assert study.trials[0].status == "interrupted"
    events = [json.loads(line) for line in journal.read_text().splitlines()]
    assert sum(1 for e in events if e.get("closed")) == 3
    with gpbo.Study(SPACE, strategy="random", seed=0, journal=journal) as study:
        assert study.trials[0].status == "interrupted" and study.ask(1)[0].number == 0


def test_best_of_a_study_whose_trials_all_failed_says_so_and_where_to_look():
    # "no trial has completed yet (3 trials so far)" read as if waiting would help
    study = gpbo.Study(SPACE, strategy="random", seed=0)
    for trial in study.ask(3):
        study.tell(trial, error="diverged")
    with pytest.raises(NoCompletedTrialError, match=r"trials by status: failed=3\); look at "
                       r"the failed trials' `error`"):
        _ = study.best_params
    (trial,) = study.ask(1)
    study.tell(trial, error="")
    assert trial.status == "failed" and trial.error == "failed (tell() was given an empty error)"


def test_mark_running_takes_a_torch_device_as_its_name(tmp_path):
    import torch

    journal = tmp_path / "j.jsonl"
    with gpbo.Study(SPACE, strategy="random", seed=0, journal=journal) as study:
        (trial,) = study.ask(1)
        study.mark_running(trial, device=torch.device("cpu"))  # a JournalError before
        assert trial.device == "cpu"
    assert gpbo.load(journal).trials[0].device == "cpu"


def _start_with_receipt_and_die(journal, receipt=None, *, params=None):
    """As the loop starts a trial on the process executor (a receipt path journaled with the
    start); its worker writes ``receipt`` there, the driver dies. Returns the path."""
    study = gpbo.Study(SPACE, strategy="random", seed=0, journal=journal)
    (trial,) = study.ask(1)
    path = study._new_receipt(trial)
    study._mark_running(trial, device="cpu", in_driver=False, receipt=path)
    study.close()
    if receipt is not None:
        write_receipt(path, dataclasses.replace(receipt, number=trial.number),
                      params=params or trial.params, metric="value")
    return Path(path)


def test_a_resume_records_a_running_trial_from_the_receipt_its_worker_left(tmp_path, caplog):
    # the worker sent its result, and the driver died before it read and journaled it
    journal = tmp_path / "j.jsonl"
    path = _start_with_receipt_and_die(journal, TrialOutcome(
        0, status="complete", value=1.5, metrics={"acc": 0.5}, started_at=10.0, finished_at=20.0
    ))
    with (
        caplog.at_level(logging.INFO, logger="gpbo.study"),
        gpbo.Study(SPACE, strategy="random", seed=0, journal=journal) as study,
    ):
        done = study.trials[0]
        assert (done.status, done.value, done.metrics) == ("complete", 1.5, {"acc": 0.5})
        assert (done.started_at, done.finished_at) == (10.0, 20.0)
        assert study.ask(1)[0].number == 1  # nothing to run again
    assert "1 trial recorded from the outcome that its worker left" in caplog.text
    assert not path.exists() and not path.parent.exists()  # taken, and its folder tidied
    reloaded = gpbo.load(journal).trials[0]  # journaled: a later resume agrees
    assert (reloaded.status, reloaded.value) == ("complete", 1.5)


def test_a_resume_records_a_failure_from_a_receipt_and_reruns_without_a_usable_one(tmp_path):
    journal = tmp_path / "j.jsonl"
    _start_with_receipt_and_die(journal, TrialOutcome(0, status="failed", error="ValueError: boom"))
    with gpbo.Study(SPACE, strategy="random", seed=0, journal=journal) as study:
        assert (study.trials[0].status, study.trials[0].error) == ("failed", "ValueError: boom")
    # trial 1, whose receipt names other parameters
    _start_with_receipt_and_die(journal, TrialOutcome(0, status="complete", value=0.0),
                                params={"x": 0.0, "n": 1})
    with gpbo.Study(SPACE, strategy="random", seed=0, journal=journal) as study:
        assert study.trials[1].status == "interrupted"
        assert study.ask(1)[0].number == 1  # run again


def test_a_resume_reopens_failures_for_an_unreadable_metric_while_none_completed(tmp_path):
    # The loop reopens them as the study ends; a driver killed first left them failed, and a
    # resume trained the rest of n_trials beside a failure that was the setup's, not its own.
    journal = tmp_path / "j.jsonl"
    with gpbo.Study(SPACE, strategy="random", seed=0, journal=journal) as study:
        first, second = study.ask(2)
        study._tell(first, None, error="ValueError: no metric 'value'", status=None,
                    metrics=None, unusable=True)
        study.tell(second, error="RuntimeError: its own")  # an ordinary failure stays
    # trial 2's worker left its outcome, and the driver died before journaling it
    _start_with_receipt_and_die(journal, TrialOutcome(
        0, status="failed", error="ValueError: no metric 'value'", unusable=True))
    assert [t.status for t in gpbo.load(journal).trials] == ["failed", "failed", "running"]
    with gpbo.Study(SPACE, strategy="random", seed=0, journal=journal) as study:
        assert [t.status for t in study.trials] == ["failed", "failed", "failed"]
        assert [t.number for t in study._reopen_unusable_failures()] == [0, 2]
        assert [t.status for t in study.trials] == ["interrupted", "failed", "interrupted"]
    # journaled: a later resume agrees, and hands them out first
    reloaded = gpbo.load(journal).trials
    assert [t.status for t in reloaded] == ["interrupted", "failed", "interrupted"]
    with gpbo.Study(SPACE, strategy="random", seed=0, journal=journal) as study:
        assert study._reopen_unusable_failures() == []
        assert [t.number for t in study.ask(2)] == [0, 2]


def test_failures_for_an_unreadable_metric_stay_failed_once_a_trial_completed(tmp_path):
    journal = tmp_path / "j.jsonl"
    with gpbo.Study(SPACE, strategy="random", seed=0, journal=journal) as study:
        first, second = study.ask(2)
        study._tell(first, None, error="ValueError: no metric", status=None, metrics=None,
                    unusable=True)
        study.tell(second, 1.0)  # the objective can give a metric: trial 0's failure is its own
    with gpbo.Study(SPACE, strategy="random", seed=0, journal=journal) as study:
        assert study._reopen_unusable_failures() == []
        assert [t.status for t in study.trials] == ["failed", "complete"]


def test_a_resume_reads_only_the_receipt_of_the_attempt_the_journal_left_running(tmp_path):
    journal = tmp_path / "j.jsonl"
    first = _start_with_receipt_and_die(journal)  # no receipt: the worker was killed with it
    with gpbo.Study(SPACE, strategy="random", seed=0, journal=journal) as study:
        (trial,) = study.ask(1)  # its second attempt
        second = Path(study._new_receipt(trial))
        study._mark_running(trial, device="cpu", in_driver=False, receipt=str(second))
    assert second != first  # each attempt its own
    done = TrialOutcome(0, status="complete", value=1.0)
    write_receipt(first, done, params=trial.params, metric="value")
    with gpbo.Study(SPACE, strategy="random", seed=0, journal=journal) as study:
        assert study.trials[0].status == "interrupted"  # the first attempt's is not this one's
        assert not first.exists()  # swept: its attempt is over
        (trial,) = study.ask(1)
        study.mark_running(trial, in_driver=True)  # a serial run of it: no receipt
        _die(study)
    receipts = first.parent
    write_receipt(receipts / "000000.json", done, params=trial.params,
                  metric="value")  # e.g. an earlier study's at the same path
    with gpbo.Study(SPACE, strategy="random", seed=0, journal=journal) as study:
        assert study.trials[0].status == "interrupted"  # the in-driver rule, not the receipt
    assert not receipts.exists()


def test_a_trial_asked_before_a_restart_can_still_be_told(tmp_path):
    # ask/tell with evaluations elsewhere (a cluster): the driver restarts, results come back
    journal = tmp_path / "j.jsonl"
    with gpbo.Study(SPACE, strategy="random", seed=0, journal=journal) as study:
        study.ask(2)
    with gpbo.Study(SPACE, strategy="random", seed=0, journal=journal) as study:
        assert [t.status for t in study.trials] == ["interrupted", "interrupted"]
        study.tell(np.int64(0), 0.25)  # numpy integers name trials too
        (again,) = study.ask(1)  # only the untold one comes back to run again
        assert again.number == 1
        with pytest.raises(gpbo.GpboError, match="already ended"):
            study.tell(0, 0.5)
    assert gpbo.load(journal).trials[0].value == 0.25


def test_params_edited_after_ask_are_refused_and_put_back():
    study = gpbo.Study(SPACE, strategy="random", seed=0)
    (trial,) = study.ask(1)
    proposed = dict(trial.params)
    params = trial.params
    params["epochs"] = 10  # meant for the training code, not the study
    with pytest.raises(gpbo.GpboError, match=r"changed after ask\(\).*dict\(trial.params\)"):
        study.tell(trial, 1.0)
    assert trial.params == proposed and trial.status == "pending"
    study.tell(trial, 1.0)
    assert study.best_params == proposed


def test_a_numpy_integer_seed_is_a_seed():
    a = gpbo.Study(SPACE, strategy="random", seed=np.int64(5))
    b = gpbo.Study(SPACE, strategy="random", seed=5)
    assert a.seed == 5 and type(a.seed) is int
    assert a.ask(1)[0].params == b.ask(1)[0].params


def test_a_directory_as_journal_and_a_list_as_metrics_are_clear_errors(tmp_path):
    with pytest.raises(gpbo.GpboError, match=r"is a directory; give a file path in it"):
        gpbo.Study(SPACE, journal=tmp_path)
    study = gpbo.Study(SPACE, strategy="random", seed=0)
    (trial,) = study.ask(1)
    with pytest.raises(gpbo.GpboError, match="must be a mapping of names to numbers, got list"):
        study.tell(trial, 1.0, metrics=[1, 2])
    assert trial.status == "pending"


def test_trial_directories_are_absolute_from_where_the_study_was_opened(tmp_path, monkeypatch):
    # a Ray worker with runtime_env working_dir (or a serial objective that chdirs) resolved a
    # relative directory against its own current directory
    monkeypatch.chdir(tmp_path)
    with gpbo.Study(SPACE, strategy="random", seed=0, journal="runs/j.jsonl") as study:
        (trial,) = study.ask(1)
        expected = tmp_path / "runs" / "j.trials" / "000000"
        assert study.trial_dir(trial) == expected
        (tmp_path / "elsewhere").mkdir()
        monkeypatch.chdir(tmp_path / "elsewhere")
        assert study.trial_dir(trial) == expected


def test_a_metric_given_both_in_the_value_and_in_metrics_is_refused():
    study = gpbo.Study(SPACE, strategy="random", seed=0)
    (trial,) = study.ask(1)
    with pytest.raises(gpbo.GpboError, match=r"\['acc'\] given both"):
        study.tell(trial, {"value": 1.0, "acc": 0.5}, metrics={"acc": 0.7})
    study.tell(trial, {"value": 1.0, "acc": 0.5}, metrics={"loss": 0.7})
    assert trial.metrics == {"acc": 0.5, "loss": 0.7}


def test_a_named_metric_is_read_from_a_mapping_recorded_and_taken_up_on_resume(tmp_path):
    import json

    path = tmp_path / "j.jsonl"
    with gpbo.Study(SPACE, strategy="random", seed=0, journal=path, metric="accuracy",
                    direction="maximize") as study:
        trial = study.tell(study.ask(1)[0], {"accuracy": 0.9, "loss": 0.3})
        assert (trial.status, trial.value, trial.metrics) == ("complete", 0.9, {"loss": 0.3})
        # the key "value" is not the metric here: the trial fails, naming the key it lacks
        missing = study.tell(study.ask(1)[0], {"value": 0.5})
        assert missing.status == "failed" and "accuracy" in missing.error
    assert json.loads(path.read_text().splitlines()[0])["metric"] == "accuracy"
    with gpbo.Study(SPACE, strategy="random", journal=path) as study:
        assert study.metric == "accuracy"  # not given: the journal's
    assert gpbo.load(path).metric == "accuracy"
    assert gpbo.load(path).result().metric == "accuracy"
    with (
        pytest.warns(gpbo.GpboWarning, match="metric 'acc' where it recorded 'accuracy'"),
        gpbo.Study(SPACE, strategy="random", journal=path, metric="acc") as study,
    ):
        assert study.metric == "acc"
    assert gpbo.load(path).metric == "acc"
    # not a renamed key: the trials returned "loss" beside the accuracy they were tuned for
    refused = r"records 'acc' as the trials' value, and 'loss' beside it \(trial 0\)"
    with pytest.raises(gpbo.journal.JournalMismatchError, match=refused):
        gpbo.Study(SPACE, strategy="random", journal=path, metric="loss")
    with gpbo.Study(SPACE, strategy="random", journal=path) as study:  # the lock was released
        assert study.metric == "acc"
    with pytest.raises(gpbo.GpboError, match="metric must be a non-empty string"):
        gpbo.Study(SPACE, metric="")


def test_a_journal_without_a_recorded_metric_reads_as_value(tmp_path):
    import warnings

    path = tmp_path / "j.jsonl"
    _journal_as_written_before(path, lambda header: header.pop("metric"))
    assert gpbo.load(path).metric == "value"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing recorded to differ from: no warning
        gpbo.Study(SPACE, strategy="random", journal=path, metric="loss").close()
    assert gpbo.load(path).metric == "loss"


class _RecordingRandom(gpbo.strategies.Random):
    """Random search that keeps every History it is asked with."""

    def __init__(self) -> None:
        self.histories: list[gpbo.strategies.History] = []

    def propose(self, history, n):
        self.histories.append(history)
        return super().propose(history, n)


def _history_from_scratch(study: gpbo.Study, queued: list[dict]) -> dict[str, np.ndarray]:
    """The arrays a strategy should see, rebuilt from the trials as they stand."""
    encode = study.space.encode
    complete = [t for t in study.trials if t.status == "complete" and math.isfinite(t.value)]
    failed = [t for t in study.trials if t.status in ("failed", "timeout")]
    pending = [t for t in study.trials if t not in complete and t not in failed]
    rows = [t.params for t in pending] + queued
    return {
        "X": encode([t.params for t in complete]).reshape(-1, 2),
        "scores": np.array([-t.value for t in complete]),
        "X_failed": encode([t.params for t in failed]).reshape(-1, 2),
        "X_pending": encode(rows).reshape(-1, 2),
    }


def test_each_ask_sees_every_trial_by_how_it_ended_in_trial_order():
    strategy = _RecordingRandom()
    study = gpbo.Study(SPACE, strategy=strategy, seed=0)
    expected = []

    def ask(n, queued=()):
        expected.append(_history_from_scratch(study, list(queued)))
        return study.ask(n)

    first = ask(4)
    study.tell(first[2], 1.5)
    study.tell(first[0], error="diverged")
    later = ask(2)  # first[1] and first[3] still pending
    study.tell(first[1], status="timeout")
    study.tell(later[1], 0.25)
    study.tell(first[3], float("nan"))  # recorded failed
    study.add({"x": 0.0, "n": 3}, 4.0)
    study.tell(later[0], status="interrupted")
    study.enqueue({"x": 2.0, "n": 5})
    rerun_and_more = ask(3, queued=[{"x": 2.0, "n": 5}])  # the rerun, the queued one, one new
    assert [t.number for t in rerun_and_more[:1]] == [later[0].number]
    study.tell(rerun_and_more[0], 0.5)
    ask(1)
    assert len(strategy.histories) == len(expected) == 4
    for seen, want in zip(strategy.histories, expected, strict=True):
        for name, array in want.items():
            np.testing.assert_array_equal(getattr(seen, name), array, err_msg=name)
    assert [h.first_round_size for h in strategy.histories] == [None, 4, 4, 4]
    assert strategy.histories[-1].params_seen == tuple(t.params for t in study.trials[:-1])


def test_the_kept_rows_start_over_where_a_trial_was_taken_back():
    from gpbo.study import _TrialRows

    trials = [gpbo.Trial(number=i, params={}, status="complete", value=float(i)) for i in range(3)]
    encoded = {i: np.array([i / 10]) for i in range(3)}
    rows = _TrialRows(1, sign=1.0)
    rows.update(trials, encoded)
    np.testing.assert_array_equal(rows.scores(), [0.0, 1.0, 2.0])
    trials.pop()
    trials.append(gpbo.Trial(number=2, params={}, status="failed"))
    encoded[2] = np.array([0.9])
    trials[1] = gpbo.Trial(number=1, params={}, status="pending")
    rows.update(trials[:2], encoded)  # fewer trials than last time
    rows.update(trials, encoded)
    np.testing.assert_array_equal(rows.scores(), [0.0])
    np.testing.assert_array_equal(rows.failed(), [[0.9]])
    np.testing.assert_array_equal(rows.pending(), [[0.1]])


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_the_best_trial_follows_every_tell_and_takes_the_earliest_of_a_tie(direction):
    from gpbo.trial import best_of

    study = gpbo.Study(SPACE, direction=direction, strategy="random", seed=0)
    values = [3.0, 1.0, 5.0, 1.0, 5.0, float("nan"), None, 2.0]
    for value in values:
        trial = study.ask(1)[0]
        if value is None:
            study.tell(trial, error="diverged")
        else:
            study.tell(trial, value)
        assert study.best_trial is best_of(study.trials, direction)
    assert study.best_trial.number == (1 if direction == "minimize" else 2)
    pending = study.ask(1)[0]  # a trial still running is not the best
    assert study.best_trial.number == (1 if direction == "minimize" else 2)
    study.tell(pending, -1.0 if direction == "minimize" else 9.0)
    assert study.best_trial is pending


def _checkpointing_trial(params: dict) -> float:
    found = (gpbo.current_trial().dir / "ckpt.txt").exists()
    (gpbo.current_trial().dir / "ckpt.txt").write_text(str(params["x"]))
    return 1.0 if found else params["x"]  # 1.0: another study's checkpoint was there


def test_journals_that_would_share_a_trials_folder_are_refused(tmp_path, caplog):
    # exp.jsonl and exp both had exp.trials: a trial found the other study's checkpoint, and
    # a resume's sweep deleted the other's receipts
    space = {"x": gpbo.Real(0, 1)}
    run = dict(n_trials=1, strategy="random", executor="serial", verbose=False)
    gpbo.optimize(_checkpointing_trial, space, journal=tmp_path / "exp.jsonl", seed=0, **run)
    (tmp_path / "exp.csv").write_text("number,x\n")  # an export of the same stem is no journal
    for other in ("exp", "exp.json"):
        shared = (rf"the journals '{re.escape(other)}' and 'exp\.jsonl' in .* would share the "
                  r"trials folder exp\.trials")
        with pytest.raises(journal_module.JournalError, match=shared):
            gpbo.Study(space, journal=tmp_path / other)
        assert not (tmp_path / other).exists()  # the refused journal is not left behind
    # an existing journal resumes beside a copy of it
    (tmp_path / "exp.bak").write_bytes((tmp_path / "exp.jsonl").read_bytes())
    resumed = gpbo.optimize(_checkpointing_trial, space, journal=tmp_path / "exp.jsonl",
                            **{**run, "n_trials": 2})
    assert [t.value != 1.0 for t in resumed.trials] == [True, True]


def test_a_new_journal_moves_aside_the_trials_of_a_study_whose_journal_is_gone(
    tmp_path, caplog
):
    space = {"x": gpbo.Real(0, 1)}
    run = dict(n_trials=2, strategy="random", executor="serial", verbose=False)
    path = tmp_path / "exp.jsonl"
    first = gpbo.optimize(_checkpointing_trial, space, journal=path, seed=0, **run)
    path.unlink()  # start over
    with caplog.at_level(logging.WARNING, logger="gpbo"):
        second = gpbo.optimize(_checkpointing_trial, space, journal=path, seed=1, **run)
    assert all(t.value != 1.0 for t in second.trials)  # no trial found the old checkpoints
    aside = tmp_path / "exp.trials.old1"
    assert "held the trials of an earlier study" in caplog.text and str(aside) in caplog.text
    assert (aside / "000000" / "ckpt.txt").read_text() == str(first.trials[0].params["x"])
    assert (tmp_path / "exp.trials" / "000000" / "ckpt.txt").read_text() == str(
        second.trials[0].params["x"]
    )
