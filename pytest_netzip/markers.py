"""Reading netzip markers, one at a time: which variants a test runs, its task, thresholds and batch size.

``pytest_netzip.plan`` evaluates them together, once per test.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import pytest

from pytest_netzip.budgets.robustness import attack_spec, perturbation_spec
from pytest_netzip.budgets.signatures import THRESHOLD_MARKERS, parse_marker
from pytest_netzip.budgets.thresholds import Threshold
from pytest_netzip.compressors import CompressorRegistry
from pytest_netzip.data.scoring import TASKS
from pytest_netzip.devices import check_device_name, expand
from pytest_netzip.errors import BudgetError
from pytest_netzip.metrics import Metric, MetricRegistry
from pytest_netzip.metrics.robustness import (
    DEFAULT_ATTACK,
    DEFAULT_PERTURBATION,
    adversarial_metrics,
    perturbation_metrics,
)
from pytest_netzip.naming import unknown_name_message
from pytest_netzip.settings import SETTINGS_KEY
from pytest_netzip.variant import Variant

NETZIP_MARKER = (
    "netzip(compressors=[...], devices=None, task=None): measure this test per compressor and device; "
    "task: classification, detection, regression, segmentation or language_modeling (default: the model's output "
    "tells)"
)

T = TypeVar("T")

#: The keywords of ``@pytest.mark.netzip``, with what each means (the docs' marker reference reads them).
NETZIP_KEYWORDS = {
    "compressors": "required: the compressors to test, by name (``\"int8_dynamic\"``, ``\"prune_l1+int8_dynamic\"``) or as "
                   "``Compressor`` objects (``PruneL1(amount=0.75)``); one item per compressor and device",
    "devices": "``cpu``, ``cuda``, ``cuda:N``, ``mps``, or ``auto`` for every device present; default "
               "``--netzip-devices`` (else ``cpu``); a device the machine lacks skips its items",
    "task": "``classification``, ``detection``, ``regression``, ``segmentation`` or ``language_modeling``, checked "
            "on every item; default: told from the model's output and targets",
}
_KEYWORDS = tuple(NETZIP_KEYWORDS)


def compressor_registry(node: pytest.Item | pytest.Collector | pytest.Config) -> CompressorRegistry:
    """Built-in compressors plus those the plugins and conftests above ``node`` (all loaded, for a config)
    contribute."""
    hook = node.hook if isinstance(node, pytest.Config) else node.ihook
    return CompressorRegistry(entry for entries in hook.pytest_netzip_compressors() for entry in entries)


def marker_names(lines: Iterable[str]) -> set[str]:
    """The names of the markers that ``markers`` ini lines (``name(args): what it does``) register."""
    return {line.split(":")[0].split("(")[0].strip() for line in lines}


def metric_registry(node: pytest.Item | pytest.Collector | pytest.Config) -> MetricRegistry:
    """Built-in metrics plus those the plugins and conftests above ``node`` (all loaded, for a config) contribute,
    with the robustness metrics configured as ``node``'s robustness markers ask."""
    hook = node.hook if isinstance(node, pytest.Config) else node.ihook
    registry = MetricRegistry(entry for entries in hook.pytest_netzip_metrics() for entry in entries)
    if isinstance(node, pytest.Config):
        return registry
    return registry.with_metrics(_configured_metrics(node))


#: The keywords of the robustness markers that configure their metrics (the others are thresholds).
_CONFIGURING: dict[str, tuple[tuple[str, ...], Callable[..., Any], Callable[[Any], tuple[Metric[Any], ...]], Any]] = {
    "adversarial_robustness": (
        ("attack", "eps", "steps", "alpha", "samples"), attack_spec, adversarial_metrics, DEFAULT_ATTACK,
    ),
    "perturbation_robustness": (
        ("kinds", "max_severity", "max_drop", "min_agreement", "samples", "max_examples"),
        perturbation_spec, perturbation_metrics, DEFAULT_PERTURBATION,
    ),
}


def _configured_metrics(node: pytest.Item | pytest.Collector) -> list[Metric[Any]]:
    """The robustness metrics of ``node``'s robustness markers (else the defaults), seeded by ``--netzip-seed``."""
    settings = node.config.stash.get(SETTINGS_KEY, None)
    seed = settings.seed if settings is not None else 0
    configured: list[Metric[Any]] = []
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


