"""Threshold markers -> ``Threshold`` values; a threshold judges a ``Result`` and explains itself."""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pytest_netzip.attacks import ATTACKS, DEFAULT_STEPS, AttackSpec
from pytest_netzip.metrics import MetricRegistry, MetricUnavailable, MetricValue
from pytest_netzip.metrics.base import TOLERANCE
from pytest_netzip.metrics.latency import CONFIDENCE
from pytest_netzip.naming import unknown_name_message
from pytest_netzip.perturbation_search import PerturbationSpec
from pytest_netzip.perturbations import KINDS

if TYPE_CHECKING:
    import pytest

    from pytest_netzip.evaluation import Result



class BudgetError(ValueError):
    """A threshold marker was written wrongly; the message names the bad word and the valid ones."""


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


# Marker signatures: called with the marker's arguments, they give defaults and typo errors for free.


def _share(marker: str, keyword: str, value: object) -> float:
    number = _number(marker, keyword, value)
    if not 0.0 <= number <= 1.0:
        raise BudgetError(f"{marker}({keyword}={value!r}) is impossible: a share must lie in [0, 1]")
    return number


def _positive(marker: str, keyword: str, value: object) -> float:
    number = _number(marker, keyword, value)
    if number <= 0:
        raise BudgetError(f"{marker}({keyword}={value!r}) is impossible: it must be positive")
    return number


