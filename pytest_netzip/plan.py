"""A netzip test's markers evaluated once: its variants, its usage errors, and the plan each item runs by.

As pytest's skipping.py evaluates an item's xfail marks into a frozen value kept in ``item.stash``, netzip
reads a test's markers once at collection (``evaluate``: the variants to parametrise by, every mistake,
and a ``MarkerReading``) and makes each item's ``ItemPlan`` from that reading at setup; the fixtures and
hooks read the plan, never the markers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from pytest_netzip.benchmark_options import benchmark_options, workload_of
from pytest_netzip.budgets.signatures import THRESHOLD_MARKERS
from pytest_netzip.budgets.thresholds import Threshold
from pytest_netzip.data.workload import Workload
from pytest_netzip.errors import BudgetError
from pytest_netzip.markers import batch_size, item_variants, metric_registry, misspelt_markers, task, thresholds
from pytest_netzip.metrics import MetricRegistry
from pytest_netzip.variant import Variant

#: The markers a reading is read from: a node carrying the same ones (the very objects) reads the same.
_READ = frozenset({"netzip", *THRESHOLD_MARKERS})


def _read_marks(node: pytest.Item | pytest.Collector) -> tuple[pytest.Mark, ...]:
    return tuple(mark for mark in node.iter_markers() if mark.name in _READ)


@dataclass(frozen=True)
class MarkerReading:
    """What a test's markers ask for besides its variants: the task, the thresholds in the order the
    decorators are written, the metric registry (robustness metrics configured as its markers say) and
    the batch size of latency, memory and energy. ``marks`` are the markers it was read from."""

    task: str | None
    thresholds: tuple[Threshold, ...]
    registry: MetricRegistry
    batch_size: int
    marks: tuple[pytest.Mark, ...]

    @classmethod
    def of(cls, node: pytest.Item | pytest.Collector) -> MarkerReading:
        """The reading of ``node``'s markers; BudgetError for the first one written wrongly."""
        registry = metric_registry(node)
        return cls(task(node), tuple(thresholds(node, registry)), registry, batch_size(node), _read_marks(node))

    def reads(self, node: pytest.Item | pytest.Collector) -> bool:
        """Whether ``node`` carries exactly the markers this reading was read from (none added by its
        parametrisation or by a hook), so that the reading holds for it."""
        marks = _read_marks(node)
        return len(marks) == len(self.marks) and all(mark is read for mark, read in zip(marks, self.marks))


def evaluate(
    node: pytest.Item | pytest.Collector, default_devices: tuple[str, ...]
) -> tuple[list[Variant], MarkerReading | None, list[str]]:
    """The variants of netzip test ``node``, the reading of its markers (None if any is written wrongly),
    and every mistake in its markers, each a line naming the test."""
    read: dict[str, Any] = {}

    def budgets() -> tuple[MetricRegistry, list[Threshold]]:
        registry = metric_registry(node)
        return registry, thresholds(node, registry)

    checks: dict[str, Callable[[], Any]] = {
        "markers": lambda: misspelt_markers(node),
        "variants": lambda: item_variants(node, default_devices),
        "task": lambda: task(node),
        "budgets": budgets,
        "batch_size": lambda: batch_size(node),
        "benchmark": lambda: benchmark_options(node),
    }
    errors: list[str] = []
    for name, check in checks.items():
        try:
            read[name] = check()
        except BudgetError as exc:
            errors.extend(f"{node.nodeid}: {line}" for line in str(exc).splitlines())
    if errors:
        return read.get("variants", []), None, errors
    registry, found = read["budgets"]
    reading = MarkerReading(read["task"], tuple(found), registry, read["batch_size"], _read_marks(node))
    return read["variants"], reading, errors


@dataclass(frozen=True)
class ItemPlan:
    """What one netzip item is measured and judged by, made once at its setup and kept in ``item.stash``:
    the task, its thresholds (its markers' then ``--netzip-compare-fail``'s), the metric registry and the
    workload that latency, memory and energy are measured on."""

    task: str | None
    thresholds: tuple[Threshold, ...]
    registry: MetricRegistry
    workload: Workload

    @classmethod
    def of(cls, item: pytest.Item, reading: MarkerReading | None, regressions: Sequence[Threshold]) -> ItemPlan:
        """The plan of ``item`` from its test's ``reading`` (read again from the item where the item's
        markers differ) and its ``regressions``, the ``--netzip-compare-fail`` thresholds of its saved result."""
        if reading is None or not reading.reads(item):
            reading = MarkerReading.of(item)
        device = getattr(Variant.of(item), "device", None)
        workload = workload_of(item, reading.batch_size, device)
        return cls(reading.task, (*reading.thresholds, *regressions), reading.registry, workload)
