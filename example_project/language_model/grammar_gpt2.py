"""A two-layer GPT-2 (HuggingFace ``GPT2LMHeadModel``, built from a tiny config) that learns a small English-like
grammar generated in code, with its word-level vocabulary, data and checkpoint helpers."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import GPT2Config, GPT2LMHeadModel

CHECKPOINT = Path(__file__).with_name("grammar_gpt2.pt")

PAD, BOS = 0, 1
DETERMINERS = ("the", "a", "every", "some")
ADJECTIVES = ("small", "old", "red", "quiet")
NOUNS = ("cat", "dog", "bird", "child", "farmer", "ship")  # plurals add "s"
VERBS = ("see", "chase", "like", "help", "follow")  # third person singular adds "s"
VOCAB = (
    "[PAD]", "[BOS]", ".", "and", *DETERMINERS, *ADJECTIVES,
    *NOUNS, *(noun + "s" for noun in NOUNS), *VERBS, *(verb + "s" for verb in VERBS),
)
MAX_LENGTH = 32


def config() -> GPT2Config:
    """The tiny GPT-2: 64-wide embeddings, 2 layers of 2 heads, 32 positions, no dropout, no key-value cache."""
    return GPT2Config(
        vocab_size=len(VOCAB),
        n_positions=MAX_LENGTH,
        n_embd=64,
        n_layer=2,
        n_head=2,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=BOS,
        eos_token_id=VOCAB.index("."),
        use_cache=False,  # scoring a whole sequence at once needs no key-value cache in the outputs
    )


def make_texts(count: int, seed: int) -> list[list[int]]:
    """``count`` token sequences: ``[BOS]`` then sentences until the next would pass ``MAX_LENGTH``.

    A sentence is ``subject verb object .``; each word is drawn with Zipf's law (the first of a list twice
    as often as the second), so the likeliest next word is a clear choice; a noun phrase is a determiner, maybe an adjective and a
    noun; ``a`` and ``every`` take a singular noun, ``some`` a plural one, ``the`` either, and the verb
    agrees with the subject (``the cats chase``, ``a dog sees``). Two subjects may be joined by ``and``
    (then the verb is plural).
    """
    generator = torch.Generator().manual_seed(seed)
    ids = {word: index for index, word in enumerate(VOCAB)}

    def pick(words: tuple[str, ...]) -> str:
        zipf = torch.tensor([1 / (rank + 1) for rank in range(len(words))])
        return words[int(torch.multinomial(zipf, 1, generator=generator))]

    def noun_phrase() -> tuple[list[str], bool]:
        determiner = pick(DETERMINERS)
        plural = determiner == "some" or (determiner == "the" and bool(torch.rand((), generator=generator) < 0.5))
        words = [determiner]
        if torch.rand((), generator=generator) < 0.4:
            words.append(pick(ADJECTIVES))
        return [*words, pick(NOUNS) + ("s" if plural else "")], plural

    texts = []
    for _ in range(count):
        tokens = [BOS]
        while True:
            subject, plural = noun_phrase()
            if torch.rand((), generator=generator) < 0.2:
                other, _ = noun_phrase()
                subject, plural = [*subject, "and", *other], True
            obj, _ = noun_phrase()
            sentence = [*subject, pick(VERBS) + ("" if plural else "s"), *obj, "."]
            if len(tokens) + len(sentence) > MAX_LENGTH:
                break
            tokens += [ids[word] for word in sentence]
        texts.append(tokens)
    return texts


def make_batches(count: int, seed: int, batch_size: int = 32) -> list[dict[str, torch.Tensor]]:
    """``count`` sequences as HuggingFace causal-LM batches: ``input_ids``, ``attention_mask`` and ``labels``.

    ``labels`` are the ``input_ids`` (the model shifts them), -100 on the right padding. Every batch is padded
    to ``MAX_LENGTH``, as a tokenizer's ``padding="max_length"`` pads them.
    """
    texts = make_texts(count, seed)
    batches = []
    for start in range(0, count, batch_size):
        rows = texts[start:start + batch_size]
        width = MAX_LENGTH
        input_ids = torch.tensor([row + [PAD] * (width - len(row)) for row in rows])
        attention_mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in rows])
        labels = input_ids.masked_fill(attention_mask == 0, -100)
        batches.append({"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels})
    return batches


def load_model(path: str | Path = CHECKPOINT) -> GPT2LMHeadModel:
    """Build the tiny GPT-2 from its config, load the state dict at ``path`` and return it in eval mode."""
    model = GPT2LMHeadModel(config())
    model.load_state_dict(torch.load(path, weights_only=True))
    return model.eval()
