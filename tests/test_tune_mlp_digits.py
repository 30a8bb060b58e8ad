"""Tests for scripts/tune_mlp_digits.py: grid vs random vs bayes on the digits MLP.

One run of the small variant (2 epochs, 1 seed, a budget of 10) in a subprocess checks the
printed tables and, through ``--json``, that the grid trained the 64 configurations once each
and the searches exactly their budget; the ranking and gap logic is checked on made-up studies.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import itertools
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "tune_mlp_digits.py"
BUDGET = 10
LRS, BATCHES, HIDDENS = [0.001, 0.01, 0.1, 1.0], [32, 64, 128, 256], [64, 128, 256, 512]


@functools.cache
def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tune_mlp_digits", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


@functools.cache
def _small_run() -> tuple[str, dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "runs.json"
        done = subprocess.run(
            [sys.executable, str(SCRIPT), "--epochs", "2", "--seeds", "1",
             "--budget", str(BUDGET), "--json", str(out)],
            capture_output=True, text=True, timeout=300, cwd=tmp,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout, json.loads(out.read_text())


def _section(lines: list[str], title_start: str) -> list[str]:
    """The rows of the table whose title starts with ``title_start``: after its header and
    rule, up to the first line that is not a row."""
    start = next(i for i, line in enumerate(lines) if line.startswith(title_start))
    rule = next(i for i in range(start, len(lines)) if set(lines[i]) == {"-"})
    rows = []
    for line in lines[rule + 1 :]:
        if not line or line.startswith("("):
            break
        rows.append(line)
    return [lines[rule - 1], *rows]


def test_small_variant_runs_the_grid_and_the_budget():
    stdout, data = _small_run()
    runs = data["runs"]
    assert data["epochs"] == 2 and data["budget"] == BUDGET and data["slots"] == ["cpu"]
    assert [(r["strategy"], r["seed"]) for r in runs] == [("grid", 0), ("random", 1), ("bayes", 1)]
    grid = runs[0]["trials"]
    configs = {(t["params"]["lr"], t["params"]["batch_size"], t["params"]["hidden"]) for t in grid}
    assert len(grid) == 64 and configs == set(itertools.product(LRS, BATCHES, HIDDENS))
    for run in runs[1:]:
        assert len(run["trials"]) == BUDGET  # exactly the budget, no more
        assert len({json.dumps(t["params"], sort_keys=True) for t in run["trials"]}) == BUDGET
    for run in runs:
        assert all(0.0 <= t["value"] <= 1.0 for t in run["trials"])

    assert "grid     seed 0: 64 trainings, 64 distinct configurations" in stdout
    for name in ("random", "bayes"):
        assert f"{name:<8} seed 1: {BUDGET} trainings, {BUDGET} distinct configurations" in stdout
    assert re.search(r"^wall time \d+\.\d s$", stdout, flags=re.MULTILINE)


def test_small_variant_prints_both_tables():
    stdout, data = _small_run()
    lines = stdout.splitlines()

    curve = _section(lines, "Best validation accuracy (%) after n trainings")
    assert curve[0].split() == ["strategy", "seeds", "2", "5", "8", "10", "64"]
    rows = {row.split()[0]: row.split()[1:] for row in curve[1:]}
    assert list(rows) == ["grid", "random", "bayes"]
    grid_best = max(t["value"] for t in data["runs"][0]["trials"])
    assert rows["grid"][0] == "1" and float(rows["grid"][-1]) == pytest.approx(
        100 * grid_best, abs=0.006
    )
    for name in ("random", "bayes"):
        seeds, *cells, last = rows[name]
        assert seeds == "1" and last == "-" and len(cells) == 4
        values = [float(c) for c in cells]
        assert values == sorted(values)  # best so far never decreases
        trials = next(r for r in data["runs"] if r["strategy"] == name)["trials"]
        assert values[-1] == pytest.approx(100 * max(t["value"] for t in trials), abs=0.006)

    found = _section(lines, f"After {BUDGET} trainings, against the grid's best of 64")
    assert found[0].split() == ["strategy", "seed", "found", "config", "own", "%", "grid", "%",
                                "gap", "rank"]
    labels = [tuple(row.split()[:2]) for row in found[1:]]
    assert labels == [("grid", "0"), ("random", "1"), ("random", "median"), ("bayes", "1"),
                      ("bayes", "median")]
    for row in found[1:]:
        gap, rank = row.split()[-2:]
        position, total = rank.split("/")
        assert float(gap) >= 0 and total == "64" and 1 <= float(position) <= 64
    assert found[1].split()[-2:] == ["0.00", "1/64"]
    assert "Training noise:" in stdout and "median |difference|" in stdout


def test_gap_and_rank_score_the_found_config_by_the_grids_training():
    script = _script()

    def config(lr: float) -> dict[str, Any]:
        return {"lr": lr, "batch_size": 32, "hidden": 64}

    grid = script.Run("grid", 0, tuple(config(lr) for lr in LRS), (0.90, 0.95, 0.97, 0.97), 1.0)
    # The search measured lr=0.1 above the grid's best (noise); the grid's 0.97 is what counts.
    search = script.Run("random", 1, (config(0.001), config(0.1)), (0.91, 0.99), 1.0)
    out = io.StringIO()
    script.report(grid, {"random": [search]}, budget=2, out=out)
    text = out.getvalue()
    row = next(line for line in text.splitlines() if line.startswith("random        1"))
    assert row.split()[-4:] == ["99.00", "97.00", "0.00", "1/4"]  # tied with the grid's best
    assert "median |difference| 1.50 points over 2 pairs" in text  # |91-90|, |99-97|
    assert "2.00 over the 1 whose config is in the grid's top 1" in text
    assert "3 of the grid's 4 configs lie within that noise (2.00 points)" in text

    assert script.rank_of(0.95, [0.97, 0.97, 0.95, 0.90]) == 3
    assert script.checkpoints(16) == [4, 8, 12, 16]
    assert script.checkpoints(1) == [1]
    assert search.best_after(1) == 0.91 and search.best_params == config(0.1)


def test_bad_options_are_refused():
    with pytest.raises(SystemExit):
        _script().main(["--budget", "0"])
