"""Robustness metrics: accuracy under adversarial attack, and under perturbations hypothesis searches.

The markers ``adversarial_robustness`` and ``perturbation_robustness`` configure these metrics for
their test (:func:`adversarial_metrics`, :func:`perturbation_metrics`); the registry holds them
with default settings too, so a test body or ``--netzip-compare-fail`` can name them. Each
measurement runs once per model and setting, on the first ``samples`` evaluation samples.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_netzip.devices import seeded
from pytest_netzip.errors import AttackError, MetricUnavailable
from pytest_netzip.metrics.accuracy import share
from pytest_netzip.metrics.attacks import AttackSpec, craft, gradient_block
from pytest_netzip.metrics.base import Metric
from pytest_netzip.metrics.perturbation_search import (
    PerturbationSpec,
    corruption_error_ratio,
    search,
)
from pytest_netzip.metrics.robust_samples import labels_of, samples_of

if TYPE_CHECKING:
    import torch

    from pytest_netzip.metrics.base import Subject


@dataclass(frozen=True)
class Adversarial:
    """A model's accuracy under attack, the attack mode that set it, and how."""

    accuracy: float
    mode: str
    detail: str
    seconds: float


def _crafted(subject: Subject, spec: AttackSpec) -> torch.Tensor:
    """Adversarial examples crafted on ``subject`` itself from the samples it gets right (its clean pass is
    reused); the samples it gets wrong stay as they are, broken already."""
    unit, targets = samples_of(subject, spec.samples)
    right = subject.predictions.labels[: len(targets)].to(targets.device) == targets
    examples = unit.clone()
    if right.any():
        with seeded(spec.seed, subject.device):
            attack = spec.build(subject.data.on_unit_inputs(subject.model), subject.predictions.num_classes,
                                spec.seed)
            examples[right] = craft(attack, spec, unit[right], targets[right])
    return examples


def _robust(subject: Subject, spec: AttackSpec, examples: torch.Tensor) -> torch.Tensor:
    """Per sample, whether ``subject`` is still right on ``examples``."""
    targets = samples_of(subject, spec.samples)[1]
    return labels_of(subject.data.on_unit_inputs(subject.model), examples, subject.label) == targets


def adversarial(subject: Subject, reference: Subject, spec: AttackSpec) -> Adversarial:
    """``subject`` under ``spec``: by transfer from the reference always, white-box too where gradients reach its input.

    Where both run, a sample counts as robust only if it survives both.
    """

    def block_of(target: Subject) -> str | None:
        unit, targets = samples_of(target, spec.samples)
        return gradient_block(target.data.on_unit_inputs(target.model), unit, targets, target.label)

    def reference_attack() -> tuple[torch.Tensor, torch.Tensor, float]:
        start = time.perf_counter()
        block = block_of(reference)
        if block:
            raise MetricUnavailable(f"cannot attack the reference: {block}")
        try:
            examples = _crafted(reference, spec)
        except AttackError as exc:
            raise MetricUnavailable(f"attacking the reference: {exc}") from None
        return examples, _robust(reference, spec, examples), time.perf_counter() - start

    def attack() -> Adversarial:
        examples, reference_robust, reference_seconds = reference.once(("adversarial", spec), reference_attack)
        if subject is reference:
            return Adversarial(share(reference_robust), "white-box", f"{spec.id} white-box", reference_seconds)
        start = time.perf_counter()
        transfer = _robust(subject, spec, examples)
        block = block_of(subject)
        if block is None:
            try:
                white_box = _robust(subject, spec, _crafted(subject, spec))
            except AttackError as exc:
                block = f"the white-box attack failed ({exc})"
        seconds = time.perf_counter() - start
        if block is not None:
            return Adversarial(share(transfer), "transfer", f"{spec.id} by transfer only: {block}", seconds)
        mode = "white-box" if share(white_box) <= share(transfer) else "transfer"
        detail = (f"{spec.id}: white-box {share(white_box):.4f}, transfer {share(transfer):.4f}, "
                  f"{mode} stronger; robust to both {share(white_box & transfer):.4f}")
        return Adversarial(share(white_box & transfer), mode, detail, seconds)

    return subject.once(("adversarial", spec, id(reference)), attack)


