"""A regression model's outputs on the evaluation set: its values and the float targets they estimate."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pytest_netzip.data.fingerprint import same_inputs
from pytest_netzip.data.inputs import describe
from pytest_netzip.errors import DataError

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class RegressionOutputs:
    """Values (N, K) a regression model returns for every sample (float64, CPU), the targets (N, K), the inputs' fingerprint."""

    task: ClassVar[str] = "regression"
    kind: ClassVar[str] = "values"

    values: torch.Tensor
    targets: torch.Tensor
    inputs: torch.Tensor | None = None

    def same_samples(self, other: object) -> bool:
        """Whether ``other`` was computed on the same samples (equal targets and inputs, in the same order)."""
        import torch

        return (isinstance(other, RegressionOutputs) and torch.equal(self.targets, other.targets)
                and same_inputs(self.inputs, other.inputs))

    @property
    def samples(self) -> int:
        """The number of evaluation samples."""
        return len(self.targets)

    @property
    def nonfinite(self) -> int:
        """The number of samples with a NaN or infinite value."""
        return int((~self.values.isfinite().all(dim=1)).sum())


@dataclass
class RegressionCollector:
    """Keeps a regression model's values and targets batch by batch, each as (samples, outputs)."""

    paired: ClassVar[bool] = False
    values: list[torch.Tensor] = field(default_factory=list)
    targets: list[torch.Tensor] = field(default_factory=list)

    def add(self, output: Any, targets: Any, where: str, inputs: Any, reference_output: Any = None) -> None:
        """Check and keep one batch: as many values per sample as targets."""
        if not (hasattr(output, "is_floating_point") and output.is_floating_point() and output.ndim >= 1):
            raise DataError(f"{where}: a regression model returns float values, (batch,) or (batch, outputs); this "
                            f"model returns {describe(output)}")
        if targets.is_complex() or str(targets.dtype) == "torch.bool":
            raise DataError(f"{where}: regression targets are numbers; got {describe(targets)}")
        values, wanted = output.detach().reshape(len(output), -1), targets.reshape(len(targets), -1)
        if values.shape != wanted.shape:
            raise DataError(f"{where}: the model returns {values.shape[1]} value(s) per sample ({describe(output)}), "
                            f"the targets hold {wanted.shape[1]} ({describe(targets)})")
        self.values.append(values.double().cpu())
        self.targets.append(wanted.double().cpu())

    def finish(self, inputs: torch.Tensor) -> RegressionOutputs:
        """The outputs on every batch."""
        import torch

        return RegressionOutputs(torch.cat(self.values), torch.cat(self.targets), inputs)
