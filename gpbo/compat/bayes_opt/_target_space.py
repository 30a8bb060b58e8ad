"""The read-only view of the registered points that ``optimizer.space`` returns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from gpbo.space import Choice, Int, Param, Real

if TYPE_CHECKING:
    from gpbo.compat.bayes_opt import BayesianOptimization

__all__ = ["TargetSpaceView"]


class TargetSpaceView:
    """What ``bayes_opt`` code reads from ``optimizer.space``: ``len()``, ``keys``, ``params``,
    ``target``, ``bounds``, ``dim``, ``max()``, ``res()``, conversions. Read-only.

    Arrays use ``bayes_opt``'s float encoding (one-hot columns for a categorical).
    """

    def __init__(self, optimizer: BayesianOptimization) -> None:
        self._opt = optimizer

    def __len__(self) -> int:
        return len(self._opt._records)

    def __contains__(self, x: Any) -> bool:
        return self._opt._key(self._opt._normalize(x)) in self._opt._seen

    @property
    def empty(self) -> bool:
        """Whether nothing is registered."""
        return not self._opt._records

    @property
    def keys(self) -> list[str]:
        """The parameter names, in order."""
        return list(self._opt._keys)

    @property
    def dim(self) -> int:
        """Columns of the float arrays (one per parameter, one per category)."""
        return sum(_array_width(p) for p in self._opt._space.params.values())

    @property
    def params(self) -> np.ndarray:
        """An `n x dim` array of the registered points."""
        rows = [self._opt._key(p) for p, _ in self._opt._records]
        return np.array(rows, dtype=np.float64).reshape(-1, self.dim)

    @property
    def target(self) -> np.ndarray:
        """The `n` registered targets."""
        return np.array([t for _, t in self._opt._records], dtype=np.float64)

    @property
    def bounds(self) -> np.ndarray:
        """A `dim x 2` array of lower and upper bounds (``[0, 1]`` for one-hot columns)."""
        rows: list[tuple[float, float]] = []
        for param in self._opt._space.params.values():
            if isinstance(param, (Real, Int)):
                rows.append((float(param.low), float(param.high)))
            else:
                rows += [(0.0, 1.0)] * _array_width(param)
        return np.array(rows, dtype=np.float64)

    @property
    def n_duplicate_points(self) -> int:
        """Points registered again (``allow_duplicate_points=True``), as ``bayes_opt``'s
        ``optimizer.space.n_duplicate_points``."""
        return self._opt.n_duplicate_points

    def max(self) -> dict[str, Any] | None:
        """As :attr:`BayesianOptimization.max`."""
        return self._opt.max

    def res(self) -> list[dict[str, Any]]:
        """As :attr:`BayesianOptimization.res`."""
        return self._opt.res

    def params_to_array(self, params: Mapping[str, Any]) -> np.ndarray:
        """A parameter dict as a float array."""
        return np.array(self._opt._key(self._opt._normalize(params)), dtype=np.float64)

    def array_to_params(self, x: Sequence[float] | np.ndarray) -> dict[str, Any]:
        """A float array as a parameter dict."""
        return self._opt._normalize(np.asarray(x, dtype=np.float64))

    def random_sample(self) -> np.ndarray:
        """One random point as a float array."""
        return self.params_to_array(self._opt.random_sample(1)[0])


def _array_width(param: Param) -> int:
    """Columns of a parameter in ``bayes_opt``'s float arrays (its categoricals are one-hot)."""
    return len(param.values) if isinstance(param, Choice) else 1  # type: ignore[attr-defined]
