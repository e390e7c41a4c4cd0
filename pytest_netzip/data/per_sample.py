"""Outputs kept a row per sample (a classifier's logits, a regression model's values): small, so kept whole."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pytest_netzip.data.fingerprint import same_inputs

if TYPE_CHECKING:
    import torch


class PerSampleOutputs:
    """A row of outputs per evaluation sample (``rows``), with the targets and the inputs' fingerprint."""

    targets: torch.Tensor
    inputs: torch.Tensor | None

    @property
    def rows(self) -> torch.Tensor:
        """The outputs, one row per sample."""
        raise NotImplementedError

    def same_samples(self, other: object) -> bool:
        """Whether ``other`` was computed on the same samples (equal targets and inputs, in the same order)."""
        import torch

        return (isinstance(other, type(self)) and torch.equal(self.targets, other.targets)
                and same_inputs(self.inputs, other.inputs))

    @property
    def samples(self) -> int:
        """The number of evaluation samples."""
        return len(self.targets)

    @property
    def nonfinite(self) -> int:
        """The number of samples with a NaN or infinite output."""
        return int((~self.rows.isfinite().all(dim=1)).sum())


class PerSampleCollector:
    """Keeps rows of outputs and their targets batch by batch, on the CPU."""

    paired: ClassVar[bool] = False

    def __init__(self) -> None:
        self.rows: list[torch.Tensor] = []
        self.targets: list[torch.Tensor] = []

    def keep(self, rows: torch.Tensor, targets: torch.Tensor) -> None:
        """Keep one batch's rows and targets."""
        self.rows.append(rows.detach().cpu())
        self.targets.append(targets.cpu())

    def joined(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The rows and the targets of every batch kept."""
        import torch

        return torch.cat(self.rows), torch.cat(self.targets)
