"""A one-stage detector of squares and discs on synthetic 32x32 images, with data and checkpoint helpers."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

CHECKPOINT = Path(__file__).with_name("shapes_detector.pt")

CLASSES = ("square", "disc")
SIZE = 32
STRIDE = 4  # pixels per cell of the 8x8 output grid
MAX_DETECTIONS = 10
MIN_SCORE = 0.05


class ShapesDetector(nn.Module):
    """Three 3x3 convolutions down to an 8x8 grid; each cell scores an object centred in it and regresses its box.

    Returns torchvision's detection format: per image a dict of ``boxes`` (x1, y1, x2, y2 pixels),
    ``scores`` and ``labels`` (0 square, 1 disc), the ``MAX_DETECTIONS`` surest cells above ``MIN_SCORE``.
    """

    def __init__(self) -> None:
        """Build the backbone and the per-cell head (objectness, class logits, box)."""
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
        )
        self.head = nn.Conv2d(32, 1 + len(CLASSES) + 4, 1)

    def raw(self, images: torch.Tensor) -> torch.Tensor:
        """The head's output, (N, 7, 8, 8): objectness logit, class logits, box offsets and log sizes."""
        return self.head(self.features(images))

    def forward(self, images: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """Detections for a batch of shape (N, 3, 32, 32)."""
        return decode(self.raw(images))


def decode(raw: torch.Tensor) -> list[dict[str, torch.Tensor]]:
    """Per image, the surest cells as boxes: centre = cell + sigmoid(offset), size = 8 px x exp(log size)."""
    cells = raw.shape[-1]
    grid_y, grid_x = torch.meshgrid(torch.arange(cells), torch.arange(cells), indexing="ij")
    centre_x = (grid_x.to(raw) + raw[:, 3 + 0].sigmoid()) * STRIDE
    centre_y = (grid_y.to(raw) + raw[:, 3 + 1].sigmoid()) * STRIDE
    width, height = raw[:, 3 + 2].exp() * 8, raw[:, 3 + 3].exp() * 8
    boxes = torch.stack([centre_x - width / 2, centre_y - height / 2, centre_x + width / 2, centre_y + height / 2], -1)
    class_scores, labels = raw[:, 1:3].softmax(dim=1).max(dim=1)
    scores = raw[:, 0].sigmoid() * class_scores
    detections = []
    for image_boxes, image_scores, image_labels in zip(boxes.flatten(1, 2), scores.flatten(1), labels.flatten(1)):
        top = image_scores.topk(MAX_DETECTIONS).indices
        top = top[image_scores[top] > MIN_SCORE]
        detections.append({"boxes": image_boxes[top], "scores": image_scores[top], "labels": image_labels[top]})
    return detections


def make_shapes(count: int, seed: int) -> tuple[torch.Tensor, list[dict[str, torch.Tensor]]]:
    """``count`` images of one or two shapes (8-14 px, random colours, noisy background) and their targets.

    Two shapes sit in different halves of the image, so they never overlap.
    """
    generator = torch.Generator().manual_seed(seed)

    def uniform(low: float, high: float) -> float:
        return low + (high - low) * torch.rand((), generator=generator).item()

    images = torch.rand(count, 3, SIZE, SIZE, generator=generator) * 0.2
    ys, xs = torch.meshgrid(torch.arange(SIZE) + 0.5, torch.arange(SIZE) + 0.5, indexing="ij")
    targets = []
    for image in images:
        shapes = 1 + int(torch.rand((), generator=generator) < 0.5)
        boxes, labels = [], []
        for half in range(shapes):
            size = uniform(8, 14)
            low = 0 if shapes == 1 or half == 0 else SIZE / 2
            high = SIZE - size if shapes == 1 or half == 1 else SIZE / 2 - size
            x1, y1 = uniform(low, max(low, high)), uniform(0, SIZE - size)
            label = int(torch.randint(len(CLASSES), (), generator=generator))
            if label == 0:
                mask = (xs >= x1) & (xs <= x1 + size) & (ys >= y1) & (ys <= y1 + size)
            else:
                mask = (xs - x1 - size / 2) ** 2 + (ys - y1 - size / 2) ** 2 <= (size / 2) ** 2
            image[:, mask] = (0.4 + 0.6 * torch.rand(3, 1, generator=generator))
            boxes.append([x1, y1, x1 + size, y1 + size])
            labels.append(label)
        targets.append({"boxes": torch.tensor(boxes), "labels": torch.tensor(labels)})
    return images, targets


def cell_targets(targets: list[dict[str, torch.Tensor]], cells: int = SIZE // STRIDE) -> torch.Tensor:
    """What ``raw`` should be at the centre cell of each object, (N, 7, 8, 8); other cells have objectness 0.

    Channel 0 is 1 at an object's cell, channel 1 its label, channels 3-6 the box offsets (in [0, 1])
    and log sizes.
    """
    wanted = torch.zeros(len(targets), 7, cells, cells)
    for index, target in enumerate(targets):
        for (x1, y1, x2, y2), label in zip(target["boxes"].tolist(), target["labels"].tolist()):
            cx, cy = (x1 + x2) / 2 / STRIDE, (y1 + y2) / 2 / STRIDE
            column, row = min(int(cx), cells - 1), min(int(cy), cells - 1)
            wanted[index, :, row, column] = torch.tensor(
                [1.0, label, 0.0, cx - column, cy - row, math.log((x2 - x1) / 8), math.log((y2 - y1) / 8)]
            )
    return wanted


def load_model(path: str | Path = CHECKPOINT) -> ShapesDetector:
    """Build a ``ShapesDetector``, load the state dict at ``path`` and return it in eval mode."""
    model = ShapesDetector()
    model.load_state_dict(torch.load(path, weights_only=True))
    return model.eval()
