"""Threshold kinds judge a ``Result`` and explain themselves; a verdict is what one found.

Each kind is a small frozen class with its own ``describe`` and ``decide``: ``AtLeast``, ``AtMost``,
``MaxDrop``, ``MaxRise``, ``MaxRatio``, ``IntervalAtLeast`` and ``Regression``.
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from pytest_netzip.errors import MetricUnavailable
from pytest_netzip.metrics import MetricRegistry, MetricValue
from pytest_netzip.metrics.base import TOLERANCE
from pytest_netzip.metrics.latency import CONFIDENCE

if TYPE_CHECKING:
    from pytest_netzip.results import Result


@dataclass(frozen=True)
class Threshold(ABC):
    """One bound from a marker on ``metric``, at ``limit``; the subclasses say which bound.

    ``written`` is the keyword's value as the marker gave it, where ``limit`` is derived from it
    (``max_slowdown=1.25`` is a speedup of 0.8). The values of the label metrics in ``details``
    (how the value was measured) join the verdict's note.
    """

    marker: str
    keyword: str
    metric: str
    limit: float
    written: float | None = None
    details: tuple[str, ...] = ()

    @property
    def given(self) -> float:
        """The keyword's value as written in the marker."""
        return self.limit if self.written is None else self.written

    @property
    def label(self) -> str:
        """Where the threshold comes from: ``size_ratio(min=3)``."""
        return f"{self.marker}({self.keyword}={self.given:g})"

    @abstractmethod
    def describe(self) -> str:
        """The bound in words: ``top1 drop <= 0.01``, ``agreement >= 0.98``, ``size_bytes <= 4 MB``."""

    @abstractmethod
    def decide(self, result: Result, value: MetricValue, reference: MetricValue) -> Verdict:
        """The verdict on ``value`` (and the reference's ``reference``), both measured."""

    def judge(self, result: Result) -> Verdict:
        """Measure what this threshold needs from ``result`` and decide."""
        try:
            value = result.metrics[self.metric]
            reference = result.reference_metrics[self.metric]
        except MetricUnavailable as unavailable:
            verdict = self._unavailable(unavailable.reason)
        else:
            verdict = self.decide(result, value, reference)
        if verdict.passed is None or not self.details:
            return verdict
        labels = [str(result.metrics[name]) for name in self.details]
        return dataclasses.replace(verdict, note="; ".join(filter(None, [verdict.note, *labels])))

    def _unavailable(self, reason: str) -> Verdict:
        return Verdict(self, None, None, None, reason)


@dataclass(frozen=True, kw_only=True)
class _Scaled(Threshold):
    """A bound on the metric's value times ``scale``, shown in ``unit``."""

    scale: float = 1.0
    unit: str = ""
    symbol: ClassVar[str]

    def describe(self) -> str:
        """``agreement >= 0.98``, ``size_bytes <= 4 MB``."""
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.metric} {self.symbol} {self.limit:g}{unit}"

    def decide(self, result: Result, value: MetricValue, reference: MetricValue) -> Verdict:
        """Compare the scaled value with the limit, within the tolerance of float rounding."""
        scaled = _scalar(value) * self.scale
        return Verdict(self, value, reference, self._within(scaled), f"{scaled:.4g} {self.unit}" if self.unit else "")

    @abstractmethod
    def _within(self, scaled: float) -> bool:
        """Whether the scaled value keeps to the bound."""


@dataclass(frozen=True, kw_only=True)
class AtLeast(_Scaled):
    """``metric`` (times ``scale``) must be at least ``limit``."""

    symbol: ClassVar[str] = ">="

    def _within(self, scaled: float) -> bool:
        return scaled >= self.limit - TOLERANCE


@dataclass(frozen=True, kw_only=True)
class AtMost(_Scaled):
    """``metric`` (times ``scale``) must be at most ``limit``."""

    symbol: ClassVar[str] = "<="

    def _within(self, scaled: float) -> bool:
        return scaled <= self.limit + TOLERANCE


@dataclass(frozen=True)
class MaxDrop(Threshold):
    """``metric`` may fall below the reference's by at most ``limit``; per class, in the worst class."""

    def describe(self) -> str:
        """``top1 drop <= 0.01``."""
        return f"{self.metric} drop <= {self.limit:g}"

    def decide(self, result: Result, value: MetricValue, reference: MetricValue) -> Verdict:
        """Pass when the (worst) drop is within ``limit``."""
        drop, where = _drop(reference, value)
        note = f"drop {drop:.4f}" + (f" in class {where}" if where is not None else "")
        return Verdict(self, value, reference, drop <= self.limit + TOLERANCE, note, where)


@dataclass(frozen=True)
class MaxRise(Threshold):
    """``metric`` (lower is better) may rise above the reference's by at most ``limit``."""

    def describe(self) -> str:
        """``perplexity rise <= 0.5``."""
        return f"{self.metric} rise <= {self.limit:g}"

    def decide(self, result: Result, value: MetricValue, reference: MetricValue) -> Verdict:
        """Pass when the rise is within ``limit``."""
        rise = -_drop(reference, value)[0]
        return Verdict(self, value, reference, rise <= self.limit + TOLERANCE, f"rise {rise:.4g}")


