"""Train a PyTorch MLP on scikit-learn's handwritten digits: the objective gpbo's examples tune.

The data ship with scikit-learn (``sklearn.datasets.load_digits``, 1797 8x8 images, no
download). :func:`train` takes a parameter dict, trains on the device gpbo gave the trial, and
returns the validation accuracy (maximize) with the validation loss as an extra metric.

Used by ``configs/mlp_digits.yaml`` (``scripts/main.sh``, the README's main job) and
``scripts/tune_mlp_digits.py``. Run it alone to train once: ``python examples/mlp_digits.py``.
"""

from __future__ import annotations

import functools
import math
import os
from typing import Any

import torch
from sklearn.datasets import load_digits  # here: missing, it fails the config's load, not trials
from torch import nn

import gpbo

#: The space the examples search: learning rate, batch size and width as in the docs.
SPACE = {
    "lr": gpbo.Choice([0.001, 0.01, 0.1, 1.0]),
    "batch_size": gpbo.Choice([32, 64, 128, 256]),
    "hidden": gpbo.Choice([64, 128, 256, 512]),
}

#: Epochs per training; ``GPBO_EXAMPLE_EPOCHS`` overrides it (the tests use a small value).
EPOCHS = int(os.environ.get("GPBO_EXAMPLE_EPOCHS", "20"))


@functools.lru_cache(maxsize=1)
def load_data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The digits, scaled to [0, 1] and split 75/25 into training and validation sets.

    Returns:
        ``(X_train, y_train, X_val, y_val)`` on the CPU: `n x 64` float32 images and `n` labels.
    """
    digits = load_digits()
    X = torch.tensor(digits.data, dtype=torch.float32) / 16.0
    y = torch.tensor(digits.target, dtype=torch.long)
    order = torch.randperm(X.shape[0], generator=torch.Generator().manual_seed(seed))
    n_train = int(0.75 * X.shape[0])
    train, val = order[:n_train], order[n_train:]
    return X[train], y[train], X[val], y[val]


def train(params: dict[str, Any]) -> dict[str, float]:
    """Train an MLP with ``params`` and report its validation accuracy.

    Args:
        params: ``lr``, ``batch_size`` and ``hidden``; optionally ``layers`` (default 1),
            ``dropout`` (default 0) and ``optimizer`` (``"sgd"`` or ``"adam"``, default sgd).

    Returns:
        ``{"value": validation accuracy, "val_loss": validation cross-entropy}``.
    """
    device = gpbo.device()
    try:
        seed = (gpbo.current_trial().seed or 0) % 2**31
    except gpbo.GpboError:  # run by hand, outside a study
        seed = 0
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    X_train, y_train, X_val, y_val = (t.to(device) for t in load_data())

    hidden = int(params["hidden"])
    layers: list[nn.Module] = []
    width_in = X_train.shape[1]
    for _ in range(int(params.get("layers", 1))):
        layers += [nn.Linear(width_in, hidden), nn.ReLU(), nn.Dropout(params.get("dropout", 0.0))]
        width_in = hidden
    model = nn.Sequential(*layers, nn.Linear(width_in, 10)).to(device)
    lr = float(params["lr"])
    if params.get("optimizer", "sgd") == "adam":
        optimizer: torch.optim.Optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    batch_size = int(params["batch_size"])

    for _ in range(EPOCHS):
        model.train()
        order = torch.randperm(X_train.shape[0], generator=generator).to(device)
        for start in range(0, X_train.shape[0], batch_size):
            batch = order[start : start + batch_size]
            optimizer.zero_grad()
            loss = loss_fn(model(X_train[batch]), y_train[batch])
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        logits = model(X_val)
        val_loss = float(loss_fn(logits, y_val))
        accuracy = float((logits.argmax(dim=1) == y_val).float().mean())
    if not math.isfinite(val_loss):
        val_loss = 1e6  # diverged (e.g. lr=1.0): the accuracy says how bad; keep a number
    return {"value": accuracy, "val_loss": val_loss}


if __name__ == "__main__":
    print(train({"lr": 0.1, "batch_size": 64, "hidden": 128}))
