"""What each compressed DigitsCNN must still do before it ships."""

from __future__ import annotations

import pytest

from pytest_netzip import PruneL1, PruneRandom


@pytest.mark.netzip(compressors=["fp16", "bf16"])
@pytest.mark.accuracy_drop(max=0.01, max_class_drop=0.05)
@pytest.mark.agreement(min=0.99)
@pytest.mark.size_ratio(min=1.9)
def test_half_precision() -> None:
    """Half precision halves the checkpoint and changes almost no prediction."""


@pytest.mark.netzip(compressors=["int8_dynamic"])
@pytest.mark.accuracy_drop(max=0.01)
@pytest.mark.accuracy_drop(max=0.01, metric="f1")
@pytest.mark.agreement(min=0.98, max_negative_flips=0.01)
@pytest.mark.size_ratio(min=2.5, max_mb=0.07)
def test_int8() -> None:
    """int8 Linear layers: under 70 kB on disk, at most one point of top-1 or F1 lost."""


@pytest.mark.netzip(compressors=["prune_l1", PruneL1(amount=0.6)])
@pytest.mark.accuracy_drop(max=0.02, max_class_drop=0.06)
@pytest.mark.agreement(min=0.98)
def test_magnitude_pruning(netzip_result) -> None:
    """Pruned zeros do not shrink torch.save's file, but they deflate: the zipped checkpoint must."""
    metrics, reference = netzip_result.metrics, netzip_result.reference_metrics
    assert metrics["sparsity"] >= 0.45
    assert metrics["size_zipped_bytes"] <= 0.7 * reference["size_zipped_bytes"]


@pytest.mark.netzip(compressors=[PruneRandom(amount=0.1)])
@pytest.mark.accuracy_drop(max=0.06)
@pytest.mark.agreement(min=0.9)
def test_random_pruning_baseline() -> None:
    """Random pruning (the paper's GUP_R baseline) tolerates only a tenth of the weights removed."""