def item_variants(node: pytest.Item | pytest.Collector, default_devices: tuple[str, ...]) -> list[Variant]:
    """The compressor x device variants of ``node``'s netzip marker; BudgetError if it is written wrongly."""
    marks = list(node.iter_markers("netzip"))
    if len(marks) > 1:
        raise BudgetError(
            f"@pytest.mark.netzip is given {len(marks)} times (on the test, its class or its module): "
            "give one, listing every compressor and device"
        )
    mark = marks[0]
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
    given = mark.kwargs.get("devices")
    errors: list[str] = []
    compressors = _each(registry.resolve, specs, errors)
    devices = expand(_each(check_device_name, _as_list(default_devices if given is None else given), errors))
    if errors:
        raise BudgetError("\n".join(errors))
    if not devices:
        raise BudgetError(
            "@pytest.mark.netzip(devices=[]) names no device: list some, or leave devices out for the default "
            "(--netzip-devices, else cpu)"
        )
    found = [Variant(compressor, device) for compressor in compressors for device in devices]
    ids = [variant.id for variant in found]
    repeated = sorted({variant_id for variant_id in ids if ids.count(variant_id) > 1})
    if repeated:
        raise BudgetError(f"@pytest.mark.netzip lists {', '.join(repeated)} more than once")
    return found


def _each(read: Callable[[Any], T], entries: list[Any], errors: list[str]) -> list[T]:
    """``read`` of every entry it takes; a line in ``errors`` for each entry it refused."""
    found = []
    for entry in entries:
        try:
            found.append(read(entry))
        except (LookupError, TypeError, ValueError) as exc:
            errors.append(str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc))  # no repr quotes
    return found


def task(node: pytest.Item | pytest.Collector) -> str | None:
    """The task ``node``'s netzip marker declares (None: the model's output tells); BudgetError if unknown."""
    mark = node.get_closest_marker("netzip")
    declared = mark.kwargs.get("task") if mark is not None else None
    if declared is not None and declared not in TASKS:
        raise BudgetError(f"@pytest.mark.netzip(task=...): {unknown_name_message('task', declared, TASKS)}")
    return declared


def thresholds(node: pytest.Item | pytest.Collector, registry: MetricRegistry) -> list[Threshold]:
    """Every threshold of ``node``'s threshold markers, in the order the decorators are written.

    BudgetError naming every marker written wrongly, a line each.
    """
    found, errors = [], []
    for mark in reversed(list(node.iter_markers())):
        if mark.name in THRESHOLD_MARKERS:
            try:
                found.extend(parse_marker(mark, registry))
            except BudgetError as exc:
                errors.append(str(exc))
    if errors:
        raise BudgetError("\n".join(errors))
    return found


#: The markers whose ``batch_size`` sets the batch that latency, memory and energy are measured on.
_BATCHED = ("latency_budget", "memory_budget", "energy_budget")


def batch_size(node: pytest.Item | pytest.Collector) -> int:
    """The batch size of ``node``'s latency, memory and energy budgets (default 1); BudgetError if they differ."""
    given = [  # in the order the decorators are written
        (mark.name, mark.kwargs["batch_size"])
        for mark in reversed(list(node.iter_markers()))
        if mark.name in _BATCHED and "batch_size" in mark.kwargs
    ]
    if len({value for _, value in given}) > 1:
        listed = ", ".join(f"{name}(batch_size={value!r})" for name, value in given)
        raise BudgetError(f"{listed}: latency, memory and energy are measured on one batch size")
    return given[0][1] if given else 1


def is_netzip(node: pytest.Item | pytest.Collector, function: object = None) -> bool:
    """Whether ``node`` (or ``function``, a test function about to be collected in it) is marked
    ``@pytest.mark.netzip``: the plugin touches no other test, whatever its other markers."""
    marks = [*node.iter_markers(), *getattr(function, "pytestmark", ())]
    return any(mark.name == "netzip" for mark in marks)


def misspelt_markers(node: pytest.Item | pytest.Collector) -> None:
    """BudgetError naming each marker of netzip test ``node`` that nobody registered and that is close to one of
    netzip's (``acuracy_drop``): pytest only warns of it, and the gate it was meant to be would never be checked."""
    import difflib

    registered = marker_names(node.config.getini("markers"))
    ours = ["netzip", *THRESHOLD_MARKERS]
    errors = [
        f"unknown marker {mark.name!r}: did you mean {close[0]!r}? (netzip's markers: {', '.join(sorted(ours))})"
        for mark in node.iter_markers()
        if mark.name not in registered and (close := difflib.get_close_matches(mark.name, ours, n=1, cutoff=0.75))
    ]
    if errors:
        raise BudgetError("\n".join(dict.fromkeys(errors)))


def stray_thresholds(item: pytest.Item, registered: set[str]) -> list[str]:
    """Threshold markers of ``item``, a test without ``@pytest.mark.netzip``, that the project did not register itself."""
    return [name for name in THRESHOLD_MARKERS if name not in registered and item.get_closest_marker(name)]