def adversarial_metrics(spec: AttackSpec) -> tuple[Metric[Any], ...]:
    """``robust_accuracy``, ``attack_mode`` and ``attack_seconds`` under ``spec``."""

    def robust_accuracy(subject: Subject, reference: Subject) -> float:
        return adversarial(subject, reference, spec).accuracy

    def attack_mode(subject: Subject, reference: Subject) -> str:
        return adversarial(subject, reference, spec).mode

    def attack_detail(subject: Subject, reference: Subject) -> str:
        return adversarial(subject, reference, spec).detail

    def attack_seconds(subject: Subject, reference: Subject) -> float:
        return adversarial(subject, reference, spec).seconds

    return (
        Metric("robust_accuracy", robust_accuracy, f"top-1 accuracy under {spec.id} on {spec.samples} samples",
               unit="share", group="adversarial", setting=spec),
        Metric("attack_mode", attack_mode, "white-box or transfer: the attack that set robust_accuracy",
               unit="label", group="adversarial", setting=spec),
        Metric("attack_detail", attack_detail, "why attack_mode: the accuracy under each attack, or why no white-box",
               unit="label", group="adversarial", summary=False, setting=spec),
        Metric("attack_seconds", attack_seconds, "seconds the attack took on this model", unit="s",
               higher_is_better=False, group="adversarial", summary=False, setting=spec),
    )


def perturbation_metrics(spec: PerturbationSpec) -> tuple[Metric[Any], ...]:
    """``perturbation_drop``, ``perturbation_agreement``, ``worst_perturbation``, ``perturbation_seconds``,
    ``corruption_error_ratio`` and ``corruption_seconds`` under ``spec``."""

    def outcome(subject: Subject, reference: Subject) -> Any:
        return subject.once(("perturbation", spec, id(reference)), lambda: search(subject, reference, spec))

    def corruption(subject: Subject, reference: Subject) -> Any:
        return subject.once(("corruption", spec, id(reference)), lambda: corruption_error_ratio(subject, reference, spec))

    return (
        Metric("perturbation_drop", lambda subject, reference: outcome(subject, reference).drop,
               "largest top-1 drop against the reference under the same perturbation that the search found",
               unit="share", higher_is_better=False, relative=True, group="perturbation", setting=spec),
        Metric("perturbation_agreement", lambda subject, reference: outcome(subject, reference).agreement,
               "lowest agreement with the reference under the same perturbation that the search found",
               unit="share", relative=True, group="perturbation", setting=spec),
        Metric("worst_perturbation", lambda subject, reference: outcome(subject, reference).worst,
               "the perturbation behind perturbation_drop: kind, severity, seed", unit="label",
               group="perturbation", summary=False, setting=spec),
        Metric("perturbation_seconds", lambda subject, reference: outcome(subject, reference).seconds,
               "seconds the search took", unit="s", higher_is_better=False, group="perturbation", summary=False,
               setting=spec),
        Metric("corruption_error_ratio", lambda subject, reference: corruption(subject, reference).ratio,
               "mean over kinds of the top-1 error summed over five severities, divided by the reference's (ImageNet-C's "
               "mCE, the reference in AlexNet's place)", higher_is_better=False, relative=True, group="perturbation",
               setting=spec),
        Metric("corruption_seconds", lambda subject, reference: corruption(subject, reference).seconds,
               "seconds corruption_error_ratio took", unit="s", higher_is_better=False, group="perturbation",
               summary=False, setting=spec),
    )


#: The settings a body or ``--netzip-compare-fail`` gets without a robustness marker.
DEFAULT_ATTACK = AttackSpec("FGSM", eps=2 / 255, steps=None, alpha=None, samples=256)
DEFAULT_PERTURBATION = PerturbationSpec(kinds=(), max_severity=0.5)

ROBUSTNESS_METRICS = (*adversarial_metrics(DEFAULT_ATTACK), *perturbation_metrics(DEFAULT_PERTURBATION))
