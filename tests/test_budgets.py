"""Thresholds judge results exactly at their bounds, and explain themselves."""

from __future__ import annotations

import math

from pytest_netzip.budgets.decision import Decision, Judgement
from pytest_netzip.budgets.regression import RegressionRule
from pytest_netzip.budgets.thresholds import AtLeast, AtMost, IntervalAtLeast, MaxDrop, MaxRatio, Verdict, explain
from pytest_netzip.errors import MetricUnavailable
from pytest_netzip.metrics import MetricRegistry


class FakeResult:
    """A result with given values, for judging thresholds without models."""

    def __init__(self, metrics: dict, reference: dict) -> None:
        self.metrics, self.reference_metrics = _Values(metrics), _Values(reference)
        self.registry = MetricRegistry()
        self.compressor, self.device = "fp16", "cpu"


class _Values(dict):
    def __getitem__(self, name: str) -> object:
        value = super().__getitem__(name)
        if isinstance(value, MetricUnavailable):
            raise value
        return value


def test_a_drop_exactly_at_the_limit_passes_despite_float_rounding() -> None:
    threshold = MaxDrop("accuracy_drop", "max", "top1", 0.01)
    assert 0.97 - 0.96 > 0.01  # what a naive comparison would trip over
    assert threshold.judge(FakeResult({"top1": 0.96}, {"top1": 0.97})).passed is True
    assert threshold.judge(FakeResult({"top1": 0.959}, {"top1": 0.97})).passed is False


def test_a_per_class_drop_names_the_worst_class() -> None:
    threshold = MaxDrop("accuracy_drop", "max_class_drop", "class_accuracy", 0.1)
    verdict = threshold.judge(FakeResult({"class_accuracy": {"0": 0.9, "1": 0.5}}, {"class_accuracy": {"0": 1.0, "1": 0.8}}))
    assert (verdict.passed, verdict.note) == (False, "drop 0.3000 in class 1")


def test_min_and_scaled_max_thresholds() -> None:
    at_least = AtLeast("size_ratio", "min", "size_ratio", 3.5)
    at_most = AtMost("size_ratio", "max_mb", "size_bytes", 2.0, scale=1e-6, unit="MB")
    result = FakeResult({"size_ratio": 3.5, "size_bytes": 2_000_001}, {"size_ratio": 1.0, "size_bytes": 8_000_000})
    assert at_least.judge(result).passed is True
    verdict = at_most.judge(result)
    assert (verdict.passed, verdict.note, verdict.reference) == (False, "2 MB", 8_000_000)
    assert at_most.describe() == "size_bytes <= 2 MB"


def test_an_unavailable_metric_gives_no_verdict() -> None:
    threshold = MaxDrop("accuracy_drop", "max", "top5", 0.01)
    verdict = threshold.judge(FakeResult({"top5": MetricUnavailable("too few classes")}, {}))
    assert (verdict.passed, verdict.label, verdict.note) == (None, "unavailable", "too few classes")


def test_explain_aligns_one_row_per_threshold() -> None:
    threshold = AtLeast("agreement", "min", "agreement", 0.98)
    text = explain([Verdict(threshold, 0.9712, 1.0, False, "")], MetricRegistry(), "title")
    assert text.splitlines() == [
        "title",
        "  marker               threshold          measured  reference  verdict",
        "  agreement(min=0.98)  agreement >= 0.98  0.9712    1.0000     FAIL",
    ]


def test_a_relative_latency_gate_fails_only_when_the_whole_interval_is_beyond_it() -> None:
    gate = IntervalAtLeast("latency_budget", "max_slowdown", "speedup", 1 / 1.05, written=1.05)
    straddling = FakeResult({"speedup": 0.9, "speedup_interval": {"low": 0.85, "high": 0.96}}, {"speedup": 1.0})
    verdict = gate.judge(straddling)  # the point estimate is over budget, the interval reaches the limit
    assert verdict.passed is True
    assert verdict.note == "95% CI [0.85, 0.96] reaches 0.952: not shown to be over budget"
    beyond = FakeResult({"speedup": 0.9, "speedup_interval": {"low": 0.85, "high": 0.94}}, {"speedup": 1.0})
    assert gate.judge(beyond).passed is False
    assert gate.label == "latency_budget(max_slowdown=1.05)"


