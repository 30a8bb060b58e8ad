"""A synthetic objective for ``configs/quadratic.yaml``: a bowl with its minimum at a known point.

Cheap and deterministic, so the tests (and a first ``gpbo run``) finish in seconds. Returns the
value with an extra metric, to show that extra numbers are kept with each trial.
"""

from __future__ import annotations

import math
from typing import Any


def quadratic(params: dict[str, Any]) -> dict[str, float]:
    """``(x - 1)^2 + (y + 2)^2 + 0.1 * |log10(lr) + 2|``, plus 0.5 for the ``slow`` optimizer.

    The minimum, 0, is at ``x=1, y=-2, lr=0.01, optimizer=fast``.
    """
    distance = (params["x"] - 1.0) ** 2 + (params["y"] + 2.0) ** 2
    lr_term = 0.1 * abs(math.log10(params["lr"]) + 2.0)
    penalty = 0.5 if params["optimizer"] == "slow" else 0.0
    return {"value": distance + lr_term + penalty, "distance": distance}
