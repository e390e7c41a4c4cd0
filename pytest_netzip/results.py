"""An item's result: its metrics beside the reference's, measured on first read; and ``evaluate`` without pytest."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pytest_netzip.data.batches import BatchFormat, EvalData
from pytest_netzip.data.scoring import TASKS
from pytest_netzip.data.space import InputSpace
from pytest_netzip.data.workload import DEFAULT_WORKLOAD, Workload
from pytest_netzip.devices import on_device
from pytest_netzip.errors import DataError, MetricUnavailable
from pytest_netzip.evaluation import OUTPUTS, Subject
from pytest_netzip.metrics import MetricRegistry, MetricValue
from pytest_netzip.naming import unknown_name_message

if TYPE_CHECKING:
    import torch
    from torch import nn


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

    @property
    def subject(self) -> Subject:
        """The model measured."""
        return self._subject

    @property
    def reference(self) -> Subject:
        """The reference it is measured against."""
        return self._reference

    def __getitem__(self, name: str) -> MetricValue:
        __tracebackhide__ = True  # a misspelt name's KeyError is shown at the test's line, not in here
        metric = self._registry[name]
        __tracebackhide__ = False  # a metric that fails shows where
        if name not in self._accessed:
            self._accessed.append(name)
        self.check_task()
        try:
            if self._subject is not self._reference:
                with contextlib.suppress(MetricUnavailable):
                    self._reference.measure(metric, self._reference, self._workload)
            value: MetricValue = self._subject.measure(metric, self._reference, self._workload)
        except MetricUnavailable as exc:  # a test body's read of it skips the item, naming the metric
            exc.metric = name
            raise
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

    def read_outputs(self) -> bool:
        """Whether a metric read so far was computed from the subject's outputs on the evaluation set."""
        return any(
            OUTPUTS in self._subject.uses(name, self._workload, self._registry[name].setting) for name in self._accessed
        )

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

    def cached(self) -> dict[str, str] | None:
        """Where the figures of this item came from under ``--netzip-cache`` (None without it): ``reused`` from the
        cache folder, ``made`` and kept there, or ``uncached``; of the ``compressed_model`` and, where a metric read
        them, the ``outputs`` of both models on the evaluation set."""
        subject, reference = self.metrics.subject, self.metrics.reference
        if subject.store is None:
            return None
        origins = {"compressed_model": subject.cache.get("model")}
        if self.metrics.read_outputs() or self.reference_metrics.read_outputs():
            origins |= {"outputs": subject.cache.get("outputs"), "reference_outputs": reference.cache.get("outputs")}
        return {what: origin for what, origin in origins.items() if origin is not None}

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
