"""Built-in metrics and the registry that names them for markers, tables and JSON."""

from __future__ import annotations

from collections.abc import Iterable

from pytest_netzip.errors import MetricUnavailable
from pytest_netzip.metrics.accuracy import ACCURACY_METRICS
from pytest_netzip.metrics.base import Metric, MetricValue, is_number, metric
from pytest_netzip.metrics.combined import COMBINED_METRICS, OCS_RATIOS
from pytest_netzip.metrics.compute import COMPUTE_METRICS
from pytest_netzip.metrics.cost import COST_METRICS
from pytest_netzip.metrics.detection import DETECTION_METRICS
from pytest_netzip.metrics.energy import ENERGY_METRICS
from pytest_netzip.metrics.latency import LATENCY_METRICS
from pytest_netzip.metrics.memory import MEMORY_METRICS
from pytest_netzip.metrics.robustness import ROBUSTNESS_METRICS
from pytest_netzip.metrics.size import SIZE_METRICS
from pytest_netzip.naming import unknown_name_message

#: Groups of metrics that are read against the clean top-1 (robust accuracy, the drop under perturbation).
READ_AGAINST_TOP1 = frozenset({"adversarial", "perturbation"})

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

    def derived(self, measured: Iterable[str]) -> list[str]:
        """Metrics that come free with ``measured``: every metric of each group touched, P beside a ratio, the
        clean top1 beside robustness, and ``compress_seconds``.

        OCS is not among them: it is computed per variant from everything the session measured (see
        ``pytest_netzip.output.tables.variants``), so it does not depend on which test ran first.
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

    def ordered(self, names: Iterable[str]) -> list[str]:
        """``names`` in registration order (built-ins first), for stable table columns."""
        wanted = set(names)
        return [name for name in self._by_name if name in wanted]


__all__ = ["BUILTIN_METRICS", "Metric", "MetricRegistry", "MetricUnavailable", "MetricValue", "is_number", "metric"]
