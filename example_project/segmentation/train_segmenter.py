"""Train ShapesSegmenter on 800 synthetic scenes and save its state dict next to this file.

Run from the repository root: ``python example_project/segmentation/train_segmenter.py``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from shapes_segmenter import CHECKPOINT, CLASSES, IGNORE, ShapesSegmenter, make_scenes  # noqa: E402

SEED = 0
TRAIN_IMAGES = 800
EPOCHS = 12
BATCH_SIZE = 32
LEARNING_RATE = 3e-3


@torch.no_grad()
def miou(model: ShapesSegmenter, images: torch.Tensor, masks: torch.Tensor) -> float:
    """Mean IoU over the classes present, ignoring ``IGNORE`` pixels."""
    predicted = model.eval()(images).argmax(dim=1)
    scored = masks != IGNORE
    ious = []
    for label in range(len(CLASSES)):
        wanted, got = (masks == label) & scored, (predicted == label) & scored
        union = (wanted | got).sum()
        if union > 0:
            ious.append(((wanted & got).sum() / union).item())
    return sum(ious) / len(ious)


def train(epochs: int = EPOCHS, seed: int = SEED) -> ShapesSegmenter:
    """Train a seeded ShapesSegmenter with Adam (pixel cross-entropy, the border ignored)."""
    torch.manual_seed(seed)
    images, masks = make_scenes(TRAIN_IMAGES, seed=1000 + seed)
    model = ShapesSegmenter()
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        for batch in torch.randperm(len(images), generator=generator).split(BATCH_SIZE):
            optimizer.zero_grad()
            F.cross_entropy(model(images[batch]), masks[batch], ignore_index=IGNORE).backward()
            optimizer.step()
        schedule.step()
    return model.eval()


def main() -> None:
    """Train on one thread (two contend on a shared CPU), report the held-out mIoU and wall time, save the checkpoint."""
    torch.set_num_threads(1)
    start = time.perf_counter()
    model = train()
    elapsed = time.perf_counter() - start
    print(f"held-out mIoU {miou(model, *make_scenes(256, seed=7)):.4f}  ({elapsed:.1f}s)  saved {CHECKPOINT}")
    torch.save(model.state_dict(), CHECKPOINT)


if __name__ == "__main__":
    main()
