"""Shared fixtures: fast strategy settings, and the `cuda` marker's skip."""

from __future__ import annotations

import pytest

import gpbo


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


def fast_bayes(**kwargs: object) -> gpbo.strategies.Bayes:
    """A Bayes strategy with a small acquisition budget: tests stay fast, assertions stay."""
    options = {"num_restarts": 3, "raw_samples": 64, "maxiter": 50}
    options.update(kwargs)
    return gpbo.strategies.Bayes(**options)  # type: ignore[arg-type]


@pytest.fixture
def make_fast_bayes():
    return fast_bayes
