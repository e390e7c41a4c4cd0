"""Built-in metrics and the registry that names them for markers, tables and JSON."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pytest_netzip.errors import MetricUnavailable
from pytest_netzip.metrics.accuracy import ACCURACY_METRICS
from pytest_netzip.metrics.base import Metric, MetricValue, is_number, metric
from pytest_netzip.metrics.combined import COMBINED_METRICS, OCS_RATIOS
from pytest_netzip.metrics.compute import COMPUTE_METRICS
from pytest_netzip.metrics.cost import COST_METRICS
from pytest_netzip.metrics.detection import DETECTION_METRICS
from pytest_netzip.metrics.energy import ENERGY_METRICS
from pytest_netzip.metrics.language import LANGUAGE_METRICS
from pytest_netzip.metrics.latency import LATENCY_METRICS
from pytest_netzip.metrics.memory import MEMORY_METRICS
from pytest_netzip.metrics.regression import REGRESSION_METRICS
from pytest_netzip.metrics.robustness import ROBUSTNESS_METRICS
from pytest_netzip.metrics.segmentation import SEGMENTATION_METRICS
from pytest_netzip.metrics.size import SIZE_METRICS
from pytest_netzip.registry import Registry

#: Groups of metrics that are read against the clean top-1 (robust accuracy, the drop under perturbation).
READ_AGAINST_TOP1 = frozenset({"adversarial", "perturbation"})

BUILTIN_METRICS: tuple[Metric[Any], ...] = (
    *ACCURACY_METRICS, *REGRESSION_METRICS, *SEGMENTATION_METRICS, *LANGUAGE_METRICS, *DETECTION_METRICS, *SIZE_METRICS, *COMPUTE_METRICS, *LATENCY_METRICS, *MEMORY_METRICS,
    *ENERGY_METRICS, *ROBUSTNESS_METRICS, *COST_METRICS, *COMBINED_METRICS,
)


class MetricRegistry(Registry[Metric[Any]]):
    """Metrics known by name, for markers, tables and JSON.

    ``MetricRegistry()`` holds the built-ins (:data:`BUILTIN_METRICS`), as the Python API measures them;
    ``MetricRegistry(metrics)`` holds exactly ``metrics``. Under pytest those are what every
    ``pytest_netzip_metrics`` implementation returns: the plugin's own (``pytest_netzip.builtins``, called
    first) gives the built-ins, and a conftest's metric of the same name replaces one in place.
    """

    kind = "metric"

    def __init__(self, metrics: Iterable[Metric[Any]] | None = None) -> None:
        super().__init__(BUILTIN_METRICS if metrics is None else metrics)

    def check(self, entry: object) -> Metric[Any]:
        """``entry`` if it is a :class:`Metric`; TypeError otherwise."""
        if not isinstance(entry, Metric):
            raise TypeError(f"not a Metric: {entry!r}")
        return entry

    def with_metrics(self, metrics: Iterable[Metric[Any]]) -> MetricRegistry:
        """A copy of this registry in which ``metrics`` replace those of the same names."""
        return self.extended(metrics)

    def derived(self, measured: Iterable[str]) -> list[str]:
        """Metrics that come free with ``measured``: every metric of each group touched, P beside a ratio, the
        clean top1 beside robustness, and ``compress_seconds``.

        OCS is not among them: it is computed per variant from everything the session measured (see
        ``pytest_netzip.output.tables.variant_summaries``), so it does not depend on which test ran first.
        """
        measured = set(measured)
        groups = {self[name].group for name in measured if name in self} - {None}
        derived = [name for name in self.names if self[name].group in groups]
        if groups & READ_AGAINST_TOP1:
            derived.append("top1")
        ratios = (measured | set(derived)) & set(OCS_RATIOS[1:])
        if ratios and measured & {accuracy.name for accuracy in ACCURACY_METRICS}:
            derived.append("performance_ratio")
        return self.ordered([*derived, "compress_seconds"])


__all__ = ["BUILTIN_METRICS", "Metric", "MetricRegistry", "MetricUnavailable", "MetricValue", "is_number", "metric"]