def test_a_regression_rule_knows_which_way_is_worse() -> None:
    drop = RegressionRule.parse("top1:0.01").threshold(0.90)
    assert drop.judge(FakeResult({"top1": 0.89}, {"top1": 1.0})).passed is True
    assert drop.judge(FakeResult({"top1": 0.88}, {"top1": 1.0})).passed is False
    assert drop.judge(FakeResult({"top1": 0.99}, {"top1": 1.0})).passed is True  # better
    growth = RegressionRule.parse("size_bytes:10%").threshold(1000.0)
    assert growth.judge(FakeResult({"size_bytes": 1100.0}, {"size_bytes": 2000.0})).passed is True
    verdict = growth.judge(FakeResult({"size_bytes": 1200.0}, {"size_bytes": 2000.0}))
    assert (verdict.passed, verdict.note) == (False, "worse: +20% vs saved")
    assert growth.judge(FakeResult({"size_bytes": 500.0}, {"size_bytes": 2000.0})).passed is True  # smaller
    assert growth.label == "--netzip-compare-fail size_bytes:10%"


def test_a_ratio_to_the_reference_fails_beyond_its_limit_and_on_a_zero_reference() -> None:
    threshold = MaxRatio("compute_budget", "max_ratio", "macs", 0.5)
    assert threshold.describe() == "macs / reference <= 0.5"
    verdict = threshold.judge(FakeResult({"macs": 50.0}, {"macs": 100.0}))
    assert (verdict.passed, verdict.note) == (True, "ratio 0.5")
    assert threshold.judge(FakeResult({"macs": 51.0}, {"macs": 100.0})).passed is False
    assert threshold.judge(FakeResult({"macs": 1.0}, {"macs": 0.0})).passed is False


def test_a_regression_fails_on_a_value_that_is_not_a_number() -> None:
    threshold = RegressionRule.parse("top1:0.01").threshold(0.90)
    verdict = threshold.judge(FakeResult({"top1": math.nan}, {"top1": 1.0}))
    assert (verdict.passed, verdict.reference, verdict.note) == (False, 0.90, "now nan, not a finite number, vs saved")
    assert threshold.describe() == "top1 worse than saved by <= 0.01"


def test_a_failed_threshold_fails_even_beside_an_unmeasured_one() -> None:
    result = FakeResult({"top1": 0.5, "top5": MetricUnavailable("too few classes")}, {"top1": 1.0})
    thresholds = [MaxDrop("accuracy_drop", "max", name, 0.01) for name in ("top1", "top5")]
    judgement = Judgement.of((threshold.judge(result) for threshold in thresholds), result)
    assert judgement.explanation.splitlines()[0] == "netzip budgets of fp16 on cpu: 1 of 2 failed"
    assert judgement.decide("no counter", strict=True) == Decision("fail", judgement.explanation)


def test_what_cannot_be_measured_skips_or_fails_under_strict() -> None:
    result = FakeResult({"top1": 0.99, "top5": MetricUnavailable("too few classes")}, {"top1": 1.0})
    thresholds = [MaxDrop("accuracy_drop", "max", name, 0.01) for name in ("top1", "top5")]
    judgement = Judgement.of([threshold.judge(result) for threshold in thresholds], result)
    reason = "netzip cannot measure top5 (too few classes); no counter"
    assert judgement.decide("no counter") == Decision("skip", reason)
    assert judgement.decide("no counter", strict=True) == Decision("fail", f"{reason} (--netzip-strict)")
    assert Judgement.of([thresholds[0].judge(result)], result).decide() == Decision("pass")