def _whole(marker: str, keyword: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BudgetError(f"{marker}({keyword}={value!r}) must be a whole number >= 1")
    return value


def _number(marker: str, keyword: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BudgetError(f"{marker}({keyword}={value!r}) must be a number")
    try:
        number = float(value)
    except OverflowError:  # an int beyond float's range, such as 10**400
        number = math.inf
    if not math.isfinite(number):
        raise BudgetError(f"{marker}({_shown(keyword, value)}) must be a finite number")
    return number


def _shown(keyword: str, value: object) -> str:
    """``keyword=value`` as a message shows it, a huge number cut short."""
    text = repr(value)
    return f"{keyword}={text if len(text) <= 20 else text[:8] + '...' + f' ({len(text)} digits)'}"


def _accuracy_drop(
    registry: MetricRegistry, *, max: float, metric: str = "top1", max_class_drop: float | None = None
) -> list[Threshold]:
    valid = [
        name for name in registry.names
        if registry[name].unit == "share" and registry[name].higher_is_better and not registry[name].relative
        and name not in ("class_accuracy", "sparsity")
    ]
    if metric not in valid:
        raise BudgetError(f"accuracy_drop(metric=...): {unknown_name_message('metric', metric, valid)}")
    thresholds = [Threshold("accuracy_drop", "max", metric, _share("accuracy_drop", "max", max), "max_drop")]
    if max_class_drop is not None:
        limit = _share("accuracy_drop", "max_class_drop", max_class_drop)
        thresholds.append(Threshold("accuracy_drop", "max_class_drop", "class_accuracy", limit, "max_drop"))
    return thresholds


def _agreement(
    registry: MetricRegistry, *, min: float | None = None, max_negative_flips: float | None = None
) -> list[Threshold]:
    thresholds = []
    if min is not None:
        thresholds.append(Threshold("agreement", "min", "agreement", _share("agreement", "min", min), "min"))
    if max_negative_flips is not None:
        limit = _share("agreement", "max_negative_flips", max_negative_flips)
        thresholds.append(Threshold("agreement", "max_negative_flips", "negative_flip_rate", limit, "max"))
    return thresholds


def _size_ratio(registry: MetricRegistry, *, min: float | None = None, max_mb: float | None = None) -> list[Threshold]:
    thresholds = []
    if min is not None:
        thresholds.append(Threshold("size_ratio", "min", "size_ratio", _positive("size_ratio", "min", min), "min"))
    if max_mb is not None:
        limit = _positive("size_ratio", "max_mb", max_mb)
        thresholds.append(Threshold("size_ratio", "max_mb", "size_bytes", limit, "max", scale=1e-6, unit="MB"))
    return thresholds


_COMPUTE_METRICS = ("macs", "chats", "effective_macs")


def _compute_budget(
    registry: MetricRegistry, *, max_macs: float | None = None, max_ratio: float | None = None, metric: str = "macs"
) -> list[Threshold]:
    if metric not in _COMPUTE_METRICS:
        raise BudgetError(f"compute_budget(metric=...): {unknown_name_message('metric', metric, _COMPUTE_METRICS)}")
    thresholds = []
    if max_macs is not None:
        limit = _positive("compute_budget", "max_macs", max_macs)
        thresholds.append(Threshold("compute_budget", "max_macs", metric, limit, "max"))
    if max_ratio is not None:
        limit = _positive("compute_budget", "max_ratio", max_ratio)
        thresholds.append(Threshold("compute_budget", "max_ratio", metric, limit, "max_ratio"))
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
    _whole("latency_budget", "batch_size", batch_size)
    thresholds = [
        Threshold("latency_budget", keyword, f"latency_{keyword}", _positive("latency_budget", keyword, limit), "max")
        for keyword, limit in (("p50_ms", p50_ms), ("p95_ms", p95_ms), ("p99_ms", p99_ms))
        if limit is not None
    ]
    if max_slowdown is not None:
        slowdown = _positive("latency_budget", "max_slowdown", max_slowdown)
        thresholds.append(Threshold("latency_budget", "max_slowdown", "speedup", 1 / slowdown, "min_interval",
                                    written=slowdown))
    if min_speedup is not None:
        limit = _positive("latency_budget", "min_speedup", min_speedup)
        thresholds.append(Threshold("latency_budget", "min_speedup", "speedup", limit, "min_interval"))
    return thresholds


def _memory_budget(registry: MetricRegistry, *, max_mb: float, batch_size: int = 1) -> list[Threshold]:
    _whole("memory_budget", "batch_size", batch_size)
    return [Threshold("memory_budget", "max_mb", "peak_memory_mb", _positive("memory_budget", "max_mb", max_mb), "max")]


def _energy_budget(
    registry: MetricRegistry,
    *,
    max_mj_per_sample: float | None = None,
    min_efficiency: float | None = None,
    batch_size: int = 1,
) -> list[Threshold]:
    _whole("energy_budget", "batch_size", batch_size)
    thresholds = []
    if max_mj_per_sample is not None:
        limit = _positive("energy_budget", "max_mj_per_sample", max_mj_per_sample)
        thresholds.append(Threshold("energy_budget", "max_mj_per_sample", "energy_mj_per_sample", limit, "max"))
    if min_efficiency is not None:
        limit = _positive("energy_budget", "min_efficiency", min_efficiency)
        thresholds.append(Threshold("energy_budget", "min_efficiency", "efficiency_ratio", limit, "min"))
    return thresholds


#: torchattacks attacks without a ``steps`` / an ``alpha`` parameter (the others among ATTACKS take both).
_NO_STEPS = frozenset({"FGSM", "FFGSM", "AutoAttack", "Square"})
_NO_ALPHA = frozenset({"FGSM", "APGD", "AutoAttack", "Square"})


def attack_spec(
    *, attack: str = "FGSM", eps: float, steps: int | None = None, alpha: float | None = None, samples: int = 256,
    seed: int = 0,
) -> AttackSpec:
    """The attack an ``adversarial_robustness`` marker asks for, with meaningful defaults; BudgetError if impossible.

    Iterative attacks default to 10 steps of 2.5 x eps / steps, so that they can reach ``eps``.
    """
    marker = "adversarial_robustness"
    canonical = {name.lower(): name for name in ATTACKS}
    if not isinstance(attack, str) or attack.lower() not in canonical:
        raise BudgetError(f"{marker}(attack=...): {unknown_name_message('attack', attack, ATTACKS)}")
    attack = canonical[attack.lower()]
    if _share(marker, "eps", eps) == 0:
        raise BudgetError(f"{marker}(eps=0) attacks nothing: eps must be positive (in [0, 1] units of the input range)")
    eps = float(eps)
    for keyword, value, lacking in (("steps", steps, _NO_STEPS), ("alpha", alpha, _NO_ALPHA)):
        if value is not None and attack in lacking:
            raise BudgetError(f"{marker}({keyword}={value!r}): {attack} takes no {keyword}")
    if attack not in _NO_STEPS:
        steps = DEFAULT_STEPS if steps is None else _whole(marker, "steps", steps)
    if attack not in _NO_ALPHA:
        alpha = _positive(marker, "alpha", alpha) if alpha is not None else eps * (2.5 / steps if steps else 1.25)
    return AttackSpec(attack, eps, steps, alpha, _whole(marker, "samples", samples), seed)


def _adversarial_robustness(
    registry: MetricRegistry,
    *,
    attack: str = "FGSM",
    eps: float,
    steps: int | None = None,
    alpha: float | None = None,
    max_drop: float | None = None,
    min_accuracy: float | None = None,
    samples: int = 256,
) -> list[Threshold]:
    attack_spec(attack=attack, eps=eps, steps=steps, alpha=alpha, samples=samples)
    marker, details = "adversarial_robustness", ("attack_detail",)
    thresholds = []
    if max_drop is not None:
        limit = _share(marker, "max_drop", max_drop)
        thresholds.append(Threshold(marker, "max_drop", "robust_accuracy", limit, "max_drop", details=details))
    if min_accuracy is not None:
        limit = _share(marker, "min_accuracy", min_accuracy)
        thresholds.append(Threshold(marker, "min_accuracy", "robust_accuracy", limit, "min", details=details))
    if not thresholds:
        raise BudgetError(f"{marker} sets no threshold: give max_drop or min_accuracy")
    return thresholds


def perturbation_spec(
    *, kinds: Sequence[str] | None = None, max_severity: float = 1.0, max_drop: float | None = None,
    min_agreement: float | None = None, samples: int = 256, max_examples: int = 20, seed: int = 0,
) -> PerturbationSpec:
    """The search a ``perturbation_robustness`` marker asks for; BudgetError if impossible."""
    marker = "perturbation_robustness"
    if kinds is not None:
        if isinstance(kinds, str):
            kinds = [kinds]
        if not isinstance(kinds, (list, tuple)) or not kinds:
            raise BudgetError(f"{marker}(kinds={kinds!r}) must list perturbation kinds among {', '.join(KINDS)}")
        for kind in kinds:
            if not isinstance(kind, str) or kind not in KINDS:
                raise BudgetError(f"{marker}(kinds=...): {unknown_name_message('perturbation kind', kind, list(KINDS))}")
    kinds = tuple(kinds or ())  # empty: every kind that applies to the inputs
    if not 0 < _number(marker, "max_severity", max_severity) <= 1:
        raise BudgetError(f"{marker}(max_severity={max_severity!r}) is impossible: severities lie in (0, 1]")
    return PerturbationSpec(
        kinds, float(max_severity),
        None if max_drop is None else _share(marker, "max_drop", max_drop),
        None if min_agreement is None else _share(marker, "min_agreement", min_agreement),
        _whole(marker, "samples", samples), _whole(marker, "max_examples", max_examples), seed,
    )


def _perturbation_robustness(
    registry: MetricRegistry,
    *,
    kinds: Sequence[str] | None = None,
    max_severity: float = 1.0,
    max_drop: float | None = None,
    min_agreement: float | None = None,
    samples: int = 256,
    max_examples: int = 20,
) -> list[Threshold]:
    spec = perturbation_spec(kinds=kinds, max_severity=max_severity, max_drop=max_drop, min_agreement=min_agreement,
                             samples=samples, max_examples=max_examples)
    marker, details = "perturbation_robustness", ("worst_perturbation",)
    thresholds = []
    if spec.max_drop is not None:
        thresholds.append(Threshold(marker, "max_drop", "perturbation_drop", spec.max_drop, "max", details=details))
    if spec.min_agreement is not None:
        thresholds.append(Threshold(marker, "min_agreement", "perturbation_agreement", spec.min_agreement, "min",
                                    details=details))
    if not thresholds:
        raise BudgetError(f"{marker} sets no threshold: give max_drop or min_agreement")
    return thresholds


#: Threshold markers by name, with the description registered for ``pytest --markers``.
THRESHOLD_MARKERS: dict[str, tuple[Callable[..., list[Threshold]], str]] = {
    "accuracy_drop": (_accuracy_drop, "accuracy_drop(max, metric='top1', max_class_drop=None): fall in accuracy"),
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


#: The ``marker`` of thresholds that ``--netzip-compare-fail`` sets.
COMPARE_FAIL = "--netzip-compare-fail"


@dataclass(frozen=True)
class RegressionRule:
    """``metric:amount`` or ``metric:amount%`` from ``--netzip-compare-fail``."""

    text: str
    metric: str
    amount: float
    percent: bool

    @classmethod
    def parse(cls, text: str) -> RegressionRule:
        """The rule ``text`` spells; BudgetError saying how to write one."""
        metric, _, amount = text.partition(":")
        percent = amount.endswith("%")
        try:
            number = float(amount.removesuffix("%"))
        except ValueError:
            number = -1.0
        if not metric or number < 0 or math.isnan(number):
            raise BudgetError(
                f"--netzip-compare-fail {text!r}: write metric:amount (top1:0.01) or metric:percent% (latency_p95_ms:10%)"
            )
        return cls(text, metric, number, percent)

    def threshold(self, saved: float) -> Threshold:
        """The threshold this rule sets for an item whose saved value is ``saved``."""
        return Threshold(COMPARE_FAIL, self.text, self.metric, self.amount, "max_regression",
                         unit="%" if self.percent else "", baseline=saved)


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
        raise BudgetError(f"{mark.name} sets no threshold: give at least one of {', '.join(keywords)}")
    return thresholds
