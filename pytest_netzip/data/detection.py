"""Detection models: torchvision-style targets and outputs, checked, and the detections of one forward pass.

A detector takes a batched image tensor or a list of image tensors and returns, per image, a dict
of ``boxes`` (N, 4) in (x1, y1, x2, y2) pixels, ``scores`` (N,) and integer ``labels`` (N,); its
targets are, per image, a dict of ``boxes`` and ``labels``. Imported only when a model is evaluated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from pytest_netzip.data.fingerprint import same_inputs
from pytest_netzip.data.images import ImageList
from pytest_netzip.errors import DataError


def is_detection_batch(value: Any) -> bool:
    """Whether ``value`` is meant as a detector's per-image list of dicts (targets or outputs): it holds a dict."""
    return isinstance(value, Sequence) and not isinstance(value, (str, torch.Tensor)) and any(
        isinstance(entry, Mapping) for entry in value
    )


def _describe(value: Any) -> str:
    """A short account of what a value is, for error messages."""
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    return f"a {type(value).__name__}"


def _boxes(value: Any, where: str, finite: bool) -> torch.Tensor:
    """``value`` as a float32 (N, 4) tensor of (x1, y1, x2, y2) boxes, ``finite`` if asked, or a DataError saying why not."""
    boxes = torch.as_tensor(value).detach().cpu()
    if boxes.numel() == 0:
        return boxes.reshape(0, 4).float()
    if boxes.ndim != 2 or boxes.shape[1] != 4 or not boxes.is_floating_point():
        raise DataError(f"{where}: boxes must be a float tensor of shape (N, 4); got {_describe(boxes)}")
    if finite and not boxes.isfinite().all():
        raise DataError(f"{where}: boxes hold NaN or infinite coordinates")
    if (boxes[:, 2:] < boxes[:, :2]).any():
        raise DataError(f"{where}: boxes must be (x1, y1, x2, y2) with x1 <= x2 and y1 <= y2")
    return boxes.float()


def _vector(value: Any, count: int, where: str, key: str, integer: bool) -> torch.Tensor:
    """``value`` as a 1-D tensor of ``count`` entries (integers if ``integer``), or a DataError saying why not."""
    vector = torch.as_tensor(value).detach().cpu()
    if vector.numel() == 0 and count == 0:
        return vector.reshape(0).long() if integer else vector.reshape(0).float()
    kind_ok = not vector.is_floating_point() and vector.dtype != torch.bool if integer else vector.is_floating_point()
    if vector.ndim != 1 or not kind_ok:
        wanted = "an integer" if integer else "a float"
        raise DataError(f"{where}: {key} must be {wanted} tensor of shape (N,); got {_describe(vector)}")
    if len(vector) != count:
        raise DataError(f"{where}: {count} boxes but {len(vector)} {key}")
    return vector.long() if integer else vector.float()


def _entry(value: Any, where: str, keys: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """One image's dict with ``keys`` checked and on the CPU."""
    if not isinstance(value, Mapping):
        raise DataError(f"{where}: expected a dict with {', '.join(keys)}; got {_describe(value)}")
    missing = [key for key in keys if key not in value]
    if missing:
        raise DataError(f"{where}: the dict lacks {', '.join(missing)} (it has {', '.join(map(str, value)) or 'no key'})")
    # a model's NaN boxes are counted by Detections.nonfinite, which names the model; the data's fail here
    boxes = _boxes(value["boxes"], where, finite="scores" not in keys)
    entry = {"boxes": boxes, "labels": _vector(value["labels"], len(boxes), where, "labels", integer=True)}
    if "scores" in keys:
        entry["scores"] = _vector(value["scores"], len(boxes), where, "scores", integer=False)
    return entry


def _entries(
    values: Any, batch_size: int, where: str, keys: tuple[str, ...], expected: str, counted: str
) -> list[dict[str, torch.Tensor]]:
    """``values`` as one checked dict with ``keys`` per image of a batch, or a DataError naming what is wrong."""
    if not (isinstance(values, Sequence) and not isinstance(values, (str, torch.Tensor))):
        raise DataError(f"{where}: {expected}; got {_describe(values)}")
    if len(values) != batch_size:
        raise DataError(f"{where}: {batch_size} images but {len(values)} {counted}")
    return [_entry(value, f"{where}, image {i}", keys) for i, value in enumerate(values)]


def detection_targets(targets: Any, batch_size: int, index: int) -> list[dict[str, torch.Tensor]]:
    """A batch's targets as one checked ``{boxes, labels}`` dict per image, or a DataError naming what is wrong."""
    expected = "a detector's targets must be a list of dicts with boxes and labels, one per image"
    return _entries(targets, batch_size, f"netzip_data batch {index}", ("boxes", "labels"), expected, "targets")


def detection_outputs(outputs: Any, batch_size: int, where: str) -> list[dict[str, torch.Tensor]]:
    """A detector's outputs on a batch as checked ``{boxes, scores, labels}`` dicts, or a DataError saying why not."""
    expected = "a detector must return a list of dicts with boxes, scores and labels, one per image"
    return _entries(outputs, batch_size, f"{where}, the model's output", ("boxes", "scores", "labels"),
                    expected, "dicts of detections")


def image_list(inputs: Any, targets: Any) -> Any:
    """``inputs`` as an :class:`ImageList` where it is a detector's list of images (one per target dict)."""
    if is_detection_batch(targets) and isinstance(inputs, (list, tuple)) and len(inputs) == len(targets):
        return ImageList(inputs)
    return inputs


@dataclass(frozen=True)
class Detections:
    """A detector's detections (CPU) on every evaluation image, with the ground truth and the inputs' fingerprint."""

    task: ClassVar[str] = "detection"
    kind: ClassVar[str] = "detections (a list of dicts)"

    detections: list[dict[str, torch.Tensor]]
    targets: list[dict[str, torch.Tensor]]
    inputs: torch.Tensor | None = None

    def same_samples(self, other: object) -> bool:
        """Whether ``other`` was computed on the same images (equal ground truth and inputs, in the same order)."""
        return isinstance(other, Detections) and len(other.targets) == len(self.targets) and all(
            torch.equal(mine["boxes"], theirs["boxes"]) and torch.equal(mine["labels"], theirs["labels"])
            for mine, theirs in zip(self.targets, other.targets)
        ) and same_inputs(self.inputs, other.inputs)

    @property
    def samples(self) -> int:
        """The number of evaluation images."""
        return len(self.targets)

    @property
    def nonfinite(self) -> int:
        """The number of images with a NaN or infinite box or score."""
        return sum(not (found["boxes"].isfinite().all() and found["scores"].isfinite().all()) for found in self.detections)


class DetectionCollector:
    """Keeps a detector's checked detections and ground truth, image by image."""

    paired: ClassVar[bool] = False

    def __init__(self) -> None:
        self.detections: list[dict[str, torch.Tensor]] = []
        self.targets: list[dict[str, torch.Tensor]] = []

    def add(self, output: Any, targets: Any, where: str, inputs: Any, reference_output: Any = None) -> None:
        """Check and keep one batch."""
        if not isinstance(targets, list):
            raise DataError(f"{where}: the model returns detections, but the targets are {_describe(targets)}, not a "
                            "detector's (a list of dicts of boxes and labels, one per image)")
        self.detections.extend(detection_outputs(output, len(targets), where))
        self.targets.extend(targets)

    def finish(self, inputs: torch.Tensor) -> Detections:
        """The detections on every image."""
        return Detections(self.detections, self.targets, inputs)
