"""The two fixtures pytest-netzip needs, the reference model and its evaluation data, and the data compressors train and calibrate on."""

from __future__ import annotations

import pytest
from torch import nn
from torch.utils.data import DataLoader, Subset

from digits_model import load_digits_split, load_model


@pytest.fixture(scope="session")
def netzip_model() -> nn.Module:
    """The trained fp32 DigitsCNN every compressed variant is compared with."""
    return load_model()


@pytest.fixture(scope="session")
def netzip_train_data() -> DataLoader:
    """The 1,437 training digits, for the compressors that train (distillation)."""
    train, _ = load_digits_split()
    return DataLoader(train, batch_size=64)


@pytest.fixture(scope="session")
def netzip_calibration_data() -> DataLoader:
    """256 training digits, whose activation ranges int8_static fixes (never the held-out ones)."""
    train, _ = load_digits_split()
    return DataLoader(Subset(train, range(256)), batch_size=64)


@pytest.fixture(scope="session")
def netzip_data() -> DataLoader:
    """The 360 held-out digits, in batches of 64."""
    _, val = load_digits_split()
    return DataLoader(val, batch_size=64)
