"""NetZIP's overall compression success (OCS), from the ratios an item measured."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from pytest_netzip.errors import MetricUnavailable
from pytest_netzip.metrics.base import Metric, is_number, metric

if TYPE_CHECKING:
    from pytest_netzip.data.workload import Workload
    from pytest_netzip.metrics.base import Subject

#: The ratios OCS combines, in the order of its weights: performance (P), speedup (S), compression (C), efficiency (E).
OCS_RATIOS = ("performance_ratio", "speedup", "size_ratio", "efficiency_ratio")

DEFAULT_OCS_WEIGHTS = (1.0, 1.0, 1.0, 1.0)


def ratio_letters(names: Iterable[str]) -> str:
    """NetZIP's letters of the ratios ``names`` (of :data:`OCS_RATIOS`): ``P,C`` for performance and size."""
    return ",".join("PSCE"[OCS_RATIOS.index(name)] for name in names)


def parse_ocs_weights(values: Sequence[str]) -> tuple[float, float, float, float]:
    """The four weights of P, S, C and E written as ``values`` (``["1", "0.5", "1", "1"]``); ValueError saying what
    they must be."""
    try:
        weights = tuple(float(value) for value in values)
    except ValueError:
        weights = ()
    if len(weights) != 4 or not all(0 <= weight < math.inf for weight in weights):
        raise ValueError(
            f"takes four finite numbers >= 0, the weights of P, S, C and E (e.g. 1,1,1,1), got {','.join(values)!r}"
        )
    return weights  # four, checked above (mypy narrows the tuple by its length)


def overall_success(ratios: dict[str, float], weights: Iterable[float] = DEFAULT_OCS_WEIGHTS) -> float:
    """OCS = P * (l1 (P - 1) + l2 (S - 1) + l3 (C - 1) + l4 (E - 1)) over the ratios present; P is required."""
    if "performance_ratio" not in ratios:
        raise MetricUnavailable("OCS needs performance_ratio (measure top1)")
    performance = ratios["performance_ratio"]
    gains = sum(weight * (ratios[name] - 1.0) for name, weight in zip(OCS_RATIOS, weights) if name in ratios)
    return performance * gains + 0.0  # + 0.0: no -0 when P is 0


def ocs_metric(weights: tuple[float, float, float, float] = DEFAULT_OCS_WEIGHTS) -> Metric[float]:
    """The ``ocs`` metric with the weights (lambda 1-4) of P, S, C and E."""

    @metric("ocs", "NetZIP's overall compression success from the ratios measured so far (P, S, C, E)",
            relative=True, fresh=True)
    def ocs(subject: Subject, reference: Subject, workload: Workload) -> float:
        if subject is reference:
            return 0.0
        measured = {name: subject.measured(name, workload) for name in OCS_RATIOS}
        return overall_success({name: value for name, value in measured.items() if is_number(value)}, weights)

    return ocs


COMBINED_METRICS = (ocs_metric(),)
