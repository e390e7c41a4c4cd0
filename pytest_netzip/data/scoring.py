"""One pass of a model over the evaluation data, scored as its task: told from the first batch, or declared."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pytest_netzip.data.inputs import call, describe
from pytest_netzip.devices import to_device
from pytest_netzip.errors import DataError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from pytest_netzip.data.batches import EvalData

#: The kinds of model netzip scores, as ``@pytest.mark.netzip(task=...)`` names them.
TASKS = ("classification", "detection", "regression", "segmentation", "language_modeling")


class TaskOutputs(Protocol):
    """What a model's pass over the evaluation set leaves for its metrics (kept or reduced per task)."""

    task: ClassVar[str]
    kind: ClassVar[str]

    @property
    def samples(self) -> int:
        """The number of evaluation samples."""

    @property
    def nonfinite(self) -> int:
        """The number of samples with a NaN or infinite output."""

    def same_samples(self, other: object) -> bool:
        """Whether ``other`` was computed on the same samples, in the same order."""


class Collector(Protocol):
    """Gathers a task's outputs batch by batch; ``paired`` ones also read the reference's output on each batch."""

    paired: ClassVar[bool]

    def add(self, output: Any, targets: Any, where: str, inputs: Any, reference_output: Any = None) -> None:
        """Check and take in one batch's output (and the reference's, if ``paired``)."""

    def finish(self, inputs: torch.Tensor) -> TaskOutputs:
        """The outputs of every batch, with the fingerprint of the inputs."""


def collector(task: str) -> Collector:
    """A fresh collector of ``task``'s outputs."""
    from pytest_netzip.data.detection import DetectionCollector
    from pytest_netzip.data.language import LanguageCollector
    from pytest_netzip.data.predictions import ClassificationCollector
    from pytest_netzip.data.regression import RegressionCollector
    from pytest_netzip.data.segmentation import SegmentationCollector

    collectors: dict[str, type[Collector]] = {
        "classification": ClassificationCollector, "detection": DetectionCollector, "regression": RegressionCollector,
        "segmentation": SegmentationCollector, "language_modeling": LanguageCollector,
    }
    return collectors[task]()


def kind(task: str) -> str:
    """What a model of ``task`` returns, in words (``logits``, ``token logits``)."""
    from pytest_netzip.data.detection import Detections
    from pytest_netzip.data.language import TokenOutputs
    from pytest_netzip.data.predictions import Predictions
    from pytest_netzip.data.regression import RegressionOutputs
    from pytest_netzip.data.segmentation import SegmentationOutputs

    outputs = (Predictions, Detections, RegressionOutputs, SegmentationOutputs, TokenOutputs)
    return {kind.task: kind.kind for kind in outputs}[task]


def _fits(task: str, output: Any, targets: Any) -> bool:
    """Whether ``output`` has the form ``task``'s models return (its targets may still be wrong): then the
    collector's message, about the targets, is the one to show."""
    from pytest_netzip.data.detection import is_detection_batch

    if task == "detection":
        return is_detection_batch(output)
    if not (hasattr(output, "ndim") and output.is_floating_point()):
        return False
    if task == "regression":
        return hasattr(targets, "numel") and bool(output.numel() == targets.numel())
    return bool(output.ndim == {"classification": 2, "segmentation": 4, "language_modeling": 3}[task])


def infer_task(output: Any, targets: Any) -> str:
    """The task a model's output and targets on one batch show; a DataError where they fit none, or fit two."""
    from pytest_netzip.data.detection import is_detection_batch

    detector_targets = isinstance(targets, list)
    if is_detection_batch(output) or detector_targets:
        if is_detection_batch(output) and detector_targets:
            return "detection"
        given = "a detector's (dicts of boxes)" if detector_targets else f"{describe(targets)}"
        found = "detections" if is_detection_batch(output) else describe(output)
        raise DataError(f"the targets are {given}, but the model returns {found}")
    if not (hasattr(output, "ndim") and output.is_floating_point()):
        raise DataError(f"the model returns {describe(output)}, which is no task's predictions: netzip reads float "
                        "logits or values (define a session fixture netzip_output to read them from what it returns)")
    shapes = f"the model returns {describe(output)} and the targets are {describe(targets)}"
    logits = output.ndim == 2 and output.shape[1] >= 2
    if logits and targets.shape == output.shape and not targets.is_floating_point():
        raise DataError(f"{shapes}: one-hot targets? A classifier's targets are class indices: use .argmax(dim=1) "
                        "(for regression on integers, give float targets)")
    if targets.is_floating_point():
        if logits and targets.ndim == 1:
            raise DataError(f"{shapes}: a classifier's targets are class indices, an integer tensor: use .long() "
                            "(float targets are a regression's)")
        if logits and targets.shape == output.shape and bool(((targets == 0) | (targets == 1)).all()) \
                and bool((targets.sum(dim=1) == 1).all()):
            raise DataError(f"{shapes}, one-hot: a classifier's targets are class indices: use .argmax(dim=1) (float "
                            "targets are a regression's)")
        if output.ndim == 4 and targets.ndim == 3:
            raise DataError(f"{shapes}: per-pixel logits are scored against class maps, an integer tensor: use "
                            ".long() (float targets are a regression's)")
        return "regression"
    if logits and (targets.ndim == 1 or targets.ndim == 2 and targets.shape[1] == 1):
        return "classification"
    if output.ndim == 4 and targets.ndim == 3 and output.shape[1] == 1:
        raise DataError(f"{shapes}: one channel per pixel is no segmentation (it needs a logit per class): a depth "
                        "map or another per-pixel value? Give float targets, or declare task='regression'")
    if output.ndim == 4 and targets.ndim == 3:
        return "segmentation"
    if output.ndim == 3 and targets.ndim == 2:
        return "language_modeling"
    if output.ndim <= 2 and output.numel() == targets.numel():
        raise DataError(f"{shapes}: regression on integer targets, or a classifier with one logit? Declare "
                        "task='regression' (in @pytest.mark.netzip or evaluate); a classifier returns a logit per class")
    raise DataError(f"{shapes}, which fit no task netzip scores: logits (batch, classes) for class indices "
                    "(batch,); float values for float targets; (batch, classes, height, width) for class maps "
                    "(batch, height, width); (batch, positions, vocabulary) for token ids (batch, positions)")


