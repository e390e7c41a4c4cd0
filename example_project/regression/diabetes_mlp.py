"""A small MLP regressing disease progression on scikit-learn's bundled diabetes data, with data and checkpoint helpers."""

from __future__ import annotations

from pathlib import Path

import torch
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import TensorDataset

CHECKPOINT = Path(__file__).with_name("diabetes_mlp.pt")


class DiabetesMLP(nn.Module):
    """Ten standardised features -> two hidden layers of 64 -> one progression score, in the target's units.

    The network predicts a standardised score; the buffers ``target_mean`` and ``target_std`` (fixed
    by training) map it back to the dataset's scale (25-346), so MAE and RMSE read in its points.
    """

    def __init__(self, features: int = 10, hidden: int = 64) -> None:
        """Build the layers and the output scaling buffers."""
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(features, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 1),
        )
        self.register_buffer("target_mean", torch.zeros(()))
        self.register_buffer("target_std", torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map a batch of shape (N, 10) to predictions of shape (N,)."""
        return self.net(x).squeeze(-1) * self.target_std + self.target_mean


def load_diabetes_split(seed: int = 0) -> tuple[TensorDataset, TensorDataset]:
    """Return (train, val) datasets: a fixed 75/25 split of the 442 patients.

    Features are standardised with the training split's mean and spread, float32 (N, 10);
    targets are the raw progression scores, float32 (N,).
    """
    data = load_diabetes()
    features = torch.from_numpy(data.data).to(torch.float32)
    targets = torch.from_numpy(data.target).to(torch.float32)
    train_idx, val_idx = train_test_split(list(range(len(targets))), test_size=0.25, random_state=seed)
    mean, std = features[train_idx].mean(dim=0), features[train_idx].std(dim=0)
    features = (features - mean) / std
    return (
        TensorDataset(features[train_idx], targets[train_idx]),
        TensorDataset(features[val_idx], targets[val_idx]),
    )


def load_model(path: str | Path = CHECKPOINT) -> DiabetesMLP:
    """Build a ``DiabetesMLP``, load the state dict at ``path`` and return it in eval mode."""
    model = DiabetesMLP()
    model.load_state_dict(torch.load(path, weights_only=True))
    return model.eval()
