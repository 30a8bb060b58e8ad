r"""Search spaces: parameter types, and their encoding to and from the unit cube.

Every parameter maps to the unit cube one canonical way, which the GP, the acquisition and
every strategy share:

- :class:`Real`: one column, linear in the value (or in its log where ``log=True``).
- :class:`Int`: one column; the range is padded by half a step on each side, so that rounding
  a uniform draw gives every integer the same mass (in log space where ``log=True``).
- :class:`Choice` of numbers (ordinal): one column over the values' sorted order, each value
  owning an equal cell.
- :class:`Choice` of anything else (categorical): one one-hot column per value; decoding takes
  the largest column.

A point of the cube decodes to a valid parameter set; :meth:`Space.project` maps any point of
the cube onto the lattice of points that parameter sets encode to.
"""

from __future__ import annotations

import functools
import math
import numbers
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass
from typing import Any

import numpy as np

from gpbo.exceptions import SpaceError, warn_at_caller

__all__ = ["Choice", "Int", "Param", "Real", "Space"]

_CHOICE_TYPES = (str, int, float, bool, type(None))


def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _choice_key(value: Any) -> tuple[Any, Any]:
    """What makes two Choice values the same: equal numbers (``1`` and ``1.0``), else the same
    type and equal (``True`` is not ``1``, ``"1"`` not ``1``)."""
    if isinstance(value, np.generic):  # np.True_ from rng.choice, np.str_ from an array
        value = value.item()
    return ("number", value) if _is_number(value) else (type(value), value)


