"""One forward pass per model, device and evaluation set, shared by every metric that needs it."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pytest_netzip.devices import on_device, synchronize
from pytest_netzip.inputs import InputSpace
from pytest_netzip.metrics import Metric, MetricRegistry, MetricUnavailable, MetricValue, is_number
from pytest_netzip.metrics.base import TASKS, WrongTask
from pytest_netzip.metrics.combined import derived_metrics
from pytest_netzip.metrics.compute import Compute, count_compute
from pytest_netzip.metrics.energy import Energy, counter_for, measure_energy, MIN_WINDOW
from pytest_netzip.metrics.latency import MIN_PAIRED_ROUNDS, Latency, PairedLatency, time_calls
from pytest_netzip.metrics.memory import peak_memory_bytes
from pytest_netzip.metrics.size import serialized_state_dict
from pytest_netzip.naming import unknown_name_message
from pytest_netzip.workload import DEFAULT_WORKLOAD, Workload

if TYPE_CHECKING:
    import torch
    from torch import nn

    from pytest_netzip.detection import Detections


T = TypeVar("T")


class DataError(TypeError):
    """The evaluation data or the model's outputs are not what the plugin can score."""


@dataclass(frozen=True)
class EvalData:
    """The user's evaluation batches, bounded to ``max_samples`` samples, and the space their inputs lie in."""

    batches: Iterable[Any]
    max_samples: int | None = None
    example_input: Any = None
    space: InputSpace = InputSpace()

    def __post_init__(self) -> None:
        if not isinstance(self.batches, Iterable):
            raise DataError(
                f"netzip_data returned {type(self.batches).__name__} {self.batches!r:.40}; it must return a "
                "re-iterable of (inputs, targets) batches, such as a list or a DataLoader"
            )
        if isinstance(self.batches, Iterator):
            raise DataError(
                "netzip_data must be iterable more than once (a list or a DataLoader), not a "
                f"one-shot {type(self.batches).__name__}: each model is evaluated on the same samples"
            )

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        from pytest_netzip.detection import image_list

        remaining = self.max_samples
        for index, batch in enumerate(self.batches):
            if remaining is not None and remaining <= 0:
                return
            inputs, targets = _pair(batch, index)
            _check_tensors(inputs, index)
            targets = _targets(targets, len(inputs), index)
            if remaining is not None:
                inputs, targets = inputs[:remaining], targets[:remaining]
                remaining -= len(targets)
            yield image_list(inputs, targets), targets

    def example(self) -> Any:
        """The input for per-sample measurements: ``example_input``, else the first sample."""
        if self.example_input is not None:
            return self.example_input
        from torch.utils._pytree import tree_map

        from pytest_netzip.detection import ImageList, image_list

        for batch in self.batches:  # the targets are not needed here, so not checked here
            inputs = image_list(*_pair(batch, 0))
            _check_tensors(inputs, 0)
            if isinstance(inputs, ImageList):
                return ImageList(inputs[:1])
            try:
                return tree_map(lambda value: value[:1], inputs)
            except Exception as exc:
                raise DataError(
                    f"cannot take the first sample of {type(inputs).__name__} inputs ({exc}): "
                    "define a fixture netzip_example_input returning one model input"
                ) from exc
        raise DataError("netzip_data yielded no batches")


def _pair(batch: Any, index: int) -> tuple[Any, Any]:
    """``(inputs, targets)`` of a batch, or a DataError saying what the batch is instead."""
    if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
        raise DataError(f"netzip_data batch {index} is a {type(batch).__name__}; expected (inputs, targets)")
    return batch[0], batch[1]


def _check_tensors(inputs: Any, index: int) -> None:
    """A DataError for inputs that hold arrays other than torch tensors (numpy's), which models cannot take."""
    from torch.utils._pytree import tree_leaves

    for leaf in tree_leaves(inputs):
        if hasattr(leaf, "__array__") and not hasattr(leaf, "storage_offset"):  # an array, not a torch.Tensor
            raise DataError(
                f"netzip_data batch {index}: the inputs hold a {type(leaf).__module__}.{type(leaf).__name__}; "
                "models take torch tensors: convert it with torch.as_tensor(...) in netzip_data"
            )


def _targets(targets: Any, batch_size: int, index: int) -> torch.Tensor | list[dict[str, torch.Tensor]]:
    """A classifier's class indices, or a detector's ``{boxes, labels}`` dicts, checked; a DataError if neither."""
    from pytest_netzip.detection import detection_targets, is_detection_batch

    if is_detection_batch(targets):
        return detection_targets(targets, batch_size, index)
    return _class_indices(targets, batch_size, index)


