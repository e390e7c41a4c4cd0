"""Marker signatures: called with a marker's arguments, they give defaults, typo errors and thresholds."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from pytest_netzip.metrics import MetricRegistry
from pytest_netzip.naming import unknown_name_message

if TYPE_CHECKING:
    import pytest

from pytest_netzip.budgets.robustness import (
    _adversarial_robustness,
    _perturbation_robustness,
)
from pytest_netzip.budgets.thresholds import AtLeast, AtMost, IntervalAtLeast, MaxDrop, MaxRatio, MaxRise, Threshold
from pytest_netzip.budgets.values import _non_negative, _positive, _share, _whole
from pytest_netzip.errors import BudgetError


def _accuracy_drop(
    registry: MetricRegistry, *, max: float, metric: str = "top1", max_class_drop: float | None = None
) -> list[Threshold]:
    """The fall of an accuracy-type metric from the reference's, in points of a share (0.01 = 1 point).

    :param max: reference − compressed ≤ ``max``
    :param metric: which metric: ``top1``, ``top5``, ``precision``, ``recall``, ``f1``, ``map``, ``map50``, ``miou``,
        ``pixel_accuracy``, ``token_accuracy``, ``r2``, or a hook metric that is a share
    :param max_class_drop: the worst per-class accuracy drop ≤ ``max_class_drop``
    """
    valid = [
        name for name in registry.names
        if registry[name].unit in ("share", "points") and registry[name].higher_is_better and not registry[name].relative
        and name not in ("class_accuracy", "sparsity")
    ]
    if metric not in valid:
        raise BudgetError(f"accuracy_drop(metric=...): {unknown_name_message('metric', metric, valid)}")
    thresholds: list[Threshold] = [MaxDrop("accuracy_drop", "max", metric, _share("accuracy_drop", "max", max))]
    if max_class_drop is not None:
        limit = _share("accuracy_drop", "max_class_drop", max_class_drop)
        thresholds.append(MaxDrop("accuracy_drop", "max_class_drop", "class_accuracy", limit))
    return thresholds


def _error_increase(
    registry: MetricRegistry, *, metric: str, max: float | None = None, max_ratio: float | None = None
) -> list[Threshold]:
    """The rise of a lower-is-better metric over the reference's.

    :param metric: which metric: ``perplexity``, ``mae``, ``rmse``, ``kl_divergence``, ``output_rmse_vs_reference``,
        ``negative_flip_rate``, or a hook metric with ``higher_is_better=False``
    :param max: compressed − reference ≤ ``max``, in the metric's units (for ``kl_divergence`` and
        ``output_rmse_vs_reference``, measured against the reference already, the value itself)
    :param max_ratio: compressed / reference ≤ ``max_ratio`` (refused for the metrics measured against the reference)
    """
    valid = [
        name for name in registry.names
        if not registry[name].higher_is_better and not registry[name].workload and registry[name].unit != "label"
    ]
    if metric not in valid:
        raise BudgetError(f"error_increase(metric=...): {unknown_name_message('metric', metric, valid)}")
    thresholds: list[Threshold] = []
    if max is not None:
        thresholds.append(MaxRise("error_increase", "max", metric, _non_negative("error_increase", "max", max)))
    if max_ratio is not None:
        if registry[metric].relative:
            raise BudgetError(f"error_increase(max_ratio=...): {metric} is measured against the reference already "
                              "(the reference's own is 0, so no ratio): bound it with max")
        limit = _positive("error_increase", "max_ratio", max_ratio)
        thresholds.append(MaxRatio("error_increase", "max_ratio", metric, limit))
    return thresholds


def _agreement(
    registry: MetricRegistry, *, min: float | None = None, max_negative_flips: float | None = None
) -> list[Threshold]:
    """Agreement of the top-1 predictions with the reference's.

    :param min: ``agreement`` ≥ ``min``
    :param max_negative_flips: ``negative_flip_rate`` (samples the reference gets right and the variant wrong)
        ≤ ``max_negative_flips``
    """
    thresholds: list[Threshold] = []
    if min is not None:
        thresholds.append(AtLeast("agreement", "min", "agreement", _share("agreement", "min", min)))
    if max_negative_flips is not None:
        limit = _share("agreement", "max_negative_flips", max_negative_flips)
        thresholds.append(AtMost("agreement", "max_negative_flips", "negative_flip_rate", limit))
    return thresholds


def _size_ratio(registry: MetricRegistry, *, min: float | None = None, max_mb: float | None = None) -> list[Threshold]:
    """How much smaller the variant is, by ``torch.save`` bytes of its state dict.

    :param min: reference bytes / compressed bytes ≥ ``min``
    :param max_mb: compressed ``size_bytes`` ≤ ``max_mb`` × 10⁶
    """
    thresholds: list[Threshold] = []
    if min is not None:
        thresholds.append(AtLeast("size_ratio", "min", "size_ratio", _positive("size_ratio", "min", min)))
    if max_mb is not None:
        limit = _positive("size_ratio", "max_mb", max_mb)
        thresholds.append(AtMost("size_ratio", "max_mb", "size_bytes", limit, scale=1e-6, unit="MB"))
    return thresholds


_COMPUTE_METRICS = ("macs", "chats", "effective_macs")


def _compute_budget(
    registry: MetricRegistry, *, max_macs: float | None = None, max_ratio: float | None = None, metric: str = "macs"
) -> list[Threshold]:
    """Multiply-accumulates of one forward pass on the example input.

    :param max_macs: the count ≤ ``max_macs``
    :param max_ratio: compressed / reference count ≤ ``max_ratio``
    :param metric: which count: ``macs``, ``chats`` (MACs × bit width) or ``effective_macs`` (MACs × non-zero share)
    """
    if metric not in _COMPUTE_METRICS:
        raise BudgetError(f"compute_budget(metric=...): {unknown_name_message('metric', metric, _COMPUTE_METRICS)}")
    thresholds: list[Threshold] = []
    if max_macs is not None:
        limit = _positive("compute_budget", "max_macs", max_macs)
        thresholds.append(AtMost("compute_budget", "max_macs", metric, limit))
    if max_ratio is not None:
        limit = _positive("compute_budget", "max_ratio", max_ratio)
        thresholds.append(MaxRatio("compute_budget", "max_ratio", metric, limit))
    return thresholds


def _latency_budget(
    registry: MetricRegistry,
    *,
    p50_ms: float | None = None,
    p95_ms: float | None = None,
    p99_ms: float | None = None,
    max_slowdown: float | None = None,
    min_speedup: float | None = None,
    batch_size: int = 1,
) -> list[Threshold]:
    """Time per call, timed with pytest-benchmark; relative gates decide on a 95% confidence interval.

    :param p50_ms: the compressed model's median time per call ≤ ``p50_ms`` milliseconds
    :param p95_ms: its 95th percentile ≤ ``p95_ms`` milliseconds
    :param p99_ms: its 99th percentile ≤ ``p99_ms`` milliseconds
    :param max_slowdown: not shown slower than ``max_slowdown`` × the reference: fails only when the whole 95%
        confidence interval of ``speedup`` lies below 1 / ``max_slowdown``
    :param min_speedup: ``speedup`` not shown below ``min_speedup``: fails only when the whole interval lies below it
    :param batch_size: samples per call, for latency, memory and energy alike (where several markers give it,
        they must agree)
    """
    _whole("latency_budget", "batch_size", batch_size)
    thresholds: list[Threshold] = [
        AtMost("latency_budget", keyword, f"latency_{keyword}", _positive("latency_budget", keyword, limit))
        for keyword, limit in (("p50_ms", p50_ms), ("p95_ms", p95_ms), ("p99_ms", p99_ms))
        if limit is not None
    ]
    if max_slowdown is not None:
        slowdown = _positive("latency_budget", "max_slowdown", max_slowdown)
        thresholds.append(IntervalAtLeast("latency_budget", "max_slowdown", "speedup", 1 / slowdown,
                                    written=slowdown))
    if min_speedup is not None:
        limit = _positive("latency_budget", "min_speedup", min_speedup)
        thresholds.append(IntervalAtLeast("latency_budget", "min_speedup", "speedup", limit))
    return thresholds


def _memory_budget(registry: MetricRegistry, *, max_mb: float, batch_size: int = 1) -> list[Threshold]:
    """Peak memory of one call on a batch: weights, input and the most activation bytes alive at once.

    :param max_mb: ``peak_memory_mb`` ≤ ``max_mb``
    :param batch_size: samples per call (as ``latency_budget``'s)
    """
    _whole("memory_budget", "batch_size", batch_size)
    return [AtMost("memory_budget", "max_mb", "peak_memory_mb", _positive("memory_budget", "max_mb", max_mb))]


def _energy_budget(
    registry: MetricRegistry,
    *,
    max_mj_per_sample: float | None = None,
    min_efficiency: float | None = None,
    batch_size: int = 1,
) -> list[Threshold]:
    """Energy per sample, read from NVML or RAPL counters; skips where no counter can be read.

    :param max_mj_per_sample: ``energy_mj_per_sample`` ≤ ``max_mj_per_sample`` millijoules
    :param min_efficiency: ``efficiency_ratio`` (reference energy / compressed energy per sample) ≥ ``min_efficiency``
    :param batch_size: samples per call (as ``latency_budget``'s)
    """
    _whole("energy_budget", "batch_size", batch_size)
    thresholds: list[Threshold] = []
    if max_mj_per_sample is not None:
        limit = _positive("energy_budget", "max_mj_per_sample", max_mj_per_sample)
        thresholds.append(AtMost("energy_budget", "max_mj_per_sample", "energy_mj_per_sample", limit))
    if min_efficiency is not None:
        limit = _positive("energy_budget", "min_efficiency", min_efficiency)
        thresholds.append(AtLeast("energy_budget", "min_efficiency", "efficiency_ratio", limit))
    return thresholds


#: Threshold markers by name, with the description registered for ``pytest --markers``.
THRESHOLD_MARKERS: dict[str, tuple[Callable[..., list[Threshold]], str]] = {
    "accuracy_drop": (_accuracy_drop, "accuracy_drop(max, metric='top1', max_class_drop=None): fall in accuracy"),
    "error_increase": (
        _error_increase,
        "error_increase(metric, max=None, max_ratio=None): rise of a lower-is-better metric (perplexity, mae, rmse, "
        "kl_divergence), absolute or compressed / reference",
    ),
    "agreement": (_agreement, "agreement(min=None, max_negative_flips=None): top-1 agreement with the reference"),
    "size_ratio": (_size_ratio, "size_ratio(min=None, max_mb=None): reference bytes / compressed bytes"),
    "compute_budget": (
        _compute_budget,
        "compute_budget(max_macs=None, max_ratio=None, metric='macs'): MACs (or chats, effective_macs) per sample",
    ),
    "latency_budget": (
        _latency_budget,
        "latency_budget(p50_ms=None, p95_ms=None, p99_ms=None, max_slowdown=None, min_speedup=None, batch_size=1): "
        "time per call; relative gates decide on a confidence interval",
    ),
    "memory_budget": (_memory_budget, "memory_budget(max_mb, batch_size=1): peak memory of one call on a batch"),
    "adversarial_robustness": (
        _adversarial_robustness,
        "adversarial_robustness(attack='FGSM', eps, steps=None, alpha=None, max_drop=None, min_accuracy=None, "
        "samples=256): top-1 under a torchattacks attack, white-box or by transfer from the reference",
    ),
    "perturbation_robustness": (
        _perturbation_robustness,
        "perturbation_robustness(kinds=all, max_severity=1, max_drop=None, min_agreement=None, samples=256, "
        "max_examples=20): hypothesis searches noise, brightness, contrast, blur and shift for a breaking perturbation",
    ),
    "energy_budget": (
        _energy_budget,
        "energy_budget(max_mj_per_sample=None, min_efficiency=None, batch_size=1): energy per sample; skips where "
        "no counter reads",
    ),
}


def _bounds(parse: Callable[..., list[Threshold]]) -> list[str]:
    """The optional keywords of a marker that set a bound (``max_drop``, ``p50_ms``), not those that configure it."""
    return [
        name for name, parameter in inspect.signature(parse).parameters.items()
        if parameter.default is None and re.fullmatch(r"(max|min)(_\w+)?|p\d+_ms", name)
    ]


def parse_marker(mark: pytest.Mark, registry: MetricRegistry) -> list[Threshold]:
    """The thresholds of one threshold marker; raises BudgetError naming the bad word."""
    parse, _ = THRESHOLD_MARKERS[mark.name]
    keywords = [name for name in inspect.signature(parse).parameters if name != "registry"]
    if mark.args:
        raise BudgetError(f"{mark.name} takes keywords only ({', '.join(keywords)}), got {mark.args!r}")
    for keyword in mark.kwargs:
        if keyword not in keywords:
            raise BudgetError(f"{mark.name}: {unknown_name_message('keyword', keyword, keywords)}")
    try:
        thresholds = parse(registry, **mark.kwargs)
    except TypeError as exc:  # a required keyword is missing
        raise BudgetError(f"{mark.name}: {str(exc).replace('_' + mark.name + '()', '').strip()}") from None
    if not thresholds:
        raise BudgetError(f"{mark.name} sets no threshold: give at least one of {', '.join(_bounds(parse))}")
    return thresholds