class Param:
    """Base of the parameter types. Subclasses are frozen dataclasses.

    A parameter does not know its name; :class:`Space` validates each one under its name, so
    that every message says which parameter is wrong.
    """

    #: Number of unit-cube columns the parameter takes.
    n_columns: int = 1

    def validate(self, name: str) -> None:
        """Raise :class:`~gpbo.exceptions.SpaceError` (a ``ValueError``) if ill-defined."""
        raise NotImplementedError

    def encode(self, value: Any) -> list[float]:
        """The unit-cube columns of one value."""
        raise NotImplementedError

    def decode(self, columns: np.ndarray) -> list[Any]:
        """Values of ``n x n_columns`` unit-cube columns (clipped into range)."""
        raise NotImplementedError

    def check_value(self, name: str, value: Any) -> Any:
        """``value`` normalized (ints as ``int``...), or a SpaceError naming ``name``."""
        raise NotImplementedError

    def grid_values(self, levels: int) -> Sequence[Any]:
        """The values this parameter takes in an exhaustive grid."""
        raise NotImplementedError

    def neighbour_reach(self, columns: np.ndarray) -> float:
        """How far (unit cube) from the point ``columns`` the nearest other values lie: a
        local search's box must reach this far to hold a point of another value. ``0.0``
        for a continuous parameter, ``1.0`` for categories (no order: every one is a
        neighbour)."""
        return 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready definition, inverse of :func:`param_from_dict`."""
        raise NotImplementedError


def _check_bounds(kind: str, name: str, low: Any, high: Any, log: bool) -> None:
    where = f"parameter {name!r}"
    for label, bound in (("low", low), ("high", high)):
        if not _is_number(bound):
            raise SpaceError(
                f"{where}: {kind} {label} must be a number, got {bound!r} ({type(bound).__name__})"
            )
        if not _finite(bound):
            shown = repr(bound) if len(repr(bound)) <= 40 else f"{repr(bound)[:20]}... (an int)"
            raise SpaceError(
                f"{where}: {kind} {label} must be finite and within a float's range, got {shown}"
            )
    if not low < high:
        raise SpaceError(
            f"{where}: {kind} needs low < high, got low={low!r}, high={high!r}; "
            + ("swap them" if low > high else "use a wider range, drop a constant parameter "
               f"and set it in the objective, or write gpbo.Choice([{low!r}]) to keep it in "
               "the trials' records")
        )
    if not isinstance(log, bool):
        raise SpaceError(f"{where}: log must be True or False, got {log!r}")
    if log and low <= 0:
        raise SpaceError(
            f"{where}: a log-scaled {kind} needs low > 0, got low={low!r}; "
            "use log=False or a positive lower bound"
        )
    # the unit-cube encoding divides by high - low: an infinite width made every point NaN
    if not log and not _finite(float(high) - float(low)):
        raise SpaceError(
            f"{where}: the range {low!r} to {high!r} is too wide (high - low overflows a "
            "float); narrow it, or use log=True with a positive low"
        )


def _finite(x: Any) -> bool:
    try:
        return math.isfinite(x)
    except OverflowError:  # an int beyond a float's range
        return False


@dataclass(frozen=True)
class Real(Param):
    """A continuous parameter in ``[low, high]``, log-uniform where ``log=True``.

    Args:
        low: Lower bound (finite; positive where ``log=True``).
        high: Upper bound, ``> low``.
        log: Search the logarithm of the value (for learning rates, weight decays...).
    """

    low: float
    high: float
    _: KW_ONLY  # Real(0, 1, True) would not say what True is
    log: bool = False

    def validate(self, name: str) -> None:
        _check_bounds("Real", name, self.low, self.high, self.log)

    def _transform(self, x: np.ndarray | float) -> np.ndarray | float:
        return np.log(x) if self.log else x

    def _span(self) -> tuple[float, float]:
        lo, hi = self._transform(float(self.low)), self._transform(float(self.high))
        return float(lo), float(hi)

    def encode(self, value: Any) -> list[float]:
        lo, hi = self._span()
        return [(float(self._transform(float(value))) - lo) / (hi - lo)]

    def decode(self, columns: np.ndarray) -> list[Any]:
        lo, hi = self._span()
        x = lo + np.clip(columns[:, 0], 0.0, 1.0) * (hi - lo)
        values = np.exp(x) if self.log else x
        values = np.clip(values, self.low, self.high)
        # the ends exactly: exp(log(0.5)) is 0.49999999999999994
        values = np.where(columns[:, 0] <= 0.0, self.low, values)
        values = np.where(columns[:, 0] >= 1.0, self.high, values)
        return [float(v) for v in values]

    def check_value(self, name: str, value: Any) -> Any:
        if not _is_number(value) or not math.isfinite(value):
            raise SpaceError(f"parameter {name!r}: expected a finite number, got {value!r}")
        if not self.low <= value <= self.high:
            raise SpaceError(f"parameter {name!r}: {value!r} is outside [{self.low}, {self.high}]")
        return float(value)

    def grid_values(self, levels: int) -> list[Any]:
        # 12 significant digits: the levels a user would write (0.3, not 0.30000000000000004;
        # 0.01, not 0.009999999999999995), which journals, progress lines and best_params show
        values = self.decode(np.linspace(0.0, 1.0, levels)[:, None])
        # and relative to the range: Real(-0.3, 0.6)'s level 0 came out -5.55e-17
        scale = 0.0 if self.log else 1e-12 * (self.high - self.low)
        inner = []
        for before, v, after in zip(values, values[1:-1], values[2:], strict=False):
            rounded = float(f"{v:.12g}")
            # only where it moves the level by a hair of its spacing: Real(1e6, 1e6 + 1e-5)
            # rounded its levels onto each other, and the grid ended after one trial
            if abs(rounded - v) > 1e-3 * min(v - before, after - v):
                rounded = v
            inner.append(0.0 if abs(v) <= scale else min(max(rounded, self.low), self.high))
        return [values[0], *inner, values[-1]]

    def to_dict(self) -> dict[str, Any]:
        return {"type": "real", "low": float(self.low), "high": float(self.high), "log": self.log}


#: The largest magnitude of an :class:`Int` bound: every integer up to it is a float64.
INT_LIMIT = 2**53


@dataclass(frozen=True)
class Int(Param):
    """An integer parameter in ``[low, high]`` (both included), log-uniform where ``log=True``.

    Args:
        low: Lower bound, an integer (positive where ``log=True``).
        high: Upper bound, an integer ``> low``.
        log: Search the logarithm (for layer widths, batch sizes...).
    """

    low: int
    high: int
    _: KW_ONLY  # Int(1, 64, True) would not say what True is
    log: bool = False

    def validate(self, name: str) -> None:
        _check_bounds("Int", name, self.low, self.high, self.log)
        for label, bound in (("low", self.low), ("high", self.high)):
            if not float(bound).is_integer():
                raise SpaceError(
                    f"parameter {name!r}: Int {label} must be an integer, got {bound!r}; "
                    "use Real for a continuous range"
                )
            if abs(bound) > INT_LIMIT:
                # the search runs in float64: beyond 2**53 neighbouring integers share a value
                raise SpaceError(
                    f"parameter {name!r}: Int {label} {bound!r} is beyond +-2**53, where "
                    "float64 (the search's arithmetic) cannot tell integers apart; use a "
                    "smaller range, or Choice for a few fixed values (a random seed needs no "
                    "tuning)"
                )

    def _span(self) -> tuple[float, float]:
        lo, hi = float(self.low) - 0.5, float(self.high) + 0.5
        return (math.log(lo), math.log(hi)) if self.log else (lo, hi)

    def encode(self, value: Any) -> list[float]:
        lo, hi = self._span()
        x = math.log(value) if self.log else float(value)
        return [(x - lo) / (hi - lo)]

    def decode(self, columns: np.ndarray) -> list[Any]:
        lo, hi = self._span()
        x = lo + np.clip(columns[:, 0], 0.0, 1.0) * (hi - lo)
        values = np.exp(x) if self.log else x
        values = np.clip(np.round(values), self.low, self.high)
        return [int(v) for v in values]

    def check_value(self, name: str, value: Any) -> Any:
        if not _is_number(value) or not float(value).is_integer():
            raise SpaceError(f"parameter {name!r}: expected an integer, got {value!r}")
        if not self.low <= value <= self.high:
            raise SpaceError(f"parameter {name!r}: {value!r} is outside [{self.low}, {self.high}]")
        return int(value)

    def grid_values(self, levels: int) -> Sequence[Any]:
        """Every integer in the range; on a log scale with more than ``levels`` of them,
        ``levels`` log-spaced integers (fewer where rounding makes two equal)."""
        low, high = int(self.low), int(self.high)
        if self.log and high - low + 1 > levels:
            # a log scale spans orders of magnitude: every integer of a batch size's
            # Int(16, 4096, log=True) made 4081 trainings where 16, 64, 256, 1024, 4096 was meant
            spaced = np.exp(np.linspace(math.log(low), math.log(high), levels))
            inner = np.clip(np.round(spaced[1:-1]), low, high).astype(np.int64).tolist()
            return sorted({low, *inner, high})
        # a range, not a list: Int(0, 10**9) would allocate tens of GB
        return range(low, high + 1)

    def neighbour_reach(self, columns: np.ndarray) -> float:
        value = self.decode(np.asarray(columns, dtype=np.float64).reshape(1, -1))[0]
        x = float(columns[0])
        # the farther of the two neighbours' cell centres, so both are inside (log cells
        # differ in width); at a bound, the one neighbour there is
        return max(
            abs(self.encode(v)[0] - x) for v in (value - 1, value + 1) if self.low <= v <= self.high
        )

    def to_dict(self) -> dict[str, Any]:
        return {"type": "int", "low": int(self.low), "high": int(self.high), "log": self.log}


class Choice(Param):
    """One of a list of values.

    Numeric values (not bools) are ordinal: searched in sorted order, so the GP sees that 64 lies
    between 32 and 128. Any other list is categorical: the values are unordered.

    Args:
        values: The values (a list, tuple or 1-d NumPy array), each a str, int, float, bool or
            None (so they can be journaled); no duplicates.
    """

    def __init__(self, values: Sequence[Any]) -> None:
        if isinstance(values, np.ndarray) and values.ndim == 1:  # np.arange(3), np.logspace(...)
            values = values.tolist()
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            # Validated under its name by Space; keep what was given for the message.
            self.values: tuple[Any, ...] = (values,)  # type: ignore[assignment]
            self._bad_container = True
        else:
            # numpy's scalars (a list(np.arange(3)), say) as the Python values they stand for:
            # the journal writes the values as JSON and compares them on resume
            self.values = tuple(v.item() if isinstance(v, np.generic) else v for v in values)
            self._bad_container = False

    # cached: a Choice of tens of thousands of values was validated in O(n^2) (46 s for 22000)
    # and each encode scanned the list
    @functools.cached_property
    def ordinal(self) -> bool:
        """Whether the values are numbers (searched in order) rather than categories."""
        return all(_is_number(v) for v in self.values)

    @functools.cached_property
    def _positions(self) -> dict[tuple[Any, Any], int]:
        positions: dict[tuple[Any, Any], int] = {}
        for i, value in enumerate(self.values):
            positions.setdefault(_choice_key(value), i)
        return positions

    @property
    def n_columns(self) -> int:  # type: ignore[override]
        return 1 if self.ordinal else len(self.values)

    @functools.cached_property
    def _order(self) -> list[int]:
        return sorted(range(len(self.values)), key=lambda i: self.values[i])

    @functools.cached_property
    def _rank(self) -> dict[int, int]:
        return {index: rank for rank, index in enumerate(self._order)}

    def validate(self, name: str) -> None:
        where = f"parameter {name!r}"
        if self._bad_container:
            raise SpaceError(f"{where}: Choice needs a list of values, got {self.values[0]!r}")
        if not self.values:
            raise SpaceError(f"{where}: Choice needs at least one value, got an empty list")
        for value in self.values:
            if not isinstance(value, _CHOICE_TYPES):
                raise SpaceError(
                    f"{where}: Choice value {value!r} ({type(value).__name__}) is not a str, "
                    "int, float, bool or None; list names and map them to objects inside "
                    "the objective"
                )
            if isinstance(value, float) and not math.isfinite(value):
                raise SpaceError(f"{where}: Choice value {value!r} is not finite")
        seen: set[tuple[Any, Any]] = set()
        for value in self.values:
            key = _choice_key(value)
            if key in seen:
                raise SpaceError(
                    f"{where}: Choice value {value!r} appears more than once; list each value once"
                )
            seen.add(key)

    def index(self, value: Any) -> int | None:
        """The position of ``value`` among :attr:`values` (``1`` and ``1.0`` are one value,
        ``True`` and ``1`` are not), or ``None``."""
        return self._index(value)

    def _index(self, value: Any) -> int | None:
        try:
            return self._positions.get(_choice_key(value))
        except TypeError:  # unhashable: a list, a dict... never one of the values
            return None

    def encode(self, value: Any) -> list[float]:
        index = self._index(value)
        if index is None:
            raise SpaceError(f"{value!r} is not one of {list(self.values)}")
        if self.ordinal:
            rank = self._rank[index]
            return [(rank + 0.5) / len(self.values)]
        columns = [0.0] * len(self.values)
        columns[index] = 1.0
        return columns

    def neighbour_reach(self, columns: np.ndarray) -> float:
        if not self.ordinal:
            return 1.0
        if len(self.values) == 1:
            return 0.0
        x = float(columns[0])
        rank = self._rank[self._index(self.decode(np.reshape(columns, (1, -1)))[0])]
        n = len(self.values)
        return max(abs((r + 0.5) / n - x) for r in (rank - 1, rank + 1) if 0 <= r < n)

    def decode(self, columns: np.ndarray) -> list[Any]:
        return [self.values[i] for i in self.positions(columns).tolist()]

    def positions(self, columns: np.ndarray) -> np.ndarray:
        """The index in :attr:`values` of the value each row of ``columns`` (`m x n_columns`)
        decodes to, as an `m`-vector of ints."""
        if self.ordinal:
            n = len(self.values)
            ranks = np.clip(np.floor(np.clip(columns[:, 0], 0.0, 1.0) * n), 0, n - 1)
            return np.asarray(self._order, dtype=np.int64)[ranks.astype(np.int64)]
        return np.argmax(columns, axis=1)

    def check_value(self, name: str, value: Any) -> Any:
        index = self._index(value)
        if index is None:
            raise SpaceError(
                f"parameter {name!r}: {value!r} is not one of the choices {list(self.values)}"
            )
        return self.values[index]

    def grid_values(self, levels: int) -> list[Any]:
        return list(self.values)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "choice", "values": list(self.values)}

    def __eq__(self, other: object) -> bool:
        # by _choice_key: [0, 1] and [False, True] compared equal (lists do), while one is
        # ordinal (a column) and the other categorical (two)
        return isinstance(other, Choice) and self._keys == other._keys

    def __hash__(self) -> int:
        return hash(("choice", self._keys))

    @functools.cached_property
    def _keys(self) -> tuple[tuple[Any, Any], ...]:
        return tuple(_choice_key(v) for v in self.values)

    def __repr__(self) -> str:
        return f"Choice({list(self.values)!r})"


def param_from_dict(data: Mapping[str, Any], *, name: str = "?") -> Param:
    """A parameter from its :meth:`Param.to_dict` form (also the YAML config form).

    Args:
        data: ``{"type": "real"|"int"|"choice", ...}``.
        name: The parameter's name, for messages.
    """
    kind = str(data.get("type", "")).lower()
    keys = set(data) - {"type"}
    try:
        if kind in ("real", "float"):
            _only(keys, {"low", "high", "log"}, name, kind)
            return Real(data["low"], data["high"], log=data.get("log", False))
        if kind in ("int", "integer"):
            _only(keys, {"low", "high", "log"}, name, kind)
            return Int(data["low"], data["high"], log=data.get("log", False))
        if kind in ("choice", "categorical"):
            _only(keys, {"values"}, name, kind)
            return Choice(data["values"])
    except KeyError as exc:
        raise SpaceError(
            f"parameter {name!r}: type {kind!r} needs the key {exc.args[0]!r}"
        ) from None
    raise SpaceError(
        f"parameter {name!r}: unknown type {data.get('type')!r}; use 'real', 'int' or 'choice'"
    )


def _only(keys: set[str], allowed: set[str], name: str, kind: str) -> None:
    extra = keys - allowed
    if extra:
        raise SpaceError(
            f"parameter {name!r}: type {kind!r} takes {sorted(allowed)}, not {sorted(extra)}"
        )


#: Parameter names that count things (``hidden``, ``num_layers``, ``batch_size``): a
#: ``(16, 128)`` of ints for one is most likely meant as an Int, not bayes_opt's Real.
_COUNT_NAME = re.compile(
    r"(?:^|_)(?:n|num|number)_|(?:^|_)(?:hidden|layers?|units|width|depth|epochs?|heads|"
    r"channels|filters|neurons|steps|dims?|features|blocks|experts|patience|workers|trees|"
    r"estimators|leaves|neighbou?rs)(?:_|$)|(?:batch|hidden|kernel|embed(?:ding)?|window|pool|"
    r"vocab|beam|chunk|stride)_?size",
    re.IGNORECASE,
)


def _from_shorthand(name: str, spec: Any) -> Param:
    """A parameter from the ``bayes_opt`` ``pbounds`` form, with exactly its meaning, or from
    the config's ``{"type": ...}`` form."""
    if isinstance(spec, Param):
        return spec
    if isinstance(spec, list):
        if (
            len(spec) == 2
            and all(_is_number(v) for v in spec)  # not bools
            and any(not float(v).is_integer() for v in spec)
        ):
            # {"lr": [1e-4, 1e-1]} reads as bounds (as pbounds' tuple does) but tries only the two
            warn_at_caller(
                f"parameter {name!r}: the list {spec!r} is a Choice of those two values, not "
                f"the range between them; write {tuple(spec)!r} or gpbo.Real{tuple(spec)!r} "
                f"for a range (log=True for orders of magnitude), or gpbo.Choice({spec!r}) to "
                "keep the two values without this warning"
            )
        return Choice(spec)
    if isinstance(spec, Mapping) and "type" in spec:
        return param_from_dict(spec, name=name)
    if isinstance(spec, tuple):
        if len(spec) == 2 and all(_is_number(v) for v in spec):
            if all(type(v) is int for v in spec) and _COUNT_NAME.search(name):
                warn_at_caller(
                    f"parameter {name!r}: {spec!r} is a Real range (the bayes_opt shorthand), "
                    f"so trials get fractional values such as {(spec[0] + spec[1]) / 2 + 0.3:g}; "
                    f"for integers write gpbo.Int{spec!r} or {(*spec, int)!r}".replace(
                        "<class 'int'>", "int"
                    )
                    + f", or {tuple(float(v) for v in spec)!r} where a real is meant"
                )
            elif spec[0] > 0 and spec[1] >= 1000 * spec[0]:
                # a learning rate's (1e-5, 1e-1) on a linear scale almost never tries 1e-4
                decades = math.log10(spec[1] / spec[0])
                bounds = f"{spec[0]!r}, {spec[1]!r}"
                log_form = f"gpbo.Real({bounds}, log=True)"
                if all(type(v) is int for v in spec):
                    log_form = f"gpbo.Int({bounds}, log=True) ({log_form} for reals)"
                warn_at_caller(
                    f"parameter {name!r}: {spec!r} is a linear range, so about 99% of the "
                    f"trials fall in [{spec[1] / 100:g}, {spec[1]:g}], the top two of its "
                    f"{decades:.0f} orders of magnitude; write {log_form} to search them "
                    f"evenly, or gpbo.Real({bounds}) to keep the linear scale without this "
                    "warning"
                )
            return Real(spec[0], spec[1])
        if len(spec) == 3 and all(_is_number(v) for v in spec[:2]) and spec[2] in (int, float):
            return Int(spec[0], spec[1]) if spec[2] is int else Real(spec[0], spec[1])
        if spec and not any(_is_number(v) for v in spec):
            return Choice(list(spec))
        raise SpaceError(
            f"parameter {name!r}: the tuple {spec!r} is not a bounds form; use (low, high), "
            "(low, high, int), a list of choices, or gpbo.Real/Int/Choice"
        )
    raise SpaceError(
        f"parameter {name!r}: unknown type {type(spec).__name__} ({spec!r}); use "
        "gpbo.Real(low, high), gpbo.Int(low, high), gpbo.Choice([...]) or (low, high)"
    )


