"""The quick start's conftest.py (docs/getting-started.md): a reference model and its evaluation data."""

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def points(count: int, seed: int) -> TensorDataset:
    """Points in 32 dimensions around 8 centres; the target is the centre's number."""
    centres = torch.randn(8, 32, generator=torch.Generator().manual_seed(0))
    generator = torch.Generator().manual_seed(seed)
    targets = torch.randint(0, 8, (count,), generator=generator)
    return TensorDataset(centres[targets] + 1.5 * torch.randn(count, 32, generator=generator), targets)


@pytest.fixture(scope="session")
def netzip_model() -> nn.Module:
    """The reference model: yours, loaded from its checkpoint (trained here in a second instead)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 8))
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    for inputs, targets in DataLoader(points(4096, seed=1), batch_size=64):
        optimiser.zero_grad()
        nn.functional.cross_entropy(model(inputs), targets).backward()
        optimiser.step()
    return model.eval()


@pytest.fixture(scope="session")
def netzip_data() -> DataLoader:
    """Held-out (inputs, targets) batches the variants are scored on."""
    return DataLoader(points(1024, seed=2), batch_size=128)
