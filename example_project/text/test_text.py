"""What each compressed tiny BERT must still do before it ships: tell the reviews apart as fp32 does."""

from __future__ import annotations

import pytest


@pytest.mark.netzip(compressors=["fp16", "bf16", "int8_dynamic"])
@pytest.mark.accuracy_drop(max=0.005)
@pytest.mark.agreement(min=0.995)
@pytest.mark.size_ratio(min=1.65)
def test_precision() -> None:
    """Half precision, or int8 Linear layers: the same answers on 99.5% of the reviews, 1.65x smaller.

    Not 2x or 4x: the word and position embeddings, a fifth of the weights, stay in float32 under
    int8_dynamic, and the pickle's framing is a fixed cost at this size.
    """


@pytest.mark.netzip(compressors=["prune_l1"])
@pytest.mark.accuracy_drop(max=0.01)
@pytest.mark.agreement(min=0.98)
def test_magnitude_pruning(netzip_result) -> None:
    """Half the Linear weights zeroed by magnitude (the embeddings are not pruned: 44% of all parameters)."""
    assert netzip_result.metrics["sparsity"] >= 0.4


@pytest.mark.netzip(compressors=["lowrank", "prune_structured"])
@pytest.mark.accuracy_drop(max=0.04)
@pytest.mark.agreement(min=0.95)
@pytest.mark.size_ratio(min=1.35)
def test_smaller_layers() -> None:
    """Linear layers factored (lowrank) or 30% of their channels removed (prune_structured): smaller dense
    matrices, at most 4 points of accuracy lost."""
