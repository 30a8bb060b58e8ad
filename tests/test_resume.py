"""The journal through optimize(): resuming, reproducibility, damaged files, the lock, and a
driver killed again and again until its study is done."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

import gpbo
from gpbo.journal import (
    JournalError,
    JournalLockedError,
    JournalRepairedWarning,
    fold_trials,
    read_journal,
)
from tests import objectives_for_workers as objectives
from tests.conftest import fast_bayes
from tests.test_executors_process import script_env

XY = {"x": gpbo.Real(0.0, 1.0), "y": gpbo.Real(0.0, 1.0)}
CPU2 = ["cpu", "cpu"]  # two CPU slots, also where a GPU is visible
QUICK = functools.partial(objectives.sphere_after_sleep)


def attempts(trial_dir: Path) -> list[dict]:
    """Every run of the trial whose directory this is, as logged by the objective."""
    path = trial_dir / "attempts.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def complete_events(journal: Path) -> list[dict]:
    """Every "trial complete" event in the journal, in file order."""
    contents = read_journal(journal) if journal.exists() else None
    if contents is None:
        return []
    return [
        e["trial"] for e in contents.events
        if e.get("event") == "trial" and e["trial"]["status"] == "complete"
    ]


def statuses(journal: Path) -> list[str]:
    """The latest status of each trial in the journal (a torn last line ignored)."""
    contents = read_journal(journal) if journal.exists() else None
    return [] if contents is None else [t["status"] for t in fold_trials(contents.events).values()]


def hold_driver(tmp_path: Path, journal: Path, flag: Path, **options: object) -> subprocess.Popen:
    """A driver subprocess whose trials (from ``hold_from``) wait while ``flag`` exists."""
    script = tmp_path / "hold_driver.py"
    script.write_text(
        "import functools, json, sys\n"
        "import gpbo\n"
        "from objectives_for_workers import hold_while_flag\n"
        "if __name__ == '__main__':\n"
        "    options = json.loads(sys.argv[3])\n"
        "    hold_from = options.pop('hold_from', 0)\n"
        "    objective = functools.partial(hold_while_flag, flag=sys.argv[2],\n"
        "                                  hold_from=hold_from)\n"
        "    space = {'x': gpbo.Real(0.0, 1.0), 'y': gpbo.Real(0.0, 1.0)}\n"
        "    gpbo.optimize(objective, space, journal=sys.argv[1], verbose=False, **options)\n"
    )
    return subprocess.Popen(
        [sys.executable, str(script), str(journal), str(flag), json.dumps(options)],
        cwd=tmp_path, env=script_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True,
    )


def wait_until(condition, driver: subprocess.Popen, what: str, limit: float = 90.0) -> None:
    end = time.monotonic() + limit
    while not condition():
        assert driver.poll() is None, f"the driver ended: {driver.communicate()[1]}"
        assert time.monotonic() < end, f"{what} did not happen within {limit:g} s"
        time.sleep(0.05)


# -- resuming -------------------------------------------------------------------------------


def test_killed_driver_resumes_rerunning_only_its_running_trials(tmp_path: Path) -> None:
    journal, flag = tmp_path / "study.jsonl", tmp_path / "hold"
    flag.touch()
    options = {"n_trials": 6, "batch_size": 2, "devices": CPU2, "strategy": "sobol",
               "seed": 3, "hold_from": 2}
    driver = hold_driver(tmp_path, journal, flag, **options)
    trial_dir = [tmp_path / "study.trials" / f"{n:06d}" for n in range(6)]
    try:
        wait_until(lambda: attempts(trial_dir[2]) and attempts(trial_dir[3])
                   and statuses(journal) == ["complete"] * 2 + ["running"] * 2,
                   driver, "round 1 starting")
        driver.send_signal(signal.SIGKILL)  # round 0 done, round 1 running
        driver.wait(timeout=30)
    finally:
        driver.kill()
        driver.communicate()
    before = gpbo.load(journal)
    assert [t.status for t in before.trials] == ["complete", "complete", "running", "running"]
    flag.unlink()

    # the lock of the killed driver does not block; seed, strategy... come from the journal
    objective = functools.partial(objectives.hold_while_flag, flag=str(flag), hold_from=2)
    result = gpbo.optimize(objective, XY, n_trials=6, batch_size=2, devices=CPU2,
                           strategy="sobol", journal=journal, verbose=False)
    assert [t.status for t in result.trials] == ["complete"] * 6
    runs = [attempts(d) for d in trial_dir]
    assert [len(r) for r in runs] == [1, 1, 2, 2, 1, 1]  # finished trials never ran again
    for number in (2, 3):  # the running ones: same number, parameters and directory
        first, again = runs[number]
        assert first["number"] == again["number"] == number
        assert first["params"] == again["params"] == before.trials[number].params
        assert first["dir"] == again["dir"] == str(trial_dir[number])
        assert first["pid"] != again["pid"]
    assert [t.round for t in result.trials] == [0, 0, 1, 1, 2, 2]
    fresh = gpbo.optimize(QUICK, XY, n_trials=6, batch_size=2, strategy="sobol", seed=3,
                          executor="serial", verbose=False)
    assert [t.params for t in result.trials] == [t.params for t in fresh.trials]


def test_a_trial_that_kills_a_serial_driver_is_failed_after_one_rerun(tmp_path: Path) -> None:
    # in the driver's process the objective's crash is the driver's: without a limit every
    # resume would run that trial first and die again
    script = tmp_path / "crashing_driver.py"
    script.write_text(
        "import os, sys\n"
        "import gpbo\n"
        "def objective(params):\n"
        "    if gpbo.current_trial().number == 1:\n"
        "        os._exit(3)  # as a segfault or the OOM killer would end it\n"
        "    return params['x']\n"
        "if __name__ == '__main__':\n"
        "    result = gpbo.optimize(objective, {'x': gpbo.Real(0.0, 1.0)}, n_trials=3,\n"
        "                           strategy='random', seed=0, executor='serial',\n"
        "                           journal=sys.argv[1], verbose=False)\n"
        "    print([t.status for t in result.trials])\n"
    )
    journal = tmp_path / "study.jsonl"
    runs = [
        subprocess.run([sys.executable, str(script), str(journal)], cwd=tmp_path,
                       env=script_env(), capture_output=True, text=True, timeout=120)
        for _ in range(3)
    ]
    assert [r.returncode for r in runs] == [3, 3, 0], runs[-1].stderr
    assert runs[2].stdout.strip() == "['complete', 'failed', 'complete']"
    assert "driver process died each of the 2 times" in runs[2].stderr


def test_a_command_trial_is_run_again_however_often_a_serial_driver_died(tmp_path: Path) -> None:
    # the command is a child process: the driver's death (here the command kills it, as the
    # OOM killer or a preemption would) is not the trial's fault, so it is never failed for it
    (tmp_path / "train.py").write_text(
        "import os, signal, sys, time\n"
        "from pathlib import Path\n"
        "deaths = Path('deaths')\n"
        "n = int(deaths.read_text()) if deaths.exists() else 0\n"
        "if n < 3:\n"
        "    deaths.write_text(str(n + 1))\n"
        "    os.kill(int(Path('driver.pid').read_text()), signal.SIGKILL)\n"
        "    time.sleep(30)\n"
        "print(sys.argv[1])\n"
    )
    (tmp_path / "driver.py").write_text(
        "import os\n"
        "from pathlib import Path\n"
        "import gpbo\n"
        "from gpbo.command import CommandObjective\n"
        "if __name__ == '__main__':\n"
        "    Path('driver.pid').write_text(str(os.getpid()))\n"
        "    result = gpbo.optimize(CommandObjective('{python} train.py {x}'),\n"
        "                           {'x': gpbo.Real(0.0, 1.0)}, n_trials=2, strategy='random',\n"
        "                           seed=0, executor='serial', journal='study.jsonl',\n"
        "                           verbose=False)\n"
        "    print([t.status for t in result.trials])\n"
    )
    runs = [
        subprocess.run([sys.executable, "driver.py"], cwd=tmp_path, env=script_env(),
                       capture_output=True, text=True, timeout=120)
        for _ in range(4)
    ]
    assert [r.returncode for r in runs] == [-signal.SIGKILL] * 3 + [0], runs[-1].stderr
    assert runs[3].stdout.strip() == "['complete', 'complete']", runs[3].stderr
    assert "driver process died" not in runs[3].stderr


@pytest.mark.parametrize(("strategy", "batch_size"), [("sobol", 3), ("bayes", 2)])
def test_resumed_sync_run_proposes_what_the_uninterrupted_run_did(
    tmp_path: Path, strategy: str, batch_size: int
) -> None:
    def make() -> object:  # bayes: one round of Sobol points, then the GP
        return "sobol" if strategy == "sobol" else fast_bayes(n_init=batch_size)

    n_trials = 3 * batch_size
    options = {"n_trials": n_trials, "batch_size": batch_size, "seed": 11, "verbose": False}
    reference = gpbo.optimize(QUICK, XY, strategy=make(), executor="serial", **options)

    def stop_mid_round(study: gpbo.Study, trial: gpbo.Trial) -> None:
        if sum(t.finished for t in study.trials) == batch_size + 1:  # one of round 1 done
            signal.raise_signal(signal.SIGINT)  # as Ctrl+C would

    journal = tmp_path / "study.jsonl"
    # Round 1's last trial runs 2 s longer, so the interrupt reliably finds it still running
    # (without that, a driver stalled for some tens of ms saw it complete as well).
    slow = functools.partial(objectives.sphere_after_sleep, base=0.1, scale=0.3,
                             slow_trial=2 * batch_size - 1, slow_for=2.0)
    with pytest.raises(KeyboardInterrupt):
        gpbo.optimize(slow, XY, strategy=make(), devices=CPU2, journal=journal,
                      callbacks=[stop_mid_round], **options)
    statuses = [t.status for t in gpbo.load(journal).trials]
    assert len(statuses) == 2 * batch_size  # round 1 proposed, partly run
    assert statuses[:batch_size] == ["complete"] * batch_size
    assert statuses.count("complete") >= batch_size + 1
    assert "interrupted" in statuses[batch_size:]

    resumed = gpbo.optimize(slow, XY, strategy=make(), devices=CPU2, journal=journal, **options)
    assert [t.status for t in resumed.trials] == ["complete"] * n_trials
    assert [t.params for t in resumed.trials] == [t.params for t in reference.trials]
    assert [t.round for t in resumed.trials] == [t.round for t in reference.trials]
    assert [t.value for t in resumed.trials] == [t.value for t in reference.trials]


def test_every_journal_line_is_fsynced_before_the_next_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = tmp_path / "study.jsonl"
    synced_sizes: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        real_fsync(fd)
        with contextlib.suppress(OSError):
            if os.path.samestat(os.fstat(fd), os.stat(journal)):
                synced_sizes.append(os.fstat(fd).st_size)

    monkeypatch.setattr(os, "fsync", fsync)
    slow = functools.partial(objectives.sphere_after_sleep, base=0.05)
    gpbo.optimize(slow, XY, n_trials=4, batch_size=2, devices=CPU2, strategy="sobol",
                  journal=journal, verbose=False)
    data = journal.read_bytes()
    line_ends = [i + 1 for i, byte in enumerate(data) if byte == ord("\n")]
    assert len(line_ends) == 1 + 4 * 3  # header; proposed, running, finished per trial
    assert synced_sizes == line_ends  # each line synced alone, right after its write


# -- damaged, mismatched or busy journals ---------------------------------------------------


def test_torn_last_line_is_cut_and_the_resumed_journal_is_valid(tmp_path: Path) -> None:
    journal = tmp_path / "study.jsonl"
    gpbo.optimize(QUICK, XY, n_trials=3, strategy="sobol", seed=1, journal=journal,
                  verbose=False)
    torn = b'{"event":"trial","time":17'
    with open(journal, "ab") as out:
        out.write(torn)  # a crash in the middle of a write
    with pytest.warns(JournalRepairedWarning, match=f"dropped {len(torn)} bytes"):
        result = gpbo.optimize(QUICK, XY, n_trials=5, strategy="sobol", seed=1,
                               journal=journal, verbose=False)
    assert [t.status for t in result.trials] == ["complete"] * 5
    contents = read_journal(journal)
    assert contents is not None and contents.torn_bytes == 0
    assert all(line.endswith(b"}") for line in journal.read_bytes().splitlines())
    assert [t.value for t in gpbo.load(journal).trials] == [t.value for t in result.trials]


def test_malformed_middle_line_is_an_error_naming_the_line(tmp_path: Path) -> None:
    journal = tmp_path / "study.jsonl"
    gpbo.optimize(QUICK, XY, n_trials=2, strategy="sobol", seed=1, journal=journal,
                  verbose=False)
    lines = journal.read_bytes().splitlines(keepends=True)
    lines[2] = b"this is not json\n"
    journal.write_bytes(b"".join(lines))
    with pytest.raises(JournalError, match=r"line 3: invalid JSON"):
        gpbo.optimize(QUICK, XY, n_trials=4, strategy="sobol", journal=journal, verbose=False)
    with pytest.raises(JournalError, match=r"line 3"):
        gpbo.load(journal)


def test_header_mismatch_is_refused_listing_the_differences(tmp_path: Path) -> None:
    journal = tmp_path / "study.jsonl"
    gpbo.optimize(QUICK, XY, n_trials=2, strategy="sobol", seed=1, journal=journal,
                  verbose=False)
    other = {"x": gpbo.Real(0.0, 2.0), "y": gpbo.Real(0.0, 1.0)}
    with pytest.raises(JournalError) as info:
        gpbo.optimize(QUICK, other, n_trials=4, direction="maximize", seed=2, journal=journal,
                      verbose=False)
    message = str(info.value)
    assert info.value.keys == ("space", "direction", "seed")
    assert "written by a different study" in message
    assert "direction: journal has 'minimize', this call has 'maximize'" in message
    assert "parameter 'x' changed (high: journal has 1.0, this call has 2.0)" in message
    assert "seed: journal has 1, this call has 2" in message
    assert len(gpbo.load(journal).trials) == 2  # untouched


def test_a_widened_space_is_refused_with_the_way_to_keep_the_trials_and_that_way_works(
    tmp_path: Path,
) -> None:
    def objective(p: dict) -> dict:
        loss = QUICK(p)["value"]
        return {"acc": -loss, "loss": loss}

    journal = tmp_path / "study.jsonl"
    settings = {"direction": "maximize", "metric": "acc", "seed": 1, "strategy": "sobol"}
    gpbo.optimize(objective, XY, n_trials=3, journal=journal, verbose=False, **settings)
    wider = {"x": gpbo.Real(0.0, 2.0), "y": gpbo.Real(0.0, 1.0)}  # the best sat at an edge
    with pytest.raises(JournalError, match=r"new\.add\(t\.params, t\.value, metrics=t\.metrics\)"
                       rf" for each t in gpbo\.load\({re.escape(repr(str(journal)))}\)\.trials"
                       ) as refused:
        gpbo.optimize(objective, wider, n_trials=5, journal=journal, verbose=False, **settings)
    # the message's recipe, run as it is: a study made with gpbo.Study's defaults (minimize,
    # a random seed) was refused by the later optimize call it promises to resume
    recipe = re.search(r"new = (gpbo\.Study\(.*?\)), then", str(refused.value))
    assert recipe is not None
    easier = re.search(r"space: (optimize\(.*?\)); or by hand", str(refused.value))
    assert easier is not None
    assert easier.group(1) == f"optimize(..., journal=NEW_PATH, warm_start={str(journal)!r})"
    warm = gpbo.optimize(objective, wider, n_trials=4, journal=tmp_path / "warm.jsonl",
                         warm_start=journal, verbose=False, **settings)
    assert [t.params for t in warm.trials[:3]] == [t.params for t in gpbo.load(journal).trials]
    new_path = tmp_path / "wider.jsonl"
    with eval(recipe.group(1), {"gpbo": gpbo, "space": wider, "NEW_PATH": new_path}) as new:
        for t in gpbo.load(journal).trials:
            if t.status == "complete":
                new.add(t.params, t.value, metrics=t.metrics)
    result = gpbo.optimize(objective, wider, n_trials=5, journal=new_path, verbose=False,
                           **settings)
    old = gpbo.load(journal).trials
    assert [t.params for t in result.trials[:3]] == [t.params for t in old]
    assert [t.metrics for t in result.trials[:3]] == [t.metrics for t in old]
    assert len(result.trials) == 5 and result.direction == "maximize"
    assert result.best_value == max(t.value for t in result.trials)


def test_an_added_parameter_s_hint_gives_the_old_trials_a_value(tmp_path: Path) -> None:
    journal = tmp_path / "study.jsonl"
    gpbo.optimize(QUICK, XY, n_trials=3, strategy="sobol", seed=1, journal=journal,
                  verbose=False)
    grown = {**XY, "h": gpbo.Int(8, 64)}
    with pytest.raises(JournalError, match=r"new\.add\(\{\*\*t\.params, 'h': VALUE\}, "
                       r"t\.value, metrics=t\.metrics\) "
                       r".*\(VALUE: what the old trials ran 'h' at\)"):
        gpbo.Study(grown, journal=journal)
    with gpbo.Study(grown, strategy="sobol", journal=tmp_path / "grown.jsonl") as new:
        for t in gpbo.load(journal).trials:  # as the message says, with h = 32
            new.add({**t.params, "h": 32}, t.value)
        assert len(new.trials) == 3
    renamed = {"x": XY["x"], "h": gpbo.Int(8, 64)}  # y dropped, h added
    with pytest.raises(JournalError) as refused:
        gpbo.Study(renamed, journal=journal)
    hint = re.search(r"new\.add\((.*), t\.value, metrics", str(refused.value))
    assert hint is not None
    with gpbo.Study(renamed, strategy="sobol", journal=tmp_path / "renamed.jsonl") as new:
        for t in gpbo.load(journal).trials:  # the message's expression, run as it is
            new.add(eval(hint.group(1).replace("VALUE", "32"), {"t": t, "new": new}),
                    t.value)
        assert [t.params["h"] for t in new.trials] == [32] * 3


def test_second_driver_is_refused_and_a_killed_drivers_lock_does_not_block(
    tmp_path: Path,
) -> None:
    journal, flag = tmp_path / "study.jsonl", tmp_path / "hold"
    flag.touch()
    driver = hold_driver(tmp_path, journal, flag, n_trials=2, executor="serial",
                         strategy="sobol", seed=5)
    watchdog = threading.Timer(120, driver.kill)
    watchdog.start()
    try:
        wait_until(lambda: attempts(tmp_path / "study.trials" / "000000")
                   and statuses(journal) == ["running"], driver, "the first trial starting")
        with pytest.raises(JournalLockedError, match=f"pid {driver.pid} on host"):
            gpbo.optimize(QUICK, XY, n_trials=2, strategy="sobol", journal=journal,
                          verbose=False)
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        watchdog.cancel()
        driver.kill()
        driver.communicate()
    assert [t.status for t in gpbo.load(journal).trials] == ["running"]
    flag.unlink()
    result = gpbo.optimize(QUICK, XY, n_trials=2, strategy="sobol", journal=journal,
                           verbose=False)
    study = gpbo.load(journal)
    assert isinstance(study, gpbo.Study)
    assert [t.status for t in study.trials] == ["complete", "complete"]
    assert study.seed == 5 and study.strategy.name == "sobol"
    assert study.best_value == result.best_value
    assert [t.params for t in study.trials] == [t.params for t in result.trials]


# -- the kill loop --------------------------------------------------------------------------

KILL_LOOP_DRIVER = """
import functools
import sys

