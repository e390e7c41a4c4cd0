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

from pytest_netzip.attacks import AttackError, AttackSpec, craft, gradient_block
from pytest_netzip.inputs import first_samples, on_unit_inputs
from pytest_netzip.metrics.base import Metric, MetricUnavailable
from pytest_netzip.perturbation_search import PerturbationSpec, _share, corruption_error_ratio, search

if TYPE_CHECKING:
    import torch
    from torch import nn

    from pytest_netzip.evaluation import Subject


@dataclass(frozen=True)
class Adversarial:
    """A model's accuracy under attack, the attack mode that set it, and why."""

    accuracy: float
    mode: str
    detail: str
    seconds: float


def _labels(model: nn.Module, inputs: torch.Tensor, batch: int = 64) -> torch.Tensor:
    import torch

    with torch.no_grad():
        return torch.cat([model(inputs[start:start + batch]).argmax(dim=1) for start in range(0, len(inputs), batch)])


def _samples(subject: Subject, spec: AttackSpec | PerturbationSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``spec.samples`` evaluation samples, inputs in [0, 1], on the subject's device."""
    from pytest_netzip.evaluation import DataError
    from pytest_netzip.inputs import InputSpaceError

    subject.predictions  # noqa: B018 - raises WrongTask for a detector, before its targets are stacked
    try:
        inputs, targets = first_samples(subject.data, spec.samples)
        return subject.data.space.to_unit(inputs.to(subject.device)), targets.to(subject.device)
    except InputSpaceError as exc:
        raise DataError(str(exc)) from None
    except ValueError as exc:
        raise MetricUnavailable(str(exc)) from None


def _white_box(subject: Subject, spec: AttackSpec) -> tuple[torch.Tensor, float]:
    """Adversarial examples crafted on ``subject`` itself (where it was right), and its accuracy on them."""
    import torch

    unit, targets = _samples(subject, spec)
    model = on_unit_inputs(subject.model, subject.data.space)
    right = subject.predictions.labels[: len(targets)].to(targets.device) == targets  # reuses the clean pass
    adversarial = unit.clone()
    if right.any():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(spec.seed)
            attack = spec.build(model, subject.predictions.num_classes, spec.seed)
            adversarial[right] = craft(attack, spec, unit[right], targets[right])
    return adversarial, _share(_labels(model, adversarial) == targets)


def adversarial(subject: Subject, reference: Subject, spec: AttackSpec) -> Adversarial:
    """``subject`` under ``spec``: white-box where gradients reach its input, by transfer from the reference always."""

    def reference_attack() -> tuple[torch.Tensor, float, float]:
        start = time.perf_counter()
        block = gradient_block(on_unit_inputs(reference.model, reference.data.space), *_samples(reference, spec))
        if block:
            raise MetricUnavailable(f"cannot attack the reference: {block}")
        try:
            examples, accuracy = _white_box(reference, spec)
        except AttackError as exc:
            raise MetricUnavailable(f"attacking the reference: {exc}") from None
        return examples, accuracy, time.perf_counter() - start

    def attack() -> Adversarial:
        examples, reference_accuracy, reference_seconds = reference.once(("adversarial", spec), reference_attack)
        if subject is reference:
            return Adversarial(reference_accuracy, "white-box", "", reference_seconds)
        start = time.perf_counter()
        unit, targets = _samples(subject, spec)
        model = on_unit_inputs(subject.model, subject.data.space)
        transfer = _share(_labels(model, examples) == targets)
        block = gradient_block(model, unit, targets)
        if block is None:
            try:
                white_box = _white_box(subject, spec)[1]
            except AttackError as exc:
                block = f"the white-box attack failed ({exc})"
        if block is not None:
            detail = f"transfer from the reference only: {block}"
            return Adversarial(transfer, "transfer", detail, time.perf_counter() - start)
        mode = "white-box" if white_box <= transfer else "transfer"
        detail = f"{mode} stronger: white-box {white_box:.4f}, transfer {transfer:.4f}"
        return Adversarial(min(white_box, transfer), mode, detail, time.perf_counter() - start)

    return subject.once(("adversarial", spec, id(reference)), attack)


def adversarial_metrics(spec: AttackSpec) -> tuple[Metric, ...]:
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


def perturbation_metrics(spec: PerturbationSpec) -> tuple[Metric, ...]:
    """``perturbation_drop``, ``perturbation_agreement``, ``worst_perturbation``, ``corruption_error_ratio``,
    ``perturbation_seconds`` under ``spec``."""

    def outcome(subject: Subject, reference: Subject) -> Any:
        return subject.once(("perturbation", spec, id(reference)), lambda: search(subject, reference, spec, _samples))

    def ratio(subject: Subject, reference: Subject) -> float:
        return subject.once(("corruption", spec, id(reference)),
                            lambda: corruption_error_ratio(subject, reference, spec, _samples))

    return (
        Metric("perturbation_drop", lambda s, r: outcome(s, r).drop,
               "largest top-1 drop against the reference under the same perturbation that the search found",
               unit="share", higher_is_better=False, relative=True, group="perturbation", setting=spec),
        Metric("perturbation_agreement", lambda s, r: outcome(s, r).agreement,
               "lowest agreement with the reference under the same perturbation that the search found",
               unit="share", relative=True, group="perturbation", setting=spec),
        Metric("worst_perturbation", lambda s, r: outcome(s, r).worst,
               "the perturbation behind perturbation_drop: kind, severity, seed", unit="label",
               group="perturbation", summary=False, setting=spec),
        Metric("perturbation_seconds", lambda s, r: outcome(s, r).seconds, "seconds the search took", unit="s",
               higher_is_better=False, group="perturbation", summary=False, setting=spec),
        Metric("corruption_error_ratio", ratio,
               "mean over kinds of summed top-1 error over five severities, relative to the reference's (after "
               "ImageNet-C's relative mCE)", higher_is_better=False, relative=True, setting=spec),
    )


#: The settings a body or ``--netzip-compare-fail`` gets without a robustness marker.
DEFAULT_ATTACK = AttackSpec("FGSM", eps=2 / 255, steps=None, alpha=None, samples=256)
DEFAULT_PERTURBATION = PerturbationSpec(kinds=("noise", "brightness", "contrast", "blur", "shift"), max_severity=0.5)

ROBUSTNESS_METRICS = (*adversarial_metrics(DEFAULT_ATTACK), *perturbation_metrics(DEFAULT_PERTURBATION))
