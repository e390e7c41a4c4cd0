"""Train DigitsCNN on the digits train split and save its state dict next to this file.

Run from the repository root (``python example_project/train.py``) or from
inside ``example_project/`` (``python train.py``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from digits_model import CHECKPOINT, DigitsCNN, load_digits_split  # noqa: E402

SEED = 0
EPOCHS = 30
BATCH_SIZE = 64
LEARNING_RATE = 1e-3


@torch.no_grad()
def accuracy(model: nn.Module, dataset: TensorDataset) -> float:
    """Return the top-1 accuracy of ``model`` on the whole of ``dataset``."""
    images, labels = dataset.tensors
    model.eval()
    return (model(images).argmax(dim=1) == labels).float().mean().item()


def train(epochs: int = EPOCHS, seed: int = SEED) -> tuple[DigitsCNN, float]:
    """Train a seeded DigitsCNN with Adam; return it with its validation accuracy."""
    torch.manual_seed(seed)
    train_set, val_set = load_digits_split(seed)
    loader = DataLoader(
        train_set,
        batch_size=BATCH_SIZE,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
    )
    model = DigitsCNN()
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(epochs):
        model.train()
        for images, labels in loader:
            optimizer.zero_grad()
            loss_fn(model(images), labels).backward()
            optimizer.step()
    return model, accuracy(model, val_set)


def main() -> None:
    """Train, report validation accuracy and wall time, and save the checkpoint."""
    start = time.perf_counter()
    model, val_acc = train()
    elapsed = time.perf_counter() - start
    torch.save(model.state_dict(), CHECKPOINT)
    print(f"val top-1 {val_acc:.4f}  ({elapsed:.1f}s)  saved {CHECKPOINT}")


if __name__ == "__main__":
    main()
