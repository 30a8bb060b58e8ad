"""Lazy import of optional dependencies, with a message that names the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from gpbo.exceptions import GpboError


class MissingDependencyError(GpboError, ImportError):
    """An optional package that a feature needs is not installed."""


# The extras' requirements (pyproject.toml), for a hint that works before gpbo is on PyPI:
# `pip install "gpbo[plot]"` asks the index for a package of that name.
_EXTRA_REQUIREMENTS = {
    "yaml": "pyyaml>=6",
    "plot": "matplotlib>=3.6",
    "pandas": "pandas>=1.5",
    "cloudpickle": "cloudpickle>=2.2",
    "examples": "scikit-learn>=1.2",
    "compat": "bayesian-optimization>=3.0",
    "ray": "ray>=2.9",
}


def install_hint(extra: str) -> str:
    """How to install the optional extra ``extra``: its packages, or the extra from a checkout.

    Args:
        extra: The name of a gpbo extra, e.g. ``"plot"``.
    """
    requirement = _EXTRA_REQUIREMENTS.get(extra)
    checkout = f'pip install -e ".[{extra}]" from a gpbo checkout'
    if requirement is None:
        return checkout
    return f'pip install "{requirement}" (the gpbo extra [{extra}]; or {checkout})'


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
            f"install it with: {install_hint(extra)}"
        ) from exc
