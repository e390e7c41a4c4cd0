"""The robustness markers: the attack or perturbation search each asks for, and its thresholds."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

from pytest_netzip.budgets.thresholds import AtLeast, AtMost, MaxDrop, Threshold
from pytest_netzip.budgets.values import _number, _positive, _share, _whole
from pytest_netzip.errors import BudgetError
from pytest_netzip.metrics import MetricRegistry
from pytest_netzip.metrics.attacks import ATTACKS, DEFAULT_STEPS, TORCHATTACKS_MISSING, AttackSpec
from pytest_netzip.metrics.perturbation_search import PerturbationSpec
from pytest_netzip.metrics.perturbations import KINDS
from pytest_netzip.naming import unknown_name_message

#: torchattacks attacks without a ``steps`` / an ``alpha`` parameter (the others among ATTACKS take both).
_NO_STEPS = frozenset({"FGSM", "FFGSM", "AutoAttack", "Square"})


_NO_ALPHA = frozenset({"FGSM", "APGD", "AutoAttack", "Square"})


def attack_spec(
    *, attack: str = "FGSM", eps: float, steps: int | None = None, alpha: float | None = None, samples: int = 256,
    seed: int = 0,
) -> AttackSpec:
    """The attack an ``adversarial_robustness`` marker asks for, with meaningful defaults; BudgetError if impossible.

    Iterative attacks default to 10 steps of 2.5 x eps / steps, so that they can reach ``eps``.
    """
    marker = "adversarial_robustness"
    if importlib.util.find_spec("torchattacks") is None:
        raise BudgetError(f"{marker} needs torchattacks, {TORCHATTACKS_MISSING}")
    canonical = {name.lower(): name for name in ATTACKS}
    if not isinstance(attack, str) or attack.lower() not in canonical:
        raise BudgetError(f"{marker}(attack=...): {unknown_name_message('attack', attack, ATTACKS)}")
    attack = canonical[attack.lower()]
    if _share(marker, "eps", eps) == 0:
        raise BudgetError(f"{marker}(eps=0) attacks nothing: eps must be positive (in [0, 1] units of the input range)")
    eps = float(eps)
    for keyword, value, lacking in (("steps", steps, _NO_STEPS), ("alpha", alpha, _NO_ALPHA)):
        if value is not None and attack in lacking:
            raise BudgetError(f"{marker}({keyword}={value!r}): {attack} takes no {keyword}")
    if attack not in _NO_STEPS:
        steps = DEFAULT_STEPS if steps is None else _whole(marker, "steps", steps)
    if attack not in _NO_ALPHA:
        alpha = _positive(marker, "alpha", alpha) if alpha is not None else eps * (2.5 / steps if steps else 1.25)
    return AttackSpec(attack, eps, steps, alpha, _whole(marker, "samples", samples), seed)


def _adversarial_robustness(
    registry: MetricRegistry,
    *,
    attack: str = "FGSM",
    eps: float,
    steps: int | None = None,
    alpha: float | None = None,
    max_drop: float | None = None,
    min_accuracy: float | None = None,
    samples: int = 256,
) -> list[Threshold]:
    """Top-1 under a torchattacks attack: white-box where gradients reach the input, and by transfer from the reference.

    :param attack: the attack, by torchattacks' name in any case: ``FGSM``, ``PGD``, ``BIM``, ``MIFGSM``, ``APGD``,
        ``Square``, ``AutoAttack``, ...
    :param eps: the L∞ budget on inputs scaled to [0, 1], in (0, 1]
    :param steps: iterations of an iterative attack (default 10)
    :param alpha: step size of an iterative attack (default 2.5 × ``eps`` / ``steps``)
    :param max_drop: reference ``robust_accuracy`` − compressed ≤ ``max_drop``
    :param min_accuracy: compressed ``robust_accuracy`` ≥ ``min_accuracy``
    :param samples: the first ``samples`` evaluation samples are attacked
    """
    attack_spec(attack=attack, eps=eps, steps=steps, alpha=alpha, samples=samples)
    marker, details = "adversarial_robustness", ("attack_detail",)
    thresholds: list[Threshold] = []
    if max_drop is not None:
        limit = _share(marker, "max_drop", max_drop)
        thresholds.append(MaxDrop(marker, "max_drop", "robust_accuracy", limit, details=details))
    if min_accuracy is not None:
        limit = _share(marker, "min_accuracy", min_accuracy)
        thresholds.append(AtLeast(marker, "min_accuracy", "robust_accuracy", limit, details=details))
    if not thresholds:
        raise BudgetError(f"{marker} sets no threshold: give max_drop or min_accuracy")
    return thresholds


def perturbation_spec(
    *, kinds: Sequence[str] | None = None, max_severity: float = 1.0, max_drop: float | None = None,
    min_agreement: float | None = None, samples: int = 256, max_examples: int = 20, seed: int = 0,
) -> PerturbationSpec:
    """The search a ``perturbation_robustness`` marker asks for; BudgetError if impossible."""
    marker = "perturbation_robustness"
    if kinds is not None:
        if isinstance(kinds, str):
            kinds = [kinds]
        if not isinstance(kinds, (list, tuple)) or not kinds:
            raise BudgetError(f"{marker}(kinds={kinds!r}) must list perturbation kinds among {', '.join(KINDS)}")
        for kind in kinds:
            if not isinstance(kind, str) or kind not in KINDS:
                raise BudgetError(f"{marker}(kinds=...): {unknown_name_message('perturbation kind', kind, list(KINDS))}")
    kinds = tuple(kinds or ())  # empty: every kind that applies to the inputs
    if not 0 < _number(marker, "max_severity", max_severity) <= 1:
        raise BudgetError(f"{marker}(max_severity={max_severity!r}) is impossible: severities lie in (0, 1]")
    return PerturbationSpec(
        kinds, float(max_severity),
        None if max_drop is None else _share(marker, "max_drop", max_drop),
        None if min_agreement is None else _share(marker, "min_agreement", min_agreement),
        _whole(marker, "samples", samples), _whole(marker, "max_examples", max_examples), seed,
    )


def _perturbation_robustness(
    registry: MetricRegistry,
    *,
    kinds: Sequence[str] | None = None,
    max_severity: float = 1.0,
    max_drop: float | None = None,
    min_agreement: float | None = None,
    samples: int = 256,
    max_examples: int = 20,
) -> list[Threshold]:
    """Hypothesis searches noise, brightness, contrast, blur and shift for a perturbation that breaks the budget.

    :param kinds: which perturbations (default: every kind that fits the inputs)
    :param max_severity: severities searched lie in [0, ``max_severity``]
    :param max_drop: under every perturbation tried, compressed top-1 ≥ reference top-1 under it − ``max_drop``
    :param min_agreement: under every perturbation tried, agreement with the reference ≥ ``min_agreement``
    :param samples: the first ``samples`` evaluation samples are perturbed
    :param max_examples: perturbations hypothesis tries
    """
    spec = perturbation_spec(kinds=kinds, max_severity=max_severity, max_drop=max_drop, min_agreement=min_agreement,
                             samples=samples, max_examples=max_examples)
    marker, details = "perturbation_robustness", ("worst_perturbation",)
    thresholds: list[Threshold] = []
    if spec.max_drop is not None:
        thresholds.append(AtMost(marker, "max_drop", "perturbation_drop", spec.max_drop, details=details))
    if spec.min_agreement is not None:
        thresholds.append(AtLeast(marker, "min_agreement", "perturbation_agreement", spec.min_agreement,
                                    details=details))
    if not thresholds:
        raise BudgetError(f"{marker} sets no threshold: give max_drop or min_agreement")
    return thresholds
