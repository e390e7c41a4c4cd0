"""Train ShapesDetector on 3,000 synthetic images and save its state dict next to this file.

Run from the repository root: ``python example_project/detection/train_detector.py``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from shapes_detector import CHECKPOINT, ShapesDetector, cell_targets, make_shapes  # noqa: E402

SEED = 0
TRAIN_IMAGES = 3000
EPOCHS = 30
BATCH_SIZE = 64
LEARNING_RATE = 3e-3


def loss(raw: torch.Tensor, wanted: torch.Tensor) -> torch.Tensor:
    """Objectness BCE everywhere; class cross-entropy and box L1 at the objects' cells."""
    objects = wanted[:, 0] > 0
    objectness = F.binary_cross_entropy_with_logits(raw[:, 0], wanted[:, 0])
    cells = raw.permute(0, 2, 3, 1)[objects]
    truth = wanted.permute(0, 2, 3, 1)[objects]
    classes = F.cross_entropy(cells[:, 1:3], truth[:, 1].long())
    offsets = F.l1_loss(cells[:, 3:5].sigmoid(), truth[:, 3:5])
    sizes = F.l1_loss(cells[:, 5:7], truth[:, 5:7])
    return objectness * 5 + classes + offsets * 5 + sizes * 2


def train(epochs: int = EPOCHS, seed: int = SEED) -> ShapesDetector:
    """Train a seeded ShapesDetector with Adam."""
    torch.manual_seed(seed)
    images, targets = make_shapes(TRAIN_IMAGES, seed=1000 + seed)
    wanted = cell_targets(targets)
    model = ShapesDetector()
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        for batch in torch.randperm(len(images), generator=generator).split(BATCH_SIZE):
            optimizer.zero_grad()
            loss(model.raw(images[batch]), wanted[batch]).backward()
            optimizer.step()
        schedule.step()
    return model.eval()


def main() -> None:
    """Train, report the wall time, and save the checkpoint."""
    start = time.perf_counter()
    model = train()
    torch.save(model.state_dict(), CHECKPOINT)
    print(f"trained in {time.perf_counter() - start:.1f}s, saved {CHECKPOINT}")


if __name__ == "__main__":
    main()
