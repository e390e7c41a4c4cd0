"""Language-model quality from one streamed pass: perplexity, token accuracy, and fidelity to the reference."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from pytest_netzip.errors import MetricUnavailable
from pytest_netzip.metrics.base import metric

if TYPE_CHECKING:
    from pytest_netzip.data.language import TokenOutputs
    from pytest_netzip.metrics.base import Subject


def _scored(subject: Subject) -> TokenOutputs:
    outputs = subject.tokens
    if outputs.tokens == 0:
        raise MetricUnavailable("no token is scored: every target is -100")
    return outputs


@metric("perplexity", "exp of the mean negative log-likelihood of the target tokens", higher_is_better=False)
def perplexity(subject: Subject, reference: Subject) -> float:
    """Perplexity over every scored position."""
    outputs = _scored(subject)
    return math.exp(outputs.nll / outputs.tokens)


@metric("token_accuracy", "share of scored positions whose top-1 token is the target", unit="share")
def token_accuracy(subject: Subject, reference: Subject) -> float:
    """Next-token accuracy."""
    outputs = _scored(subject)
    return outputs.correct / outputs.tokens


@metric("token_agreement", "share of scored positions whose top-1 token equals the reference's", unit="share",
        relative=True)
def token_agreement(subject: Subject, reference: Subject) -> float:
    """Agreement with the reference, token by token."""
    outputs = _scored(subject)
    return outputs.agreeing / outputs.tokens


@metric("kl_divergence", "mean over scored positions of KL(reference || this model) of the next-token distributions",
        unit="nats", higher_is_better=False, relative=True)
def kl_divergence(subject: Subject, reference: Subject) -> float:
    """How far the next-token distributions moved from the reference's."""
    outputs = _scored(subject)
    return outputs.kl / outputs.tokens


LANGUAGE_METRICS = (perplexity, token_accuracy, token_agreement, kl_divergence)
