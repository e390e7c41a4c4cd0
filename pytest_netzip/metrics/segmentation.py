"""Segmentation quality from one streamed pass: mean IoU and pixel accuracy from the pixel confusion matrix."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_netzip.errors import MetricUnavailable
from pytest_netzip.metrics.base import metric

if TYPE_CHECKING:
    from pytest_netzip.data.segmentation import SegmentationOutputs
    from pytest_netzip.metrics.base import Subject


def _scored(subject: Subject) -> SegmentationOutputs:
    outputs = subject.segmentation
    if outputs.pixels == 0:
        raise MetricUnavailable("no pixel is scored: every target is 255 or -100")
    return outputs


@metric("miou", "mean over classes present (in the targets or the predictions) of the intersection over union",
        unit="share")
def miou(subject: Subject, reference: Subject) -> float:
    """Mean intersection over union, as torchmetrics' MulticlassJaccardIndex(average='macro') computes it."""
    confusion = _scored(subject).confusion.double()
    true_positive = confusion.diagonal()
    union = confusion.sum(dim=0) + confusion.sum(dim=1) - true_positive
    present = union > 0
    return float((true_positive[present] / union[present]).mean())


@metric("pixel_accuracy", "share of scored pixels whose predicted class is the target", unit="share")
def pixel_accuracy(subject: Subject, reference: Subject) -> float:
    """Pixel accuracy."""
    outputs = _scored(subject)
    return float(outputs.confusion.diagonal().sum()) / outputs.pixels


@metric("pixel_agreement", "share of scored pixels whose predicted class equals the reference's", unit="share",
        relative=True)
def pixel_agreement(subject: Subject, reference: Subject) -> float:
    """Agreement with the reference, pixel by pixel."""
    outputs = _scored(subject)
    return outputs.agreeing / outputs.pixels


SEGMENTATION_METRICS = (miou, pixel_accuracy, pixel_agreement)
