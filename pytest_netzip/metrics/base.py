"""The metric contract: a named, documented measurement of a model against the reference."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Hashable
from dataclasses import KW_ONLY, dataclass, field, fields
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeGuard, TypeVar

if TYPE_CHECKING:
    import torch
    from torch import nn

    from pytest_netzip.data.batches import EvalData
    from pytest_netzip.data.detection import Detections
    from pytest_netzip.data.language import TokenOutputs
    from pytest_netzip.data.predictions import Predictions
    from pytest_netzip.data.regression import RegressionOutputs
    from pytest_netzip.data.segmentation import SegmentationOutputs
    from pytest_netzip.data.workload import Workload
    from pytest_netzip.errors import MetricUnavailable

#: A metric's value: a number, numbers by key (such as accuracy per class), or a label (unit ``label``).
MetricValue = float | dict[str, float] | str


#: Numbers at least this large are shown in scientific notation, whatever their unit.
_HUGE = 1e15


#: Slack for comparisons of values that went through float arithmetic (0.97 - 0.96 > 0.01).
TOLERANCE = 1e-9


T = TypeVar("T")

#: The kind of value a metric gives: a float, floats by key, or (unit ``label``) a str.
V = TypeVar("V", bound=MetricValue)


class Subject(Protocol):
    """A model as metrics measure it, on one device and evaluation set (``pytest_netzip.evaluation.Subject``).

    A metric family measures through it: ``once`` keeps what a measurement found (or why it failed),
    ``blamed`` names the model in an error of the user's code, ``batch`` is the example input at a
    workload's batch size on the model's device.
    """

    label: str
    model: nn.Module
    data: EvalData
    device: torch.device
    compress_seconds: float | None

    @property
    def reference(self) -> Subject | None:
        """The reference this model was compressed from; None for the reference itself."""

    @property
    def predictions(self) -> Predictions:
        """A classifier's predictions on the evaluation set: its top-1 label and target rank per sample."""

    @property
    def logits(self) -> torch.Tensor:
        """A classifier's logits (samples, classes) on the evaluation set: one more pass, kept."""

    @property
    def values(self) -> torch.Tensor:
        """A regression model's values (samples, outputs) on the evaluation set: one more pass, kept."""

    @property
    def detections(self) -> Detections:
        """A detector's detections on the evaluation set."""

    @property
    def regression(self) -> RegressionOutputs:
        """A regression model's error sums on the evaluation set."""

    @property
    def segmentation(self) -> SegmentationOutputs:
        """A segmentation model's pixel counts on the evaluation set."""

    @property
    def tokens(self) -> TokenOutputs:
        """A language model's per-token sums on the evaluation set."""

    def once(self, key: Hashable, produce: Callable[[], T]) -> T:
        """``produce()``'s value, computed on the first call for ``key`` and remembered."""

    def blamed(self, action: str, work: Callable[[], T]) -> T:
        """``work()``, an error of the user's model or data named as ``action`` of this model."""

    def batch(self, workload: Workload) -> Any:
        """The example input repeated to ``workload``'s batch size, on this model's device."""

    def measure(self, metric: Metric[V], reference: Subject, workload: Workload = ...) -> V:
        """``metric`` of this model given ``reference``."""

    def measured(self, name: str, workload: Workload = ..., setting: Hashable = None) -> MetricValue | MetricUnavailable | None:
        """What ``measure`` found for ``name`` so far, without measuring."""


def is_number(value: object) -> TypeGuard[float]:
    """Whether ``value`` is a plain number (not a bool): what tables compare, JSON rules and JUnit read."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_whole(value: object) -> TypeGuard[int]:
    """Whether ``value`` is a whole number (an int, not a bool): what counts and rounds take."""
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class Measurement:
    """What a metric is measured in: ``subject`` given ``reference`` (for the reference's own row, both are
    it), under the item's ``workload``."""

    subject: Subject
    reference: Subject
    workload: Workload


#: The parts of a :class:`Measurement` a metric's ``compute`` may name.
MEASUREMENT_PARTS = tuple(part.name for part in fields(Measurement))


