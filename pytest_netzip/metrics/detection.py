"""Detection quality from one cached forward pass: COCO mAP against the labels and against the reference.

torchmetrics' ``MeanAveragePrecision`` (with pycocotools) does the matching and the averaging, as the
COCO evaluation does: 101-point interpolated precision, up to 100 detections per image, averaged over
the classes present and the IoU thresholds 0.50, 0.55, ..., 0.95.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_netzip.errors import MetricUnavailable
from pytest_netzip.metrics.base import metric

if TYPE_CHECKING:
    import torch

    from pytest_netzip.metrics.base import Subject

#: What ``pip`` installs for the detection metrics.
INSTALL = "pip install torchmetrics pycocotools (the plugin's detection extra)"


def mean_average_precision(
    detections: list[dict[str, torch.Tensor]], truth: list[dict[str, torch.Tensor]]
) -> dict[str, float]:
    """COCO ``map`` (IoU 0.50:0.95) and ``map50`` (IoU 0.50) of ``detections`` against ``truth``, image by image.

    Raises MetricUnavailable where ``truth`` holds no box, which leaves the average undefined.
    """
    try:
        from torchmetrics.detection import MeanAveragePrecision

        average_precision = MeanAveragePrecision(box_format="xyxy", iou_type="bbox", backend="pycocotools")
    except ModuleNotFoundError as exc:
        raise MetricUnavailable(f"mAP needs {INSTALL}: {exc}") from None
    if not any(len(entry["boxes"]) for entry in truth):
        raise MetricUnavailable("the ground truth holds no box, so mAP is undefined")
    average_precision.update(detections, [{"boxes": t["boxes"], "labels": t["labels"]} for t in truth])
    values = average_precision.compute()
    return {"map": values["map"].item(), "map50": values["map_50"].item()}


def _against_labels(subject: Subject) -> dict[str, float]:
    """``subject``'s mAPs against the labels, computed once."""
    detections = subject.detections
    return subject.once("map", lambda: mean_average_precision(detections.detections, detections.targets))


@metric("map", "COCO mAP@[.5:.95]: average precision over classes and IoU thresholds 0.50 to 0.95", unit="share",
        group="map")
def map_(subject: Subject, reference: Subject) -> float:
    """COCO mean average precision against the labels."""
    return _against_labels(subject)["map"]


@metric("map50", "COCO mAP@.5: average precision over classes at IoU 0.50", unit="share", group="map")
def map50(subject: Subject, reference: Subject) -> float:
    """Mean average precision at IoU 0.5 against the labels."""
    return _against_labels(subject)["map50"]


@metric(
    "map_vs_reference",
    "COCO mAP@[.5:.95] of the detections against the reference's detections taken as ground truth",
    unit="share",
    relative=True,
)
def map_vs_reference(subject: Subject, reference: Subject) -> float:
    """Fidelity to the reference without labels: 1.0 where the detections are the reference's."""
    detections, truth = subject.detections, reference.detections
    if not any(len(entry["boxes"]) for entry in truth.detections):
        raise MetricUnavailable("the reference detects nothing, so there is nothing to match")
    return mean_average_precision(detections.detections, truth.detections)["map"]


DETECTION_METRICS = (map_, map50, map_vs_reference)
