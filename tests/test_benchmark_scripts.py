"""Smoke runs of the benchmark scripts with tiny budgets, so that they cannot rot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_benchmark_parallel_smoke(tmp_path: Path) -> None:
    out = tmp_path / "parallel.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "benchmark_parallel.py"), "--n-trials", "4",
         "--duration", "0.2", "--workloads", "varying", "--out", str(out)],
        cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True,
        text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    data = json.loads(out.read_text())
    assert data["machine"]["nproc"] == os.cpu_count()
    assert data["machine"]["torch"] and data["machine"]["cpu"]
    rows = data["results"]
    assert {(r["mode"], r["strategy"]) for r in rows} == {
        (mode, strategy) for mode in ("sync", "async") for strategy in ("random", "bayes")
    }
    for row in rows:
        assert row["workload"] == "varying" and row["slots"] == 2
        assert row["complete"] == 4
        # durations T * uniform(0.5, 2): between 0.4 s and 1.6 s of sleep in all
        assert 0.4 <= row["work_s"] <= 1.7
        assert 0 < row["efficiency"] <= 1
        assert row["startup_s"] >= 0 and row["wind_down_s"] >= 0
    table = [line for line in done.stdout.splitlines() if line.startswith("|")]
    assert table[0].startswith("| mode | workload | strategy |") and len(table) == 2 + 4
    assert "has no effect" not in done.stderr  # the script's own calls draw no warning


def test_gpu_checks_script_reports_the_machine_and_refuses_without_cuda(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA machine runs the real checks (scripts/gpu_checks.sh)")
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu_checks.sh"), "tests", str(tmp_path)],
        cwd=ROOT, env=dict(os.environ, PYTHON=sys.executable, PYTHONPATH=str(ROOT)),
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode != 0
    assert "no CUDA device" in done.stderr
    machine = (tmp_path / "machine.txt").read_text()
    assert "torch" in machine and "botorch" in machine and "gpbo" in machine
    assert not (tmp_path / "cuda_tests.txt").exists()


def test_profile_round_smoke() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "profile_round.py"), "--n", "20", "--q", "2",
         "--top", "60"],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0] == "n=20 q=2 device=cpu"
    seconds = float(lines[1].removeprefix("round: ").split()[0])
    assert 0 < seconds < 120
    # the listing names both phases of the round
    assert "fit_gp" in done.stdout and "optimize_acquisition" in done.stdout


def test_profile_round_counts_an_evaluations_kernels() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "profile_round.py"), "--n", "20", "--q", "8",
         "--count-ops"],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = {}
    for line in done.stdout.splitlines()[3:]:
        name, ops, kernels, syncs, ms = (cell.strip() for cell in line.strip("|").split("|"))
        rows[name] = (int(ops), int(kernels), int(syncs), float(ms))
    cached, joint = rows["pending cached"], rows["joint posterior"]
    # The CUDA default (cached_gp.PENDING_CACHE_DEVICES) rests on the split path launching
    # fewer kernels than the whole joint posterior; 120 against 163 when it was chosen.
    assert 0 < cached[1] < joint[1] <= joint[0]
    assert cached[1] <= 150
    assert cached[2] <= 2  # the Cholesky's check, not one per reduction step
    assert cached[3] > 0 and joint[3] > 0
