"""The main job: tune a PyTorch MLP on the digits data with gpbo, on every GPU present.

Searches learning rate, batch size, width, depth and optimizer (a mixed space) with batch
Bayesian optimization, one trial per GPU (or per CPU slot), and writes a resumable journal.

Usage:
    python scripts/tune_mlp.py [--trials 24] [--batch-size N] [--devices auto] [--journal PATH]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for `examples`, when run as a script from anywhere

import gpbo  # noqa: E402
from examples.mlp_digits import train  # noqa: E402

SPACE = {
    "lr": gpbo.Real(1e-3, 1.0, log=True),
    "batch_size": gpbo.Choice([32, 64, 128, 256]),
    "hidden": gpbo.Int(32, 512, log=True),
    "layers": gpbo.Int(1, 3),
    "optimizer": gpbo.Choice(["sgd", "adam"]),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=24, help="trainings to run (default 24)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="configurations per round (default: one per slot, at least 2)")
    parser.add_argument("--devices", default="auto",
                        help="'auto' (every GPU, else one CPU slot), a count, or names")
    parser.add_argument("--journal", default=None,
                        help="journal path (default runs/tune_mlp-<time>.jsonl); an existing "
                        "one is resumed")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    devices: str | int = int(args.devices) if args.devices.isdigit() else args.devices
    slots = gpbo.executors.resolve_slots(devices)
    batch_size = args.batch_size or max(2, len(slots))
    journal = args.journal or f"runs/tune_mlp-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
    print(f"tuning an MLP on the digits: {args.trials} trainings, {batch_size} per round, "
          f"slots {slots}; journal {journal}")
    result = gpbo.optimize(
        train,
        SPACE,
        n_trials=args.trials,
        batch_size=batch_size,
        direction="maximize",
        devices=devices,
        journal=journal,
        seed=args.seed,
    )
    best = result.best_trial
    print(f"best validation accuracy {best.value:.4f} (trial {best.number}, val_loss "
          f"{best.metrics.get('val_loss', float('nan')):.4f}) with {best.params}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