import gpbo
from objectives_for_workers import sphere_after_sleep

if __name__ == "__main__":
    objective = functools.partial(sphere_after_sleep, base=0.2, scale=0.3, log=True)
    gpbo.optimize(objective, {"x": gpbo.Real(0, 1), "y": gpbo.Real(0, 1)}, n_trials=20,
                  batch_size=2, devices=["cpu", "cpu"], strategy="sobol", seed=0,
                  journal=sys.argv[1],
                  verbose=False)
"""


def test_a_result_waiting_in_the_pipe_when_the_driver_dies_is_not_trained_again(
    tmp_path: Path,
) -> None:
    # The driver reads a worker's result when it next looks; busy meanwhile (importing botorch
    # for its first fit, fitting the GP in async mode; here a callback), a kill -9 lost it.
    script = tmp_path / "busy_driver.py"
    script.write_text(
        "import functools, os, signal, sys, time\n"
        "from pathlib import Path\n"
        "import gpbo\n"
        "from objectives_for_workers import hold_while_flag\n"
        "FLAG = Path(sys.argv[2])\n"
        "RECEIPTS = Path('study.trials/.receipts')\n"
        "def busy_then_killed(study, trial):\n"
        "    if trial.number != 0:\n"
        "        return\n"
        "    FLAG.unlink()  # trial 1 ends while the driver is busy here\n"
        "    end = time.monotonic() + 10\n"
        "    while not list(RECEIPTS.glob('000001-*.json')) and time.monotonic() < end:\n"
        "        time.sleep(0.02)\n"
        "    time.sleep(0.2)  # its result is in the pipe by now\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "if __name__ == '__main__':\n"
        "    objective = functools.partial(hold_while_flag, flag=str(FLAG), hold_from=1)\n"
        "    gpbo.optimize(objective, {'x': gpbo.Real(0.0, 1.0), 'y': gpbo.Real(0.0, 1.0)},\n"
        "                  n_trials=4, batch_size=2, devices=['cpu', 'cpu'], strategy='sobol',\n"
        "                  seed=1, journal=sys.argv[1], callbacks=[busy_then_killed],\n"
        "                  verbose=False)\n"
    )
    journal, flag = tmp_path / "study.jsonl", tmp_path / "hold"
    flag.touch()
    run = subprocess.run([sys.executable, str(script), str(journal), str(flag)], cwd=tmp_path,
                         env=script_env(), capture_output=True, text=True, timeout=120)
    assert run.returncode == -signal.SIGKILL, run.stderr
    assert statuses(journal) == ["complete", "running"]  # trial 1's result was not journaled

    objective = functools.partial(objectives.hold_while_flag, flag=str(flag))
    result = gpbo.optimize(objective, XY, n_trials=4, batch_size=2, devices=CPU2,
                           strategy="sobol", journal=journal, verbose=False)
    assert [t.status for t in result.trials] == ["complete"] * 4
    trial_dir = [tmp_path / "study.trials" / f"{n:06d}" for n in range(4)]
    assert [len(attempts(d)) for d in trial_dir] == [1, 1, 1, 1]  # trial 1 was not run again
    recovered = result.trials[1]
    assert recovered.value == pytest.approx(objectives._quadratic(recovered.params))
    assert not (tmp_path / "study.trials" / ".receipts").exists()


def test_a_loss_returned_after_gpbo_stopped_the_trial_is_not_taken_when_the_driver_died(
    tmp_path: Path,
) -> None:
    # a training loop that catches SIGTERM returns its loss so far; here the driver dies during
    # the timeout's grace period, before it records the trial timed out (the first trial of the
    # session: the receipts' folder is new)
    script = tmp_path / "stopped_driver.py"
    script.write_text(
        "import os, signal, sys, time\n"
        "import gpbo\n"
        "class Stop(Exception):\n"
        "    pass\n"
        "def train(params):\n"
        "    def on_term(*_):\n"
        "        os.kill(os.getppid(), signal.SIGKILL)\n"
        "        raise Stop  # return at once: the worker's parent watch ends it 0-0.25 s on\n"
        "    signal.signal(signal.SIGTERM, on_term)\n"
        "    step = 0\n"
        "    try:\n"
        "        for step in range(600):\n"
        "            time.sleep(0.05)\n"
        "    except Stop:\n"
        "        return 1000.0 + step  # its loss so far\n"
        "    return 0.0\n"
        "if __name__ == '__main__':\n"
        "    gpbo.optimize(train, {'x': gpbo.Real(0.0, 1.0)}, n_trials=1, devices=['cpu'],\n"
        "                  executor='process', strategy='sobol', seed=1, journal=sys.argv[1],\n"
        "                  trial_timeout=1.0, verbose=False)\n"
    )
    journal = tmp_path / "study.jsonl"
    run = subprocess.run([sys.executable, str(script), str(journal)], cwd=tmp_path,
                         env=script_env(), capture_output=True, text=True, timeout=120)
    assert run.returncode == -signal.SIGKILL, run.stderr
    assert statuses(journal) == ["running"]
    deadline = time.monotonic() + 3  # the worker writes its receipt after the driver died
    while not list((tmp_path / "study.trials" / ".receipts").glob("*.json")):
        if time.monotonic() > deadline:  # its parent watch ended it first (a 1-in-100 race)
            pytest.skip("the worker was ended before it wrote its receipt")
        time.sleep(0.05)

    result = gpbo.optimize(lambda params: params["x"], {"x": gpbo.Real(0.0, 1.0)}, n_trials=1,
                           strategy="sobol", journal=journal, executor="serial", verbose=False)
    (trial,) = result.trials
    assert (trial.status, trial.value) == ("complete", trial.params["x"])  # run again


def test_killing_the_driver_again_and_again_loses_and_repeats_no_finished_trial(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "study.jsonl"
    script = tmp_path / "driver.py"
    script.write_text(KILL_LOOP_DRIVER)
    trials_dir = tmp_path / "study.trials"
    rng = random.Random(2024)

    def runs_per_trial() -> Counter[int]:
        return Counter(
            a["number"] for d in trials_dir.glob("*") for a in attempts(d)
        ) if trials_dir.exists() else Counter()

    def some_trial_running() -> bool:
        contents = read_journal(journal) if journal.exists() else None
        return contents is not None and any(
            e.get("event") == "trial" and e["trial"]["status"] == "running"
            for e in contents.events
        )

    started = time.monotonic()
    kills, done_counts = 0, [0]
    while True:
        finished_before = {t["number"] for t in complete_events(journal)}
        runs_before = runs_per_trial()
        driver = subprocess.Popen([sys.executable, str(script), str(journal)], cwd=tmp_path,
                                  env=script_env(), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True)
        try:
            if kills < 8:
                if kills in (0, 3):  # early: while it starts up
                    delay = rng.uniform(0.05, 2.0)
                else:  # once trials run, at a random moment among them
                    end = time.monotonic() + 90
                    while not some_trial_running() and driver.poll() is None:
                        assert time.monotonic() < end, "no trial started within 90 s"
                        time.sleep(0.02)
                    delay = rng.uniform(0.0, 1.5)
                try:
                    driver.wait(timeout=delay)
                except subprocess.TimeoutExpired:
                    driver.send_signal(signal.SIGKILL)
                    kills += 1
            driver.wait(timeout=120)
        finally:
            driver.kill()
            _, err = driver.communicate()
        assert driver.returncode in (0, -signal.SIGKILL), err

        events = complete_events(journal)
        numbers = [t["number"] for t in events]
        assert len(numbers) == len(set(numbers)), "a trial completed twice"
        assert len(numbers) >= done_counts[-1], "complete trials were lost"
        done_counts.append(len(numbers))
        runs_after = runs_per_trial()
        for number in finished_before:  # a trial finished before this driver never re-ran
            assert runs_after[number] == runs_before[number], f"trial {number} ran again"
        if driver.returncode == 0:
            break
    assert kills >= 3
    assert done_counts[-1] == 20
    study = gpbo.load(journal)
    assert [t.status for t in study.trials] == ["complete"] * 20
    params = [tuple(sorted(t.params.items())) for t in study.trials]
    assert len(set(params)) == 20  # no parameter set completed twice
    fresh = gpbo.optimize(QUICK, XY, n_trials=20, batch_size=2, strategy="sobol", seed=0,
                          executor="serial", verbose=False)
    assert [t.params for t in study.trials] == [t.params for t in fresh.trials]
    assert time.monotonic() - started < 150


def test_a_resume_with_its_trials_already_finished_starts_no_worker(tmp_path, monkeypatch):
    # lowering n_trials below what ran started the workers (seconds) to do nothing
    from gpbo.executors.serial import Serial

    journal = tmp_path / "j.jsonl"
    space = {"x": gpbo.Real(0, 1)}
    gpbo.optimize(lambda p: p["x"], space, n_trials=3, strategy="random", seed=0,
                  executor="serial", journal=journal, verbose=False)
    starts = []
    monkeypatch.setattr(Serial, "start", lambda self, *a, **k: starts.append(1))
    result = gpbo.optimize(lambda p: p["x"], space, n_trials=2, strategy="random", seed=0,
                           executor="serial", journal=journal, verbose=False)
    assert starts == [] and len(result.trials) == 3
    # said as the CLI says it, not as if the 3 trials had just run
    assert result.stop_reason == (
        "n_trials=2 already reached: the study has 3 finished trials; raise n_trials to go on"
    )


def test_ctrl_c_while_ask_journals_a_new_trial_leaves_none_pending(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the stop came out of the journal's fsync, after the line was written: the trial was in
    # the journal but not in the study, so the stop did not record it interrupted
    from gpbo.journal import Journal

    journal = tmp_path / "j.jsonl"
    real_append = Journal.append

    def append_then_ctrl_c(self: Journal, event: dict) -> None:
        real_append(self, event)
        trial = event.get("trial") or {}
        if trial.get("number") == 3 and trial.get("status") == "pending":
            raise KeyboardInterrupt("stopped by SIGINT")

    space = {"x": gpbo.Real(0.0, 1.0)}
    monkeypatch.setattr(Journal, "append", append_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        gpbo.optimize(lambda p: p["x"], space, n_trials=6, strategy="random", seed=0,
                      journal=journal, verbose=False)
    assert statuses(journal) == ["complete"] * 3 + ["interrupted"]
    monkeypatch.setattr(Journal, "append", real_append)
    result = gpbo.optimize(lambda p: p["x"], space, n_trials=6, strategy="random", seed=0,
                           journal=journal, verbose=False)
    assert [t.status for t in result.trials] == ["complete"] * 6
    assert statuses(journal) == ["complete"] * 6
