"""What each compressed ShapesDetector must still do before it ships."""

from __future__ import annotations

import pytest

from pytest_netzip import PruneL1


@pytest.mark.netzip(compressors=["fp16", PruneL1(amount=0.1)])
@pytest.mark.accuracy_drop(max=0.03, metric="map")
@pytest.mark.accuracy_drop(max=0.01, metric="map50")
def test_detection_quality(netzip_result) -> None:
    """COCO mAP against the labels falls by at most 3 points (1 at IoU 0.5), and the compressed model
    still finds what the reference finds: its detections score mAP >= 0.85 against the reference's."""
    assert netzip_result.metrics["map_vs_reference"] >= 0.85


@pytest.mark.netzip(compressors=[PruneL1(amount=0.3)])
@pytest.mark.accuracy_drop(max=0.1, metric="map")
@pytest.mark.accuracy_drop(max=0.01, metric="map50")
def test_heavier_pruning() -> None:
    """A third of the weights gone: the boxes loosen (mAP over strict IoUs falls) but the shapes are still found."""


@pytest.mark.netzip(compressors=["fp16"])
@pytest.mark.size_ratio(min=1.8)
def test_half_precision_size() -> None:
    """Half precision nearly halves the checkpoint (the pickle's framing is not halved)."""
