"""Hypothesis searches the perturbations under which a compressed model falls behind its reference.

The property: under any perturbation (kind, severity in [0, max_severity], noise seed), the
compressed model's top-1 is at least the reference's under the same perturbation minus
``max_drop``, and it agrees with the reference on at least ``min_agreement`` of the samples. A
counterexample is shrunk by hypothesis (kind, seed, severity), then its severity is bisected down to
the edge where the property breaks.
The search is derandomised, has no deadline and writes no example database, so CI runs repeat.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pytest_netzip.metrics.accuracy import share
from pytest_netzip.metrics.base import TOLERANCE
from pytest_netzip.metrics.perturbations import IMAGE_KINDS, KINDS
from pytest_netzip.metrics.robust_samples import labels_of, samples_of

if TYPE_CHECKING:
    import torch

    from pytest_netzip.metrics.base import Subject

#: Severities of ``corruption_error_ratio``, as shares of ``max_severity`` (ImageNet-C has five levels).
LEVELS = (0.2, 0.4, 0.6, 0.8, 1.0)


#: Grid of severities hypothesis draws from: max_severity x k / SEVERITY_STEPS.
SEVERITY_STEPS = 1000

#: Halvings of the severity interval below the failing severity hypothesis settles on: within 1/256 of it.
BISECTIONS = 8


@dataclass(frozen=True)
class PerturbationSpec:
    """What ``perturbation_robustness`` searches: ``kinds`` up to ``max_severity``, against its budgets."""

    kinds: tuple[str, ...]
    max_severity: float
    max_drop: float | None = None
    min_agreement: float | None = None
    samples: int = 256
    max_examples: int = 20
    seed: int = 0

    def __str__(self) -> str:
        """``perturbations(kinds=noise+blur, max_severity=0.5, samples=256)``: what was searched."""
        kinds = "+".join(self.kinds) or "all that fit"
        return f"perturbations(kinds={kinds}, max_severity={self.max_severity:g}, samples={self.samples})"


@dataclass(frozen=True)
class Perturbed:
    """Both models on one perturbation of the samples."""

    kind: str
    severity: float
    seed: int
    accuracy: float
    reference_accuracy: float
    agreement: float

    @property
    def drop(self) -> float:
        """How far the compressed model's top-1 fell below the reference's."""
        return self.reference_accuracy - self.accuracy

    def describe(self) -> str:
        """``brightness at severity 0.31 (seed 0): top-1 0.6200 vs reference 0.8500, agreement 0.7000``."""
        trails = " (the clean top-1 already trails)" if self.drop > TOLERANCE else ""
        what = (f"unperturbed inputs{trails}" if self.severity == 0
                else f"{self.kind} at severity {self.severity:.3g} (seed {self.seed})")
        return (f"{what}: top-1 {self.accuracy:.4f} vs reference {self.reference_accuracy:.4f}, "
                f"agreement {self.agreement:.4f}")


@dataclass(frozen=True)
class SearchOutcome:
    """The perturbation that broke the property (shrunk), else the worst one tried; how long it took."""

    drop: float
    agreement: float
    worst: str
    seconds: float


def _perturb(unit: torch.Tensor, kind: str, severity: float, seed: int) -> torch.Tensor:
    import torch

    from pytest_netzip.errors import MetricUnavailable

    try:
        return KINDS[kind](unit, severity, torch.Generator().manual_seed(seed))
    except ValueError as exc:  # blur or shift on inputs that are not images
        raise MetricUnavailable(str(exc)) from None


def _kinds(spec: PerturbationSpec, unit: torch.Tensor) -> tuple[str, ...]:
    """The kinds to search: those asked for, or every kind that applies to these inputs (blur and shift need images)."""
    from pytest_netzip.errors import MetricUnavailable

    applicable = tuple(kind for kind in KINDS if unit.ndim >= 3 or kind not in IMAGE_KINDS)
    if not spec.kinds:
        return applicable
    misfits = [kind for kind in spec.kinds if kind not in applicable]
    if misfits:
        raise MetricUnavailable(f"{', '.join(misfits)} need images (samples, ..., height, width); the inputs have shape "
                                f"{tuple(unit.shape)}: choose kinds among {', '.join(applicable)}")
    return spec.kinds


def _measure(subject: Subject, reference: Subject, spec: PerturbationSpec, kind: str, severity: float,
             seed: int) -> Perturbed:
    """Both models on the samples perturbed by ``kind`` at ``severity``; the reference's labels are kept."""
    unit, targets = samples_of(subject, spec.samples)
    perturbed = _perturb(unit, kind, severity, seed)

    def labels(target: Subject) -> torch.Tensor:
        return labels_of(target.data.on_unit_inputs(target.model), perturbed, target.label)

    expected = reference.once(("perturbed", spec.samples, kind, severity, seed), lambda: labels(reference))
    found = labels(subject) if subject is not reference else expected
    return Perturbed(kind, severity, seed, share(found == targets), share(expected == targets),
                     share(found == expected))