def _class_indices(targets: Any, batch_size: int, index: int) -> torch.Tensor:
    """Targets as a 1-D integer tensor of class indices, one per input, or a DataError saying why not."""
    import torch

    targets = torch.as_tensor(targets)
    if targets.ndim == 2 and targets.shape[1] == 1:
        targets = targets[:, 0]
    if targets.ndim != 1 or targets.is_floating_point() or targets.is_complex() or targets.dtype == torch.bool:
        raise DataError(
            f"netzip_data batch {index}: targets must be class indices, a 1-D integer tensor; "
            f"got {targets.dtype} of shape {tuple(targets.shape)} (one-hot targets: use .argmax(dim=1))"
        )
    if len(targets) != batch_size:
        raise DataError(f"netzip_data batch {index}: {batch_size} inputs but {len(targets)} targets")
    return targets


def fingerprint(inputs: Any, count: int) -> torch.Tensor:
    """Per sample of a batch, the float64 sum and position-weighted sum of each batched tensor of ``inputs``.

    Cheap (one pass over the inputs), and changed by shuffling, noise, crops and flips alike.
    """
    import torch
    from torch.utils._pytree import tree_leaves

    from pytest_netzip.detection import ImageList

    def sums(values: torch.Tensor) -> torch.Tensor:
        flat = (values.flatten(1) if values.ndim > 1 else values[:, None]).detach().double()
        weights = torch.arange(1, flat.shape[1] + 1, dtype=torch.float64, device=flat.device)
        return torch.stack([flat.sum(dim=1), flat @ weights], dim=1).cpu()

    if isinstance(inputs, ImageList):
        return torch.cat([sums(image[None]) for image in inputs]) if inputs else torch.zeros(0, 2, dtype=torch.float64)
    leaves = [
        leaf for leaf in tree_leaves(inputs)
        if isinstance(leaf, torch.Tensor) and leaf.ndim and len(leaf) == count and not leaf.is_complex()
    ]
    return torch.cat([sums(leaf) for leaf in leaves], dim=1) if leaves else torch.zeros(count, 0, dtype=torch.float64)


def same_inputs(first: torch.Tensor | None, second: torch.Tensor | None) -> bool:
    """Whether two fingerprints of the evaluation inputs match (None: outputs made by hand, without inputs)."""
    import torch

    if first is None or second is None:
        return first is second
    # float64 sums of equal inputs agree to rounding however they are reduced; any change moves them far more
    return first.shape == second.shape and torch.allclose(first, second, rtol=1e-9, atol=0, equal_nan=True)


@dataclass(frozen=True)
class Predictions:
    """A classifier's logits (float32, CPU) for every evaluation sample, with the targets and the inputs' fingerprint."""

    task: ClassVar[str] = "classification"
    kind: ClassVar[str] = "logits"

    logits: torch.Tensor
    targets: torch.Tensor
    inputs: torch.Tensor | None = None

    def same_samples(self, other: object) -> bool:
        """Whether ``other`` was computed on the same samples (equal targets and inputs, in the same order)."""
        import torch

        return (isinstance(other, Predictions) and torch.equal(self.targets, other.targets)
                and same_inputs(self.inputs, other.inputs))

    @property
    def samples(self) -> int:
        """The number of evaluation samples."""
        return len(self.targets)

    @property
    def nonfinite(self) -> int:
        """The number of samples with a NaN or infinite logit."""
        return int((~self.logits.isfinite().all(dim=1)).sum())

    @cached_property
    def labels(self) -> torch.Tensor:
        """The top-1 predicted class of every sample."""
        return self.logits.argmax(dim=1)

    @property
    def num_classes(self) -> int:
        """The number of classes the model scores."""
        return self.logits.shape[1]


def predict(model: nn.Module, data: Iterable[tuple[Any, Any]], device: torch.device) -> Predictions | Detections:
    """Run ``model`` once over ``data`` on ``device`` and keep its logits, or its detections if it is a detector
    (its output on the first batch tells), with a fingerprint of the inputs."""
    import torch
    from torch.utils._pytree import tree_map

    from pytest_netzip.detection import Detections, detection_outputs, is_detection_batch

    outputs, targets, fingerprints, task = [], [], [], None
    with torch.inference_mode():
        for index, (inputs, batch_targets) in enumerate(data):
            fingerprints.append(fingerprint(inputs, len(batch_targets)))
            output = model(tree_map(lambda value: value.to(device) if isinstance(value, torch.Tensor) else value, inputs))
            found = "detection" if is_detection_batch(output) else "classification"
            if task is not None and task != found:
                raise DataError(f"the model returns {_kind(output)} on batch {index}, but was a {task} model before")
            task = found
            detector_targets = isinstance(batch_targets, list)
            if detector_targets != (task == "detection"):
                given = "a detector's (dicts of boxes)" if detector_targets else "class indices"
                raise DataError(
                    f"netzip_data batch {index}: the targets are {given}, but the model returns {_kind(output)}"
                )
            if task == "detection":
                outputs.extend(detection_outputs(output, len(batch_targets), index))
                targets.extend(batch_targets)
                continue
            if not (isinstance(output, torch.Tensor) and output.ndim == 2):
                raise DataError(f"a classifier must return logits of shape (batch, classes); got {_kind(output)}")
            outputs.append(output.float().cpu())
            targets.append(batch_targets.cpu())
    if task is None:
        raise DataError("netzip_data yielded no batches")
    if task == "detection":
        return Detections(outputs, targets, torch.cat(fingerprints))
    predictions = Predictions(torch.cat(outputs), torch.cat(targets), torch.cat(fingerprints))
    if predictions.targets.min() < 0 or predictions.targets.max() >= predictions.num_classes:
        raise DataError(
            f"targets must be class indices in [0, {predictions.num_classes}) for a model with "
            f"{predictions.num_classes} outputs; got values from {predictions.targets.min()} to {predictions.targets.max()}"
        )
    return predictions


