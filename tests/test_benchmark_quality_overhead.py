"""Smoke runs of the benchmark scripts (tiny budgets), so they cannot rot.

``scripts/benchmark_quality.py`` on Branin with 8 evaluations (gpbo random, gpbo bayes q=1 and
every installed peer, one seed) and ``scripts/benchmark_overhead.py`` at n=20, q=2, one
thread, one repeat; both in subprocesses, checking the JSON and markdown they write.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
QUALITY = ROOT / "scripts" / "benchmark_quality.py"
OVERHEAD = ROOT / "scripts" / "benchmark_overhead.py"

PEER_MODULES = {
    "bayes_opt": "bayes_opt",
    "optuna-tpe": "optuna",
    "optuna-gp": "optuna",
    "hyperopt-tpe": "hyperopt",
    "skopt-gp": "skopt",
}


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _run(args: list[str], timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=timeout, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_quality_smoke(tmp_path: Path) -> None:
    peers = [m for m, mod in PEER_MODULES.items() if _installed(mod)]
    methods = ["gpbo-random", "gpbo-bayes-q1", *peers, "botorch-qlogei"]
    out = tmp_path / "quality"
    args = [str(QUALITY), "--problems", "branin", "--methods", ",".join(methods), "--seeds", "1",
            "--budget", "8", "--threads", "1", "--fast", "--out", str(out)]
    _run(args)
    data = json.loads((out / "results.json").read_text())
    assert data["schema"] == "gpbo-benchmark-quality/1"
    assert data["environment"]["versions"]["botorch"]
    assert data["environment"]["cpu_capability"]  # "AVX2", "AVX512", "DEFAULT"...
    if (ROOT / ".git").exists():  # which code wrote the traces (a clean clone in CI)
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        assert data["environment"]["gpbo_commit"] in (head, head + "+dirty")
    runs = data["runs"]
    assert sorted(r["method"] for r in runs) == sorted(methods)
    for run in runs:
        assert run["problem"] == "branin" and run["seed"] == 0 and run["budget"] == 8
        assert len(run["values"]) == 8 and all(math.isfinite(v) for v in run["values"])
        assert run["best"] == min(run["values"])
        assert run["log10_regret"] == pytest.approx(
            math.log10(max(run["best"] - run["optimum"], 1e-12)))
        assert run["wall_s"] >= 0
    table = (out / "results.md").read_text()
    assert "| Branin 2D (8) |" in table
    for method in methods:
        assert method in table
    assert (out / "convergence_branin.png").stat().st_size > 0

    # --resume finds every run done and runs nothing
    proc = _run([*args, "--resume", "--no-plots"])
    assert "0 runs to do" in proc.stdout
    assert len(json.loads((out / "results.json").read_text())["runs"]) == len(methods)

    # --report-only rewrites the table; with --no-plots it leaves the plots alone
    (out / "convergence_branin.png").unlink()
    (out / "results.md").unlink()
    _run([str(QUALITY), "--report-only", "--no-plots", "--out", str(out)])
    assert "| Branin 2D (8) |" in (out / "results.md").read_text()
    assert not (out / "convergence_branin.png").exists()


def _load_quality_script():
    spec = importlib.util.spec_from_file_location("benchmark_quality_under_test", QUALITY)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_quality_refuses_to_overwrite_and_rejects_unknown_names(tmp_path: Path) -> None:
    script = _load_quality_script()
    out = tmp_path / "q"
    out.mkdir()
    (out / "results.json").write_text("{}")
    with pytest.raises(SystemExit, match="--resume"):
        script.main(["--out", str(out)])
    with pytest.raises(SystemExit, match="unknown method 'nope'"):
        script.main(["--out", str(tmp_path / "r"), "--methods", "nope"])
    with pytest.raises(SystemExit, match="unknown problem 'nope'"):
        script.main(["--out", str(tmp_path / "s"), "--problems", "nope"])
    with pytest.raises(SystemExit, match="no results at"):
        script.main(["--report-only", "--out", str(tmp_path / "empty")])


PLUGIN = """
def constant(problem, budget, seed):
    return [100.0] * budget