def search(subject: Subject, reference: Subject, spec: PerturbationSpec) -> SearchOutcome:
    """Search ``spec``'s perturbations for one that breaks its budgets; shrink it if found."""
    if subject is reference:
        samples_of(reference, spec.samples)  # its drop against itself is 0, where its inputs can be perturbed at all
        return SearchOutcome(0.0, 1.0, "", 0.0)
    from hypothesis import HealthCheck, Phase, find, settings
    from hypothesis import strategies as st
    from hypothesis.errors import NoSuchExample

    start = time.perf_counter()
    kinds = _kinds(spec, samples_of(subject, spec.samples)[0])
    tried: list[Perturbed] = []

    def breaks(example: tuple[str, float, int]) -> bool:
        tried.append(_measure(subject, reference, spec, *example))
        found = tried[-1]
        too_far = spec.max_drop is not None and found.drop > spec.max_drop + TOLERANCE
        disagrees = spec.min_agreement is not None and found.agreement < spec.min_agreement - TOLERANCE
        return too_far or disagrees

    perturbations = st.tuples(
        st.sampled_from(kinds),
        # severity on a grid of 1000 steps: hypothesis spreads integers over their range (floats crowd near 0)
        st.integers(0, SEVERITY_STEPS).map(lambda step: step * spec.max_severity / SEVERITY_STEPS),
        st.integers(spec.seed, spec.seed + 2**16),
    )
    options = settings(
        max_examples=spec.max_examples, derandomize=True, database=None, deadline=None,
        suppress_health_check=list(HealthCheck), phases=[Phase.generate, Phase.shrink],
    )
    try:
        failing = find(perturbations, breaks, settings=options)
    except NoSuchExample:
        # among equals, the most severe: a model no perturbation moves names the strongest one tried
        worst = max(tried, key=lambda perturbed: (perturbed.drop, -perturbed.agreement, perturbed.severity))
        lowest_agreement = min(perturbed.agreement for perturbed in tried)
        return SearchOutcome(worst.drop, lowest_agreement, worst.describe(), time.perf_counter() - start)
    kind, severity, seed = failing
    passing = 0.0
    for _ in range(BISECTIONS if severity > 0 else 0):  # hypothesis shrinks to a simple failing severity; bisect to the edge
        middle = (passing + severity) / 2
        if breaks((kind, middle, seed)):
            severity = middle
        else:
            passing = middle
    shrunk = _measure(subject, reference, spec, kind, severity, seed)
    return SearchOutcome(shrunk.drop, shrunk.agreement, shrunk.describe(), time.perf_counter() - start)


@dataclass(frozen=True)
class Corruption:
    """``corruption_error_ratio`` and the seconds it took."""

    ratio: float
    seconds: float


def corruption_error_ratio(subject: Subject, reference: Subject, spec: PerturbationSpec) -> Corruption:
    """Mean over the kinds of the top-1 error summed over five severities, divided by the reference's: ImageNet-C's
    mCE, with the reference in AlexNet's place."""
    from pytest_netzip.errors import MetricUnavailable

    start = time.perf_counter()
    ratios = []
    for kind in _kinds(spec, samples_of(subject, spec.samples)[0]):
        measured = [_measure(subject, reference, spec, kind, level * spec.max_severity, spec.seed) for level in LEVELS]
        error = sum(1 - perturbed.accuracy for perturbed in measured)
        reference_error = sum(1 - perturbed.reference_accuracy for perturbed in measured)
        if reference_error == 0:
            raise MetricUnavailable(f"the reference makes no error under {kind} up to severity {spec.max_severity:g}")
        ratios.append(error / reference_error)
    return Corruption(sum(ratios) / len(ratios), time.perf_counter() - start)
