"""The names a model's metrics go by in its variants and tables: a metric's own name, or, where the model's items
measured it under several settings (FGSM and PGD, batch sizes 1 and 8), the name with each item's setting."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_netzip.metrics import Metric, MetricRegistry

#: A record and a metric's name to the column its value goes in.
ColumnOf = Callable[[dict[str, Any], str], str]


def column_namer(records: Iterable[dict[str, Any]]) -> ColumnOf:
    """How the metrics of ``records`` (one model and device) are named: ``robust_accuracy`` where every item that
    measured it used one setting, ``robust_accuracy [FGSM(eps=0.3)]`` where items used several."""
    records = list(records)
    found: dict[str, set[Any]] = {}
    for record in records:
        reference, settings = record.get("reference"), _settings(record)
        for metrics in (record.get("metrics"), reference.get("metrics") if isinstance(reference, dict) else None):
            for name in metrics if isinstance(metrics, dict) else ():  # a hand-made document may lack them
                found.setdefault(name, set()).add(settings.get(name))
    several = {name for name, settings in found.items() if len(settings) > 1}

    def column(record: dict[str, Any], name: str) -> str:
        setting = _settings(record).get(name)
        return f"{name} [{setting}]" if name in several and setting is not None else name

    return column


def _settings(record: dict[str, Any]) -> dict[str, Any]:
    settings = record.get("settings")
    return settings if isinstance(settings, dict) else {}  # runs saved before records carried them


def metric_of(registry: MetricRegistry, column: str) -> Metric[Any] | None:
    """The metric whose values ``column`` holds (``top1``, ``robust_accuracy [PGD(eps=0.03)]``); None if unknown."""
    name = column.partition(" [")[0] if column.endswith("]") and column not in registry else column
    return registry.get(name)


def ordered_columns(registry: MetricRegistry, columns: Iterable[str]) -> list[str]:
    """``columns`` in the registry's order of their metrics, settings of one metric side by side; then unknown
    names, sorted."""
    position = {name: index for index, name in enumerate(registry)}

    def key(column: str) -> tuple[int, str]:
        metric = metric_of(registry, column)
        return (position[metric.name] if metric is not None else len(position), column)

    return sorted(set(columns), key=key)
