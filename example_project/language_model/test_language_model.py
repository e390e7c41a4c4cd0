"""What each compressed tiny GPT-2 must still do before it ships: predict the grammar's next word as fp32 does."""

from __future__ import annotations

import pytest


@pytest.mark.netzip(compressors=["fp16", "bf16"])
@pytest.mark.error_increase(metric="perplexity", max_ratio=1.01)
@pytest.mark.error_increase(metric="kl_divergence", max=0.001)
@pytest.mark.accuracy_drop(metric="token_accuracy", max=0.005)
@pytest.mark.size_ratio(min=1.9)
def test_half_precision(netzip_result) -> None:
    """Half precision: perplexity within 1%, next-word distributions within 0.001 nats (KL from fp32's),
    the same likeliest next word at 99% of the positions, half the checkpoint."""
    assert netzip_result.metrics["token_agreement"] >= 0.99


@pytest.mark.netzip(compressors=["lowrank(rank=16)"])
@pytest.mark.error_increase(metric="perplexity", max_ratio=1.01)
@pytest.mark.error_increase(metric="kl_divergence", max=0.002)
@pytest.mark.accuracy_drop(metric="token_accuracy", max=0.005)
@pytest.mark.size_ratio(min=2.3)
@pytest.mark.compute_budget(max_ratio=0.45)
def test_low_rank(netzip_result) -> None:
    """Every block's projections factored at rank 16 (the lm_head stays whole: its weight is the token embedding's):
    perplexity within 1%, 2.3x smaller, under half the MACs, the likeliest word kept at 97% of positions."""
    assert netzip_result.metrics["token_agreement"] >= 0.97


@pytest.mark.netzip(compressors=["int8_dynamic", "int8_weight_only"])
@pytest.mark.error_increase(metric="perplexity", max_ratio=1.01)
@pytest.mark.error_increase(metric="kl_divergence", max=0.001)
@pytest.mark.accuracy_drop(metric="token_accuracy", max=0.005)
@pytest.mark.size_ratio(min=2.7)
def test_int8_weights(netzip_result) -> None:
    """int8 weights in every block (transformers' Conv1D layers rewritten as nn.Linear for torchao): perplexity
    within 1%, next-word distributions within 0.001 nats, the likeliest word kept at 99% of positions, 2.7x smaller
    (the tied lm_head is stored again once quantised, which keeps it under 3x)."""
    assert netzip_result.metrics["token_agreement"] >= 0.99
