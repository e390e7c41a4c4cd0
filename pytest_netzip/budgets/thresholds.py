"""A threshold judges a ``Result`` and explains itself; a verdict is what it found."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pytest_netzip.errors import MetricUnavailable
from pytest_netzip.metrics import MetricRegistry, MetricValue
from pytest_netzip.metrics.base import TOLERANCE
from pytest_netzip.metrics.latency import CONFIDENCE

if TYPE_CHECKING:

    from pytest_netzip.evaluation import Result


@dataclass(frozen=True)
class Threshold:
    """One bound from a marker: ``metric`` must stay at least/at most ``limit`` (or drop at most it).

    ``min_interval`` bounds a noisy ratio: it fails only when the whole confidence interval that the
    metric ``<metric>_interval`` gives lies below ``limit``. ``written`` is the keyword's value as the
    marker gave it, where ``limit`` is derived from it (``max_slowdown=1.25`` is a speedup of 0.8).
    ``max_regression`` bounds how much worse than ``baseline`` (a saved run's value) the metric may
    get, by ``limit`` in its own units, or in percent of the baseline when ``unit`` is ``%``. The values of
    the ``label`` metrics in ``details`` (how the value was measured) join the verdict's note.
    """

    marker: str
    keyword: str
    metric: str
    limit: float
    check: Literal["min", "max", "max_drop", "max_ratio", "min_interval", "max_regression"]
    scale: float = 1.0
    unit: str = ""
    written: float | None = None
    baseline: float | None = None
    details: tuple[str, ...] = ()

    @property
    def given(self) -> float:
        """The keyword's value as written in the marker."""
        return self.limit if self.written is None else self.written

    @property
    def label(self) -> str:
        """Where the threshold comes from: ``size_ratio(min=3)``, ``--netzip-compare-fail top1:0.01``."""
        if self.check == "max_regression":
            return f"{self.marker} {self.keyword}"
        return f"{self.marker}({self.keyword}={self.given:g})"

    def describe(self) -> str:
        """``top1 drop <= 0.01``, ``agreement >= 0.98``, ``size_bytes <= 4 MB``."""
        unit = f" {self.unit}" if self.unit else ""
        if self.check == "max_drop":
            return f"{self.metric} drop <= {self.limit:g}"
        if self.check == "max_ratio":
            return f"{self.metric} / reference <= {self.limit:g}"
        if self.check == "min_interval":
            return f"{self.metric} >= {self.limit:.3g} ({CONFIDENCE:.0%} CI)"
        if self.check == "max_regression":
            return f"{self.metric} worse than saved by <= {self.limit:g}{self.unit}"
        return f"{self.metric} {'>=' if self.check == 'min' else '<='} {self.limit:g}{unit}"

    def judge(self, result: Result) -> Verdict:
        """Measure what this threshold needs from ``result`` and decide."""
        verdict = self._judge(result)
        if verdict.passed is None or not self.details:
            return verdict
        labels = [result.metrics[name] for name in self.details]
        return dataclasses.replace(verdict, note="; ".join(filter(None, [verdict.note, *labels])))

    def _judge(self, result: Result) -> Verdict:
        try:
            value = result.metrics[self.metric]
            reference = result.reference_metrics[self.metric]
        except MetricUnavailable as unavailable:
            return Verdict(self, None, self.baseline, None, unavailable.reason)
        if self.check == "max_drop":
            drop, where = _drop(reference, value)
            note = f"drop {drop:.4f}" + (f" in class {where}" if where is not None else "")
            return Verdict(self, value, reference, drop <= self.limit + TOLERANCE, note, where)
        if self.check == "max_ratio":
            ratio = value / reference if reference else float("inf")
            return Verdict(self, value, reference, ratio <= self.limit + TOLERANCE, f"ratio {ratio:.3g}")
        if self.check == "min_interval":
            return self._judge_interval(result, value, reference)
        if self.check == "max_regression":
            return self._judge_regression(result, value)
        scaled = value * self.scale
        passed = scaled >= self.limit - TOLERANCE if self.check == "min" else scaled <= self.limit + TOLERANCE
        return Verdict(self, value, reference, passed, f"{scaled:.4g} {self.unit}" if self.unit else "")

    def _judge_regression(self, result: Result, value: MetricValue) -> Verdict:
        worse = self.baseline - value if result.registry[self.metric].higher_is_better else value - self.baseline
        if self.unit == "%":
            amount = worse / abs(self.baseline) * 100 if self.baseline else (math.inf if worse > 0 else 0.0)
        else:
            amount = worse
        note = f"{'worse' if worse > 0 else 'not worse'}: {'+' if worse > 0 else ''}{amount:.4g}{self.unit} vs saved"
        return Verdict(self, value, self.baseline, amount <= self.limit + TOLERANCE, note)

    def _judge_interval(self, result: Result, value: MetricValue, reference: MetricValue) -> Verdict:
        try:
            interval = result.metrics[f"{self.metric}_interval"]
        except MetricUnavailable as unavailable:
            return Verdict(self, None, None, None, unavailable.reason)
        low, high = interval["low"], interval["high"]
        note = f"{CONFIDENCE:.0%} CI [{low:.3g}, {high:.3g}]"
        if high < self.limit - TOLERANCE:
            return Verdict(self, value, reference, False, f"{note} lies below {self.limit:.3g}")
        if low < self.limit - TOLERANCE:
            note += f" reaches {self.limit:.3g}: not shown to be over budget"
        return Verdict(self, value, reference, True, note)


def _drop(reference: MetricValue, value: MetricValue) -> tuple[float, str | None]:
    """How far ``value`` fell below ``reference``; for per-class values, the worst class."""
    if isinstance(value, dict):
        drops = {key: reference[key] - value.get(key, 0.0) for key in reference}
        worst = max(drops, key=drops.__getitem__)
        return drops[worst], worst
    return reference - value, None


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
