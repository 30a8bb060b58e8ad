"""Tests for gpbo/executors/base.py: reading what an objective returned."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from gpbo.executors import base
from gpbo.executors.base import TrialTask, describe_exit, evaluate, parse_objective_value
from gpbo.report import shorten


@pytest.mark.parametrize(
    "returned",
    [0.5, np.float32(0.5), np.array(0.5), np.array([0.5]), np.array([[0.5]]),
     torch.tensor(0.5), torch.tensor([0.5]), torch.tensor([0.5], requires_grad=True)],
)
def test_one_number_in_any_common_form_is_the_value(returned):
    assert parse_objective_value(returned, metric="loss") == (0.5, {})


@pytest.mark.parametrize("returned", [torch.ones(3), np.zeros((2, 2))])
def test_an_array_of_several_numbers_is_refused_with_its_shape(returned):
    with pytest.raises(ValueError, match=r"of shape \(.*\), not a number.*loss\.mean\(\)"):
        parse_objective_value(returned, metric="loss")


@pytest.mark.parametrize("returned", [10**400, -(10**400), {"loss": 10**400}])
def test_an_int_beyond_a_float_s_range_is_said_to_be_one(returned):
    # float() raised OverflowError, recorded as the trial's error with gpbo's traceback; then
    # it was reported as "returned inf", which the objective had not
    with pytest.raises(ValueError, match="an integer of 401 digits, beyond a float's range"):
        parse_objective_value(returned, metric="loss")
    assert parse_objective_value({"loss": 1.0, "n": 10**400}, metric="loss") == (1.0, {})


def test_a_decimal_is_a_number_as_a_fraction_is():
    from decimal import Decimal
    from fractions import Fraction

    assert parse_objective_value(Decimal("0.25"), metric="loss") == (0.25, {})
    assert parse_objective_value(Fraction(1, 4), metric="loss") == (0.25, {})
    assert parse_objective_value({"loss": 1, "lr": Decimal("1e-3")}, metric="loss") == (
        1.0, {"lr": 0.001}
    )
    with pytest.raises(ValueError, match="nan, which is not a finite number"):
        parse_objective_value(Decimal("NaN"), metric="loss")


def test_a_non_number_extra_is_left_out_with_one_warning_per_key(caplog, monkeypatch):
    monkeypatch.setattr(base, "_EXTRAS_WARNED", set())
    returned = {"loss": 1.0, "checkpoint": "/tmp/x.pt", "acc": torch.tensor(0.75)}
    with caplog.at_level(logging.WARNING, logger="gpbo.executors.base"):
        first = parse_objective_value(returned, metric="loss", trial=3)
        second = parse_objective_value(returned, metric="loss", trial=4)
    assert first == second == (1.0, {"acc": 0.75})
    warned = [r.getMessage() for r in caplog.records if "checkpoint" in r.getMessage()]
    assert len(warned) == 1 and "not a number; not recorded" in warned[0]
    # which trial, as every other line of a study says
    assert warned[0].startswith("trial 3: extra value 'checkpoint'"), warned[0]


def test_a_missing_metric_names_the_keys_and_the_callers_way_to_name_another():
    with pytest.raises(ValueError, match=r"without the metric 'loss'; .*metric=.*"
                       r"\(its keys: \['acc'\]\)$"):
        parse_objective_value({"acc": 1.0}, metric="loss")
    # the progress line keeps a failure's start and end: the keys returned are at the end
    with pytest.raises(ValueError) as info:
        parse_objective_value({"val_acc": 0.9, "val_loss": 0.3}, metric="accuracy")
    shown = shorten(f"ValueError: {info.value}", 160, keep_end=70)
    assert "'accuracy'" in shown and "['val_acc', 'val_loss']" in shown
    with pytest.raises(ValueError, match="use tell"):
        parse_objective_value({"acc": 1.0}, metric="value", metric_hint="use tell")


def test_outcomes_handed_over_are_handed_again_by_take_all_until_the_next_wait():
    from gpbo.executors.base import OutcomeQueue, TrialOutcome

    queue = OutcomeQueue()
    first, second, third = (TrialOutcome(number=n, status="complete", value=1.0) for n in range(3))
    queue.append(first)
    assert queue.hand_over() == [first] and len(queue) == 0
    queue.append(second)
    # a stop signal before the driver recorded `first`: interrupt() gives it again
    assert queue.take_all() == [first, second]
    assert queue.take_all() == []
    queue.append(third)
    assert queue.hand_over() == [third]
    queue.acknowledge()  # the next wait(): `third` was recorded
    assert queue.take_all() == []


def test_describe_exit_names_the_signal_or_the_code():
    assert describe_exit(-11) == "died with signal SIGSEGV (-11)"
    assert describe_exit(-99) == "died with signal 99"  # no name: said once, not "signal signal"
    assert describe_exit(3) == "exited with code 3"
    assert describe_exit(None) == "ended (exit status unknown)"


def test_a_trial_folder_left_empty_is_removed_and_one_with_files_kept(tmp_path, monkeypatch):
    from gpbo.context import current_trial

    def writes(params):
        if params["write"]:
            (current_trial().dir / "checkpoint.pt").write_text("weights")
        return 1.0

    for number, write in ((0, False), (1, True)):
        task = TrialTask(number=number, params={"write": write}, dir=str(tmp_path / f"{number}"))
        assert evaluate(writes, task, metric="value", device="cpu").status == "complete"
    assert not (tmp_path / "0").exists()  # 3000 such trials left 3000 empty folders
    assert (tmp_path / "1" / "checkpoint.pt").read_text() == "weights"
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    task = TrialTask(number=2, params={"write": False}, dir=None)  # the current folder: kept
    assert evaluate(writes, task, metric="value", device="cpu").status == "complete"
    assert empty.is_dir()


@pytest.mark.parametrize(
    ("key", "meant"),
    [("learning_rate", "lr"), ("hiden", "hidden"), ("batch", "batch_size")],
)
def test_a_key_error_for_a_name_close_to_a_parameter_s_says_which_was_meant(
    tmp_path, key, meant
):
    params = {"lr": 0.01, "hidden": 64, "batch_size": 32}
    task = TrialTask(number=0, params=params, dir=str(tmp_path / "0"))
    outcome = evaluate(lambda p: p[key], task, metric="value", device="cpu")
    first = outcome.error.splitlines()[0]
    assert first == (
        f"KeyError: {key!r} (no parameter is named {key!r}: did you mean {meant!r}? the "
        "trial's parameters: lr, hidden, batch_size)"
    )
    assert "Traceback" in outcome.error  # still whole below
    # a key of the user's own dict, like no parameter: the error as it was
    unrelated = evaluate(lambda p: {}["checkpoint"], task, metric="value", device="cpu")
    assert unrelated.error.splitlines()[0] == "KeyError: 'checkpoint'"
