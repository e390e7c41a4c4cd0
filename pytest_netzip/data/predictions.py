"""A model's outputs on the evaluation set: logits of a classifier, detections of a detector."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from pytest_netzip.data.fingerprint import fingerprint, same_inputs
from pytest_netzip.devices import to_device
from pytest_netzip.errors import DataError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from pytest_netzip.data.detection import Detections

#: The kinds of model netzip scores, as ``@pytest.mark.netzip(task=...)`` names them.
TASKS = ("classification", "detection")


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

    from pytest_netzip.data.detection import (
        Detections,
        detection_outputs,
        is_detection_batch,
    )

    # a classifier's tensors or a detector's dicts, one kind per run
    outputs: list[Any] = []
    targets: list[Any] = []
    fingerprints: list[torch.Tensor] = []
    task: str | None = None
    with torch.inference_mode():
        for index, (inputs, batch_targets) in enumerate(data):
            fingerprints.append(fingerprint(inputs, len(batch_targets)))
            output = model(to_device(inputs, device))
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

    from pytest_netzip.data.detection import Detections, is_detection_batch

    if is_detection_batch(output):
        return Detections.kind
    if isinstance(output, torch.Tensor):
        return f"{'logits' if output.ndim == 2 else 'a tensor'} of shape {tuple(output.shape)}"
    return f"a {type(output).__name__}"
