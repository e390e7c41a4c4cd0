"""Adversarial attacks through torchattacks: white-box where gradients reach the input, else by transfer.

A compressed model whose kernels have no gradient (int8, exported graphs) is attacked by transfer:
the examples crafted on the reference are scored on it. Where gradients flow, it is attacked
white-box too, and its robust accuracy is the lower of the two, since low precision and pruning can
mask gradients and make a white-box attack look weaker than it is.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from torch import nn
from pytest_netzip.errors import AttackError, MetricUnavailable

#: Why torchattacks may be missing, and how to install it.
TORCHATTACKS_MISSING = (
    "an optional dependency of the plugin (it pins requests~=2.25.1, which would downgrade requests): "
    "python -m pip install torchattacks (the plugin's attacks extra)"
)

#: torchattacks' L-infinity attacks with an ``eps`` budget, the names ``adversarial_robustness(attack=...)`` takes.
ATTACKS = (
    "APGD", "AutoAttack", "BIM", "DIFGSM", "EOTPGD", "FFGSM", "FGSM", "Jitter", "MIFGSM", "NIFGSM", "PGD",
    "RFGSM", "SINIFGSM", "Square", "TIFGSM", "TPGD", "UPGD", "VMIFGSM", "VNIFGSM",
)


#: Steps of an iterative attack unless ``steps`` is given.
DEFAULT_STEPS = 10


@dataclass(frozen=True)
class AttackSpec:
    """An attack by torchattacks name with its budget ``eps`` (in [0, 1] units), ``steps``, ``alpha``, ``samples``.

    ``steps`` and ``alpha`` are None where the attack has no such parameter. Iterative attacks
    default to 10 steps of 2.5 x eps / steps (Madry et al.), so that the steps can reach ``eps``.
    """

    attack: str
    eps: float
    steps: int | None
    alpha: float | None
    samples: int
    seed: int = 0

    def __str__(self) -> str:
        return self.id

    @property
    def id(self) -> str:
        """``PGD(eps=0.0078, steps=10, alpha=0.002)``: what the attack ran with."""
        shown = [f"eps={self.eps:.3g}"] + [f"{name}={value:.3g}" for name, value in
                                           (("steps", self.steps), ("alpha", self.alpha)) if value is not None]
        return f"{self.attack}({', '.join(shown)})"

    def build(self, model: nn.Module, classes: int, seed: int) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """The torchattacks attack on ``model`` (inputs in [0, 1]): called on inputs and targets, it returns
        adversarial inputs."""
        try:
            import torchattacks
        except ImportError:
            raise MetricUnavailable(f"{self.id} needs torchattacks, {TORCHATTACKS_MISSING}") from None

        kind = getattr(torchattacks, self.attack)
        accepted = inspect.signature(kind.__init__).parameters
        given = {"eps": self.eps, "steps": self.steps, "alpha": self.alpha, "seed": seed, "n_classes": classes}
        attack: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = kind(  # torchattacks has no type information
            model, **{name: value for name, value in given.items() if name in accepted and value is not None}
        )
        return attack


def gradient_block(model: nn.Module, unit_inputs: torch.Tensor, targets: torch.Tensor, label: str) -> str | None:
    """Why no useful gradient reaches ``model``'s input (a reason), or None when one does.

    The probe is one chunk of samples, the shape the model is scored on. A model that fails to run
    at all is a DataError naming it (``label``), not a model without gradients.
    """
    import torch
    import torch.nn.functional as F

    from pytest_netzip.errors import DataError
    from pytest_netzip.metrics.robust_samples import CHUNK

    probe = unit_inputs[:CHUNK].clone().requires_grad_(True)
    with torch.enable_grad():
        try:
            outputs = model(probe)
        except Exception as exc:
            raise DataError(f"running {label} on the attack samples failed: {type(exc).__name__}: {exc}") from exc
        if not outputs.requires_grad:
            return "no gradient reaches its input (its kernels have no backward)"
        try:
            (gradient,) = torch.autograd.grad(F.cross_entropy(outputs.float(), targets[:CHUNK]), probe)
        except RuntimeError as exc:
            if "not have been used in the graph" in str(exc):  # the output's graph does not reach the input
                return "no gradient reaches its input (its kernels have no backward)"
            return f"no gradient reaches its input ({str(exc).splitlines()[0][:120]})"
    if not torch.isfinite(gradient).all():
        return "its input gradient is not finite"
    if not gradient.abs().sum() > 0:
        return "its input gradient is zero"
    return None


def craft(attack: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], spec: AttackSpec, unit_inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Adversarial versions of ``unit_inputs``; AttackError if the attack fails or exceeds ``eps``."""
    import torch

    try:
        with torch.enable_grad():
            adversarial = attack(unit_inputs, targets).detach()
    except Exception as exc:
        raise AttackError(f"{spec.id} failed: {type(exc).__name__}: {exc}") from exc
    if not len(unit_inputs):
        return adversarial
    moved = (adversarial - unit_inputs).abs().amax().item()
    if moved > spec.eps + 1e-5:
        raise AttackError(f"{spec.id} moved inputs by {moved:.4g}, beyond eps")
    if moved == 0 and spec.eps > 0:
        raise AttackError(f"{spec.id} moved no input: its gradient is masked")
    return adversarial
