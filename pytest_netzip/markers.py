"""Reading netzip markers: which variants a test runs, and the thresholds it must meet."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_netzip.budgets import THRESHOLD_MARKERS, BudgetError, Threshold, parse_marker
from pytest_netzip.compressors import CompressorRegistry
from pytest_netzip.devices import check_device_name, expand
from pytest_netzip.metrics import MetricRegistry
from pytest_netzip.naming import unknown_name_message
from pytest_netzip.variant import Variant

NETZIP_MARKER = "netzip(compressors=[...], devices=None): measure this test per compressor and device"

#: Every marker name that makes a test a netzip test.
NETZIP_MARKERS = frozenset({"netzip", *THRESHOLD_MARKERS})

_KEYWORDS = ("compressors", "devices")


def compressor_registry(node: pytest.Item | pytest.Collector) -> CompressorRegistry:
    """Built-in compressors plus those the plugins and conftests above ``node`` contribute."""
    return CompressorRegistry(entry for entries in node.ihook.pytest_netzip_compressors() for entry in entries)


def metric_registry(node: pytest.Item | pytest.Collector | pytest.Config) -> MetricRegistry:
    """Built-in metrics plus those the plugins and conftests above ``node`` (all loaded, for a config) contribute."""
    hook = node.hook if isinstance(node, pytest.Config) else node.ihook
    return MetricRegistry(entry for entries in hook.pytest_netzip_metrics() for entry in entries)


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def variants(node: pytest.Item | pytest.Collector, default_devices: tuple[str, ...]) -> list[Variant]:
    """The compressor x device variants of ``node``'s netzip marker; BudgetError if it is written wrongly."""
    mark = node.get_closest_marker("netzip")
    if mark is None:
        thresholds = [name for name in THRESHOLD_MARKERS if node.get_closest_marker(name)]
        raise BudgetError(f"@pytest.mark.{thresholds[0]} needs @pytest.mark.netzip(compressors=[...]) on the test")
    usage = "@pytest.mark.netzip takes the keywords compressors=[...] and devices=[...]"
    if mark.args:
        raise BudgetError(f"{usage}, got positional {mark.args!r}")
    for keyword in mark.kwargs:
        if keyword not in _KEYWORDS:
            raise BudgetError(f"@pytest.mark.netzip: {unknown_name_message('keyword', keyword, _KEYWORDS)}")
    if "compressors" not in mark.kwargs:
        raise BudgetError(f"{usage}; compressors is missing")
    specs = _as_list(mark.kwargs["compressors"])
    if not specs:
        raise BudgetError("@pytest.mark.netzip(compressors=[]) names no compressor")
    registry = compressor_registry(node)
    try:
        compressors = [registry.resolve(spec) for spec in specs]
        devices = expand([check_device_name(name) for name in _as_list(mark.kwargs.get("devices", default_devices))])
    except (LookupError, TypeError, ValueError) as exc:
        raise BudgetError(str(exc).strip("\"'")) from None
    found = [Variant(compressor, device) for compressor in compressors for device in devices]
    ids = [variant.id for variant in found]
    repeated = sorted({variant_id for variant_id in ids if ids.count(variant_id) > 1})
    if repeated:
        raise BudgetError(f"@pytest.mark.netzip lists {', '.join(repeated)} more than once")
    return found


def thresholds(node: pytest.Item | pytest.Collector, registry: MetricRegistry) -> list[Threshold]:
    """Every threshold of ``node``'s threshold markers, in the order the decorators are written."""
    return [
        threshold
        for mark in reversed(list(node.iter_markers()))
        if mark.name in THRESHOLD_MARKERS
        for threshold in parse_marker(mark, registry)
    ]


#: The markers whose ``batch_size`` sets the batch that latency, memory and energy are measured on.
_BATCHED = ("latency_budget", "memory_budget", "energy_budget")


def batch_size(node: pytest.Item | pytest.Collector) -> int:
    """The batch size of ``node``'s latency, memory and energy budgets (default 1); BudgetError if they differ."""
    given = {
        name: mark.kwargs["batch_size"]
        for name in _BATCHED
        if (mark := node.get_closest_marker(name)) is not None and "batch_size" in mark.kwargs
    }
    if len(set(given.values())) > 1:
        listed = ", ".join(f"{name}(batch_size={value!r})" for name, value in given.items())
        raise BudgetError(f"{listed}: latency, memory and energy are measured on one batch size")
    return next(iter(given.values()), 1)


def is_netzip(node: pytest.Item | pytest.Collector, function: object = None) -> bool:
    """Whether ``node`` (or ``function``, a test function about to be collected in it) has netzip markers."""
    marks = [*node.iter_markers(), *getattr(function, "pytestmark", ())]
    return any(mark.name in NETZIP_MARKERS for mark in marks)
