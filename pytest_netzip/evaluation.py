"""The measured subject: one streamed pass per model, device and evaluation set, shared by every metric that needs it."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

from pytest_netzip.data.batches import BatchFormat, EvalData
from pytest_netzip.data.predictions import Predictions
from pytest_netzip.data.scoring import TASKS, TaskOutputs, predict
from pytest_netzip.data.space import InputSpace
from pytest_netzip.data.workload import DEFAULT_WORKLOAD, Workload
from pytest_netzip.devices import on_device, to_device
from pytest_netzip.errors import DataError, MetricUnavailable, WrongTask
from pytest_netzip.metrics import Metric, MetricRegistry, MetricValue, is_number
from pytest_netzip.metrics.base import V
from pytest_netzip.naming import unknown_name_message

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
OutputsT = TypeVar("OutputsT", bound=TaskOutputs)


class Subject:
    """A model as measured on one device and evaluation set; each measurement is made at most once.

    A compressed model's subject knows its ``reference``, whose samples it must see in the same order.
    """

    def __init__(
        self,
        label: str,
        model: nn.Module,
        data: EvalData,
        device: torch.device,
        reference: Subject | None = None,
        compress_seconds: float | None = None,
    ) -> None:
        self.label = label
        self.model = model
        self.data = data
        self.device = device
        self.reference = reference
        self.compress_seconds = compress_seconds
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
    def detections(self) -> Detections:
        """A detector's detections on the evaluation set; WrongTask for a model of another task."""
        from pytest_netzip.data.detection import Detections

        return self._as(Detections)

    @detections.setter
    def detections(self, detections: Detections) -> None:
        self._resolved = detections

    @property
    def regression(self) -> RegressionOutputs:
        """A regression model's values on the evaluation set; WrongTask for a model of another task."""
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

        def run() -> tuple[TaskOutputs, str | DataError]:
            return predict(self.model, self.data, self.device, expected.task if expected is not None else task,
                           reference.model if reference is not None else None)

        outputs, self._inferred = self.blamed("evaluating", run)
        if outputs.nonfinite:
            raise DataError(f"{self.label} returns NaN or infinite outputs for {outputs.nonfinite} of {outputs.samples} "
                            "samples: no gate can judge them")
        if expected is not None and not outputs.same_samples(expected):
            raise DataError(
                "netzip_data gave different samples to the reference and to "
                f"{self.label}: shuffle=True, random transforms or sampling? Each model must see the same "
                "samples in the same order"
            )
        return outputs

    def measure(self, metric: Metric[V], reference: Subject, workload: Workload = DEFAULT_WORKLOAD) -> V:
        """``metric`` of this model given ``reference``; raises MetricUnavailable when it cannot be had."""
        key = (metric.name, workload if metric.workload else None, metric.setting)
        if key not in self._values or metric.fresh:
            arguments = (self, reference, workload) if metric.workload else (self, reference)
            self._measuring.append([])
            try:
                self._values[key] = _checked(metric, metric.compute(*arguments))
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


class MetricValues(Mapping[str, MetricValue]):
    """A subject's metrics by name, each measured on first access and remembered.

    Reading ``values[name]`` measures it; iterating, ``len`` and ``in`` see only what was measured so
    far, so ``dict(values)`` is what an item measured, not every registered metric measured at once.

    Reading a compressed model's metric measures the reference's too, so tables can compare them. Where
    the item declares a ``task``, every read checks it against the reference's outputs: each item gets
    its own verdict, whatever the items that share the models declared.
    """

    def __init__(
        self, subject: Subject, reference: Subject, registry: MetricRegistry, workload: Workload, task: str | None
    ) -> None:
        self._subject = subject
        self._reference = reference
        self._registry = registry
        self._workload = workload
        self._task = task
        self._accessed: list[str] = []

    def __getitem__(self, name: str) -> MetricValue:
        metric = self._registry[name]
        if name not in self._accessed:
            self._accessed.append(name)
        self.check_task()
        try:
            if self._subject is not self._reference:
                with contextlib.suppress(MetricUnavailable):
                    self._reference.measure(metric, self._reference, self._workload)
            value: MetricValue = self._subject.measure(metric, self._reference, self._workload)
        finally:  # a metric that read the outputs (now or for another item) needs the task they show to be clear
            if self._task is None and OUTPUTS in self._subject.uses(name, self._workload, metric.setting):
                self._reference.check_task(None)
        return value

    def check_task(self) -> None:
        """DataError unless the reference's outputs are those of the item's declared task (none declared: nothing
        to check until a metric reads the outputs)."""
        if self._task is not None:
            self._reference.check_task(self._task)

    def __iter__(self) -> Iterator[str]:
        """The names measured so far, with a value: iterating (``dict(result.metrics)``) never measures."""
        return iter([name for name, value in self.measured().items() if not isinstance(value, MetricUnavailable)])

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in list(self)

    def measured(self, names: Iterable[str] | None = None) -> dict[str, MetricValue | MetricUnavailable]:
        """Values (or why they are unavailable) of ``names`` (by default those read so far) measured so far.

        Never measures anything, so it cannot fail.
        """
        values = {
            name: self._subject.measured(name, self._workload, self._registry[name].setting if name in self._registry else None)
            for name in (self._accessed if names is None else names)
        }
        return {name: value for name in self._registry.ordered(values) if (value := values[name]) is not None}

    def held(self) -> list[str]:
        """The registered metrics that the measurements read so far measured on the way (a size_ratio's sizes)."""
        return [
            used for name in self._accessed
            for used in self._subject.uses(name, self._workload, self._registry[name].setting)
            if used in self._registry
        ]


