"""A two-layer BERT (HuggingFace ``BertForSequenceClassification``, built from a tiny config) that tells
positive from negative synthetic reviews, with its word-level tokenizer, data and checkpoint helpers."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import BertConfig, BertForSequenceClassification

CHECKPOINT = Path(__file__).with_name("sentiment_bert.pt")

SPECIAL = ("[PAD]", "[CLS]", "[SEP]", "[UNK]")
POSITIVE = ("good", "great", "fine", "lovely", "superb", "nice")
NEGATIVE = ("bad", "awful", "poor", "dull", "boring", "weak")
NEUTRAL = ("the", "film", "plot", "was", "and", "a", "cast", "story", "ending", "music", "very", "quite")
NEGATION = "not"
VOCAB = (*SPECIAL, *POSITIVE, *NEGATIVE, *NEUTRAL, NEGATION)
MAX_LENGTH = 16  # [CLS] + up to 14 words + [SEP]


def config() -> BertConfig:
    """The tiny BERT: hidden size 32, 2 layers of 2 heads, an intermediate size of 64, 2 labels."""
    return BertConfig(
        vocab_size=len(VOCAB),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=MAX_LENGTH,
        num_labels=2,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )


class WordTokenizer:
    """Splits on spaces and maps words to ids of ``VOCAB``; pads to the batch's longest review."""

    ids = {word: index for index, word in enumerate(VOCAB)}

    def __call__(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """``input_ids`` and ``attention_mask`` (N, T), as a HuggingFace tokenizer returns them."""
        rows = [[1, *(self.ids.get(word, 3) for word in text.split()), 2] for text in texts]
        width = max(len(row) for row in rows)
        input_ids = torch.tensor([row + [0] * (width - len(row)) for row in rows])
        return {"input_ids": input_ids, "attention_mask": (input_ids != 0).long()}


def make_reviews(count: int, seed: int) -> tuple[list[str], torch.Tensor]:
    """``count`` reviews of 4-14 words and their labels (1 positive, 0 negative).

    A review holds one to three opinion words among neutral ones; ``not`` before an opinion word
    flips it. The label is the sign of the opinions' sum; reviews whose opinions cancel are drawn again.
    """
    generator = torch.Generator().manual_seed(seed)

    def pick(words: tuple[str, ...]) -> str:
        return words[int(torch.randint(len(words), (), generator=generator))]

    texts: list[str] = []
    labels: list[int] = []
    while len(texts) < count:
        length = int(torch.randint(4, 15, (), generator=generator))
        words = [pick(NEUTRAL) for _ in range(length)]
        score = 0
        opinions = int(torch.randint(1, 4, (), generator=generator))
        slots = torch.randperm(length - 1, generator=generator)[:opinions] + 1
        for slot in slots.tolist():
            positive = bool(torch.rand((), generator=generator) < 0.5)
            words[slot] = pick(POSITIVE if positive else NEGATIVE)
            negated = bool(torch.rand((), generator=generator) < 0.3) and words[slot - 1] in NEUTRAL
            if negated:
                words[slot - 1] = NEGATION
            score += 1 if positive != negated else -1
        if score != 0:
            texts.append(" ".join(words))
            labels.append(int(score > 0))
    return texts, torch.tensor(labels)


def make_batches(count: int, seed: int, batch_size: int = 64) -> list[dict[str, torch.Tensor]]:
    """``count`` reviews as HuggingFace-style dict batches: ``input_ids``, ``attention_mask`` and ``labels``."""
    texts, labels = make_reviews(count, seed)
    tokenize = WordTokenizer()
    return [
        {**tokenize(texts[start:start + batch_size]), "labels": labels[start:start + batch_size]}
        for start in range(0, count, batch_size)
    ]


def load_model(path: str | Path = CHECKPOINT) -> BertForSequenceClassification:
    """Build the tiny BERT from its config, load the state dict at ``path`` and return it in eval mode."""
    model = BertForSequenceClassification(config())
    model.load_state_dict(torch.load(path, weights_only=True))
    return model.eval()
