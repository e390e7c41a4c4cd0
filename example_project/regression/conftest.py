"""The diabetes regressor's netzip fixtures; they override the digits classifier's for the tests in this folder."""

from __future__ import annotations

import pytest
from torch.utils.data import DataLoader, Subset

from diabetes_mlp import DiabetesMLP, load_diabetes_split, load_model


@pytest.fixture(scope="session")
def netzip_model() -> DiabetesMLP:
    """The trained fp32 DiabetesMLP every compressed variant is compared with."""
    return load_model()


@pytest.fixture(scope="session")
def netzip_train_data() -> DataLoader:
    """The 331 training patients, for the compressors that train (the digits' would leak in from the parent conftest)."""
    train, _ = load_diabetes_split()
    return DataLoader(train, batch_size=32)


@pytest.fixture(scope="session")
def netzip_calibration_data() -> DataLoader:
    """128 training patients, whose activation ranges int8_static fixes (never the held-out ones)."""
    train, _ = load_diabetes_split()
    return DataLoader(Subset(train, range(128)), batch_size=32)


@pytest.fixture(scope="session")
def netzip_data() -> DataLoader:
    """The 111 held-out patients in batches of 32: features (N, 10) and float progression scores (N,)."""
    _, val = load_diabetes_split()
    return DataLoader(val, batch_size=32)
