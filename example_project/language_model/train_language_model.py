"""Train the tiny GPT-2 on 1,000 generated sequences and save its state dict next to this file.

Run from the repository root: ``python example_project/language_model/train_language_model.py``.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from transformers import GPT2LMHeadModel  # noqa: E402

from grammar_gpt2 import CHECKPOINT, config, make_batches  # noqa: E402

SEED = 0
TRAIN_SEQUENCES = 1000
EPOCHS = 10
BATCH_SIZE = 32
LEARNING_RATE = 3e-3


@torch.no_grad()
def perplexity(model: GPT2LMHeadModel, batches: list[dict[str, torch.Tensor]]) -> float:
    """exp of the mean next-token loss over ``batches`` (HuggingFace's shifted loss, padding ignored)."""
    model.eval()
    total, count = 0.0, 0
    for batch in batches:
        scored = int((batch["labels"][:, 1:] != -100).sum())
        total, count = total + model(**batch).loss.item() * scored, count + scored
    return math.exp(total / count)


def train(epochs: int = EPOCHS, seed: int = SEED) -> GPT2LMHeadModel:
    """Train a seeded tiny GPT-2 with AdamW; the model computes its own shifted cross-entropy from ``labels``."""
    torch.manual_seed(seed)
    batches = make_batches(TRAIN_SEQUENCES, seed=1000 + seed, batch_size=BATCH_SIZE)
    model = GPT2LMHeadModel(config())
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
    """Train on one thread (two contend on a shared CPU), report held-out perplexity and wall time, save the checkpoint."""
    torch.set_num_threads(1)
    start = time.perf_counter()
    model = train()
    elapsed = time.perf_counter() - start
    print(f"held-out perplexity {perplexity(model, make_batches(256, seed=7)):.3f}  ({elapsed:.1f}s)  saved {CHECKPOINT}")
    torch.save(model.state_dict(), CHECKPOINT)


if __name__ == "__main__":
    main()
