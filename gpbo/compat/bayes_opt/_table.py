"""The per-iteration table of ``bayes_opt`` (its ``ScreenLogger``), column for column."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from gpbo.compat.bayes_opt.exception import ConstraintNotSupportedError, as_raised

__all__ = ["ScreenLogger"]

_MAGENTA = "\x1b[35m"
_RESET = "\x1b[39m"


class ScreenLogger:
    """The per-iteration table of ``bayes_opt``: same columns, widths and separators.

    ``verbose=0`` prints nothing; ``1`` the header, the rows that set a new maximum, and the
    closing rule; ``2`` every row. New maxima are magenta on a terminal (plain text when standard
    output is not a terminal, or ``NO_COLOR`` is set).

    Args:
        verbose: The verbosity level.
        is_constrained: Accepted for ``bayes_opt`` compatibility; must be ``False``.
    """

    _default_cell_size = 9
    _default_precision = 4

    def __init__(self, verbose: int = 2, is_constrained: bool = False) -> None:
        if is_constrained:
            raise as_raised(ConstraintNotSupportedError)(
                "gpbo's bayes_opt drop-in does not support constrained optimization"
            )
        self._verbose = verbose
        self._header_length: int | None = None
        self._iterations = 0
        self._previous_max: float | None = None
        self._previous_max_params: dict[str, Any] | None = None

    @property
    def verbose(self) -> int:
        """The verbosity level."""
        return self._verbose

    @verbose.setter
    def verbose(self, v: int) -> None:
        self._verbose = v

    @property
    def is_constrained(self) -> bool:
        """Always ``False``: constraints are not supported."""
        return False

    def _format_number(self, x: float) -> str:
        s = f"{x:.5e}" if abs(x) >= 10000000.0 else str(x)
        size = self._default_cell_size
        if len(s) <= size:
            return s.ljust(size)
        result = ""
        width = size
        end = ""
        if x < 0:
            result += "-"
            width -= 1
            s = s[1:]
        if "e" in s:
            end = s[s.find("e") :]
            width -= len(end)
        if "." in s:
            dot = s.find(".") + 1
            result += s[:dot]
            width -= dot
            if width > 0:
                result += s[dot : dot + width]
        return (result + end).ljust(size)

    def _format_str(self, text: str) -> str:
        s = f"{text:^{self._default_cell_size}}"
        if len(s) > self._default_cell_size:
            return s[: self._default_cell_size - 3] + "..."
        return s

    def _format_value(self, value: Any) -> str:
        if isinstance(value, (int, float)):
            return self._format_number(value)
        text = value if isinstance(value, str) else repr(value)
        s = f"{text:<{self._default_cell_size}}"
        return s[: self._default_cell_size - 3] + "..." if len(s) > self._default_cell_size else s

    def _header(self, keys: Sequence[str]) -> str:
        cells = [self._format_str("iter"), self._format_str("target")]
        cells += [self._format_str(key) for key in keys]
        line = "| " + " | ".join(cells) + " |"
        self._header_length = len(line)
        return line + "\n" + "-" * self._header_length

    def _step(self, result: Mapping[str, Any], *, highlight: bool) -> str:
        cells = [self._format_number(self._iterations), self._format_number(result["target"])]
        cells += [self._format_value(v) for v in result["params"].values()]
        if highlight and _use_colour():
            cells = [_MAGENTA + c + _RESET for c in cells]
        return "| " + " | ".join(cells) + " |"

    def _write(self, text: str) -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    def log_optimization_start(self, keys: Sequence[str]) -> None:
        """Print the header (any verbosity but 0)."""
        if self._verbose:
            self._write(self._header(keys))

    def log_optimization_step(
        self, keys: Sequence[str], result: Mapping[str, Any], current_max: Mapping[str, Any] | None
    ) -> None:
        """Count one registered point and print its row (``verbose=2``, or a new maximum)."""
        is_new_max = False
        if current_max is not None:
            if self._previous_max is None:
                self._previous_max = current_max["target"]
            is_new_max = current_max["target"] > self._previous_max
        self._iterations += 1
        if current_max is not None and (
            self._previous_max is None or current_max["target"] > self._previous_max
        ):
            self._previous_max = current_max["target"]
            self._previous_max_params = dict(current_max["params"])
        if self._verbose == 0:
            return
        if self._verbose == 2 or is_new_max:
            self._write(self._step(result, highlight=is_new_max))

    def log_optimization_end(self) -> None:
        """Print the closing rule (after a header)."""
        if self._verbose and self._header_length is not None:
            self._write("=" * self._header_length)


def _use_colour() -> bool:
    isatty = getattr(sys.stdout, "isatty", None)
    return bool(isatty and isatty()) and not os.environ.get("NO_COLOR")
