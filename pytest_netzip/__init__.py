"""pytest-netzip: compression as regression tests for PyTorch models.

Importing this package does not import torch; torch loads when a model is compressed or measured.
"""

from pytest_netzip.compressors import (
    BF16,
    FP16,
    CompressionContext,
    Compressor,
    Distill,
    Float8,
    Float8WeightOnly,
    Int4WeightOnly,
    Int8Dynamic,
    Int8QAT,
    Int8Static,
    Int8WeightOnly,
    LowRank,
    Pipeline,
    PruneL1,
    PruneRandom,
    PruneStructured,
    Sparse24,
)
from pytest_netzip.errors import (
    CompressionError,
    CompressorUnsupported,
    MetricUnavailable,
)
from pytest_netzip.metrics import Metric, metric

_LAZY = {"Result": "pytest_netzip.results", "evaluate": "pytest_netzip.results"}


def __getattr__(name: str) -> object:
    """Import the evaluation API on first use, keeping the plugin's own import light."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pytest_netzip' has no attribute {name!r}")

__all__ = [
    "BF16",
    "CompressionContext",
    "CompressionError",
    "Compressor",
    "CompressorUnsupported",
    "Distill",
    "FP16",
    "Float8",
    "Float8WeightOnly",
    "Int4WeightOnly",
    "Int8Dynamic",
    "Int8QAT",
    "Int8Static",
    "Int8WeightOnly",
    "LowRank",
    "Metric",
    "MetricUnavailable",
    "Pipeline",
    "PruneL1",
    "PruneRandom",
    "PruneStructured",
    "Result",
    "Sparse24",
    "evaluate",
    "metric",
]