@dataclass(frozen=True)
class Metric(Generic[V]):
    """A measurement of ``subject`` given the ``reference`` (for the reference row, both are it).

    ``unit`` selects the formatting (``share``, ``bytes``, ``count``, ``ops``, ``ratio``, or a physical
    unit such as ``ms`` shown after the number); ``higher_is_better`` gives the direction of a
    regression; a ``share`` lies in [0, 1]; ``points`` is a score compared in points as shares are, but
    unbounded (r2); a ``relative`` metric already compares with the reference
    (agreement, ratios), so tables show no change against it. ``compute`` takes, by name, the parts of
    a :class:`Measurement` it reads, as a pytest hook names its arguments: ``subject``, ``reference``, and
    ``workload`` for a metric that runs the model (latency, memory, energy), whose values are then kept per
    workload. Metrics of one ``group`` come from one measurement, so they are reported together;
    those not ``summary`` go to the JSON only, and to the table when a budget uses them. A ``fresh`` metric
    combines others, so it is computed again each time it is read. A ``label`` metric is text (how a value
    was measured). A metric configured by a marker carries its ``setting``: values are kept per setting.
    """

    name: str
    compute: Callable[..., V]
    description: str
    _: KW_ONLY
    unit: str = "ratio"
    higher_is_better: bool = True
    relative: bool = False
    group: str | None = None
    summary: bool = True
    fresh: bool = False
    setting: Hashable = None
    arguments: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "arguments", _arguments(self.name, self.compute))

    @property
    def workload(self) -> bool:
        """Whether the metric reads the workload (it runs the model): its values are kept per workload."""
        return "workload" in self.arguments

    def value(self, measurement: Measurement) -> V:
        """``compute`` given the parts of ``measurement`` it names."""
        return self.compute(**{name: getattr(measurement, name) for name in self.arguments})

    def format(self, value: MetricValue) -> str:
        """The value as shown in tables and messages (any metric's: tables show values by name)."""
        if isinstance(value, str):
            return value
        if isinstance(value, dict):
            return f"{len(value)} values"
        if not math.isfinite(value) or abs(value) >= _HUGE:  # 1e308 in full would be 309 digits
            unit = {"bytes": "B", "share": "", "points": "", "count": "", "ops": "", "ratio": ""}.get(self.unit, self.unit)
            return f"{value:.3g} {unit}".rstrip()
        if self.unit in ("share", "points"):
            return f"{value:.4f}"
        if self.unit == "bytes":
            return _format_scaled(value, (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)), "B")
        if self.unit == "count":
            return f"{value:,.0f}"
        if self.unit == "ops":
            return _format_scaled(value, (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)), "")
        number = f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
        return number if self.unit == "ratio" else f"{number} {self.unit}"


def _arguments(name: str, compute: Callable[..., object]) -> tuple[str, ...]:
    """The parts of a :class:`Measurement` that ``compute`` names; a TypeError for a parameter that is none."""
    parameters = inspect.signature(compute).parameters.values()
    wanted = tuple(parameter.name for parameter in parameters if parameter.name in MEASUREMENT_PARTS)
    stars: dict[object, str] = {  # none of these can be given by name
        inspect.Parameter.VAR_POSITIONAL: "*", inspect.Parameter.VAR_KEYWORD: "**", inspect.Parameter.POSITIONAL_ONLY: ""}
    unknown = [stars.get(parameter.kind, "") + parameter.name for parameter in parameters
               if parameter.kind in stars
               or parameter.name not in MEASUREMENT_PARTS and parameter.default is inspect.Parameter.empty]
    if unknown:
        raise TypeError(f"metric {name!r}: compute takes, by name, any of {', '.join(MEASUREMENT_PARTS)}; it also "
                        f"asks for {', '.join(map(repr, unknown))}")
    return wanted


def _format_scaled(value: float, scales: tuple[tuple[str, float], ...], unit: str) -> str:
    """``value`` with the largest prefix it reaches: ``156.43 kB``, ``1.81 G``."""
    for prefix, scale in scales:
        if abs(value) >= scale:
            return f"{value / scale:.2f} {prefix}"
    return f"{value:.0f} {unit}".rstrip()


def metric(
    name: str,
    description: str,
    *,
    unit: str = "ratio",
    higher_is_better: bool = True,
    relative: bool = False,
    group: str | None = None,
    summary: bool = True,
    fresh: bool = False,
) -> Callable[[Callable[..., V]], Metric[V]]:
    """Decorator turning ``compute(subject, reference)`` (any of ``subject``, ``reference``, ``workload``, by
    name) into a :class:`Metric` named ``name``."""

    def wrap(compute: Callable[..., V]) -> Metric[V]:
        return Metric(name, compute, description, unit=unit, higher_is_better=higher_is_better, relative=relative,
                      group=group, summary=summary, fresh=fresh)

    return wrap
