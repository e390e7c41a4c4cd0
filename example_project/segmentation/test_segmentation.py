"""What each compressed ShapesSegmenter must still do before it ships."""

from __future__ import annotations

import pytest


@pytest.mark.netzip(compressors=["fp16", "bf16"])
@pytest.mark.accuracy_drop(max=0.005, metric="miou")
@pytest.mark.accuracy_drop(max=0.002, metric="pixel_accuracy")
@pytest.mark.size_ratio(min=1.65)
def test_half_precision(netzip_result) -> None:
    """Half precision changes almost no pixel: at least 99.9% of them get the reference's class."""
    assert netzip_result.metrics["pixel_agreement"] >= 0.999


@pytest.mark.netzip(compressors=["int8_static"])
@pytest.mark.accuracy_drop(max=0.005, metric="miou")
@pytest.mark.accuracy_drop(max=0.002, metric="pixel_accuracy")
@pytest.mark.size_ratio(min=2.9)
def test_static_int8() -> None:
    """Convolutions in int8, activation ranges calibrated on 128 training scenes: 3x smaller, mIoU kept.

    (int8_dynamic quantises only Linear and recurrent layers: this network has none, so it would skip.)
    """


@pytest.mark.netzip(compressors=["prune_l1"])
@pytest.mark.accuracy_drop(max=0.03, metric="miou")
@pytest.mark.accuracy_drop(max=0.005, metric="pixel_accuracy")
def test_magnitude_pruning(netzip_result) -> None:
    """Half the weights zeroed costs about 2 points of mIoU, mostly on shape edges; the zeros must deflate."""
    metrics, reference = netzip_result.metrics, netzip_result.reference_metrics
    assert metrics["size_zipped_bytes"] <= 0.8 * reference["size_zipped_bytes"]


@pytest.mark.netzip(compressors=["lowrank"])
@pytest.mark.accuracy_drop(max=0.01, metric="miou")
@pytest.mark.size_ratio(min=1.1)
def test_low_rank() -> None:
    """Convolutions factored into low-rank pairs (the singular values holding most of the energy kept)."""
