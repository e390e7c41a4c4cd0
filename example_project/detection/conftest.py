"""The detector's netzip fixtures; they override the digits classifier's (data included) for the tests in this folder."""

from __future__ import annotations

import pytest
import torch

from shapes_detector import ShapesDetector, load_model, make_shapes


@pytest.fixture(scope="session")
def netzip_model() -> ShapesDetector:
    """The trained fp32 ShapesDetector every compressed variant is compared with."""
    return load_model()


@pytest.fixture(scope="session")
def netzip_data() -> list[tuple[torch.Tensor, list[dict[str, torch.Tensor]]]]:
    """256 held-out images (another seed than training's) in batches of 64, targets in torchvision's format."""
    images, targets = make_shapes(256, seed=7)
    return [(images[start:start + 64], targets[start:start + 64]) for start in range(0, 256, 64)]


@pytest.fixture(scope="session")
def netzip_train_data() -> None:
    """No training images: the compressors that train do not apply to this detector (the digits would not do)."""
    return None


@pytest.fixture(scope="session")
def netzip_calibration_data(netzip_data: list[tuple[torch.Tensor, list[dict[str, torch.Tensor]]]]) -> list[torch.Tensor]:
    """The first batch of held-out images, for static quantisation (not the parent folder's digits)."""
    return [netzip_data[0][0]]
