"""What compressing a model cost."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_netzip.errors import MetricUnavailable
from pytest_netzip.metrics.base import metric

if TYPE_CHECKING:
    from pytest_netzip.metrics.base import Subject


@metric("compress_seconds", "wall time the compressor took on this model (once per session and device)", unit="s",
        higher_is_better=False, summary=False)
def compress_seconds(subject: Subject, reference: Subject) -> float:
    """Seconds spent compressing; 0 for the reference."""
    if subject is reference:
        return 0.0
    if subject.compress_seconds is None:
        raise MetricUnavailable("this model was not compressed in this run (reused from --netzip-cache, or made outside pytest-netzip)")
    return subject.compress_seconds


COST_METRICS = (compress_seconds,)
