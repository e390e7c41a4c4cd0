"""A classifier's outputs on the evaluation set, reduced batch by batch to a few numbers per sample."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from pytest_netzip.data.fingerprint import same_inputs
from pytest_netzip.data.inputs import describe
from pytest_netzip.errors import DataError

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Predictions:
    """What a classifier predicted for every evaluation sample, without its logits (memory stays O(batch)).

    ``labels`` holds each sample's top-1 class, ``ranks`` how many classes rank above its target (ties by
    class index, lowest first, as ``argmax`` breaks them: rank 0 is a top-1 hit); with the targets and the
    inputs' fingerprint; ``tied`` counts the samples whose two highest logits are equal. A metric that needs
    the logits themselves reads ``subject.logits``.
    """

    task: ClassVar[str] = "classification"
    kind: ClassVar[str] = "logits"

    labels: torch.Tensor
    ranks: torch.Tensor
    targets: torch.Tensor
    num_classes: int
    nonfinite: int = 0
    inputs: torch.Tensor | None = None
    tied: int = 0

    @classmethod
    def of(cls, logits: torch.Tensor, targets: torch.Tensor, inputs: torch.Tensor | None = None) -> Predictions:
        """The predictions that ``logits`` (samples, classes) make for ``targets``, as one batch."""
        collector = ClassificationCollector()
        collector.add(logits, targets, "logits", None)
        return collector.finish(inputs)

    @property
    def samples(self) -> int:
        """The number of evaluation samples."""
        return len(self.targets)

    @property
    def logits(self) -> torch.Tensor:
        """Not kept: an AttributeError saying where a metric reads them."""
        raise AttributeError("Predictions keep no logits, so that evaluation memory stays O(batch): a metric that "
                             "needs them reads subject.logits (one more pass over the evaluation data)")

    def same_samples(self, other: object) -> bool:
        """Whether ``other`` was computed on the same samples (equal targets and inputs, in the same order)."""
        import torch

        return (isinstance(other, Predictions) and torch.equal(self.targets, other.targets)
                and same_inputs(self.inputs, other.inputs))


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


def target_ranks(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per sample, how many classes rank above its target: a higher logit, or an equal one of a lower index."""
    import torch

    target_logits = logits.gather(1, targets[:, None])
    lower_index = torch.arange(logits.shape[1], device=logits.device) < targets[:, None]
    return ((logits > target_logits) | ((logits == target_logits) & lower_index)).sum(dim=1)


class ClassificationCollector:
    """Keeps a classifier's top-1 label and target rank per sample, batch by batch: never its logits."""

    paired: ClassVar[bool] = False

    def __init__(self) -> None:
        self.labels: list[torch.Tensor] = []
        self.ranks: list[torch.Tensor] = []
        self.targets: list[torch.Tensor] = []
        self.num_classes: int | None = None
        self.nonfinite = self.tied = 0

    def add(self, output: Any, targets: Any, where: str, inputs: Any, reference_output: Any = None) -> None:
        """Check and reduce one batch of logits."""
        if not (hasattr(output, "ndim") and output.ndim == 2):
            raise DataError(f"{where}: a classifier returns logits of shape (batch, classes); this model returns "
                            f"{describe(output)}")
        if self.num_classes is not None and output.shape[1] != self.num_classes:
            raise DataError(f"{where}: the model returns {output.shape[1]} logits per sample, {self.num_classes} on "
                            "the batches before")
        self.num_classes = classes = output.shape[1]
        logits = output.detach().float()
        indices = class_indices(targets, where).to(logits.device)
        self.labels.append(logits.argmax(dim=1).cpu())
        self.ranks.append(target_ranks(logits, indices.clamp(0, classes - 1)).cpu())  # out of range: see finish
        self.targets.append(indices.cpu())
        self.nonfinite += int((~logits.isfinite()).any(dim=1).sum())
        if classes > 1:
            highest = logits.topk(2, dim=1).values
            self.tied += int((highest[:, 0] == highest[:, 1]).sum())

    def finish(self, inputs: torch.Tensor | None) -> Predictions:
        """The predictions on every batch; a DataError for targets outside the classes the model scores."""
        import torch

        assert self.num_classes is not None  # finish follows at least one add
        predictions = Predictions(torch.cat(self.labels), torch.cat(self.ranks), torch.cat(self.targets),
                                  self.num_classes, self.nonfinite, inputs, self.tied)
        low, high, classes = predictions.targets.min(), predictions.targets.max(), predictions.num_classes
        if low < 0 or high >= classes:
            raise DataError(f"targets must be class indices in [0, {classes}) for a model with {classes} outputs; "
                            f"got values from {low} to {high}")
        return predictions
