"""Knowledge distillation: a smaller student trained to match the reference's softened outputs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from typing_extensions import override

from pytest_netzip.compressors.base import CompressionContext, Compressor
from pytest_netzip.compressors.training import fit, require_train_data
from pytest_netzip.data.inputs import call
from pytest_netzip.devices import device_of, seeded

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class Distill(Compressor):
    """Train ``student(reference)`` on ``netzip_train_data`` against the reference (Hinton et al., 2015).

    The loss is ``alpha`` x T^2 x KL(teacher || student), both softened by ``temperature`` T, plus
    (1 - ``alpha``) x cross-entropy with the labels; Adam at ``lr`` for ``epochs`` passes, seeded by
    ``--netzip-seed``. ``student`` is a function (named, so the test id can show it) that builds the
    untrained student from the reference.
    """

    name: ClassVar[str] = "distill"
    student: Callable[[nn.Module], nn.Module]
    epochs: int = 5
    temperature: float = 4.0
    alpha: float = 0.7
    lr: float = 1e-3

    def __post_init__(self) -> None:
        if not callable(self.student):
            raise TypeError(f"Distill(student=...) takes a function building the student, got {self.student!r}")
        if not (isinstance(self.epochs, int) and self.epochs >= 1):
            raise ValueError(f"distill: epochs must be a whole number >= 1, got {self.epochs!r}")
        if not (0.0 <= self.alpha <= 1.0 and self.temperature > 0 and self.lr > 0):
            raise ValueError("distill: alpha must lie in [0, 1], temperature and lr must be positive")

    def _shown(self, name: str) -> str:
        """The student builder by its name (``distill(student=small_cnn)``), the rest as usual."""
        if name == "student":
            return getattr(self.student, "__name__", type(self.student).__name__)
        return super()._shown(name)

    @override
    def transform(self, model: nn.Module, ctx: CompressionContext) -> nn.Module:
        import torch
        import torch.nn.functional as F

        require_train_data(ctx, self.id)
        teacher = model.eval()
        soft = self.temperature
        with seeded(ctx.seed):
            student = self.student(teacher)
            student = student.to(device_of(teacher)).train()

            def loss(inputs: Any, targets: torch.Tensor) -> torch.Tensor:
                with torch.no_grad():
                    taught = ctx.format.read(call(teacher, inputs))
                logits = ctx.format.read(call(student, inputs))
                distilled = F.kl_div(F.log_softmax(logits / soft, 1), F.log_softmax(taught / soft, 1),
                                     reduction="batchmean", log_target=True) * soft**2
                return self.alpha * distilled + (1 - self.alpha) * F.cross_entropy(logits, targets)

            fit(student, loss, ctx, self.id, self.epochs, self.lr)
        return student.eval()
