"""A small U-Net segmenting squares and discs on synthetic 32x32 images, with data and checkpoint helpers."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

CHECKPOINT = Path(__file__).with_name("shapes_segmenter.pt")

CLASSES = ("background", "square", "disc")
SIZE = 32
IGNORE = 255  # the label of the one-pixel border around each shape, as in Pascal VOC


def block(channels_in: int, channels_out: int) -> nn.Sequential:
    """A 3x3 convolution, batch norm and a ReLU, keeping the spatial size."""
    return nn.Sequential(nn.Conv2d(channels_in, channels_out, 3, padding=1), nn.BatchNorm2d(channels_out), nn.ReLU())


class ShapesSegmenter(nn.Module):
    """Two downsamplings to 8x8, two upsamplings back with skip connections, a 1x1 head of class logits.

    Returns logits of shape (N, 3, 32, 32): background, square, disc.
    """

    def __init__(self) -> None:
        """Build the encoder, the decoder and the head."""
        super().__init__()
        self.down1 = block(3, 8)
        self.down2 = block(8, 16)
        self.bottom = block(16, 32)
        self.up2 = block(32 + 16, 16)
        self.up1 = block(16 + 8, 8)
        self.head = nn.Conv2d(8, len(CLASSES), 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Map a batch of shape (N, 3, 32, 32) to class logits of shape (N, 3, 32, 32)."""
        full = self.down1(images)
        half = self.down2(F.max_pool2d(full, 2))
        quarter = self.bottom(F.max_pool2d(half, 2))
        half = self.up2(torch.cat([F.interpolate(quarter, scale_factor=2.0, mode="nearest"), half], dim=1))
        full = self.up1(torch.cat([F.interpolate(half, scale_factor=2.0, mode="nearest"), full], dim=1))
        return self.head(full)


def make_scenes(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` images of one or two shapes (10-16 px, random colours, noisy gradient background) and their masks.

    Images are float32 (N, 3, 32, 32) in [0, 1]; masks int64 (N, 32, 32) holding 0 background,
    1 square, 2 disc, and ``IGNORE`` on the pixels within one pixel of a shape's edge. A later shape
    covers an earlier one.
    """
    generator = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.arange(SIZE) + 0.5, torch.arange(SIZE) + 0.5, indexing="ij")
    ramp = torch.rand(count, 3, 1, 1, generator=generator) * 0.3
    images = torch.rand(count, 3, SIZE, SIZE, generator=generator) * 0.15 + ramp * (xs / SIZE)
    masks = torch.zeros(count, SIZE, SIZE, dtype=torch.int64)
    edges = torch.zeros(count, SIZE, SIZE, dtype=torch.bool)
    for image, mask, edge in zip(images, masks, edges):
        for _ in range(int(torch.randint(1, 3, (), generator=generator))):
            size = 10 + 6 * torch.rand((), generator=generator).item()
            x1, y1 = ((SIZE - size) * torch.rand(2, generator=generator)).tolist()
            label = 1 + int(torch.randint(2, (), generator=generator))
            if label == 1:
                inside = (xs >= x1) & (xs <= x1 + size) & (ys >= y1) & (ys <= y1 + size)
            else:
                inside = (xs - x1 - size / 2) ** 2 + (ys - y1 - size / 2) ** 2 <= (size / 2) ** 2
            image[:, inside] = 0.35 + 0.65 * torch.rand(3, 1, generator=generator)
            mask[inside] = label
            grown = F.max_pool2d(inside[None, None].float(), 3, stride=1, padding=1)[0, 0] > 0
            shrunk = -F.max_pool2d(-inside[None, None].float(), 3, stride=1, padding=1)[0, 0] > 0
            edge |= grown & ~shrunk
    masks[edges] = IGNORE
    return images.clamp(0, 1), masks


def load_model(path: str | Path = CHECKPOINT) -> ShapesSegmenter:
    """Build a ``ShapesSegmenter``, load the state dict at ``path`` and return it in eval mode."""
    model = ShapesSegmenter()
    model.load_state_dict(torch.load(path, weights_only=True))
    return model.eval()
