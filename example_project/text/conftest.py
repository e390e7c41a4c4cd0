"""The BERT classifier's netzip fixtures; they override the digits classifier's for the tests in this folder.

Batches are what a HuggingFace ``Trainer`` would get from a tokenizer and a collator: dicts of
``input_ids``, ``attention_mask`` and ``labels``. netzip takes ``labels`` as the targets and passes the
other keys to the model as keyword arguments; it reads the predictions from ``SequenceClassifierOutput.logits``.
"""

from __future__ import annotations

import pytest
import torch
from transformers import BertForSequenceClassification

from sentiment_bert import load_model, make_batches

Batches = list[dict[str, torch.Tensor]]


@pytest.fixture(scope="session")
def netzip_model() -> BertForSequenceClassification:
    """The trained fp32 tiny BERT every compressed variant is compared with."""
    return load_model()


@pytest.fixture(scope="session")
def netzip_train_data() -> Batches:
    """The 3,000 training reviews (the training seed), for the compressors that train."""
    return make_batches(3000, seed=1000)


@pytest.fixture(scope="session")
def netzip_calibration_data() -> Batches:
    """256 training reviews, whose activation ranges int8_static fixes (never the held-out ones)."""
    return make_batches(256, seed=1000)


@pytest.fixture(scope="session")
def netzip_data() -> Batches:
    """512 held-out reviews (another seed than training's) in batches of 64."""
    return make_batches(512, seed=7)
