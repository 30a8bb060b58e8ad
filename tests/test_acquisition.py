"""Tests for gpbo/acquisition.py: joint batches, lattice projection, no duplicates."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gpbo
from gpbo.acquisition import (
    AcquisitionOptions,
    is_new,
    optimize_acquisition,
    optimize_posterior_mean,
    qlogei,
)
from gpbo.surrogate import fit_gp

FAST = AcquisitionOptions(num_restarts=3, raw_samples=64, maxiter=50)


def fitted(space: gpbo.Space, n: int = 12, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = space.project(rng.random((n, space.n_columns)))
    y = -np.sum((X - 0.3) ** 2, axis=1)
    return fit_gp(torch.tensor(X), torch.tensor(y)), X, y


def test_joint_batch_is_distinct_new_and_in_the_cube():
    space = gpbo.Space({"a": gpbo.Real(0, 1), "b": gpbo.Real(0, 1)})
    model, X, y = fitted(space)
    batch = optimize_acquisition(qlogei(model, best_f=y.max(), pending=np.zeros((0, 2))),
                                 space=space, q=4, seen=X, options=FAST,
                                 generator=np.random.default_rng(0))
    assert batch.shape == (4, 2) and np.all((batch >= 0) & (batch <= 1))
    for i, row in enumerate(batch):
        assert is_new(row, X) and is_new(row, batch[:i])


def test_mixed_space_batches_stay_on_the_lattice():
    space = gpbo.Space({"a": gpbo.Real(0, 1), "n": gpbo.Int(1, 5),
                        "c": gpbo.Choice(["x", "y", "z"])})
    model, X, y = fitted(space, n=15)
    batch = optimize_acquisition(qlogei(model, best_f=y.max(), pending=X[:2]), space=space,
                                 q=5, seen=X, options=FAST, generator=np.random.default_rng(1))
    np.testing.assert_allclose(space.project(batch), batch)
    assert all(is_new(row, X) for row in batch)
    assert len({tuple(r) for r in np.round(batch, 12)}) == 5


def test_small_discrete_space_is_enumerated_until_used_up():
    space = gpbo.Space({"n": gpbo.Int(1, 3), "c": gpbo.Choice(["x", "y"])})
    model, X, y = fitted(space, n=4, seed=3)
    X = np.unique(X, axis=0)
    batch = optimize_acquisition(qlogei(model, best_f=y.max(), pending=np.zeros((0, 3))),
                                 space=space, q=10, seen=X, options=FAST,
                                 generator=np.random.default_rng(0))
    assert batch.shape[0] == 6 - X.shape[0]  # every unseen lattice point, no more


def test_posterior_mean_step_stays_in_the_trust_region():
    space = gpbo.Space({"a": gpbo.Real(0, 1), "b": gpbo.Real(0, 1)})
    model, X, y = fitted(space, n=15)
    center = X[int(np.argmax(y))]
    batch = optimize_posterior_mean(model, space=space, center=center, radius=0.1, q=3, seen=X,
                                    options=FAST, generator=np.random.default_rng(0))
    assert batch.shape == (3, 2)
    assert np.all(np.abs(batch - center) <= 0.1 + 1e-9)


def test_options_are_validated():
    with pytest.raises(ValueError, match="num_restarts"):
        AcquisitionOptions(num_restarts=0)
    with pytest.raises(ValueError, match="factr"):
        AcquisitionOptions(factr=0.0)
    with pytest.raises(ValueError, match="pgtol"):
        AcquisitionOptions(pgtol=-1e-4)
    assert AcquisitionOptions(maxiter=7).lbfgs(q=4)["maxiter"] == 7
