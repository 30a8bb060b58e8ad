"""The ``gpbo`` command end to end (in subprocesses), its live display, and the plots."""

from __future__ import annotations

import contextlib
import copy
import csv
import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import gpbo
from gpbo.live import LiveReporter
from gpbo.trial import Trial

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))
QUADRATIC = ROOT / "configs" / "quadratic.yaml"


def gpbo_cli(
    *args: str, cwd: Path, timeout: float = 240, **env: str
) -> subprocess.CompletedProcess:
    environment = {**os.environ, "GPBO_EXAMPLE_EPOCHS": "2", **env}
    return subprocess.run(
        [sys.executable, "-m", "gpbo", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment,
    )


def ok(done: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert done.returncode == 0, (
        f"exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done


def finished(run_dir: Path) -> list[Trial]:
    return [t for t in gpbo.load(run_dir / "journal.jsonl").trials if t.finished]


# -- help ---------------------------------------------------------------------------------------


def test_every_command_has_help_with_an_example(tmp_path):
    for command in ([], ["run"], ["show"], ["best"], ["plot"], ["export"]):
        done = ok(gpbo_cli(*command, "--help", cwd=tmp_path))
        assert "example" in done.stdout
        assert "gpbo " in done.stdout.split("example", 1)[1]


def test_console_script_is_installed():
    script = Path(sys.executable).with_name("gpbo")
    assert script.exists(), "run `pip install -e .` to create the gpbo command"


def test_a_missing_pyyaml_is_one_line_naming_the_extra(tmp_path):
    shadow = tmp_path / "shadow" / "yaml"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('no yaml here')\n")
    for command in (["run", str(QUADRATIC), "--set", f"run_dir={tmp_path / 'run'}"],
                    ["show", str(QUADRATIC)]):
        done = gpbo_cli(*command, cwd=tmp_path, PYTHONPATH=str(shadow.parent))
        assert done.returncode != 0
        assert "Traceback" not in done.stderr, done.stderr  # was the bare import's
        assert 'pip install "pyyaml>=6" (the gpbo extra [yaml]' in done.stderr


def test_a_run_that_fails_to_start_points_to_no_results(tmp_path):
    shadow = tmp_path / "shadow" / "ray"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('no ray here')\n")
    done = gpbo_cli("run", str(QUADRATIC), "--set", f"run_dir={tmp_path / 'run'}",
                    "--set", "executor=ray", cwd=tmp_path, PYTHONPATH=str(shadow.parent))
    assert done.returncode != 0 and "the gpbo extra [ray]" in done.stderr
    assert "results in" not in done.stdout  # `gpbo show` would find no journal there


def test_show_and_export_escape_what_the_output_cannot_encode(tmp_path):
    study = gpbo.Study({"act": gpbo.Choice(["g\u00e9lu", "relu"])}, strategy="random", seed=0,
                       journal=tmp_path / "j.jsonl")
    first, second = study.ask(2)
    study.tell(first, 1.0)
    study.tell(second, error="loss diverged \u2717")
    study.close()
    for command in (["show", "j.jsonl"], ["export", "j.jsonl", "--csv", "-"]):
        done = ok(gpbo_cli(*command, cwd=tmp_path, PYTHONIOENCODING="ascii"))  # was exit 1
        assert "g\\xe9lu" in done.stdout and "diverged \\u2717" in done.stdout


@pytest.mark.skipif(os.name != "posix", reason="flock")
def test_a_live_run_is_seen_as_live_by_a_reader_who_cannot_write_its_lock(tmp_path, monkeypatch):
    from gpbo import cli

    study = gpbo.Study({"x": gpbo.Real(0, 1)}, strategy="random", journal=tmp_path / "j.jsonl")
    real_open = os.open

    def read_only(path, flags, *args):
        if flags & os.O_RDWR:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(cli.os, "open", read_only)
    try:
        assert cli._journal_locked(tmp_path / "j.jsonl")  # "no gpbo is running" before
    finally:
        study.close()
    assert not cli._journal_locked(tmp_path / "j.jsonl")


def test_best_prints_yaml_that_reads_back_as_the_values(tmp_path):
    yaml = pytest.importorskip("yaml")
    space = {"lr": gpbo.Real(1e-9, 1e-6, log=True), "big": gpbo.Real(1e19, 1e21),
             "tag": gpbo.Choice(["1e-3", "b"]), "n": gpbo.Int(1, 3)}
    study = gpbo.Study(space, strategy="random", seed=0, journal=tmp_path / "j.jsonl")
    params = {"lr": 3e-07, "big": 1e20, "tag": "1e-3", "n": 2}
    study.add(params, 1.0)
    study.close()
    text = ok(gpbo_cli("best", "j.jsonl", cwd=tmp_path)).stdout
    assert yaml.safe_load(text) == params  # JSON's 3e-07 and 1e+20 are strings to YAML


def test_best_quotes_parameter_names_yaml_would_read_as_something_else(tmp_path):
    yaml = pytest.importorskip("yaml")
    space = {"on": gpbo.Real(0, 1), "1": gpbo.Int(1, 3), "a: b": gpbo.Choice(["x", "y"]),
             "null": gpbo.Choice(["no", "yes"]), "lr_1.e-3": gpbo.Real(0, 1)}
    study = gpbo.Study(space, strategy="random", seed=0, journal=tmp_path / "j.jsonl")
    params = {"on": 0.5, "1": 2, "a: b": "x", "null": "no", "lr_1.e-3": 0.25}
    study.add(params, 1.0)
    study.close()
    text = ok(gpbo_cli("best", "j.jsonl", cwd=tmp_path)).stdout
    assert yaml.safe_load(text) == params
    assert "\nlr_1.e-3: 0.25" in text  # a plain name stays bare


def test_show_and_best_call_the_value_by_the_metric_s_name(tmp_path):
    study = gpbo.Study({"lr": gpbo.Real(0, 1)}, seed=0, journal=tmp_path / "j.jsonl",
                       direction="maximize", metric="accuracy")
    study.add({"lr": 0.5}, 0.75)
    study.close()
    show = ok(gpbo_cli("show", "j.jsonl", cwd=tmp_path)).stdout
    header = next(line for line in show.splitlines() if line.lstrip().startswith("#"))
    assert header.split()[:3] == ["#", "status", "accuracy"]
    assert "best: trial 0, accuracy 0.75" in show
    best = ok(gpbo_cli("best", "j.jsonl", cwd=tmp_path)).stdout
    assert best.splitlines()[0] == "# trial 0, accuracy 0.75"


def test_export_of_a_study_without_trials_has_the_spaces_columns(tmp_path):
    gpbo.Study({"lr": gpbo.Real(0, 1), "act": gpbo.Choice(["a", "b"])}, seed=0,
               journal=tmp_path / "j.jsonl").close()
    header = ok(gpbo_cli("export", "j.jsonl", "--csv", "-", cwd=tmp_path)).stdout.splitlines()[0]
    assert header.split(",")[:5] == ["number", "status", "value", "params_lr", "params_act"]


# -- run, resume, fresh, and the commands that read a run -----------------------------------------


@pytest.fixture(scope="module")
def quadratic_run(tmp_path_factory):
    """One quadratic run of 4 trials, then resumed to 6: (cwd, run_dir, outputs)."""
    cwd = tmp_path_factory.mktemp("quadratic")
    first = ok(gpbo_cli("run", str(QUADRATIC), "--set", "n_trials=4", cwd=cwd))
    second = ok(gpbo_cli("run", str(QUADRATIC), "--set", "n_trials=6", cwd=cwd))
    return cwd, cwd / "runs" / "quadratic", first, second


def test_run_writes_the_run_directory(quadratic_run):
    _, run_dir, first, _ = quadratic_run
    for name in ("journal.jsonl", "config.yaml", "summary.json", "summary.txt"):
        assert (run_dir / name).is_file(), name
    assert (run_dir / "journal.trials").is_dir()
    assert "4/4" in first.stdout and "best value" in first.stdout
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["counts"] == {"complete": 6}
    assert summary["best"]["number"] in range(6)
    assert set(summary["best"]["params"]) == {"x", "y", "lr", "optimizer"}
    assert "best: trial" in (run_dir / "summary.txt").read_text()


def test_rerun_resumes_and_config_yaml_holds_the_overrides(quadratic_run):
    cwd, run_dir, _, second = quadratic_run
    assert "resuming: 4 trials finished" in second.stdout
    trials = finished(run_dir)
    assert [t.number for t in trials] == list(range(6))  # 4 kept, 2 new; none run twice
    text = (run_dir / "config.yaml").read_text()
    assert "n_trials: 6" in text and "--set=n_trials=6" in text
    again = ok(gpbo_cli("run", str(run_dir / "config.yaml"), cwd=cwd / ".."))  # runnable as is
    assert "has 6 finished trials and n_trials is 6: nothing to run" in again.stdout
    assert len(finished(run_dir)) == 6


def test_show_best_export_plot(quadratic_run, tmp_path):
    cwd, run_dir, _, _ = quadratic_run
    best = gpbo.load(run_dir / "journal.jsonl").best_trial

    show = ok(gpbo_cli("show", str(run_dir), cwd=cwd)).stdout
    header = next(line for line in show.splitlines() if line.lstrip().startswith("#"))
    assert header.split() == [
        "#",
        "status",
        "value",
        "x",
        "y",
        "lr",
        "optimizer",
        "device",
        "duration",
    ]
    assert re.search(rf"^\s*{best.number}\*\s+complete", show, flags=re.M)
    assert f"best: trial {best.number}" in show
    by_value = ok(gpbo_cli("show", str(run_dir / "journal.jsonl"), "--sort", "value", cwd=cwd))
    rows = [line for line in by_value.stdout.splitlines() if re.match(r"^\s*\d+\*?\s", line)]
    assert rows[0].strip().startswith(f"{best.number}*")

    assert json.loads(ok(gpbo_cli("best", str(run_dir), "--json", cwd=cwd)).stdout) == best.params
    text = ok(gpbo_cli("best", str(run_dir), cwd=cwd)).stdout
    assert text.startswith(f"# trial {best.number}") and "optimizer: " in text

    out_csv = tmp_path / "trials.csv"
    ok(gpbo_cli("export", str(run_dir), "--csv", str(out_csv), cwd=cwd))
    with open(out_csv, newline="") as handle:
        rows_csv = list(csv.DictReader(handle))
    assert len(rows_csv) == 6
    assert {
        "number",
        "status",
        "value",
        "params_x",
        "params_optimizer",
        "metrics_distance",
        "device",
        "duration",
        "error",
    } <= set(rows_csv[0])
    assert float(rows_csv[best.number]["value"]) == best.value
    journal_bytes = (run_dir / "journal.jsonl").read_bytes()
    for command in (["export", str(run_dir), "--csv", str(run_dir / "journal.jsonl")],
                    ["plot", str(run_dir), "-o", str(run_dir / "config.yaml")]):
        refused = gpbo_cli(*command, cwd=cwd)
        assert refused.returncode != 0 and "one of the run's own files" in refused.stderr
    assert (run_dir / "journal.jsonl").read_bytes() == journal_bytes

    png = tmp_path / "plot.png"
    done = ok(gpbo_cli("plot", str(run_dir), "-o", str(png), cwd=cwd))
    assert str(png) in done.stdout
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_a_reader_that_stops_reading_does_not_stop_the_run(tmp_path):
    # `gpbo run ... | head -2`: the study ended with its trials marked interrupted and exit 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "gpbo", "run", str(QUADRATIC), "--set", "n_trials=6"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().startswith("[gpbo] run directory")
    proc.stdout.close()
    stderr = proc.stderr.read()
    assert proc.wait(timeout=240) == 0, stderr
    assert "reader went away" in stderr and "Traceback" not in stderr, stderr
    trials = finished(tmp_path / "runs" / "quadratic")
    assert [t.status for t in trials] == ["complete"] * 6


def test_a_rerun_with_n_trials_already_reached_says_so_and_runs_nothing(tmp_path):
    ok(gpbo_cli("run", str(QUADRATIC), "--set", "n_trials=3", cwd=tmp_path))
    config_yaml = tmp_path / "runs" / "quadratic" / "config.yaml"
    before = config_yaml.read_text()
    again = ("run", str(QUADRATIC), "--set", "n_trials=2", "--set", "trial_timeout=60")
    done = ok(gpbo_cli(*again, cwd=tmp_path))
    assert "has 3 finished trials and n_trials is 2: nothing to run" in done.stdout
    assert f"gpbo run {QUADRATIC} --set trial_timeout=60 --set n_trials=N" in done.stdout
    assert "resuming after" not in done.stdout
    assert len(finished(tmp_path / "runs" / "quadratic")) == 3
    assert config_yaml.read_text() == before  # it keeps what its trials were run for
    # and the summary tells why the study stopped, not the lowered n_trials
    summary = json.loads((tmp_path / "runs" / "quadratic" / "summary.json").read_text())
    assert summary["stop_reason"] == "3 trials finished"


def test_a_grid_smaller_than_n_trials_is_counted_to_its_end(tmp_path):
    grid = ("--set", "strategy={type: grid, levels: 2}",
            "--set", "space.y={type: int, low: 0, high: 1}", "--set", "n_trials=20")
    done = ok(gpbo_cli("run", str(QUADRATIC), "--plain", *grid, cwd=tmp_path))
    assert "16/16 done" in done.stdout and "/20" not in done.stdout
    assert "the grid is used up" in done.stdout


def test_a_config_s_enqueued_points_run_first_and_once(tmp_path):
    point = "{x: 1.0, y: 2, lr: 0.01, optimizer: fast}"
    run = ("run", str(QUADRATIC), "--set", f"enqueue=[{point}]", "--set", "n_trials=2")
    ok(gpbo_cli(*run, cwd=tmp_path))
    ok(gpbo_cli(*run[:-1], "n_trials=3", cwd=tmp_path))  # a resume does not train it again
    trials = finished(tmp_path / "runs" / "quadratic")
    known = {"x": 1.0, "y": 2, "lr": 0.01, "optimizer": "fast"}
    assert [t.params == known for t in trials] == [True, False, False]


def test_show_and_best_of_a_config_read_its_run(quadratic_run, tmp_path):
    cwd, run_dir, _, _ = quadratic_run
    by_config = ok(gpbo_cli("show", str(QUADRATIC), cwd=cwd)).stdout
    assert by_config == ok(gpbo_cli("show", str(run_dir), cwd=cwd)).stdout
    assert ok(gpbo_cli("best", str(QUADRATIC), "--json", cwd=cwd)).stdout == ok(
        gpbo_cli("best", str(run_dir), "--json", cwd=cwd)
    ).stdout
    elsewhere = gpbo_cli("show", str(QUADRATIC), cwd=tmp_path)  # its runs/ is not here
    assert elsewhere.returncode == 2
    assert "is a config, and its run directory runs/quadratic holds no journal" in elsewhere.stderr


def test_fresh_moves_the_old_run_aside(tmp_path):
    ok(gpbo_cli("run", str(QUADRATIC), "--set", "n_trials=2", cwd=tmp_path))
    run_dir = tmp_path / "runs" / "quadratic"
    done = ok(gpbo_cli("run", str(QUADRATIC), "--set", "n_trials=3", "--fresh", cwd=tmp_path))
    old = [p for p in (tmp_path / "runs").iterdir() if p.name.startswith("quadratic.old-")]
    assert len(old) == 1 and "moved the old run aside" in done.stdout
    assert len(finished(old[0])) == 2  # kept as it was
    assert len(finished(run_dir)) == 3  # started over: trials 0, 1, 2 again
    assert (old[0] / "config.yaml").exists()


def test_the_users_config_and_folder_are_never_overwritten_or_moved(tmp_path):
    # exp/config.yaml with run_dir: exp was replaced by the resolved config; --fresh with
    # run_dir: . renamed the whole project folder
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "quadratic.py").write_text((ROOT / "configs" / "quadratic.py").read_text())
    text = QUADRATIC.read_text().replace("run_dir: runs/quadratic", "run_dir: exp")
    (exp / "config.yaml").write_text(text)
    done = gpbo_cli("run", "exp/config.yaml", "--set", "n_trials=2", cwd=tmp_path)
    assert done.returncode == 2 and "rename the config" in done.stderr, done.stderr
    assert (exp / "config.yaml").read_text() == text
    (exp / "config.yaml").rename(exp / "tune.yaml")
    (exp / "tune.yaml").write_text(text.replace("run_dir: exp", "run_dir: ."))
    ok(gpbo_cli("run", "tune.yaml", "--set", "n_trials=2", "--quiet", cwd=exp))
    done = gpbo_cli("run", "tune.yaml", "--set", "n_trials=2", "--fresh", cwd=exp)
    assert done.returncode == 2 and "holds the current directory" in done.stderr, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp"]  # nothing moved
    assert len(finished(exp)) == 2


def test_a_run_directory_of_another_objective_is_warned_about_and_errors_are_one_line(tmp_path):
    # two configs both named config.yaml share runs/config: the second went on from the
    # first one's results without a word
    for name, value in (("exp1", "1.0"), ("exp2", "2.0")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "obj.py").write_text(f"def f(params):\n    return {value}\n")
        (tmp_path / name / "config.yaml").write_text(
            "objective: obj.py:f\nspace:\n  x: {type: real, low: 0.0, high: 1.0}\n"
            "n_trials: 2\nstrategy: random\nseed: 0\n"
        )
    ok(gpbo_cli("run", "exp1/config.yaml", "--quiet", cwd=tmp_path))
    done = ok(gpbo_cli("run", "exp2/config.yaml", "--set", "strategy=sobol", cwd=tmp_path))
    assert "results are pooled as one study" in done.stderr and "exp1" in done.stderr
    # gpbo's own warnings as [gpbo] lines, not Python's file:line form
    assert "[gpbo] WARNING: resuming the study" in done.stderr
    assert "GpboWarning" not in done.stderr
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00")
    done = gpbo_cli("run", "bin.yaml", cwd=tmp_path)
    assert done.returncode == 2 and "not a UTF-8 text file" in done.stderr
    assert "Traceback" not in done.stderr
    (tmp_path / "afile").write_text("")
    done = gpbo_cli("run", "exp1/config.yaml", "--set", "run_dir=afile", cwd=tmp_path)
    assert done.returncode == 2 and "run directory" in done.stderr
    assert "afile: it is a file" in done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    done = gpbo_cli("export", "runs/config", "--csv", "afile/x.csv", cwd=tmp_path)
    assert done.returncode == 2 and "cannot write afile/x.csv" in done.stderr
    done = gpbo_cli("export", "runs/config", "--csv", "runs/config/trials/0.log", cwd=tmp_path)
    assert done.returncode == 2 and "one of the run's own files" in done.stderr


def test_show_tells_a_run_whose_driver_died_from_a_live_one(tmp_path):
    # a killed driver's running trials showed a growing "running 2.9s+" for ever
    journal = tmp_path / "j.jsonl"
    study = gpbo.Study({"x": gpbo.Real(0, 1)}, strategy="random", seed=0, journal=journal)
    study.tell(study.ask(1)[0], 1.0)
    study.mark_running(study.ask(1)[0])
    live = ok(gpbo_cli("show", str(journal), cwd=tmp_path)).stdout
    assert "s+" in live and "no gpbo is running" not in live
    assert "(1 complete, 1 running)" in live.splitlines()[0], live
    study._journal._lock.release()  # as a SIGKILL leaves it: the lock file, unheld
    (tmp_path / "j.jsonl.lock").touch()
    dead = ok(gpbo_cli("show", str(journal), cwd=tmp_path)).stdout
    assert "no gpbo is running this study: 1 trial" in dead and "s+" not in dead
    # the heading and the table no longer say "running" above that note
    assert "(1 complete, 1 cut off)" in dead.splitlines()[0], dead
    table = dead.split("best:")[0]
    assert " running" not in table and "1  cut off" in table, dead


def test_run_with_another_space_refuses_to_mix(tmp_path):
    ok(gpbo_cli("run", str(QUADRATIC), "--set", "n_trials=1", cwd=tmp_path))
    done = gpbo_cli("run", str(QUADRATIC), "--set", "space.x.high=9.0", cwd=tmp_path)
    assert done.returncode == 2
    assert "different study" in done.stderr and "--fresh" in done.stderr
    assert "high: 5.0" in (tmp_path / "runs" / "quadratic" / "config.yaml").read_text()
    hint = re.search(r"--set run_dir=NEW --set warm_start=(\S+)\)", done.stderr)
    assert hint is not None and hint.group(1) == str(Path("runs") / "quadratic"), done.stderr
    # as the message says: the new study starts from the old one's trial
    wider = gpbo_cli("run", str(QUADRATIC), "--set", "space.x.high=9.0", "--set", "n_trials=2",
                     "--set", "run_dir=runs/wider", "--set", f"warm_start={hint.group(1)}",
                     cwd=tmp_path)
    assert "warm start: added 1 complete trial of runs/quadratic" in ok(wider).stdout
    old, new = finished(tmp_path / "runs" / "quadratic"), finished(tmp_path / "runs" / "wider")
    assert [t.params for t in new[:1]] == [t.params for t in old] and len(new) == 2


def test_run_on_a_damaged_journal_says_to_mend_the_line_not_to_start_over(tmp_path):
    ok(gpbo_cli("run", str(QUADRATIC), "--set", "n_trials=2", cwd=tmp_path))
    journal = tmp_path / "runs" / "quadratic" / "journal.jsonl"
    lines = journal.read_text().splitlines(keepends=True)
    lines[1] = '{"event": "trial", oops\n'  # an edit, not a torn last line
    journal.write_text("".join(lines))
    done = gpbo_cli("run", str(QUADRATIC), "--set", "n_trials=3", cwd=tmp_path)
    assert done.returncode == 2
    assert "line 2: invalid JSON" in done.stderr and "remove or fix that line" in done.stderr
    assert "holds another study" not in done.stderr and "--fresh" not in done.stderr


# -- config mistakes ----------------------------------------------------------------------------


def test_unknown_key_gets_a_hint_and_wrong_type_names_the_line(tmp_path):
    config = tmp_path / "bad.yaml"
    text = QUADRATIC.read_text()
    assert "\nn_trials: " in text
    config.write_text(text.replace("\nn_trials: ", "\nn_trial: "))
    done = gpbo_cli("run", str(config), cwd=ROOT / "configs")
    assert done.returncode == 2
    assert "unknown key 'n_trial'; did you mean 'n_trials'?" in done.stderr
    line = next(i for i, row in enumerate(text.splitlines(), 1) if row.startswith("n_trials:"))
    assert f"bad.yaml, line {line}:" in done.stderr

    config.write_text(QUADRATIC.read_text().replace("batch_size: 4", "batch_size: four"))
    done = gpbo_cli("run", str(config), cwd=ROOT / "configs")
    assert done.returncode == 2
    line = QUADRATIC.read_text().splitlines().index("batch_size: 4") + 1
    assert f"bad.yaml, line {line}: batch_size must be a positive int" in done.stderr
    assert "'four' (str)" in done.stderr
    assert "Traceback" not in done.stderr

    done = gpbo_cli("run", str(QUADRATIC), "--set", "strategy.levls=3", cwd=tmp_path)
    assert done.returncode == 2 and "--set strategy.levls=3:" in done.stderr


# -- command trials -----------------------------------------------------------------------------


def _command_project(tmp_path: Path, script: str, extra: str = "") -> Path:
    (tmp_path / "train.py").write_text(textwrap.dedent(script))
    config = tmp_path / "cmd.yaml"
    config.write_text(
        textwrap.dedent(
            """
            command: "{python} train.py --x {x}"
            space:
              x: {type: real, low: 0.0, high: 1.0}
            strategy: sobol
            n_trials: 2
            seed: 0
            run_dir: run
            """
        )
        + extra
    )
    return config


def test_failing_command_trials_show_their_stderr_tail(tmp_path):
    config = _command_project(
        tmp_path,
        """
        import sys
        print("loading data", file=sys.stderr)
        print("ValueError: x is too small for this model", file=sys.stderr)
        sys.exit(3)
        """,
    )
    done = gpbo_cli("run", str(config), cwd=tmp_path)
    assert done.returncode == 1  # the study ran, but no trial completed
    assert "FAILED (CommandError: the command exited with code 3" in done.stdout
    assert "[gpbo]     | ValueError: x is too small for this model" in done.stdout
    show = ok(gpbo_cli("show", "run", cwd=tmp_path)).stdout
    assert "2 failed" in show and "why trials failed" in show
    assert "    | ValueError: x is too small for this model" in show  # the reason, quoted
    assert "Traceback" not in show
    error = gpbo.load(tmp_path / "run" / "journal.jsonl").trials[0].error
    assert "exited with code 3" in error and "x is too small for this model" in error
    assert "Traceback" not in error  # it would show gpbo's code only, not train.py's
    log = (tmp_path / "run" / "trials" / "0.log").read_text()
    assert "loading data" in log and "train.py --x" in log
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["best"] is None


def test_unparsable_metric_fails_the_trial_with_the_reason(tmp_path):
    config = _command_project(
        tmp_path,
        """
        import sys
        x = float(sys.argv[2])
        print("accuracy: %.3f" % x if x < 0.5 else '{"value": %f}' % x)
        """,
    )
    done = gpbo_cli("run", str(config), cwd=tmp_path)
    trials = gpbo.load(tmp_path / "run" / "journal.jsonl").trials
    statuses = {t.status for t in trials}
    assert statuses <= {"complete", "failed"} and "failed" in statuses
    for trial in trials:
        if trial.params["x"] < 0.5:
            assert trial.status == "failed"
            assert "the last line of stdout is not JSON: 'accuracy: " in trial.error
        else:
            assert trial.status == "complete" and trial.value == pytest.approx(trial.params["x"])
    assert done.returncode == (0 if "complete" in statuses else 1)


def test_ctrl_c_stops_the_command_and_a_rerun_resumes(tmp_path):
    config = _command_project(
        tmp_path,
        """
        import json, os, sys, time
        with open("pid.txt", "w") as f:
            f.write(str(os.getpid()))
        if not os.path.exists("go"):
            time.sleep(60)
        print(json.dumps({"value": float(sys.argv[2])}))
        """,
    )
    config.write_text(config.read_text().replace("n_trials: 2", "n_trials: 1"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "gpbo", "run", str(config)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    pid_file = tmp_path / "pid.txt"
    end = time.monotonic() + 60
    while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < end:
        time.sleep(0.1)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "run `gpbo run" in out and "again" in out
    assert (out + err).count("again to resume") == 1, out + err  # one hint, the CLI's
    assert "journal=" not in out + err  # not the Python call's hint
    command_pid = int(pid_file.read_text())
    end = time.monotonic() + 5
    while _alive(command_pid) and time.monotonic() < end:
        time.sleep(0.05)
    assert not _alive(command_pid), "the command survived Ctrl+C"
    assert gpbo.load(tmp_path / "run" / "journal.jsonl").trials[0].status == "interrupted"

    (tmp_path / "go").touch()
    done = ok(gpbo_cli("run", str(config), cwd=tmp_path))
    trials = gpbo.load(tmp_path / "run" / "journal.jsonl").trials
    assert [t.status for t in trials] == ["complete"]  # the same trial, run again
    assert "1/1" in done.stdout


def test_a_first_trial_without_a_metric_is_reopened_when_ctrl_c_came_first(tmp_path):
    # Trial 0 printed no metric while trial 1 still ran; Ctrl+C then stopped the run before
    # its end, where it reopens such trials: the fixed run trains trial 0 again.
    config = _command_project(
        tmp_path,
        """
        import json, os, sys, time
        if os.path.exists("fixed"):
            print(json.dumps({"value": float(sys.argv[2])}))
            sys.exit()
        if os.environ["GPBO_TRIAL_NUMBER"] == "0":
            print("accuracy 0.5")  # the script's own format, no JSON
        else:
            with open("pid.txt", "w") as f:
                f.write(str(os.getpid()))
            time.sleep(60)
        """,
        "devices: [cpu, cpu]\nbatch_size: 2\n",
    )
    proc = subprocess.Popen([sys.executable, "-m", "gpbo", "run", str(config)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    journal = tmp_path / "run" / "journal.jsonl"

    def trial_0_failed() -> bool:
        with contextlib.suppress(Exception):
            return gpbo.load(journal).trials[0].status == "failed"
        return False

    end = time.monotonic() + 60
    while not ((tmp_path / "pid.txt").exists() and trial_0_failed()):
        assert time.monotonic() < end and proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    stopped = gpbo.load(journal).trials
    assert [t.status for t in stopped] == ["failed", "interrupted"]

    (tmp_path / "fixed").touch()
    done = ok(gpbo_cli("run", str(config), cwd=tmp_path))
    assert "resuming" not in done.stdout  # no trial counts as finished
    assert "trial 0 left no readable metric and none completed" in done.stdout
    trials = gpbo.load(journal).trials
    assert [t.status for t in trials] == ["complete", "complete"]
    assert [t.params for t in trials] == [t.params for t in stopped]


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "Z" not in status.split("State:", 1)[1][:4]


# -- every shipped config runs ------------------------------------------------------------------


@pytest.mark.parametrize("config", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_shipped_config_runs(config, tmp_path):
    done = ok(
        gpbo_cli(
            "run",
            str(config.relative_to(ROOT)),
            "--set",
            "n_trials=3",
            "--set",
            f"run_dir={tmp_path / 'run'}",
            cwd=ROOT,  # the configs' relative paths are from the repository root
            timeout=300,
        )
    )
    assert "3/3" in done.stdout
    trials = finished(tmp_path / "run")
    assert len(trials) == 3 and all(t.status == "complete" for t in trials), [
        t.error for t in trials
    ]


# -- the live display ---------------------------------------------------------------------------


def _trial(number: int, value: float | None, device: str = "cuda:0") -> Trial:
    trial = Trial(number=number, params={"lr": 0.01 * (number + 1)}, device=device)
    trial.started_at = time.time() - 2.0
    if value is not None:
        trial.status, trial.value, trial.finished_at = "complete", value, time.time()
    return trial


def test_live_display_redraws_a_status_line_on_a_terminal():
    stream = io.StringIO()
    reporter = LiveReporter(
        direction="maximize", n_trials=4, stream=stream, live=True, refresh=3600
    )
    reporter.start(strategy="bayes", slots=["cuda:0", "cuda:1"])
    running = [_trial(0, None, "cuda:0"), _trial(1, None, "cuda:1")]
    for trial in running:
        reporter.trial_started(trial)
    assert "running cuda:0 #0 2.0s, cuda:1 #1 2.0s" in reporter.status()
    assert "estimating time left" in reporter.status()
    running[0].status, running[0].value, running[0].finished_at = "complete", 0.9, time.time()
    reporter.trial_finished(running[0])
    status = reporter.status()
    assert status.startswith("1/4 done | best 0.9 (#0) | ")
    assert "left | running cuda:1 #1" in status
    reporter.finish([running[0]], stop_reason="done")
    text = stream.getvalue()
    assert "\r\x1b[K[gpbo] 0/4 done" in text  # redrawn in place
    assert "\r\x1b[K[gpbo] 1/4 trial 0  value=0.9" in text  # trial line above the status
    assert text.rstrip().splitlines()[-1].startswith("[gpbo] best value 0.9")
    assert not text.endswith("done"), "the status line is cleared at the end"


def test_display_degrades_to_plain_lines_off_a_terminal():
    stream = io.StringIO()
    reporter = LiveReporter(direction="minimize", n_trials=2, stream=stream)  # not a tty
    assert not reporter.live
    reporter.start(strategy="random", slots=["cpu"])
    trial = _trial(0, None, "cpu")
    reporter.trial_started(trial)
    trial.status, trial.value, trial.finished_at = "complete", 1.5, time.time()
    reporter.trial_finished(trial)
    reporter.finish([trial], stop_reason="1 trial finished")
    text = stream.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert lines[1] == "[gpbo] trial 0 started on cpu: lr=0.01"
    assert lines[2].startswith("[gpbo] 1/2 trial 0  value=1.5")
    assert lines[3].startswith("[gpbo] 1/2 done | best 1.5 (#0) | ")


# -- plots from Python --------------------------------------------------------------------------


def test_plot_from_a_result(tmp_path):
    from gpbo.plots import plot

    result = gpbo.optimize(
        lambda p: (p["x"] - 0.2) ** 2 + (0 if p["kind"] == "a" else 1),
        {"x": gpbo.Real(1e-3, 1.0, log=True), "kind": gpbo.Choice(["a", "b"])},
        n_trials=5,
        strategy="random",
        seed=0,
        verbose=False,
    )
    fig = plot(result, tmp_path / "sub" / "r.png", title="test")
    assert len([ax for ax in fig.axes if ax.get_visible() and ax.get_title()]) == 4
    assert (tmp_path / "sub" / "r.png").stat().st_size > 20_000


def test_a_driver_refused_the_journal_leaves_the_other_s_summary_alone(tmp_path, monkeypatch):
    # two `gpbo run` started together on a new run dir: both found no journal, the loser's
    # optimize() is refused the lock; it wrote a summary of the winner's run "stopped on an error"
    from gpbo import cli
    from gpbo.journal import JournalLockedError

    optimize = gpbo.optimize

    def refused(*args, **kwargs):
        optimize(*args, **{**kwargs, "n_trials": 2, "verbose": False, "_progress": None})
        raise JournalLockedError("the journal is held by another gpbo (pid 1)")  # the winner's

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(gpbo, "optimize", refused)
    assert cli.main(["run", str(QUADRATIC), "--quiet"]) == cli.EXIT_FAILED
    assert not (tmp_path / "runs" / "quadratic" / "summary.json").exists()


def test_a_driver_refused_the_journal_leaves_the_other_s_config_yaml_alone(tmp_path, monkeypatch):
    # the loser of two `gpbo run` started together on a new run dir found no journal, wrote
    # its own config.yaml over the winner's (other --set values), then was refused the lock
    from gpbo import cli
    from gpbo.journal import _Lock

    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "runs" / "quadratic"
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text("# the winner's\n")
    lock = _Lock.acquire(run_dir / "journal.jsonl")  # the winner holds the journal
    try:
        status = cli.main(["run", str(QUADRATIC), "--quiet", "--set", "n_trials=3"])
    finally:
        lock.release()
    assert status == cli.EXIT_FAILED
    assert (run_dir / "config.yaml").read_text() == "# the winner's\n"
    assert cli.main(["run", str(QUADRATIC), "--quiet", "--set", "n_trials=3"]) == cli.EXIT_OK
    assert "n_trials: 3" in (run_dir / "config.yaml").read_text()


def test_ctrl_c_under_gpbo_run_waits_until_a_finished_trial_is_recorded(tmp_path, monkeypatch):
    # The loop holds a stop signal back while it records an outcome; the command must not
    # put a handler of its own in front that raises at once and loses the finished trial.
    from gpbo import cli
    from gpbo.study import Study

    (tmp_path / "obj.py").write_text("def f(params):\n    return params['x']\n")
    config = tmp_path / "cfg.yaml"
    config.write_text(
        textwrap.dedent(
            """
            objective: obj.py:f
            space:
              x: {type: real, low: 0.0, high: 1.0}
            strategy: sobol
            executor: serial
            n_trials: 3
            seed: 0
            run_dir: run
            """
        )
    )
    monkeypatch.chdir(tmp_path)
    logger = logging.getLogger("gpbo")  # the command configures it; give it back as it was
    for name in ("handlers", "propagate", "level"):
        monkeypatch.setattr(logger, name, copy.copy(getattr(logger, name)))
    tell = Study.tell
    pressed: list[int] = []

    def tell_with_ctrl_c(self, trial, *args, **kwargs):
        if not pressed:  # Ctrl+C arrives while the first outcome is being recorded
            pressed.append(trial.number)
            os.kill(os.getpid(), signal.SIGINT)
        return tell(self, trial, *args, **kwargs)

    monkeypatch.setattr(Study, "tell", tell_with_ctrl_c)
    assert cli.main(["run", str(config), "--plain"]) == cli.EXIT_INTERRUPTED
    trials = gpbo.load(tmp_path / "run" / "journal.jsonl").trials
    assert pressed == [0]
    assert trials[0].status == "complete", "the finished trial was lost to Ctrl+C"


def test_ctrl_c_before_the_study_starts_exits_130_with_a_line_not_a_traceback(
    tmp_path, monkeypatch, capsys
):
    import gpbo.config
    from gpbo import cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # as Ctrl+C while the config's imports run

    logger = logging.getLogger("gpbo")  # the command configures it; give it back as it was
    for name in ("handlers", "propagate", "level"):
        monkeypatch.setattr(logger, name, copy.copy(getattr(logger, name)))
    monkeypatch.setattr(gpbo.config, "load_config", interrupted)
    assert cli.main(["run", str(tmp_path / "any.yaml")]) == cli.EXIT_INTERRUPTED
    err = capsys.readouterr().err
    assert err == "gpbo: error: interrupted; run the same command again to go on\n"


def test_an_override_without_set_is_refused_with_the_set_spelling(capsys):
    from gpbo.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["run", "configs/quadratic.yaml", "n_trials=3", "seed=1"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "unrecognized arguments: n_trials=3 seed=1" in error
    assert "--set n_trials=3 --set seed=1" in error
    with pytest.raises(SystemExit):
        main(["run", "configs/quadratic.yaml", "--bogus"])
    assert "--set" not in capsys.readouterr().err.splitlines()[-1]