class Space:
    """An ordered set of named parameters, and its unit-cube encoding.

    Args:
        params: A mapping from name to :class:`Real`, :class:`Int` or :class:`Choice`, or to
            the ``bayes_opt`` shorthand: ``(low, high)`` of numbers is a Real, ``(low, high,
            int)`` an Int, ``(low, high, float)`` a Real, a list (any values) or a tuple of
            non-numeric values a Choice. A :class:`Space` is copied.

    Raises:
        SpaceError: (a ``ValueError``) naming the parameter and the fix.
    """

    def __init__(self, params: Mapping[str, Any] | Space) -> None:
        if isinstance(params, Space):
            params = params.params
        if not isinstance(params, Mapping):
            raise SpaceError(
                f"a search space is a mapping from names to parameters, got {type(params).__name__}"
            )
        if not params:
            raise SpaceError("the search space is empty; give at least one parameter")
        self.params: dict[str, Param] = {}
        for name, spec in params.items():
            if not isinstance(name, str) or not name:
                raise SpaceError(
                    f"parameter names must be non-empty strings, got {name!r} "
                    f"({type(name).__name__})"
                )
            param = _from_shorthand(name, spec)
            param.validate(name)
            self.params[name] = param
        self._slices: dict[str, slice] = {}
        start = 0
        for name, param in self.params.items():
            self._slices[name] = slice(start, start + param.n_columns)
            start += param.n_columns
        self.n_columns = start

    # -- introspection -------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        """Parameter names, in order."""
        return list(self.params)

    def __len__(self) -> int:
        return len(self.params)

    def __iter__(self) -> Iterator[str]:
        return iter(self.params)

    def __getitem__(self, name: str) -> Param:
        return self.params[name]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Space) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        inner = ", ".join(f"{k!r}: {v!r}" for k, v in self.params.items())
        return f"Space({{{inner}}})"

    def columns(self, name: str) -> slice:
        """The unit-cube columns of parameter ``name``."""
        return self._slices[name]

    @property
    def categorical_groups(self) -> list[list[int]]:
        """Column indices of each categorical (one-hot) parameter."""
        return [
            list(range(self._slices[n].start, self._slices[n].stop))
            for n, p in self.params.items()
            if isinstance(p, Choice) and not p.ordinal
        ]

    @property
    def lattice_size(self) -> int | None:
        """Number of points of a space without a :class:`Real`; ``None`` if it has one."""
        if any(isinstance(p, Real) for p in self.params.values()):
            return None
        return self.grid_size(levels=1)

    @property
    def is_continuous(self) -> bool:
        """Whether every parameter is a :class:`Real` (the cube needs no projection)."""
        return all(isinstance(p, Real) for p in self.params.values())

    # -- encoding ------------------------------------------------------------------------
    def neighbour_reach(self, x: np.ndarray) -> np.ndarray:
        """Per column, how far (unit cube) from the point ``x`` a box must reach to hold a
        point of another value: ``0`` for a continuous column; the farther neighbouring
        value's cell centre for an integer or ordinal one; ``1`` for a one-hot column.

        Args:
            x: A `d`-vector in the unit cube.

        Returns:
            A `d`-vector.
        """
        x = np.asarray(x, dtype=np.float64)
        reach = np.zeros(self.n_columns)
        for name, param in self.params.items():
            columns = self._slices[name]
            reach[columns] = param.neighbour_reach(x[columns])
        return reach

    def encode(self, params_list: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Unit-cube points of parameter sets.

        Args:
            params_list: ``n`` parameter sets (validated).

        Returns:
            An `n x n_columns` float64 array.
        """
        out = np.zeros((len(params_list), self.n_columns), dtype=np.float64)
        for row, params in enumerate(params_list):
            checked = self.check(params)
            for name, param in self.params.items():
                out[row, self._slices[name]] = param.encode(checked[name])
        return out

    def decode(self, X: np.ndarray) -> list[dict[str, Any]]:
        """Parameter sets of unit-cube points; always valid, whatever ``X`` holds.

        Args:
            X: An `n x n_columns` array (values outside [0, 1] are clipped).
        """
        X = np.clip(np.asarray(X, dtype=np.float64), 0.0, 1.0)
        if X.ndim != 2 or X.shape[1] != self.n_columns:
            raise SpaceError(f"expected an n x {self.n_columns} array, got shape {X.shape}")
        columns = {name: p.decode(X[:, self._slices[name]]) for name, p in self.params.items()}
        return [{name: columns[name][i] for name in self.params} for i in range(X.shape[0])]

    def project(self, X: np.ndarray) -> np.ndarray:
        """Map unit-cube points onto the points that parameter sets encode to.

        Reals keep their value (clipped into the cube); integers, ordinal and categorical
        choices snap to their cells.
        """
        X = np.clip(np.asarray(X, dtype=np.float64), 0.0, 1.0)
        if self.is_continuous:
            return X
        out = X.copy()
        for name, param in self.params.items():
            if isinstance(param, Real):
                continue
            cols = self._slices[name]
            values = param.decode(X[:, cols])
            out[:, cols] = [param.encode(v) for v in values]
        return out

    def check(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """A parameter set checked against the space, in the space's order.

        Raises:
            SpaceError: A parameter is missing, unknown, or its value does not fit.
        """
        if not isinstance(params, Mapping):
            raise SpaceError(f"a parameter set is a dict, got {type(params).__name__}")
        missing = [n for n in self.params if n not in params]
        unknown = [n for n in params if n not in self.params]
        if missing or unknown:
            parts = []
            if missing:
                parts.append(f"missing {missing}")
            if unknown:
                parts.append(f"unknown {unknown}")
            raise SpaceError(
                f"parameter set {dict(params)!r} does not match the space: "
                + "; ".join(parts)
                + f" (the space has {self.names})"
            )
        return {n: p.check_value(n, params[n]) for n, p in self.params.items()}

    # -- grids and serialization ---------------------------------------------------------
    def grid_size(self, levels: int) -> int:
        """Number of points of the exhaustive grid with ``levels`` levels per Real."""
        return math.prod(len(p.grid_values(levels)) for p in self.params.values())

    def grid(self, levels: int) -> Iterator[dict[str, Any]]:
        """The exhaustive Cartesian grid, in lexicographic order of the parameters (the last
        one varies fastest)."""
        # Walked by index: itertools.product would copy every axis first, and an Int's
        # range of 10**9 values is 8 GB as a tuple.
        axes = [p.grid_values(levels) for p in self.params.values()]
        if any(len(axis) == 0 for axis in axes):
            return
        index = [0] * len(axes)
        while True:
            values = [axis[i] for axis, i in zip(axes, index, strict=True)]
            yield dict(zip(self.params, values, strict=True))
            for k in reversed(range(len(axes))):  # an odometer; none left: every axis wrapped
                index[k] += 1
                if index[k] < len(axes[k]):
                    break
                index[k] = 0
            else:
                return

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """A JSON-ready definition (the journal's and the YAML configs' form)."""
        return {name: param.to_dict() for name, param in self.params.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Mapping[str, Any]]) -> Space:
        """The inverse of :meth:`to_dict`."""
        return cls({name: param_from_dict(spec, name=name) for name, spec in data.items()})