def _kind(output: Any) -> str:
    """What a model returned, in words: ``logits of shape (8, 10)``, ``detections (a list of dicts)``."""
    import torch

    from pytest_netzip.detection import Detections, is_detection_batch

    if is_detection_batch(output):
        return Detections.kind
    if isinstance(output, torch.Tensor):
        return f"{'logits' if output.ndim == 2 else 'a tensor'} of shape {tuple(output.shape)}"
    return f"a {type(output).__name__}"


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

    @property
    def outputs(self) -> Predictions | Detections:
        """The model's logits or detections on the evaluation set (one forward pass, tried once, on first use)."""
        return self.once("outputs", self._predict)

    def check_task(self, task: str | None) -> None:
        """DataError unless this model's outputs are those of ``task`` (a test's declaration; None: any)."""
        if task is not None and self.outputs.task != task:
            raise DataError(f"task={task!r} was declared, but the model returns {self.outputs.kind}")

    @property
    def predictions(self) -> Predictions:
        """A classifier's predictions on the evaluation set; WrongTask for a detector."""
        outputs = self.outputs
        if not isinstance(outputs, Predictions):
            raise WrongTask(f"needs a classification model; this model returns {outputs.kind}")
        return outputs

    @predictions.setter
    def predictions(self, predictions: Predictions) -> None:
        self._outcomes["outputs"] = predictions

    @property
    def detections(self) -> Detections:
        """A detector's detections on the evaluation set; WrongTask for a classifier."""
        outputs = self.outputs
        if isinstance(outputs, Predictions):
            raise WrongTask(f"needs a detection model; this model returns {outputs.kind}")
        return outputs

    @detections.setter
    def detections(self, detections: Detections) -> None:
        self._outcomes["outputs"] = detections

    @property
    def compute(self) -> Compute:
        """MACs, CHATS and effective MACs of one forward pass on the example input (tried once)."""
        return self.once("compute", self._count)

    def latency(self, workload: Workload) -> Latency:
        """This model's time per call, timed alone (tried once per workload)."""
        return self.once(("latency", workload), lambda: self._time(workload)[0])

    def paired_latency(self, workload: Workload) -> PairedLatency:
        """This model and its reference timed in the same rounds (tried once per workload)."""
        return self.once(("paired_latency", workload), lambda: PairedLatency(*self._time(workload, self.reference)))

    def peak_memory(self, workload: Workload) -> int:
        """Peak bytes of one call on a batch (tried once per workload)."""
        return self.once(("memory", workload), lambda: self._blamed(
            "measuring the memory of", lambda: peak_memory_bytes(self.model, self._batch(workload), self.device)
        ))

    def energy(self, workload: Workload) -> Energy:
        """Energy read over a window of calls on a batch (tried once per workload)."""

        def measure() -> Energy:
            counter = counter_for(self.device)
            call = partial(self.model, self._batch(workload))
            window = max(MIN_WINDOW, workload.max_time)
            return measure_energy(call, partial(synchronize, self.device), counter, workload.batch_size, window)

        return self.once(("energy", workload), lambda: self._blamed("measuring the energy of", measure))

    def _time(self, workload: Workload, *others: Subject) -> list[Latency]:
        """Latencies of ``others`` and this model, timed in the same rounds."""
        rounds = workload.min_rounds if not others else max(workload.min_rounds, MIN_PAIRED_ROUNDS)

        def run() -> list[Latency]:
            calls = [partial(subject.model, subject._batch(workload)) for subject in (*others, self)]
            return time_calls(calls, partial(synchronize, self.device), workload, rounds)

        return self._blamed("timing", run)

    def _batch(self, workload: Workload) -> Any:
        """The example input repeated to the workload's batch size, on this model's device."""
        from torch.utils._pytree import tree_map

        batch = workload.batch(self.data.example())
        return tree_map(lambda value: value.to(self.device) if hasattr(value, "to") else value, batch)

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
        return outcome

    def _blamed(self, action: str, work: Callable[[], T]) -> T:
        """``work()``, with any error of the user's model or data turned into a DataError naming this model."""
        try:
            return work()
        except (DataError, MetricUnavailable):
            raise
        except Exception as exc:
            raise DataError(f"{action} {self.label} on {self.device} failed: {type(exc).__name__}: {exc}") from exc

    def _predict(self) -> Predictions | Detections:
        expected = self.reference.outputs if self.reference is not None else None
        outputs = self._blamed("evaluating", lambda: predict(self.model, self.data, self.device))
        if outputs.nonfinite:
            raise DataError(f"{self.label} returns NaN or infinite outputs for {outputs.nonfinite} of {outputs.samples} "
                            "samples: no gate can judge them")
        if expected is not None and expected.task != outputs.task:
            raise DataError(f"the reference returns {expected.kind}, but {self.label} returns {outputs.kind}")
        if expected is not None and not outputs.same_samples(expected):
            raise DataError(
                "netzip_data gave different samples to the reference and to "
                f"{self.label}: shuffle=True, random transforms or sampling? Each model must see the same "
                "samples in the same order"
            )
        return outputs

    def _count(self) -> Compute:
        return self._blamed("counting the MACs of", lambda: count_compute(self.model, self._batch(DEFAULT_WORKLOAD)))

    @cached_property
    def serialized(self) -> bytes:
        """The model's serialised state dict."""
        return serialized_state_dict(self.model)

    def measure(self, metric: Metric, reference: Subject, workload: Workload = DEFAULT_WORKLOAD) -> MetricValue:
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
        return value

    def measured(
        self, name: str, workload: Workload = DEFAULT_WORKLOAD, setting: Hashable = None
    ) -> MetricValue | MetricUnavailable | None:
        """What ``measure`` found for ``name`` (under ``workload`` and ``setting``) so far, without measuring; None if nothing."""
        return self._values.get((name, workload, setting), self._values.get((name, None, setting)))

    def uses(self, name: str, workload: Workload = DEFAULT_WORKLOAD, setting: Hashable = None) -> list[str]:
        """The metrics that measuring ``name`` (under ``workload`` and ``setting``) measured on this model on the way."""
        return self._uses.get((name, workload, setting), self._uses.get((name, None, setting), []))


