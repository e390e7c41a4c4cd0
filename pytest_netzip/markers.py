"""Reading netzip markers: which variants a test runs, and the thresholds it must meet."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from pytest_netzip.budgets import THRESHOLD_MARKERS, BudgetError, Threshold, attack_spec, parse_marker, perturbation_spec
from pytest_netzip.compressors import CompressorRegistry
from pytest_netzip.devices import check_device_name, expand
from pytest_netzip.metrics import Metric, MetricRegistry
from pytest_netzip.metrics.base import TASKS
from pytest_netzip.metrics.robustness import DEFAULT_ATTACK, DEFAULT_PERTURBATION, adversarial_metrics, perturbation_metrics
from pytest_netzip.naming import unknown_name_message
from pytest_netzip.settings import SETTINGS_KEY
from pytest_netzip.variant import Variant

NETZIP_MARKER = (
    "netzip(compressors=[...], devices=None, task=None): measure this test per compressor and device; "
    "task is classification or detection (default: the model's output tells)"
)

#: Every marker name that makes a test a netzip test.
NETZIP_MARKERS = frozenset({"netzip", *THRESHOLD_MARKERS})

_KEYWORDS = ("compressors", "devices", "task")


def compressor_registry(node: pytest.Item | pytest.Collector) -> CompressorRegistry:
    """Built-in compressors plus those the plugins and conftests above ``node`` contribute."""
    return CompressorRegistry(entry for entries in node.ihook.pytest_netzip_compressors() for entry in entries)


def metric_registry(node: pytest.Item | pytest.Collector | pytest.Config) -> MetricRegistry:
    """Built-in metrics plus those the plugins and conftests above ``node`` (all loaded, for a config) contribute,
    with the robustness metrics configured as ``node``'s robustness markers ask."""
    hook = node.hook if isinstance(node, pytest.Config) else node.ihook
    registry = MetricRegistry(entry for entries in hook.pytest_netzip_metrics() for entry in entries)
    if isinstance(node, pytest.Config):
        return registry
    return registry.with_metrics(_configured_metrics(node))


#: The keywords of the robustness markers that configure their metrics (the others are thresholds).
_CONFIGURING = {
    "adversarial_robustness": (
        ("attack", "eps", "steps", "alpha", "samples"), attack_spec, adversarial_metrics, DEFAULT_ATTACK,
    ),
    "perturbation_robustness": (
        ("kinds", "max_severity", "max_drop", "min_agreement", "samples", "max_examples"),
        perturbation_spec, perturbation_metrics, DEFAULT_PERTURBATION,
    ),
}


def _configured_metrics(node: pytest.Item | pytest.Collector) -> list[Metric]:
    """The robustness metrics of ``node``'s robustness markers (else the defaults), seeded by ``--netzip-seed``."""
    settings = node.config.stash.get(SETTINGS_KEY, None)
    seed = settings.seed if settings is not None else 0
    configured = []
    for name, (keywords, spec, metrics, default) in _CONFIGURING.items():
        marks = list(node.iter_markers(name))
        if len(marks) > 1:
            raise BudgetError(f"@pytest.mark.{name} is given {len(marks)} times: one per test (split the test)")
        if not marks:
            configured.extend(metrics(dataclasses.replace(default, seed=seed)))
            continue
        given = {keyword: value for keyword, value in marks[0].kwargs.items() if keyword in keywords}
        try:
            configured.extend(metrics(spec(**given, seed=seed)))
        except TypeError:  # a required keyword is missing: the marker's thresholds say which
            continue
    return configured


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def variants(node: pytest.Item | pytest.Collector, default_devices: tuple[str, ...]) -> list[Variant]:
    """The compressor x device variants of ``node``'s netzip marker; BudgetError if it is written wrongly."""
    mark = node.get_closest_marker("netzip")
    if mark is None:
        thresholds = [name for name in THRESHOLD_MARKERS if node.get_closest_marker(name)]
        raise BudgetError(f"@pytest.mark.{thresholds[0]} needs @pytest.mark.netzip(compressors=[...]) on the test")
    usage = "@pytest.mark.netzip takes the keywords compressors=[...], devices=[...] and task=..."
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


def task(node: pytest.Item | pytest.Collector) -> str | None:
    """The task ``node``'s netzip marker declares (None: the model's output tells); BudgetError if unknown."""
    mark = node.get_closest_marker("netzip")
    declared = mark.kwargs.get("task") if mark is not None else None
    if declared is not None and declared not in TASKS:
        raise BudgetError(f"@pytest.mark.netzip(task=...): {unknown_name_message('task', declared, TASKS)}")
    return declared


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
