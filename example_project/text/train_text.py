"""Train the tiny BERT on 3,000 synthetic reviews and save its state dict next to this file.

Run from the repository root: ``python example_project/text/train_text.py``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from transformers import BertForSequenceClassification  # noqa: E402

from sentiment_bert import CHECKPOINT, config, make_batches  # noqa: E402

SEED = 0
TRAIN_REVIEWS = 3000
EPOCHS = 10
BATCH_SIZE = 32
LEARNING_RATE = 3e-3


@torch.no_grad()
def accuracy(model: BertForSequenceClassification, batches: list[dict[str, torch.Tensor]]) -> float:
    """Top-1 accuracy over ``batches``."""
    model.eval()
    right = sum((model(**batch).logits.argmax(-1) == batch["labels"]).sum().item() for batch in batches)
    return right / sum(len(batch["labels"]) for batch in batches)


def train(epochs: int = EPOCHS, seed: int = SEED) -> BertForSequenceClassification:
    """Train a seeded tiny BERT with AdamW; the model computes its own cross-entropy from ``labels``."""
    torch.manual_seed(seed)
    batches = make_batches(TRAIN_REVIEWS, seed=1000 + seed, batch_size=BATCH_SIZE)
    model = BertForSequenceClassification(config())
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs * len(batches))
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        for index in torch.randperm(len(batches), generator=generator).tolist():
            optimizer.zero_grad()
            model(**batches[index]).loss.backward()
            optimizer.step()
            schedule.step()
    return model.eval()


def main() -> None:
    """Train on one thread (two contend on a shared CPU), report held-out accuracy and wall time, save the checkpoint."""
    torch.set_num_threads(1)
    start = time.perf_counter()
    model = train()
    elapsed = time.perf_counter() - start
    print(f"held-out top-1 {accuracy(model, make_batches(512, seed=7)):.4f}  ({elapsed:.1f}s)  saved {CHECKPOINT}")
    torch.save(model.state_dict(), CHECKPOINT)


if __name__ == "__main__":
    main()
