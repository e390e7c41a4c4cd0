"""A classifier's outputs on the evaluation set: its logits and the class indices it is scored against."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from pytest_netzip.data.inputs import describe
from pytest_netzip.data.per_sample import PerSampleCollector, PerSampleOutputs
from pytest_netzip.errors import DataError

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Predictions(PerSampleOutputs):
    """A classifier's logits (float32, CPU) for every evaluation sample, with the targets and the inputs' fingerprint."""

    task: ClassVar[str] = "classification"
    kind: ClassVar[str] = "logits"

    logits: torch.Tensor
    targets: torch.Tensor
    inputs: torch.Tensor | None = None

    @property
    def rows(self) -> torch.Tensor:
        """The logits."""
        return self.logits

    @cached_property
    def labels(self) -> torch.Tensor:
        """The top-1 predicted class of every sample."""
        return self.logits.argmax(dim=1)

    @property
    def num_classes(self) -> int:
        """The number of classes the model scores."""
        return self.logits.shape[1]


def confusion_matrix(predicted: torch.Tensor, targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``matrix[t, p]`` counts samples of class ``t`` predicted as ``p``."""
    flat = targets.long() * num_classes + predicted.long()  # in int64: uint8 masks would wrap
    return flat.bincount(minlength=num_classes**2).reshape(num_classes, num_classes)


def class_indices(targets: torch.Tensor, where: str) -> torch.Tensor:
    """Targets as a 1-D integer tensor of class indices, or a DataError saying why not."""
    import torch

    indices = targets[:, 0] if targets.ndim == 2 and targets.shape[1] == 1 else targets
    if indices.ndim != 1 or indices.is_floating_point() or indices.is_complex() or indices.dtype == torch.bool:
        hint = " (one-hot targets: use .argmax(dim=1))" if indices.ndim == 2 and indices.is_floating_point() else ""
        raise DataError(f"{where}: a classifier's targets are class indices, a 1-D integer tensor; got "
                        f"{describe(targets)}{hint}")
    return indices.long()


class ClassificationCollector(PerSampleCollector):
    """Keeps a classifier's logits and targets batch by batch: one row per sample is small."""

    def add(self, output: Any, targets: Any, where: str, inputs: Any, reference_output: Any = None) -> None:
        """Check and keep one batch."""
        if not (hasattr(output, "ndim") and output.ndim == 2):
            raise DataError(f"{where}: a classifier returns logits of shape (batch, classes); this model returns "
                            f"{describe(output)}")
        self.keep(output.float(), class_indices(targets, where))

    def finish(self, inputs: torch.Tensor) -> Predictions:
        """The predictions on every batch; a DataError for targets outside the classes the model scores."""
        predictions = Predictions(*self.joined(), inputs)
        low, high, classes = predictions.targets.min(), predictions.targets.max(), predictions.num_classes
        if low < 0 or high >= classes:
            raise DataError(f"targets must be class indices in [0, {classes}) for a model with {classes} outputs; "
                            f"got values from {low} to {high}")
        return predictions

