"""The measured subject: one streamed pass per model, device and evaluation set, shared by every metric that needs it."""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from pytest_netzip.data.batches import EvalData
from pytest_netzip.data.predictions import Predictions
from pytest_netzip.data.scoring import TaskOutputs, predict, stacked
from pytest_netzip.data.workload import DEFAULT_WORKLOAD, Workload
from pytest_netzip.devices import to_device
from pytest_netzip.errors import DataError, MetricUnavailable, WrongTask
from pytest_netzip.metrics import Metric, MetricValue, is_number
from pytest_netzip.metrics.base import Measurement, V
from pytest_netzip.metrics.base import Subject as Measured

if TYPE_CHECKING:
    import torch
    from torch import nn

    from pytest_netzip.data.detection import Detections
    from pytest_netzip.data.language import TokenOutputs
    from pytest_netzip.data.regression import RegressionOutputs
    from pytest_netzip.data.segmentation import SegmentationOutputs

T = TypeVar("T")

#: What ``Subject.uses`` lists for a measurement that read the model's outputs on the evaluation set.
OUTPUTS = "outputs"
#: What ``Subject.cache`` says of the outputs of a model that some passes reused and others made.
MADE, UNCACHED = "made", "uncached"
OutputsT = TypeVar("OutputsT", bound=TaskOutputs)

#: A model's outputs on the evaluation set, and the task its first batch shows (or why it shows none).
Predicted = tuple[TaskOutputs, str | DataError]


class OutputsStore(Protocol):
    """Where a subject's outputs outlive the session (``--netzip-cache``:
    :class:`pytest_netzip.output.disk_cache.DiskCache`)."""

    def outputs(self, subject: Subject, task: str | None, predict: Callable[[], Predicted]) -> tuple[Predicted, str]:
        """``predict()``'s value for ``subject`` scored as ``task``, or the one kept from an earlier run; with where
        it came from (``reused``, ``made`` or ``uncached``)."""