@dataclass(frozen=True)
class MaxRatio(Threshold):
    """``metric`` divided by the reference's may be at most ``limit``."""

    def describe(self) -> str:
        """``macs / reference <= 0.5``."""
        return f"{self.metric} / reference <= {self.limit:g}"

    def decide(self, result: Result, value: MetricValue, reference: MetricValue) -> Verdict:
        """Pass when the ratio is within ``limit``; a zero reference makes the ratio infinite."""
        ratio = _scalar(value) / _scalar(reference) if reference else float("inf")
        return Verdict(self, value, reference, ratio <= self.limit + TOLERANCE, f"ratio {ratio:.3g}")


@dataclass(frozen=True)
class IntervalAtLeast(Threshold):
    """A noisy ratio must be at least ``limit``: it fails only when the whole confidence interval that the
    metric ``<metric>_interval`` gives lies below ``limit``."""

    def describe(self) -> str:
        """``speedup >= 0.8 (95% CI)``."""
        return f"{self.metric} >= {self.limit:.3g} ({CONFIDENCE:.0%} CI)"

    def decide(self, result: Result, value: MetricValue, reference: MetricValue) -> Verdict:
        """Fail when the interval lies below ``limit``; pass, saying so, when it only reaches it."""
        try:
            interval = result.metrics[f"{self.metric}_interval"]
        except MetricUnavailable as unavailable:
            return self._unavailable(unavailable.reason)
        if not isinstance(interval, dict):
            raise TypeError(f"{self.metric}_interval is {interval!r}, not the low and high of an interval")
        low, high = interval["low"], interval["high"]
        note = f"{CONFIDENCE:.0%} CI [{low:.3g}, {high:.3g}]"
        if high < self.limit - TOLERANCE:
            return Verdict(self, value, reference, False, f"{note} lies below {self.limit:.3g}")
        if low < self.limit - TOLERANCE:
            note += f" reaches {self.limit:.3g}: not shown to be over budget"
        return Verdict(self, value, reference, True, note)


@dataclass(frozen=True, kw_only=True)
class Regression(Threshold):
    """``metric`` may get worse than ``baseline`` (a saved run's value) by at most ``limit``, in the metric's
    own units, or in percent of the baseline when ``percent``."""

    baseline: float
    percent: bool = False

    @property
    def unit(self) -> str:
        """``%`` for a rule in percent, else nothing."""
        return "%" if self.percent else ""

    @property
    def label(self) -> str:
        """Where the threshold comes from: ``--netzip-compare-fail top1:0.01``."""
        return f"{self.marker} {self.keyword}"

    def describe(self) -> str:
        """``top1 worse than saved by <= 0.01``."""
        return f"{self.metric} worse than saved by <= {self.limit:g}{self.unit}"

    def decide(self, result: Result, value: MetricValue, reference: MetricValue) -> Verdict:
        """Compare with the saved value, the worse way by the metric's direction; a non-finite value fails."""
        number = _scalar(value)
        if not math.isfinite(number):
            return Verdict(self, value, self.baseline, False, f"now {value}, not a finite number, vs saved")
        higher_is_better = result.registry[self.metric].higher_is_better
        worse = self.baseline - number if higher_is_better else number - self.baseline
        if self.percent:
            amount = worse / abs(self.baseline) * 100 if self.baseline else (math.inf if worse > 0 else 0.0)
        else:
            amount = worse
        note = f"{'worse' if worse > 0 else 'not worse'}: {'+' if worse > 0 else ''}{amount:.4g}{self.unit} vs saved"
        return Verdict(self, value, self.baseline, amount <= self.limit + TOLERANCE, note)

    def _unavailable(self, reason: str) -> Verdict:
        return Verdict(self, None, self.baseline, None, reason)


def _drop(reference: MetricValue, value: MetricValue) -> tuple[float, str | None]:
    """How far ``value`` fell below ``reference``; for per-class values, the worst class."""
    if isinstance(value, dict) and isinstance(reference, dict):
        drops = {key: reference[key] - value.get(key, 0.0) for key in reference}
        worst = max(drops, key=drops.__getitem__)
        return drops[worst], worst
    return _scalar(reference) - _scalar(value), None


def _scalar(value: MetricValue) -> float:
    """``value`` as the number a bound compares; TypeError for the per-class values or labels no bound takes."""
    if isinstance(value, (dict, str)):
        raise TypeError(f"a bound compares numbers, not {value!r}")
    return value


@dataclass(frozen=True)
class Verdict:
    """A threshold with what was measured; ``passed`` is None when the metric is unavailable."""

    threshold: Threshold
    value: MetricValue | None
    reference: MetricValue | None
    passed: bool | None
    note: str
    key: str | None = None  # for per-class values: the class the verdict is about

    @property
    def label(self) -> str:
        """``FAIL``, ``pass`` or ``unavailable``."""
        return {True: "pass", False: "FAIL", None: "unavailable"}[self.passed]


def explain(verdicts: list[Verdict], registry: MetricRegistry, title: str) -> str:
    """Every threshold of a test as one aligned table: threshold, measured, reference, verdict."""

    def shown(verdict: Verdict, value: MetricValue | None) -> str:
        if isinstance(value, dict):
            value = value.get(verdict.key) if verdict.key is not None else None
        return "-" if value is None else registry[verdict.threshold.metric].format(value)

    rows = [("marker", "threshold", "measured", "reference", "verdict")]
    for verdict in verdicts:
        threshold = verdict.threshold
        rows.append((
            threshold.label,
            threshold.describe(),
            shown(verdict, verdict.value),
            shown(verdict, verdict.reference),
            f"{verdict.label} ({verdict.note})" if verdict.note else verdict.label,
        ))
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[4] for row in rows]
    return "\n".join([title, *("  " + line.rstrip() for line in lines)])