class Result:
    """A compressed model's metrics beside the reference's on the same device and data."""

    def __init__(
        self, *, model: str, compressor: str, device: str, compressed: Subject, reference: Subject,
        registry: MetricRegistry, workload: Workload = DEFAULT_WORKLOAD, task: str | None = None,
    ) -> None:
        self.model = model
        self.compressor = compressor
        self.device = device
        self.workload = workload
        self.metrics = MetricValues(compressed, reference, registry, workload, task)
        self.reference_metrics = MetricValues(reference, reference, registry, workload, task)
        self.registry = registry

    def check_task(self) -> None:
        """DataError unless the models are what the item's ``task`` declares: judged even if no metric is read."""
        self.metrics.check_task()

    def complete(self) -> None:
        """Record what the item's measurements hold (the sizes behind a size_ratio), and measure what comes free
        with what was measured (by any item): a whole group, NetZIP's P, the clean top1 beside robustness."""
        values = self.metrics.measured(self.registry.names)
        measured = [name for name, value in values.items() if not isinstance(value, MetricUnavailable)]
        self._record(self.registry.derived(measured))
        self._record(self.metrics.held())  # after the derived ones, so that P's top1 is among them

    def _record(self, names: Iterable[str]) -> None:
        """Read ``names``, so that the item's record holds them; what fails is left out: the item is over."""
        for name in names:
            with contextlib.suppress(MetricUnavailable, DataError):
                self.metrics[name]  # noqa: B018 - measures it

    @property
    def threads(self) -> int:
        """The CPU threads torch uses for this process."""
        import torch

        return torch.get_num_threads()

    def __repr__(self) -> str:
        return f"<netzip Result {self.compressor} on {self.device} for {self.model}>"


def evaluate(
    reference: nn.Module,
    compressed: nn.Module,
    data: Iterable[Any],
    metrics: Iterable[str] = ("top1", "agreement", "size_ratio"),
    device: str | torch.device = "cpu",
    max_samples: int | None = None,
    task: str | None = None,
    input_range: tuple[float, float] = (0.0, 1.0),
    normalization: tuple[Sequence[float], Sequence[float]] | None = None,
    target_key: str = "labels",
    output: Callable[[Any], Any] | None = None,
) -> dict[str, dict[str, MetricValue | str]]:
    """Measure ``metrics`` of ``compressed`` and ``reference`` without pytest.

    ``task`` (one of :data:`~pytest_netzip.data.scoring.TASKS`) says what the models are; by default their
    outputs and targets tell. ``input_range``, ``normalization``, ``target_key`` and ``output`` mean what the
    fixtures ``netzip_input_range``, ``netzip_input_normalization``, ``netzip_target_key`` and ``netzip_output``
    mean. Returns ``{"compressed": {...}, "reference": {...}}``; a metric that cannot be measured maps to the
    string ``"unavailable: <reason>"``. Data the models cannot be scored on raises DataError.
    """
    import torch

    if task not in (None, *TASKS):
        raise ValueError(unknown_name_message("task", task, TASKS))
    device = torch.device(device)
    eval_data = EvalData(data, max_samples, space=InputSpace.of(input_range, normalization),
                         format=BatchFormat(target_key, output))
    registry = MetricRegistry()
    names = list(metrics)
    for name in names:
        registry[name]  # noqa: B018 - fail on an unknown name before any forward pass
    reference_subject = Subject("reference", on_device(reference, device), eval_data, device)
    compressed_subject = Subject("compressed", on_device(compressed, device), eval_data, device, reference_subject)
    result = Result(
        model=type(reference).__name__, compressor="compressed", device=str(device),
        compressed=compressed_subject, reference=reference_subject, registry=registry, task=task,
    )

    def plain(values: dict[str, MetricValue | MetricUnavailable]) -> dict[str, MetricValue | str]:
        return {
            name: f"unavailable: {value.reason}" if isinstance(value, MetricUnavailable) else value
            for name, value in values.items()
        }

    result.check_task()
    for name in names:
        with contextlib.suppress(MetricUnavailable):
            result.metrics[name]  # noqa: B018 - measures it for both models
    return {
        "compressed": plain(result.metrics.measured(names)),
        "reference": plain(result.reference_metrics.measured(names)),
    }
