"""Built-in metrics and the registry that names them for markers, tables and JSON."""

from __future__ import annotations

from collections.abc import Iterable

from pytest_netzip.metrics.accuracy import ACCURACY_METRICS
from pytest_netzip.metrics.base import Metric, MetricUnavailable, MetricValue, is_number, metric
from pytest_netzip.metrics.combined import COMBINED_METRICS
from pytest_netzip.metrics.compute import COMPUTE_METRICS
from pytest_netzip.metrics.cost import COST_METRICS
from pytest_netzip.metrics.detection import DETECTION_METRICS
from pytest_netzip.metrics.energy import ENERGY_METRICS
from pytest_netzip.metrics.latency import LATENCY_METRICS
from pytest_netzip.metrics.memory import MEMORY_METRICS
from pytest_netzip.metrics.robustness import ROBUSTNESS_METRICS
from pytest_netzip.metrics.size import SIZE_METRICS
from pytest_netzip.naming import unknown_name_message

BUILTIN_METRICS: tuple[Metric, ...] = (
    *ACCURACY_METRICS, *DETECTION_METRICS, *SIZE_METRICS, *COMPUTE_METRICS, *LATENCY_METRICS, *MEMORY_METRICS,
    *ENERGY_METRICS, *ROBUSTNESS_METRICS, *COST_METRICS, *COMBINED_METRICS,
)


class MetricRegistry:
    """Metrics known by name: the built-ins plus those contributed through hooks."""

    def __init__(self, extra: Iterable[Metric] = ()) -> None:
        self._by_name: dict[str, Metric] = {}
        for entry in (*BUILTIN_METRICS, *extra):
            if not isinstance(entry, Metric):
                raise TypeError(f"not a Metric: {entry!r}")
            self._by_name[entry.name] = entry

    @property
    def names(self) -> list[str]:
        """Every metric name, sorted."""
        return sorted(self._by_name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __getitem__(self, name: str) -> Metric:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(unknown_name_message("metric", name, self.names)) from None

    def with_metrics(self, metrics: Iterable[Metric]) -> MetricRegistry:
        """A copy of this registry in which ``metrics`` replace those of the same names."""
        extended = MetricRegistry()
        extended._by_name = {**self._by_name, **{entry.name: entry for entry in metrics}}
        return extended

    def ordered(self, names: Iterable[str]) -> list[str]:
        """``names`` in registration order (built-ins first), for stable table columns."""
        wanted = set(names)
        return [name for name in self._by_name if name in wanted]


__all__ = ["BUILTIN_METRICS", "Metric", "MetricRegistry", "MetricUnavailable", "MetricValue", "is_number", "metric"]