def broken(problem, budget, seed):
    raise ValueError("boom")

METHODS = {"exp-constant": constant, "exp-broken": broken}
"""


@pytest.fixture
def gpbo_log_level():
    """run_one() quiets the gpbo logger; put it back for the tests after this one."""
    import logging

    logger = logging.getLogger("gpbo")
    level = logger.level
    yield
    logger.setLevel(level)


def test_quality_a_failing_run_is_listed_and_the_others_go_on(tmp_path, gpbo_log_level, capsys):
    script = _load_quality_script()
    plugin = tmp_path / "plugin.py"
    plugin.write_text(PLUGIN)
    out = tmp_path / "q"
    args = ["--problems", "branin", "--methods", "exp-broken,exp-constant", "--seeds", "2",
            "--budget", "3", "--plugin", str(plugin), "--out", str(out), "--no-plots"]
    assert script.main(args) == 1  # the exit status says so
    data = json.loads((out / "results.json").read_text())
    assert [(r["method"], r["seed"]) for r in data["runs"]] == [("exp-constant", 0),
                                                                  ("exp-constant", 1)]
    assert [(f["method"], f["seed"]) for f in data["failed_runs"]] == [("exp-broken", 0),
                                                                       ("exp-broken", 1)]
    assert "exp-broken` seed 1: ValueError: boom" in (out / "results.md").read_text()
    assert "ValueError: boom" in capsys.readouterr().out

    plugin.write_text(PLUGIN.replace('raise ValueError("boom")', "return [1.0] * budget"))
    script._PLUGINS.clear()
    assert script.main([*args, "--resume"]) == 0  # the failed runs again, the rest kept
    data = json.loads((out / "results.json").read_text())
    assert len(data["runs"]) == 4 and data["failed_runs"] == []
    assert "Failed runs" not in (out / "results.md").read_text()


def test_quality_ctrl_c_keeps_the_finished_runs_and_says_how_to_go_on(
    tmp_path, gpbo_log_level, capsys
):
    script = _load_quality_script()
    plugin = tmp_path / "plugin.py"
    plugin.write_text(PLUGIN.replace('raise ValueError("boom")',
                                     "if seed == 1:\n        raise KeyboardInterrupt\n"
                                     "    return [1.0] * budget"))
    out = tmp_path / "q"
    args = ["--problems", "branin", "--methods", "exp-broken", "--seeds", "3", "--budget", "3",
            "--plugin", str(plugin), "--out", str(out), "--no-plots"]
    assert script.main(args) == 130
    said = capsys.readouterr().out
    assert "interrupted: 1 of 3 runs done" in said and "with --resume for the rest" in said
    assert "Traceback" not in said
    data = json.loads((out / "results.json").read_text())
    assert [r["seed"] for r in data["runs"]] == [0]
    assert "exp-broken" in (out / "results.md").read_text()  # the table of what finished

    plugin.write_text(PLUGIN.replace('raise ValueError("boom")', "return [1.0] * budget"))
    script._PLUGINS.clear()
    assert script.main([*args, "--resume"]) == 0
    assert sorted(r["seed"] for r in json.loads((out / "results.json").read_text())["runs"]) == [
        0, 1, 2]


def test_quality_only_methods_that_cannot_run_is_an_error(tmp_path, monkeypatch, capsys):
    script = _load_quality_script()
    monkeypatch.setattr(script, "missing_module",
                        lambda method: "hyperopt (ModuleNotFoundError: no module)")
    args = ["--problems", "branin", "--methods", "hyperopt-tpe", "--seeds", "1",
            "--out", str(tmp_path / "q"), "--no-plots"]
    assert script.main(args) == 1
    said = capsys.readouterr().out
    assert "nothing to run: hyperopt-tpe cannot run here" in said
    assert 'from the gpbo checkout: pip install -e ".[bench]"' in said


def test_quality_a_resume_keeps_one_table_one_configuration(tmp_path, gpbo_log_level) -> None:
    script = _load_quality_script()
    plugin = tmp_path / "plugin.py"
    plugin.write_text(PLUGIN)
    out = tmp_path / "q"
    args = ["--problems", "branin", "--methods", "exp-constant", "--plugin", str(plugin),
            "--out", str(out), "--no-plots"]
    assert script.main([*args, "--seeds", "1", "--budget", "3", "--fast"]) == 0
    data = json.loads((out / "results.json").read_text())
    data["environment"]["merged_from"] = ["kept"]
    data["unavailable"]["exp-constant"] = "cannot import it, once"
    (out / "results.json").write_text(json.dumps(data))
    with pytest.raises(SystemExit, match="--fast runs and this one is full"):
        script.main([*args, "--seeds", "2", "--budget", "3", "--resume"])
    with pytest.raises(SystemExit, match="budget of 3 and this one asks for 30"):
        script.main([*args, "--seeds", "2", "--fast", "--resume"])  # Branin's own budget
    assert script.main([*args, "--seeds", "2", "--budget", "3", "--fast", "--resume"]) == 0
    data = json.loads((out / "results.json").read_text())
    assert len(data["runs"]) == 2 and all(r["fast"] for r in data["runs"])
    assert data["environment"]["merged_from"] == ["kept"] and len(data["later_environments"]) == 1
    assert data["unavailable"] == {}  # it ran this time


@pytest.mark.parametrize(
    ("option", "message"),
    [(["--seeds", "0"], "--seeds must be at least 1"),
     (["--first-seed", "-1"], "--first-seed must be at least 0"),
     (["--budget", "0"], "--budget must be at least 1"),
     (["--jobs", "0"], "--jobs must be at least 1")],
)
def test_quality_refuses_bad_numbers(tmp_path, capsys, option, message) -> None:
    script = _load_quality_script()
    with pytest.raises(SystemExit):
        script.main([*option, "--out", str(tmp_path / "q")])
    assert message in capsys.readouterr().err
    assert not (tmp_path / "q").exists()


def test_quality_plugin_errors_are_messages(tmp_path) -> None:
    script = _load_quality_script()
    out = str(tmp_path / "q")
    with pytest.raises(SystemExit, match="no such file"):
        script.main(["--plugin", str(tmp_path / "missing.py"), "--out", out])
    empty = tmp_path / "empty.py"
    empty.write_text("X = 1\n")
    with pytest.raises(SystemExit, match="defines no METHODS dict"):
        script.main(["--plugin", str(empty), "--out", out])
    bad = tmp_path / "bad.py"
    bad.write_text("import not_a_module_anywhere\n")
    with pytest.raises(SystemExit, match=r"failed to load \(ModuleNotFoundError"):
        script.main(["--plugin", str(bad), "--out", out])


def test_quality_summary_and_table() -> None:
    script = _load_quality_script()
    runs = [
        {"problem": "branin", "method": m, "seed": s, "budget": 30, "log10_regret": r,
         "wall_s": 1.0, "cpu_s": 1.0, "values": [1.0, 0.5], "optimum": 0.397887}
        for m, rs in (("gpbo-bayes-q1", (-3.0, -2.0, -1.0)), ("optuna-tpe", (-1.0, 0.0, 1.0)))
        for s, r in enumerate(rs)
    ]
    stats = script.summarize(runs)
    assert stats[("branin", "gpbo-bayes-q1")]["median"] == -2.0
    assert stats[("branin", "gpbo-bayes-q1")]["q25"] == -2.5
    assert stats[("branin", "optuna-tpe")]["n"] == 3
    table = script.markdown_table({"runs": runs, "unavailable": {"skopt-gp": "missing"}})
    assert "**-2.00 [-2.50, -1.50] n=3**" in table
    assert "0.00 [-0.50, 0.50] n=3" in table
    assert "`skopt-gp`: missing" in table
    assert script.regret(0.1, 0.397887) == 1e-12


def _gap_runs(q1: list[float], q4: list[float], problem: str = "branin") -> list[dict]:
    return [
        {"problem": problem, "method": m, "seed": s, "budget": 30, "log10_regret": r,
         "wall_s": 1.0, "cpu_s": 1.0, "values": [1.0], "optimum": 0.397887}
        for m, rs in (("gpbo-bayes-q1", q1), ("gpbo-bayes-q4", q4))
        for s, r in enumerate(rs)
    ]


def test_paired_gap_pairs_the_seeds_and_bounds_the_gap_of_the_medians() -> None:
    script = _load_quality_script()
    q1 = [-4.0, -3.0, -2.0, -1.0, 0.0, 1.0]
    # q=4 one decade worse on every seed, plus a seed q=1 never ran (not paired)
    runs = _gap_runs(q1, [r + 1.0 for r in q1] + [-9.0])
    gap = script.paired_gap(runs, "branin", "gpbo-bayes-q4", "gpbo-bayes-q1")
    assert gap is not None
    assert gap["n"] == 6 and (gap["better"], gap["worse"]) == (0, 6)
    assert gap["gap"] == pytest.approx(1.0) and gap["paired_median"] == pytest.approx(1.0)
    # the seeds resampled in pairs keep a constant per-seed shift exact
    assert gap["ci_low"] == pytest.approx(1.0) and gap["ci_high"] == pytest.approx(1.0)
    table = script.markdown_table({"runs": runs})
    assert "| Branin 2D | 6 | +1.00 [+1.00, +1.00] | 0 / 6 | +1.00 | no (whole interval) |" in table
    assert script.paired_gap(runs, "hartmann6", "gpbo-bayes-q4", "gpbo-bayes-q1") is None
    one_seed = script.markdown_table({"runs": _gap_runs([-2.0], [-1.0])})
    assert "| Branin 2D | 1 | +1.00 [+1.00, +1.00] | 0 / 1 | +1.00 | no (1 seed: no interval) |" \
        in one_seed


def test_paired_gap_interval_is_wide_when_the_seeds_disagree() -> None:
    script = _load_quality_script()
    rng = np.random.default_rng(0)
    q1 = list(rng.normal(-3.0, 1.0, size=30))
    q4 = list(rng.normal(-3.0, 1.0, size=30))  # the same distribution, independent draws
    gap = script.paired_gap(_gap_runs(q1, q4), "branin", "gpbo-bayes-q4", "gpbo-bayes-q1")
    assert gap is not None
    assert gap["ci_low"] < gap["gap"] < gap["ci_high"]
    # the standard error of a 30-sample median of N(0, 1) is about 0.23; the difference's
    # 95% interval is about +-0.64 wide each side: well over 0.3 and under 2
    assert 0.3 < gap["ci_high"] - gap["ci_low"] < 4.0
    assert gap["better"] + gap["worse"] == 30


def test_noisy_problem_scores_the_true_value_of_the_best_observed_point() -> None:
    script = _load_quality_script()
    assert script.incumbent_values([3.0, 1.0, 2.0], None) == [3.0, 1.0, 1.0]
    # observed 0.5 at the third point, but its true value is 2.5: the regret uses 2.5
    assert script.incumbent_values([1.0, 0.9, 0.5], [1.2, 0.8, 2.5]) == [1.2, 0.8, 2.5]
    problem = script.PROBLEMS["hartmann6_noisy"]
    assert "hartmann6_noisy" not in script.DEFAULT_PROBLEMS
    clean = problem.start_run(3)
    x = [0.2] * 6
    first = [problem(x) for _ in range(3)]
    assert len(clean) == 3 and len(set(clean)) == 1  # the same point: one true value
    assert len(set(first)) == 3  # three noise draws
    assert abs(float(np.mean(first)) - clean[0]) < 4 * 0.1
    problem.start_run(3)
    assert [problem(x) for _ in range(3)] == first  # seeded per run


@pytest.mark.parametrize(("name", "base", "extra"), [("branin_in8", "branin", 6),
                                                     ("hartmann6_in12", "hartmann6", 6)])
def test_problem_with_ignored_inputs_is_its_base_in_the_first_coordinates(
    name: str, base: str, extra: int
) -> None:
    script = _load_quality_script()
    problem, original = script.PROBLEMS[name], script.PROBLEMS[base]
    assert name not in script.DEFAULT_PROBLEMS
    assert problem.dim == original.dim + extra
    assert problem.bounds[: original.dim] == original.bounds
    assert problem.bounds[original.dim :] == [(0.0, 1.0)] * extra
    assert problem.optimum == original.optimum
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = [rng.uniform(lo, hi) for lo, hi in original.bounds]
        ignored = rng.uniform(0, 1, extra).tolist()
        assert problem(x + ignored) == original(x)
        assert problem(x + [0.0] * extra) == original(x)


def test_overhead_smoke(tmp_path: Path) -> None:
    methods = ["gpbo"] + [p for p, mod in (("bayes_opt", "bayes_opt"), ("optuna-gp", "optuna"))
                          if _installed(mod)]
    out = tmp_path / "overhead"
    _run([str(OVERHEAD), "--ns", "20", "--qs", "2", "--threads", "1", "--repeats", "1",
          "--methods", ",".join(methods), "--fast", "--out", str(out)])
    data = json.loads((out / "results.json").read_text())
    assert data["schema"] == "gpbo-benchmark-overhead/1"
    records = {r["method"]: r for r in data["records"]}
    expected = {"gpbo-q2", *(m for m in methods if m != "gpbo")}
    assert set(records) == expected
    for record in records.values():
        assert record["n"] == 20 and record["threads"] == 1 and record["device"] == "cpu"
        assert record["per_point_wall"] > 0 and record["median_cpu"] >= 0
    gpbo = records["gpbo-q2"]
    assert gpbo["q"] == 2
    assert gpbo["per_point_wall"] == pytest.approx(gpbo["median_wall"] / 2)
    assert gpbo["median_fit_wall"] > 0
    table = (out / "results.md").read_text()
    assert "| 20 |" in table and "gpbo-q2 (cpu)" in table
    assert data["environment"]["pending_cache_devices"] == ["cpu", "cuda"]
    assert "were reused on" not in table

    # the GPU checks' trade: the pending points' terms not reused on CUDA, recorded and stated
    other = tmp_path / "pending_cache"
    _run([str(OVERHEAD), "--ns", "20", "--qs", "2", "--threads", "1", "--repeats", "1",
          "--methods", "gpbo", "--fast", "--pending-cache-devices", "cpu", "--out", str(other)])
    data = json.loads((other / "results.json").read_text())
    assert data["environment"]["pending_cache_devices"] == ["cpu"]
    assert "were reused on: cpu (" in (other / "results.md").read_text()


def test_overhead_failed_trials_are_a_region_and_leave_the_objectives_gp(
    tmp_path, monkeypatch
) -> None:
    script = _load_overhead_script()
    X, y = script.hartmann_data(20, 0)
    mask = script.failed_mask(X, 0.2)
    assert mask.sum() == 4 and X[mask, 0].min() > X[~mask, 0].max()
    assert not script.failed_mask(X, 0.0).any()
    history = script.gpbo_history(X, y, device="cpu", seed=0, failed_fraction=0.2)
    assert history.X.shape == (16, 6) and history.X_failed.shape == (4, 6)
    assert history.n_total == 20
    assert np.array_equal(history.X_failed, X[mask])
    assert np.array_equal(history.scores, -y[~mask])

    monkeypatch.setenv(script.FAST_ENV, "1")
    record = script.measure("gpbo", 20, q=2, device="cpu", repeats=1, seed=0,
                            failed_fraction=0.2)
    assert record["failed_fraction"] == 0.2 and record["median_wall"] > 0
    data = {"environment": {"failed_fraction": 0.2}, "records": [
        {**record, "threads": 1}], "skipped": []}
    assert "20% of the n trials failed" in script.markdown_table(data)

    # a results file of one fraction is not extended with another
    out = tmp_path / "o"
    out.mkdir()
    script.save_results(out / "results.json", {"schema": script.SCHEMA, **data})
    refused = r"holds rounds with --failed-fraction 0\.2; measure --failed-fraction 0\.0"
    with pytest.raises(SystemExit, match=refused):
        script.main(["--resume", "--methods", "gpbo", "--ns", "20", "--out", str(out)])


def _load_overhead_script():
    spec = importlib.util.spec_from_file_location("benchmark_overhead", OVERHEAD)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


@pytest.mark.parametrize(
    ("option", "message"),
    [(["--methods", "gbpo,optuna"], "--methods: unknown ['gbpo', 'optuna']"),
     (["--ns", "0"], "--ns takes comma-separated positive integers"),
     (["--qs", "x"], "--qs takes comma-separated positive integers"),
     (["--repeats", "0"], "--repeats must be at least 1"),
     (["--failed-fraction", "1"], "--failed-fraction must be in [0, 1), got 1.0"),
     (["--failed-fraction", "0.2"], "pass --methods gpbo, not bayes_opt, optuna-gp")],
)
def test_overhead_refuses_bad_arguments(tmp_path, capsys, option, message) -> None:
    script = _load_overhead_script()
    with pytest.raises(SystemExit):
        script.main([*option, "--out", str(tmp_path / "o")])
    assert message in capsys.readouterr().err
    with pytest.raises(SystemExit, match="no results at"):
        script.main(["--report-only", "--out", str(tmp_path / "o")])


def test_overhead_ctrl_c_says_what_is_kept_and_how_to_go_on(tmp_path, monkeypatch, capsys):
    script = _load_overhead_script()

    def ctrl_c(*args, **kwargs):  # while the measuring child runs
        raise KeyboardInterrupt

    monkeypatch.setattr(script.subprocess, "run", ctrl_c)
    out = tmp_path / "o"
    assert script.main(["--methods", "gpbo", "--ns", "50", "--out", str(out)]) == 130
    said = capsys.readouterr().out
    assert f"interrupted: the measurements made are kept in {out / 'results.json'}" in said
    assert "with --resume for the rest" in said


def test_overhead_report_states_the_cpu_gpu_ratio_and_crossover() -> None:
    script = _load_overhead_script()
    # round seconds by (device, q, n): the GPU wins from n = 2000 for both q, and q=8 alone
    # at n = 500 (which must not count as the crossover)
    rounds = {("cpu", 1, 500): 0.4, ("cuda", 1, 500): 0.6, ("cpu", 8, 500): 3.0,
              ("cuda", 8, 500): 2.0, ("cpu", 1, 1000): 0.5, ("cuda", 1, 1000): 0.6,
              ("cpu", 8, 1000): 1.6, ("cuda", 8, 1000): 2.7, ("cpu", 1, 2000): 0.8,
              ("cuda", 1, 2000): 0.6, ("cpu", 8, 2000): 3.3, ("cuda", 8, 2000): 2.4,
              ("cuda", 1, 5000): 0.6, ("cuda", 8, 5000): 2.5}
    records = [{"method": f"gpbo-q{q}", "n": n, "q": q, "device": d, "threads": 1,
                "median_wall": t} for (d, q, n), t in rounds.items()]
    lines = script.device_ratio_lines(records)
    text = "\n".join(lines)
    assert "| 1000 | 0.5 | 0.6 | 0.83 | 1.6 | 2.7 | 0.59 |" in text
    assert "| 2000 | 0.8 | 0.6 | 1.33 | 3.3 | 2.4 | 1.38 |" in text
    assert "| 5000 |" not in text  # no CPU record there
    # a row with a q missing on the CPU is shown but does not decide the crossover
    records.append({"method": "gpbo-q1", "n": 3000, "q": 1, "device": "cpu", "threads": 1,
                    "median_wall": 0.5})
    records.append({"method": "gpbo-q1", "n": 3000, "q": 1, "device": "cuda", "threads": 1,
                    "median_wall": 0.7})
    text = "\n".join(script.device_ratio_lines(records))
    assert "| 3000 | 0.5 | 0.7 | 0.71 | — | — | — |" in text
    assert "faster for every q from n = 2000 on" in text
    assert "faster for every q from n = 2000 on" in text
    # CPU records only: no ratio table at all
    assert script.device_ratio_lines([r for r in records if r["device"] == "cpu"]) == []