def _checked(metric: Metric, value: object) -> MetricValue:
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

    Reading a compressed model's metric measures the reference's too, so tables can compare them. Where
    the item declares a ``task``, the first read checks it against the reference's outputs: each item
    gets its own verdict, whatever the items that share the models declared.
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
        self._reference.check_task(self._task)
        if name not in self._accessed:
            self._accessed.append(name)
        if self._subject is not self._reference:
            with contextlib.suppress(MetricUnavailable):
                self._reference.measure(metric, self._reference, self._workload)
        return self._subject.measure(metric, self._reference, self._workload)

    def __iter__(self) -> Iterator[str]:
        return iter(self._registry.names)

    def __len__(self) -> int:
        return len(self._registry.names)

    def measured(self, names: Iterable[str] | None = None) -> dict[str, MetricValue | MetricUnavailable]:
        """Values (or why they are unavailable) of ``names`` (by default those read so far) measured so far.

        Never measures anything, so it cannot fail.
        """
        values = {
            name: self._subject.measured(name, self._workload, self._registry[name].setting if name in self._registry else None)
            for name in (self._accessed if names is None else names)
        }
        return {name: values[name] for name in self._registry.ordered(values) if values[name] is not None}

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

    def complete(self) -> None:
        """Record what the item's measurements hold (the sizes behind a size_ratio), and measure what comes free
        with what was measured (by any item): a whole group, NetZIP's P, the clean top1 beside robustness."""
        values = self.metrics.measured(self.registry.names)
        measured = [name for name, value in values.items() if not isinstance(value, MetricUnavailable)]
        self._record(derived_metrics(self.registry, measured))
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
) -> dict[str, dict[str, MetricValue | str]]:
    """Measure ``metrics`` of ``compressed`` and ``reference`` without pytest.

    ``task`` (``classification`` or ``detection``) says what the models are; by default their output tells.
    Returns ``{"compressed": {...}, "reference": {...}}``; a metric that cannot be measured maps to
    the string ``"unavailable: <reason>"``.
    """
    import torch

    if task not in (None, *TASKS):
        raise ValueError(unknown_name_message("task", task, TASKS))
    device = torch.device(device)
    eval_data = EvalData(data, max_samples)
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

    for name in names:
        with contextlib.suppress(MetricUnavailable):
            result.metrics[name]  # noqa: B018 - measures it for both models
    return {
        "compressed": plain(result.metrics.measured(names)),
        "reference": plain(result.reference_metrics.measured(names)),
    }
