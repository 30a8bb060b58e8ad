"""Tests for gpbo/_optional.py: the lazy imports of optional packages and their hints."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from gpbo._optional import _EXTRA_REQUIREMENTS, MissingDependencyError, import_optional

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_the_hint_names_the_packages_not_an_unpublished_gpbo(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now fails
    with pytest.raises(MissingDependencyError) as caught:
        import_optional("matplotlib", extra="plot", feature="plotting a study")
    message = str(caught.value)
    assert message.startswith("plotting a study needs the optional package 'matplotlib'")
    assert 'pip install "matplotlib>=3.6"' in message
    assert 'pip install -e ".[plot]" from a gpbo checkout' in message
    assert 'install "gpbo[' not in message


def test_the_hinted_requirements_are_pyproject_s_extras():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    extras = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]
    for extra, requirement in _EXTRA_REQUIREMENTS.items():
        assert extras[extra] == [requirement], extra
