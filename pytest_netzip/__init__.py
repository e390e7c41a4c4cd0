"""pytest-netzip: compression as regression tests for PyTorch models.

Importing this package does not import torch; torch loads when a model is compressed or measured.
"""

from pytest_netzip.compressors import BF16, FP16, CompressionContext, CompressionError, Compressor, Int8Dynamic
from pytest_netzip.compressors import PruneL1, PruneRandom
from pytest_netzip.evaluation import Result, evaluate
from pytest_netzip.metrics import Metric, MetricUnavailable, metric

__all__ = [
    "BF16",
    "CompressionContext",
    "CompressionError",
    "Compressor",
    "FP16",
    "Int8Dynamic",
    "Metric",
    "MetricUnavailable",
    "PruneL1",
    "PruneRandom",
    "Result",
    "evaluate",
    "metric",
]
