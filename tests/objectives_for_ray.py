"""Objectives for the Ray executor tests; module level, so Ray workers can import them."""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any

from gpbo.context import current_trial, device


def quadratic(params: dict[str, Any]) -> dict[str, float]:
    """``(x - 0.3)^2``, plus what the trial saw: its device, trial number and directory."""
    trial = current_trial()
    return {
        "value": (float(params["x"]) - 0.3) ** 2,
        "device_is_cpu": float(device().type == "cpu"),
        "trial_device_is_cpu": float(trial.device.type == "cpu"),
        "number": float(trial.number),
        "dir_exists": float(trial.dir.is_dir()),
        "cuda_hidden": float(os.environ.get("CUDA_VISIBLE_DEVICES") == ""),
        "pid": float(os.getpid()),
    }


def kill_itself_when_x_is_large(params: dict[str, Any]) -> float:
    """``x`` when ``x <= 0.5``; otherwise the worker process kills itself with ``SIGKILL``."""
    if float(params["x"]) > 0.5:
        os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(30)
    return float(params["x"])


def dispatch(params: dict[str, Any]) -> Any:
    """Run the behaviour ``params["fn"]`` names (one study start, many behaviours)."""
    return _BEHAVIOURS[params["fn"]](params)


def _value(params: dict[str, Any]) -> dict[str, float]:
    return {"value": float(params.get("value", 1.0)), "pid": float(os.getpid())}


def _raise(params: dict[str, Any]) -> float:
    raise ValueError(f"boom from trial {current_trial().number}")


def _sleep(params: dict[str, Any]) -> float:
    time.sleep(float(params.get("seconds", 300.0)))
    return 1.0


def _exit(params: dict[str, Any]) -> float:
    sys.exit(3)


def _kill(params: dict[str, Any]) -> float:
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(30)
    return 0.0


def _kill_once(params: dict[str, Any]) -> float:
    marker = current_trial().dir / "attempted"
    if not marker.exists():
        marker.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(30)
    return 2.0


_BEHAVIOURS = {
    "value": _value,
    "raise": _raise,
    "sleep": _sleep,
    "exit": _exit,
    "kill": _kill,
    "kill_once": _kill_once,
}


def slow_quadratic(params: dict[str, Any]) -> float:
    """``(x - 0.3)^2`` after a second, so that trials in flight overlap."""
    time.sleep(1.0)
    return (float(params["x"]) - 0.3) ** 2