class Subject:
    """A model as measured on one device and evaluation set; each measurement is made at most once.

    A compressed model's subject knows its ``reference``, whose samples it must see in the same order. With a
    ``store``, its outputs come from there where an earlier run kept them; :attr:`cache` says, by what (``model``,
    ``outputs``), whether a value was ``reused`` from ``--netzip-cache``, ``made`` and kept there, or ``uncached``.
    """

    def __init__(
        self,
        label: str,
        model: nn.Module,
        data: EvalData,
        device: torch.device,
        reference: Subject | None = None,
        compress_seconds: float | None = None,
        store: OutputsStore | None = None,
        cache: dict[str, str] | None = None,
    ) -> None:
        self.label = label
        self.model = model
        self.data = data
        self.device = device
        self.reference = reference
        self.compress_seconds = compress_seconds
        self.store = store
        self.cache = dict(cache or {})
        self._outcomes: dict[Hashable, object] = {}  # predictions, compute, timings..., or why they failed
        self._values: dict[tuple[str, Workload | None, Hashable], MetricValue | MetricUnavailable] = {}
        self._uses: dict[tuple[str, Workload | None, Hashable], list[str]] = {}  # the metrics each one measured
        self._measuring: list[list[str]] = []  # what each measurement under way has measured so far
        self._resolved: TaskOutputs | None = None  # the outputs of the first task they were scored as
        self._inferred: str | DataError | None = None  # the task the first batch shows, or why it shows none

    @property
    def outputs(self) -> TaskOutputs:
        """The model's outputs on the evaluation set, as its task's (one forward pass, tried once, on first use).

        The measurements under way record that they read them (``uses`` lists :data:`OUTPUTS`).
        """
        for measuring in self._measuring:
            measuring.append(OUTPUTS)
        return self._resolved if self._resolved is not None else self.outputs_as(None)

    def outputs_as(self, task: str | None) -> TaskOutputs:
        """The outputs scored as ``task`` (None: the task the first batch shows, a DataError where it shows none).

        A compressed model's are scored as its reference's, whatever ``task``: the two are compared.
        """
        if self.reference is not None:
            return self.once("outputs", self._predict)
        resolved = self._resolved
        if resolved is not None and (task == resolved.task or task is None and self._inferred in (None, resolved.task)):
            return resolved
        if task is None and isinstance(self._inferred, DataError):
            raise self._inferred
        outputs = self.once(("outputs", task), lambda: self._predict(task))
        if self._resolved is None:
            self._resolved = outputs
        return outputs

    def check_task(self, task: str | None) -> None:
        """DataError unless this model's outputs are those of ``task`` (a test's declaration; None: the task they
        show, which must be clear). Checking evaluates the model (once, shared by every test)."""
        self.outputs_as(task)

    def _as(self, kind: type[OutputsT]) -> OutputsT:
        outputs = self.outputs
        if not isinstance(outputs, kind):
            raise WrongTask(f"needs a {kind.task.replace('_', ' ')} model; this model returns {outputs.kind}")
        return outputs

    @property
    def predictions(self) -> Predictions:
        """A classifier's predictions on the evaluation set; WrongTask for a model of another task."""
        return self._as(Predictions)

    @predictions.setter
    def predictions(self, predictions: Predictions) -> None:
        self._resolved = predictions

    @property
    def logits(self) -> torch.Tensor:
        """A classifier's logits (samples, classes), float32 on the CPU, for a metric that needs them whole: one
        more pass over the evaluation data on first use, kept for the next (so memory grows with the data; netzip's
        own metrics read :attr:`predictions`, a few numbers per sample)."""
        predictions = self.predictions
        return self.once("logits", lambda: self._stacked(predictions.inputs).float())

    @property
    def values(self) -> torch.Tensor:
        """A regression model's values (samples, outputs), float64 on the CPU, for a metric that needs them whole,
        as :attr:`logits` are a classifier's."""
        regression = self.regression
        return self.once("values", lambda: self._stacked(regression.inputs).double().reshape(regression.samples, -1))

    def _stacked(self, expected: torch.Tensor | None) -> torch.Tensor:
        if expected is None:
            raise DataError(f"the outputs of {self.label} were given, not computed from netzip_data: there is no "
                            "pass to run again for every output")
        return self.blamed("evaluating", lambda: stacked(self.model, self.data, self.device, expected))

    @property
    def detections(self) -> Detections:
        """A detector's detections on the evaluation set; WrongTask for a model of another task."""
        from pytest_netzip.data.detection import Detections

        return self._as(Detections)

    @detections.setter
    def detections(self, detections: Detections) -> None:
        self._resolved = detections

    @property
    def regression(self) -> RegressionOutputs:
        """A regression model's error sums on the evaluation set; WrongTask for a model of another task."""
        from pytest_netzip.data.regression import RegressionOutputs

        return self._as(RegressionOutputs)

    @property
    def segmentation(self) -> SegmentationOutputs:
        """A segmentation model's pixel counts on the evaluation set; WrongTask for a model of another task."""
        from pytest_netzip.data.segmentation import SegmentationOutputs

        return self._as(SegmentationOutputs)

    @property
    def tokens(self) -> TokenOutputs:
        """A language model's per-token sums on the evaluation set; WrongTask for a model of another task."""
        from pytest_netzip.data.language import TokenOutputs

        return self._as(TokenOutputs)

    def batch(self, workload: Workload) -> Any:
        """The example input repeated to the workload's batch size, on this model's device."""
        return to_device(workload.batch(self.data.example()), self.device)

    def once(self, key: Hashable, produce: Callable[[], T]) -> T:
        """``produce()``'s value, or the DataError or MetricUnavailable it raised, remembered under ``key``."""
        if key not in self._outcomes:
            try:
                self._outcomes[key] = produce()
            except (DataError, MetricUnavailable) as error:
                self._outcomes[key] = error
        outcome = self._outcomes[key]
        if isinstance(outcome, Exception):
            raise outcome
        return cast(T, outcome)  # what produce() returned for this key

    def blamed(self, action: str, work: Callable[[], T]) -> T:
        """``work()``, with any error of the user's model or data turned into a DataError naming this model."""
        try:
            return work()
        except (DataError, MetricUnavailable):
            raise
        except Exception as exc:
            raise DataError(f"{action} {self.label} on {self.device} failed: {type(exc).__name__}: {exc}") from exc

    def _predict(self, task: str | None = None) -> TaskOutputs:
        reference = self.reference
        expected = reference.outputs if reference is not None else None

        scored = expected.task if expected is not None else task

        def run() -> Predicted:
            return predict(self.model, self.data, self.device, scored, reference.model if reference is not None else None)

        if self.store is None:
            outputs, self._inferred = self.blamed("evaluating", run)
        else:
            (outputs, self._inferred), origin = self.store.outputs(self, scored, lambda: self.blamed("evaluating", run))
            seen = self.cache.get("outputs", origin)  # a reference scored as two tasks: reused only if both were
            self.cache["outputs"] = origin if seen == origin else MADE if MADE in (seen, origin) else UNCACHED
        if outputs.nonfinite:
            raise DataError(f"{self.label} returns NaN or infinite outputs for {outputs.nonfinite} of {outputs.samples} "
                            "samples: no gate can judge them")
        if isinstance(outputs, Predictions) and outputs.samples and outputs.tied == outputs.samples:
            raise DataError(f"{self.label} ties its highest logits on every one of its {outputs.samples} samples (all "
                            "equal? float16 or bfloat16 rounding tiny logits to zero, or a collapsed model): its "
                            "predictions would be the order of its classes, and no gate can judge them")
        if expected is not None and not outputs.same_samples(expected):
            raise DataError(
                "netzip_data gave different samples to the reference and to "
                f"{self.label}: shuffle=True, random transforms or sampling? Each model must see the same "
                "samples in the same order"
            )
        return outputs

    def measure(self, metric: Metric[V], reference: Measured, workload: Workload = DEFAULT_WORKLOAD) -> V:
        """``metric`` of this model given ``reference``; raises MetricUnavailable when it cannot be had."""
        key = (metric.name, workload if metric.workload else None, metric.setting)
        if key not in self._values or metric.fresh:
            self._measuring.append([])
            try:
                self._values[key] = _checked(metric, metric.value(Measurement(self, reference, workload)))
            except WrongTask as wrong:
                self._values[key] = MetricUnavailable(f"{metric.name} {wrong.reason}")
            except MetricUnavailable as unavailable:
                self._values[key] = unavailable
            finally:
                self._uses[key] = self._measuring.pop()
        for measuring in self._measuring:  # the measurements under way hold this one, and what it holds
            measuring.extend([metric.name, *self._uses[key]])
        value = self._values[key]
        if isinstance(value, MetricUnavailable):
            raise value
        return value  # type: ignore[return-value]  # kept under metric's name: the V that metric.compute gave

    def measured(
        self, name: str, workload: Workload = DEFAULT_WORKLOAD, setting: Hashable = None
    ) -> MetricValue | MetricUnavailable | None:
        """What ``measure`` found for ``name`` (under ``workload`` and ``setting``) so far, without measuring; None if nothing."""
        return self._values.get((name, workload, setting), self._values.get((name, None, setting)))

    def uses(self, name: str, workload: Workload = DEFAULT_WORKLOAD, setting: Hashable = None) -> list[str]:
        """The metrics that measuring ``name`` (under ``workload`` and ``setting``) measured on this model on the way."""
        return self._uses.get((name, workload, setting), self._uses.get((name, None, setting), []))


def _checked(metric: Metric[Any], value: object) -> MetricValue:
    """``value`` if it is a number, a dict of numbers by name, or the text of a ``label`` metric, as JSON and tables need."""
    if is_number(value):
        return _within_float(value)
    if isinstance(value, dict) and all(isinstance(k, str) and is_number(v) for k, v in value.items()):
        return {key: _within_float(number) for key, number in value.items()}
    if metric.unit == "label" and isinstance(value, str):
        return value
    raise TypeError(
        f"metric {metric.name!r} returned {type(value).__name__}; a metric returns a float, a dict of floats, "
        "or (with unit='label') a str"
    )


def _within_float(number: float) -> float:
    """``number``, or infinity for an int beyond a float's range (10**400), which tables and JSON cannot hold."""
    try:
        float(number)
    except OverflowError:
        return math.inf if number > 0 else -math.inf
    return number
