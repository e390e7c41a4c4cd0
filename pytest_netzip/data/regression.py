"""A regression model's outputs on the evaluation set: its values and the float targets they estimate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from pytest_netzip.data.inputs import describe
from pytest_netzip.data.per_sample import PerSampleCollector, PerSampleOutputs
from pytest_netzip.errors import DataError

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class RegressionOutputs(PerSampleOutputs):
    """Values (N, K) a regression model returns for every sample (float64, CPU), the targets (N, K), the inputs' fingerprint."""

    task: ClassVar[str] = "regression"
    kind: ClassVar[str] = "values"

    values: torch.Tensor
    targets: torch.Tensor
    inputs: torch.Tensor | None = None

    @property
    def rows(self) -> torch.Tensor:
        """The values."""
        return self.values


class RegressionCollector(PerSampleCollector):
    """Keeps a regression model's values and targets batch by batch, each as (samples, outputs)."""

    def add(self, output: Any, targets: Any, where: str, inputs: Any, reference_output: Any = None) -> None:
        """Check and keep one batch: as many values per sample as targets."""
        if not (hasattr(output, "is_floating_point") and output.is_floating_point() and output.ndim >= 1):
            raise DataError(f"{where}: a regression model returns float values, (batch,) or (batch, outputs); this "
                            f"model returns {describe(output)}")
        if targets.is_complex() or str(targets.dtype) == "torch.bool":
            raise DataError(f"{where}: regression targets are numbers; got {describe(targets)}")
        values, wanted = output.detach().reshape(len(output), -1), targets.reshape(len(targets), -1)
        if not wanted.isfinite().all():
            raise DataError(f"{where}: the targets hold NaN or infinite values: no gate can judge a prediction of them")
        if values.shape != wanted.shape:
            raise DataError(f"{where}: the model returns {values.shape[1]} value(s) per sample ({describe(output)}), "
                            f"the targets hold {wanted.shape[1]} ({describe(targets)})")
        self.keep(values.double(), wanted.double())

    def finish(self, inputs: torch.Tensor) -> RegressionOutputs:
        """The outputs on every batch."""
        return RegressionOutputs(*self.joined(), inputs)
