"""A language model's outputs on the evaluation set, reduced batch by batch to per-token sums.

Targets ``(batch, positions)`` hold, at each position, the token the logits there predict (aligned, not
shifted); ``-100`` marks a position not scored, as in HuggingFace. Batches whose targets are the input ids
themselves (HuggingFace's causal LMs shift inside the model) are shifted here: the logits at position t
are scored against the token at t + 1. The first batch decides, for the whole set: a later batch that
disagrees is a DataError. Never are all logits kept: a long evaluation set would not fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from pytest_netzip.data.fingerprint import same_inputs
from pytest_netzip.data.inputs import batched_leaves, describe
from pytest_netzip.errors import DataError

if TYPE_CHECKING:
    import torch

#: The target of a position that is not scored (HuggingFace's and torch's cross-entropy ``ignore_index``).
IGNORE_INDEX = -100


@dataclass(frozen=True)
class TokenOutputs:
    """Per-token sums of a language model on every scored position of the evaluation set.

    ``nll``: the summed negative log-likelihood of the targets (nats); ``correct``: positions whose top-1
    token is the target; ``agreeing``: positions whose top-1 token equals the reference model's; ``kl``: the
    summed KL(reference || this model) of the next-token distributions (nats).
    """

    task: ClassVar[str] = "language_modeling"
    kind: ClassVar[str] = "token logits"

    nll: float
    correct: int
    agreeing: int
    kl: float
    tokens: int
    samples: int
    nonfinite: int
    vocabulary: int
    shifted: bool
    inputs: torch.Tensor | None = None
    targets: torch.Tensor | None = None  # a fingerprint of the target tokens

    def same_samples(self, other: object) -> bool:
        """Whether ``other`` was computed on the same sequences and targets, in the same order."""
        return (isinstance(other, TokenOutputs) and same_inputs(self.inputs, other.inputs)
                and same_inputs(self.targets, other.targets))


def targets_are_inputs(targets: torch.Tensor, inputs: Any) -> bool:
    """Whether ``targets`` repeat an integer input tensor (``input_ids``) wherever they are scored."""
    scored = targets != IGNORE_INDEX
    return bool(scored.any()) and any(
        leaf.shape == targets.shape and not leaf.is_floating_point()
        and bool(((leaf.to(targets.device) == targets) | ~scored).all())
        for _, leaf in batched_leaves(inputs)
    )


def token_logits(output: Any, where: str) -> torch.Tensor:
    """``output`` checked to be token logits (batch, positions, vocabulary), as float32."""
    if not (hasattr(output, "ndim") and output.ndim == 3 and output.is_floating_point()):
        raise DataError(f"{where}: a language model returns token logits (batch, positions, vocabulary); this model "
                        f"returns {describe(output)}")
    logits: torch.Tensor = output.float()
    return logits


class LanguageCollector:
    """Adds each batch's per-token sums: memory stays that of one batch."""

    paired: ClassVar[bool] = True

    def __init__(self) -> None:
        self.nll = self.kl = 0.0
        self.correct = self.agreeing = self.tokens = self.samples = self.nonfinite = 0
        self.vocabulary = 0
        self.shifted: bool | None = None  # decided by the first batch with scored positions, held for the rest
        self.fingerprints: list[torch.Tensor] = []

    def add(self, output: Any, targets: Any, where: str, inputs: Any, reference_output: Any = None) -> None:
        """Score one batch of token logits against its targets and the reference's logits on the same sequences."""
        import torch
        import torch.nn.functional as F

        from pytest_netzip.data.fingerprint import fingerprint

        logits = token_logits(output, where)
        reference = token_logits(reference_output, where)
        if targets.is_floating_point() or targets.ndim != 2:
            raise DataError(f"{where}: a language model's targets are token ids (batch, positions), an integer tensor; "
                            f"got {describe(targets)}")
        if targets.shape != logits.shape[:2]:
            raise DataError(f"{where}: the model scores {logits.shape[1]} positions per sequence, the targets hold "
                            f"{targets.shape[1]}")
        self.fingerprints.append(fingerprint(targets, len(targets)))
        targets = targets.to(logits.device, torch.long)  # gather takes int64 indices; uint8 ones would not do
        self.samples += len(logits)
        self.nonfinite += int((~logits.isfinite()).flatten(1).any(dim=1).sum())
        if bool((targets != IGNORE_INDEX).any()):  # a batch with scored positions tells how its targets stand
            shifted = targets_are_inputs(targets, inputs)
            if self.shifted is not None and shifted != self.shifted:
                told = "the first batch's targets " + ("repeat" if self.shifted else "do not repeat")
                raise DataError(
                    f"{where}: its targets {'repeat' if shifted else 'do not repeat'} the input ids wherever they are "
                    f"scored, but {told} them: netzip shifts HuggingFace-style labels (labels = input_ids) for the "
                    "whole evaluation set, so every batch must be alike (give aligned targets, the token each "
                    "position predicts, to score them as they stand)"
                )
            self.shifted = shifted
        if self.shifted:  # HuggingFace-style labels: position t predicts token t + 1
            logits, reference, targets = logits[:, :-1], reference[:, :-1], targets[:, 1:]
        self.vocabulary = logits.shape[-1]
        scored = targets != IGNORE_INDEX
        wrong = scored & ((targets < 0) | (targets >= self.vocabulary))
        if wrong.any():
            raise DataError(f"{where}: target tokens must lie in [0, {self.vocabulary}) ({IGNORE_INDEX} marks a "
                            f"position not scored); got {int(targets[wrong][0])}")
        log_probs = F.log_softmax(logits[scored], dim=-1)
        reference_log_probs = F.log_softmax(reference[scored], dim=-1)
        wanted = targets[scored]
        predicted = log_probs.argmax(dim=-1)
        self.nll -= float(log_probs.gather(1, wanted[:, None]).double().sum())
        self.kl += float(F.kl_div(log_probs, reference_log_probs, reduction="sum", log_target=True).double())
        self.correct += int((predicted == wanted).sum())
        self.agreeing += int((predicted == reference_log_probs.argmax(dim=-1)).sum())
        self.tokens += int(scored.sum())

    def finish(self, inputs: torch.Tensor) -> TokenOutputs:
        """The reduced outputs of every batch."""
        import torch

        return TokenOutputs(self.nll, self.correct, self.agreeing, self.kl, self.tokens, self.samples, self.nonfinite,
                            self.vocabulary, bool(self.shifted), inputs, torch.cat(self.fingerprints))