def predict(
    model: nn.Module, data: EvalData, device: torch.device, task: str | None = None, reference: nn.Module | None = None,
) -> tuple[TaskOutputs, str | DataError]:
    """Run ``model`` once over ``data`` on ``device`` and gather its outputs as ``task``'s (by default the task its
    first batch shows); with it, what the first batch shows (a task, or why none can be told).

    Every task's outputs are reduced batch by batch; those whose comparisons with the reference need its output on
    the same batch (regression, segmentation, language modelling: their collectors are ``paired``) run
    ``reference`` on each batch beside the model (the reference itself compares with its own outputs).
    """
    import torch

    from pytest_netzip.data.fingerprint import fingerprint

    gathered: Collector | None = None
    inferred: str | DataError = DataError("netzip_data yielded no batches")
    fingerprints: list[torch.Tensor] = []
    with torch.inference_mode():
        for index, (inputs, targets) in enumerate(data):
            where = f"netzip_data batch {index}"
            fingerprints.append(fingerprint(inputs, len(targets)))
            on_device = to_device(inputs, device)
            output = data.format.read(call(model, on_device))
            if hasattr(output, "ndim") and (output.ndim == 0 or len(output) != len(targets)):
                raise DataError(f"{where}: {len(targets)} samples, but the model returns {describe(output)} "
                                "(dimension 0 of its output is the batch)")
            if gathered is None:
                try:
                    inferred = infer_task(output, targets)
                except DataError as error:
                    inferred = error
                if task is None and isinstance(inferred, DataError):
                    raise inferred
                gathered = collector(task or str(inferred))
            reference_output = None
            if gathered.paired:
                reference_output = output if reference is None else data.format.read(call(reference, on_device))
            try:
                gathered.add(output, targets, where, inputs, reference_output)
            except DataError as error:
                if task is not None and isinstance(inferred, str) and inferred != task and not _fits(task, output, targets):
                    raise DataError(f"task={task!r} was declared, but the model returns {kind(inferred)}") from error
                raise  # the output fits the declared task: the collector's message says what is wrong
    if gathered is None:
        raise DataError("netzip_data yielded no batches")
    if not sum(len(batch) for batch in fingerprints):
        raise DataError(f"netzip_data yielded {len(fingerprints)} batch(es), every one empty")
    return gathered.finish(torch.cat(fingerprints)), inferred


def stacked(model: nn.Module, data: EvalData, device: torch.device, expected: torch.Tensor | None) -> torch.Tensor:
    """``model``'s outputs on every batch of ``data``, read as its predictions and joined on the CPU: memory grows
    with the evaluation set. A DataError where the batches are not the samples of the pass ``expected`` fingerprints."""
    import torch

    from pytest_netzip.data.fingerprint import fingerprint, same_inputs

    outputs: list[torch.Tensor] = []
    fingerprints: list[torch.Tensor] = []
    with torch.inference_mode():
        for inputs, targets in data:
            fingerprints.append(fingerprint(inputs, len(targets)))
            outputs.append(data.format.read(call(model, to_device(inputs, device))).detach().cpu())
    if not fingerprints or not same_inputs(torch.cat(fingerprints), expected):
        raise DataError("netzip_data gave other samples on a second pass (shuffle=True?): a metric reading the "
                        "outputs of every sample needs the same samples in the same order every time")
    return torch.cat(outputs)
