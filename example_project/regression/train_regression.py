"""Train DiabetesMLP on the diabetes train split and save its state dict next to this file.

Run from the repository root: ``python example_project/regression/train_regression.py``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from diabetes_mlp import CHECKPOINT, DiabetesMLP, load_diabetes_split  # noqa: E402

SEED = 0
EPOCHS = 10
BATCH_SIZE = 32
LEARNING_RATE = 1e-3
WEIGHT_DECAY = 1.0


@torch.no_grad()
def scores(model: DiabetesMLP, features: torch.Tensor, targets: torch.Tensor) -> tuple[float, float]:
    """Return (MAE, R^2) of ``model`` on ``features``."""
    predictions = model.eval()(features)
    mae = (predictions - targets).abs().mean().item()
    r2 = 1 - ((predictions - targets) ** 2).sum().item() / ((targets - targets.mean()) ** 2).sum().item()
    return mae, r2


def train(epochs: int = EPOCHS, seed: int = SEED) -> DiabetesMLP:
    """Train a seeded DiabetesMLP with AdamW on the standardised targets (MSE)."""
    torch.manual_seed(seed)
    train_set, _ = load_diabetes_split(seed)
    features, targets = train_set.tensors
    model = DiabetesMLP()
    model.target_mean.fill_(targets.mean())
    model.target_std.fill_(targets.std())
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    loss_fn = nn.MSELoss()
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        for batch in torch.randperm(len(targets), generator=generator).split(BATCH_SIZE):
            optimizer.zero_grad()
            wanted = (targets[batch] - model.target_mean) / model.target_std
            loss_fn(model.net(features[batch]).squeeze(-1), wanted).backward()
            optimizer.step()
    return model.eval()


def main() -> None:
    """Train, report validation MAE, R^2 and wall time, and save the checkpoint."""
    start = time.perf_counter()
    model = train()
    elapsed = time.perf_counter() - start
    _, val_set = load_diabetes_split(SEED)
    mae, r2 = scores(model, *val_set.tensors)
    torch.save(model.state_dict(), CHECKPOINT)
    print(f"val MAE {mae:.2f}  R^2 {r2:.4f}  ({elapsed:.1f}s)  saved {CHECKPOINT}")


if __name__ == "__main__":
    main()
