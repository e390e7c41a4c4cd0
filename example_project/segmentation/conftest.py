"""The segmenter's netzip fixtures; they override the digits classifier's for the tests in this folder."""

from __future__ import annotations

import pytest
import torch

from shapes_segmenter import ShapesSegmenter, load_model, make_scenes

Batches = list[tuple[torch.Tensor, torch.Tensor]]


def batches(images: torch.Tensor, masks: torch.Tensor, size: int = 64) -> Batches:
    """``(images, masks)`` pairs of ``size`` scenes."""
    return list(zip(images.split(size), masks.split(size)))


@pytest.fixture(scope="session")
def netzip_model() -> ShapesSegmenter:
    """The trained fp32 ShapesSegmenter every compressed variant is compared with."""
    return load_model()


@pytest.fixture(scope="session")
def netzip_train_data() -> Batches:
    """800 training scenes (the training seed), for the compressors that train."""
    return batches(*make_scenes(800, seed=1000))


@pytest.fixture(scope="session")
def netzip_calibration_data() -> Batches:
    """128 training scenes, whose activation ranges int8_static fixes (never the held-out ones)."""
    return batches(*make_scenes(128, seed=1000))


@pytest.fixture(scope="session")
def netzip_data() -> Batches:
    """256 held-out scenes (another seed than training's) in batches of 64: images and (N, 32, 32) class maps."""
    return batches(*make_scenes(256, seed=7))
