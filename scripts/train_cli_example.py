"""A training script with a command line, as ``configs/command_example.yaml`` tunes it.

It knows nothing of gpbo: it reads its hyperparameters from arguments, trains a small PyTorch
MLP on scikit-learn's digits (no download) on the GPU it can see (``CUDA_VISIBLE_DEVICES``,
which gpbo sets per trial) or the CPU, prints a line per epoch, and prints its result last as
one JSON line, which is where ``gpbo run`` reads the metric::

    python scripts/train_cli_example.py --lr 0.05 --batch-size 64 --hidden 128
    ...
    {"accuracy": 0.968889, "val_loss": 0.108808, "epochs": 20}

``GPBO_EXAMPLE_EPOCHS`` sets the default number of epochs (the tests use a small value).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lr", type=float, required=True, help="SGD learning rate")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=128, help="width of the hidden layer")
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument(
        "--epochs", type=int, default=int(os.environ.get("GPBO_EXAMPLE_EPOCHS", "20"))
    )
    parser.add_argument("--seed", type=str, default="0", help="an int (may be empty: 0)")
    args = parser.parse_args(argv)

    import torch
    from sklearn.datasets import load_digits
    from torch import nn

    seed = int(args.seed or 0) % 2**31
    torch.manual_seed(seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    digits = load_digits()
    X = torch.tensor(digits.data, dtype=torch.float32) / 16.0
    y = torch.tensor(digits.target, dtype=torch.long)
    order = torch.randperm(len(X), generator=torch.Generator().manual_seed(0))
    n_train = int(0.75 * len(X))
    X_train, y_train = X[order[:n_train]].to(device), y[order[:n_train]].to(device)
    X_val, y_val = X[order[n_train:]].to(device), y[order[n_train:]].to(device)

    model = nn.Sequential(nn.Linear(64, args.hidden), nn.ReLU(), nn.Linear(args.hidden, 10))
    model.to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(seed)
    for epoch in range(1, args.epochs + 1):
        model.train()
        perm = torch.randperm(n_train, generator=generator).to(device)
        for start in range(0, n_train, args.batch_size):
            batch = perm[start : start + args.batch_size]
            optimizer.zero_grad()
            loss = loss_fn(model(X_train[batch]), y_train[batch])
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch}/{args.epochs} train_loss={loss.item():.4f}", flush=True)

    model.eval()
    with torch.no_grad():
        logits = model(X_val)
        val_loss = float(loss_fn(logits, y_val))
        accuracy = float((logits.argmax(dim=1) == y_val).float().mean())
    if not math.isfinite(val_loss):
        print(f"training diverged (lr={args.lr})", file=sys.stderr)
        val_loss = 1e6
    result = {"accuracy": round(accuracy, 6), "val_loss": round(val_loss, 6), "epochs": args.epochs}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
