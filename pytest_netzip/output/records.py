"""The record of one item: what was measured, against the reference, the verdicts; JSON-safe."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pytest_netzip.data.workload import DEFAULT_WORKLOAD
from pytest_netzip.errors import MetricUnavailable

if TYPE_CHECKING:
    from pytest_netzip.budgets.thresholds import Verdict
    from pytest_netzip.results import Result


#: The CPU pressure read with each timing, which the table's title shows.
PRESSURE_METRICS = ("cpu_pressure", "speedup_cpu_pressure")


def make_record(test: str, result: Result, verdicts: list[Verdict]) -> dict[str, Any]:
    """The JSON-safe record of one item: what was measured, against the reference, and the verdicts."""
    _read_pressures(result)
    measured = result.metrics.measured()
    reference = result.reference_metrics.measured(measured)

    def values(metrics: dict[str, Any]) -> dict[str, Any]:
        return {name: None if isinstance(value, MetricUnavailable) else value for name, value in metrics.items()}

    return {
        "test": test,
        "model": result.model,
        "compressor": result.compressor,
        "device": result.device,
        "threads": result.threads,
        "batch_size": result.workload.batch_size,
        "metrics": values(measured),
        "reference": {"metrics": values(reference)},
        "unavailable": {name: value.reason for name, value in measured.items() if isinstance(value, MetricUnavailable)},
        "cache": result.cached(),  # None without --netzip-cache
        "settings": _settings(result, measured),
        "budgets": [
            {
                "marker": verdict.threshold.marker,
                "keyword": verdict.threshold.keyword,
                "metric": verdict.threshold.metric,
                "threshold": verdict.threshold.given,
                "value": verdict.value,
                "reference": verdict.reference,
                "passed": verdict.passed,
                "note": verdict.note,
            }
            for verdict in verdicts
        ],
    }


def unmeasured_record(test: str, model: str | None, compressor: str, device: str, outcome: str, reason: str) -> dict[str, Any]:
    """The record of an item that ended before measuring (a usage error, a compressor that failed, refused or changed
    nothing): its outcome and ``reason``, with no metrics, so that the run's JSON still lists it."""
    return {
        "test": test, "model": model, "compressor": compressor, "device": device, "threads": None, "batch_size": None,
        "metrics": {}, "reference": {"metrics": {}}, "unavailable": {}, "cache": None, "settings": {}, "budgets": [],
        "outcome": outcome, "reason": reason,
    }


def _settings(result: Result, measured: Iterable[str]) -> dict[str, str]:
    """What each metric configured by a marker was measured under: ``PGD(eps=0.05, ...)``, ``batch_size=8``."""
    settings = {}
    for name in measured:
        metric = result.registry[name]
        parts = [] if metric.setting is None else [str(metric.setting)]
        if metric.workload and result.workload.batch_size != DEFAULT_WORKLOAD.batch_size:
            parts.append(f"batch_size={result.workload.batch_size}")
        if parts:
            settings[name] = ", ".join(parts)
    return settings


def _read_pressures(result: Result) -> None:
    """Read the CPU pressure of each timing the item made: a group is measured only with a metric that was
    available, and the pressure matters most where it made the timing unavailable."""
    timed = {result.registry[name].group for name in result.metrics.measured()}
    for name in PRESSURE_METRICS:
        if name in result.registry and result.registry[name].group in timed:
            with contextlib.suppress(MetricUnavailable):  # timing was off: the record says why
                result.metrics[name]  # reads it from the timing already made
