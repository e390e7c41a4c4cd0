"""NetZIP's overall compression success (OCS), from the ratios an item measured."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from pytest_netzip.metrics.base import Metric, MetricUnavailable, is_number, metric

if TYPE_CHECKING:
    from pytest_netzip.evaluation import Subject
    from pytest_netzip.metrics import MetricRegistry
    from pytest_netzip.workload import Workload

#: The ratios OCS combines, in the order of its weights: performance (P), speedup (S), compression (C), efficiency (E).
OCS_RATIOS = ("performance_ratio", "speedup", "size_ratio", "efficiency_ratio")

DEFAULT_OCS_WEIGHTS = (1.0, 1.0, 1.0, 1.0)


def overall_success(ratios: dict[str, float], weights: Iterable[float] = DEFAULT_OCS_WEIGHTS) -> float:
    """OCS = P * (l1 (P - 1) + l2 (S - 1) + l3 (C - 1) + l4 (E - 1)) over the ratios present; P is required."""
    if "performance_ratio" not in ratios:
        raise MetricUnavailable("OCS needs performance_ratio (measure top1)")
    performance = ratios["performance_ratio"]
    gains = sum(weight * (ratios[name] - 1.0) for name, weight in zip(OCS_RATIOS, weights) if name in ratios)
    return performance * gains + 0.0  # + 0.0: no -0 when P is 0


def ocs_metric(weights: tuple[float, float, float, float] = DEFAULT_OCS_WEIGHTS) -> Metric:
    """The ``ocs`` metric with the weights (lambda 1-4) of P, S, C and E."""

    @metric("ocs", "NetZIP's overall compression success from the ratios measured so far (P, S, C, E)",
            relative=True, workload=True, fresh=True)
    def ocs(subject: Subject, reference: Subject, workload: Workload) -> float:
        if subject is reference:
            return 0.0
        measured = {name: subject.measured(name, workload) for name in OCS_RATIOS}
        return overall_success({name: value for name, value in measured.items() if is_number(value)}, weights)

    return ocs


COMBINED_METRICS = (ocs_metric(),)


#: Groups of metrics that are read against the clean top-1 (robust accuracy, the drop under perturbation).
READ_AGAINST_TOP1 = frozenset({"adversarial", "perturbation"})


def derived_metrics(registry: MetricRegistry, measured: Iterable[str]) -> list[str]:
    """Metrics that come free with ``measured``: every metric of each group touched, P beside a ratio, the clean
    top1 beside robustness, and ``compress_seconds``.

    OCS is not among them: it is computed per variant from everything the session measured (see
    ``pytest_netzip.report.variants``), so it does not depend on which test ran first.
    """
    from pytest_netzip.metrics.accuracy import ACCURACY_METRICS

    measured = set(measured)
    groups = {registry[name].group for name in measured if name in registry} - {None}
    derived = [name for name in registry.names if registry[name].group in groups]
    if groups & READ_AGAINST_TOP1:
        derived.append("top1")
    ratios = (measured | set(derived)) & set(OCS_RATIOS[1:])
    if ratios and measured & {accuracy.name for accuracy in ACCURACY_METRICS}:
        derived.append("performance_ratio")
    return registry.ordered([*derived, "compress_seconds"])
