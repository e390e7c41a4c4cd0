"""A small CNN for scikit-learn's bundled 8x8 handwritten digits, with data and checkpoint helpers."""

from __future__ import annotations

from pathlib import Path

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import TensorDataset

CHECKPOINT = Path(__file__).with_name("digits_cnn.pt")


class DigitsCNN(nn.Module):
    """Two 3x3 convolutions, one 2x2 max-pool, then a two-layer classifier head."""

    def __init__(self, num_classes: int = 10) -> None:
        """Build the layers for 1x8x8 inputs and ``num_classes`` outputs."""
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(32 * 4 * 4, 64),
            nn.ReLU(),
            nn.Linear(64, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map a batch of shape (N, 1, 8, 8) to logits of shape (N, num_classes)."""
        return self.classifier(self.features(x))


def load_digits_split(seed: int = 0) -> tuple[TensorDataset, TensorDataset]:
    """Return (train, val) datasets: a fixed stratified 80/20 split of the digits.

    Pixels are scaled from 0..16 to [0, 1] and shaped (N, 1, 8, 8) float32;
    labels are int64.
    """
    digits = load_digits()
    images = torch.from_numpy(digits.images / 16.0).to(torch.float32).unsqueeze(1)
    labels = torch.from_numpy(digits.target).to(torch.int64)
    train_idx, val_idx = train_test_split(
        torch.arange(len(labels)).numpy(),
        test_size=0.2,
        random_state=seed,
        stratify=labels.numpy(),
    )
    train = TensorDataset(images[train_idx], labels[train_idx])
    val = TensorDataset(images[val_idx], labels[val_idx])
    return train, val


def load_model(path: str | Path = CHECKPOINT) -> DigitsCNN:
    """Build a ``DigitsCNN``, load the state dict at ``path`` and return it in eval mode."""
    model = DigitsCNN()
    model.load_state_dict(torch.load(path, weights_only=True))
    return model.eval()


def mlp_student(reference: nn.Module) -> nn.Module:
    """A one-hidden-layer MLP over the 64 pixels, for ``Distill`` to train from ``reference``."""
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
