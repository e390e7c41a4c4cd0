"""The GPT-2 language model's netzip fixtures; they override the digits classifier's for the tests in this folder.

Batches are HuggingFace causal-LM batches: ``labels`` are the ``input_ids`` (-100 on the padding). netzip sees
the targets equal an integer input and shifts as the model's own loss does: the logits at position t are
scored against the token at t + 1.
"""

from __future__ import annotations

import pytest
import torch
from transformers import GPT2LMHeadModel

from grammar_gpt2 import load_model, make_batches

Batches = list[dict[str, torch.Tensor]]


@pytest.fixture(scope="session")
def netzip_model() -> GPT2LMHeadModel:
    """The trained fp32 tiny GPT-2 every compressed variant is compared with."""
    return load_model()


@pytest.fixture(scope="session")
def netzip_train_data() -> None:
    """No training data: the parent conftest's digits must not reach a compressor that trains."""
    return None


@pytest.fixture(scope="session")
def netzip_calibration_data() -> Batches:
    """128 training sequences, whose activation ranges int8_static fixes (never the held-out ones)."""
    return make_batches(128, seed=1000)


@pytest.fixture(scope="session")
def netzip_data() -> Batches:
    """256 held-out sequences (another seed than training's) in batches of 32."""
    return make_batches(256, seed=7)
