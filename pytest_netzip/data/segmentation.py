"""A segmentation model's outputs on the evaluation set, reduced batch by batch to a pixel confusion matrix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from pytest_netzip.data.fingerprint import same_inputs
from pytest_netzip.data.inputs import describe
from pytest_netzip.errors import DataError

if TYPE_CHECKING:
    import torch

@dataclass(frozen=True)
class SegmentationOutputs:
    """Per-pixel results of a segmentation model on every evaluation image, without the logits.

    ``confusion[t, p]`` counts scored pixels of class ``t`` predicted as ``p``; ``agreeing`` counts scored
    pixels whose predicted class equals the reference model's on the same image.
    """

    task: ClassVar[str] = "segmentation"
    kind: ClassVar[str] = "per-pixel logits"

    confusion: torch.Tensor
    agreeing: int
    samples: int
    nonfinite: int
    inputs: torch.Tensor | None = None
    target_fingerprint: torch.Tensor | None = None  # of the target masks

    def same_samples(self, other: object) -> bool:
        """Whether ``other`` was computed on the same images and masks, in the same order."""
        return (isinstance(other, SegmentationOutputs) and same_inputs(self.inputs, other.inputs)
                and same_inputs(self.target_fingerprint, other.target_fingerprint))

    @property
    def pixels(self) -> int:
        """The number of scored pixels."""
        return int(self.confusion.sum())

    @property
    def num_classes(self) -> int:
        """The number of classes the model scores."""
        return len(self.confusion)


def unscored(targets: torch.Tensor, classes: int) -> torch.Tensor:
    """Where ``targets`` mark a pixel not scored: HuggingFace's -100, and torchvision's and VOC's 255 for a model of
    at most 255 classes (where 255 is not a class)."""
    return (targets == -100) | ((targets == 255) & (classes <= 255))


def pixel_labels(output: Any, where: str) -> torch.Tensor:
    """The predicted class of every pixel of per-pixel logits, or a DataError for another output."""
    if not (hasattr(output, "ndim") and output.ndim == 4 and output.is_floating_point()):
        raise DataError(f"{where}: a segmentation model returns per-pixel logits (batch, classes, height, width), "
                        f"or a dict holding them under 'out'; this model returns {describe(output)}")
    labels: torch.Tensor = output.argmax(dim=1)
    return labels


class SegmentationCollector:
    """Adds each batch to the confusion matrix and the agreement count: memory stays that of one batch."""

    paired: ClassVar[bool] = True

    def __init__(self) -> None:
        self.confusion: torch.Tensor | None = None
        self.agreeing = self.samples = self.nonfinite = 0
        self.masks: list[torch.Tensor] = []

    def add(self, output: Any, targets: Any, where: str, inputs: Any, reference_output: Any = None) -> None:
        """Score one batch of logits against its class maps and the reference's logits on the same images."""
        import torch

        from pytest_netzip.data.fingerprint import fingerprint
        from pytest_netzip.data.predictions import confusion_matrix

        labels = pixel_labels(output, where)
        classes = output.shape[1]
        if targets.is_floating_point() or targets.ndim != 3:
            raise DataError(f"{where}: segmentation targets are class maps, an integer tensor (batch, height, width); "
                            f"got {describe(targets)}")
        if targets.shape != labels.shape:
            raise DataError(f"{where}: the model scores {tuple(labels.shape[1:])} pixels per image, the targets hold "
                            f"{tuple(targets.shape[1:])}: resize one to the other")
        targets = targets.to(labels.device, torch.long)  # uint8 masks: 255 and class arithmetic in int64
        ignored = unscored(targets, classes)
        scored = ~ignored
        wrong = scored & ((targets < 0) | (targets >= classes))
        if wrong.any():
            raise DataError(f"{where}: target classes must lie in [0, {classes}) (255 and -100 mark pixels not "
                            f"scored); got {int(targets[wrong][0])}")
        counts = confusion_matrix(labels[scored], targets[scored], classes).cpu()
        self.confusion = counts if self.confusion is None else self.confusion + counts
        reference_labels = pixel_labels(reference_output, where)
        self.agreeing += int((labels == reference_labels)[scored].sum())
        self.samples += len(output)
        self.nonfinite += int((~output.isfinite()).flatten(1).any(dim=1).sum())
        self.masks.append(fingerprint(targets, len(targets)))

    def finish(self, inputs: torch.Tensor) -> SegmentationOutputs:
        """The reduced outputs of every batch."""
        import torch

        assert self.confusion is not None  # finish follows at least one add
        return SegmentationOutputs(self.confusion, self.agreeing, self.samples, self.nonfinite, inputs,
                                   torch.cat(self.masks))
