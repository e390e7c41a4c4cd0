"""What each compressed DiabetesMLP must still do before it ships: predict progression scores as well as fp32 does."""

from __future__ import annotations

import pytest


@pytest.mark.netzip(compressors=["fp16", "bf16"])
@pytest.mark.error_increase(metric="mae", max_ratio=1.01)
@pytest.mark.error_increase(metric="rmse", max_ratio=1.01)
@pytest.mark.error_increase(metric="output_rmse_vs_reference", max=0.5)
@pytest.mark.accuracy_drop(metric="r2", max=0.005)
@pytest.mark.size_ratio(min=1.7)
def test_half_precision() -> None:
    """Half precision: MAE and RMSE within 1% of fp32's, predictions within half a point of its (RMS), R^2 within
    half a point; 1.7x smaller (the buffers and the pickle's framing are not halved)."""


@pytest.mark.netzip(compressors=["int8_dynamic", "int8_static"])
@pytest.mark.error_increase(metric="mae", max_ratio=1.01)
@pytest.mark.accuracy_drop(metric="r2", max=0.005)
@pytest.mark.size_ratio(min=1.9)
def test_int8() -> None:
    """int8 weights (activations quantised on the fly, or with ranges calibrated on training patients): 1.9x smaller."""


@pytest.mark.netzip(compressors=["prune_l1"])
@pytest.mark.error_increase(metric="mae", max_ratio=1.02)
@pytest.mark.accuracy_drop(metric="r2", max=0.01)
def test_magnitude_pruning(netzip_result) -> None:
    """Half the weights zeroed by magnitude costs nothing here (the MLP is over-parameterised for 331 patients)."""
    assert netzip_result.metrics["sparsity"] >= 0.45


@pytest.mark.netzip(compressors=["prune_structured"])
@pytest.mark.error_increase(metric="mae", max_ratio=1.1)
@pytest.mark.error_increase(metric="rmse", max_ratio=1.05)
@pytest.mark.accuracy_drop(metric="r2", max=0.05)
@pytest.mark.size_ratio(min=1.6)
def test_channel_pruning() -> None:
    """30% of the hidden units removed: a smaller dense MLP, at most 10% more MAE and 5 points of R^2 lost."""
