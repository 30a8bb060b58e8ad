"""Lazy import of optional dependencies, with a message that names the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from gpbo.exceptions import GpboError


class MissingDependencyError(GpboError, ImportError):
    """An optional package that a feature needs is not installed."""


def import_optional(module: str, *, extra: str, feature: str | None = None) -> ModuleType:
    """Import ``module`` or raise a :class:`MissingDependencyError` that says how to get it.

    Args:
        module: The module to import, e.g. ``"pandas"``.
        extra: The gpbo extra that installs it, e.g. ``"pandas"`` for ``gpbo[pandas]``.
        feature: What needs it, for the message; defaults to the module name.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        what = feature or module
        raise MissingDependencyError(
            f"{what} needs the optional package {module!r}, which is not installed; "
            f'install it with: pip install "gpbo[{extra}]"'
        ) from exc
