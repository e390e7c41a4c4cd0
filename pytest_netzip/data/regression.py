"""A regression model's outputs on the evaluation set, reduced batch by batch to sums of errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from pytest_netzip.data.fingerprint import same_inputs
from pytest_netzip.data.inputs import describe
from pytest_netzip.errors import DataError

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class RegressionOutputs:
    """Sums over every evaluation sample of a regression model's errors (float64), without its values.

    Per output (column): ``residual``, the squared errors against the targets, and the targets' ``mean`` and
    ``spread`` (squared deviations from that mean). Over every output: ``absolute``, the absolute errors, and
    ``moved``, the squared differences from the reference model's values on the same samples.
    """

    task: ClassVar[str] = "regression"
    kind: ClassVar[str] = "values"

    residual: torch.Tensor
    mean: torch.Tensor
    spread: torch.Tensor
    absolute: float
    moved: float
    samples: int
    nonfinite: int
    inputs: torch.Tensor | None = None
    target_fingerprint: torch.Tensor | None = None

    @property
    def scored(self) -> int:
        """The number of values scored: samples times outputs."""
        return self.samples * len(self.residual)

    @property
    def values(self) -> torch.Tensor:
        """Not kept: an AttributeError saying where a metric reads them."""
        raise AttributeError("regression outputs keep sums, not values, so that evaluation memory stays O(batch): a "
                             "metric that needs them reads subject.values (one more pass over the evaluation data)")

    def same_samples(self, other: object) -> bool:
        """Whether ``other`` was computed on the same samples and targets, in the same order."""
        return (isinstance(other, RegressionOutputs) and same_inputs(self.inputs, other.inputs)
                and same_inputs(self.target_fingerprint, other.target_fingerprint))


def _values(output: Any, where: str) -> torch.Tensor:
    """``output`` checked to be float values, as (samples, outputs) in float64."""
    if not (hasattr(output, "is_floating_point") and output.is_floating_point() and output.ndim >= 1):
        raise DataError(f"{where}: a regression model returns float values, (batch,) or (batch, outputs); this "
                        f"model returns {describe(output)}")
    return _per_sample(output.detach()).double()


def _per_sample(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` as (samples, values per sample), an empty batch too."""
    return tensor.flatten(1) if tensor.ndim > 1 else tensor[:, None]


class RegressionCollector:
    """Adds each batch's errors to per-output sums: memory stays that of one batch.

    The targets' mean and spread are merged from batch to batch as Chan et al.'s parallel variance does.
    """

    paired: ClassVar[bool] = True

    def __init__(self) -> None:
        self.residual: torch.Tensor | None = None
        self.mean: torch.Tensor | None = None
        self.spread: torch.Tensor | None = None
        self.absolute = self.moved = 0.0
        self.samples = self.nonfinite = 0
        self.fingerprints: list[torch.Tensor] = []

    def add(self, output: Any, targets: Any, where: str, inputs: Any, reference_output: Any = None) -> None:
        """Score one batch of values against its targets and the reference's values on the same samples."""
        from pytest_netzip.data.fingerprint import fingerprint

        values = _values(output, where)
        if targets.is_complex() or str(targets.dtype) == "torch.bool":
            raise DataError(f"{where}: regression targets are numbers; got {describe(targets)}")
        wanted = _per_sample(targets).to(values.device, values.dtype)
        if not wanted.isfinite().all():
            raise DataError(f"{where}: the targets hold NaN or infinite values: no gate can judge a prediction of them")
        if values.shape != wanted.shape:
            raise DataError(f"{where}: the model returns {values.shape[1]} value(s) per sample ({describe(output)}), "
                            f"the targets hold {wanted.shape[1]} ({describe(targets)})")
        if self.residual is not None and values.shape[1] != len(self.residual):
            raise DataError(f"{where}: the model returns {values.shape[1]} value(s) per sample, "
                            f"{len(self.residual)} on the batches before")
        count = len(values)
        if not count:
            return
        errors = values - wanted
        batch_mean = wanted.mean(dim=0)
        residual, mean = (errors**2).sum(dim=0).cpu(), batch_mean.cpu()
        spread = ((wanted - batch_mean) ** 2).sum(dim=0).cpu()
        if self.residual is None or self.mean is None or self.spread is None:
            self.residual, self.mean, self.spread = residual, mean, spread
        else:
            total = self.samples + count
            delta = mean - self.mean
            self.residual = self.residual + residual
            self.spread = self.spread + spread + delta**2 * (self.samples * count / total)
            self.mean = self.mean + delta * (count / total)
        self.absolute += float(errors.abs().sum())
        self.moved += float(((values - _values(reference_output, where)) ** 2).sum())
        self.samples += count
        self.nonfinite += int((~values.isfinite()).any(dim=1).sum())
        self.fingerprints.append(fingerprint(wanted, count))

    def finish(self, inputs: torch.Tensor) -> RegressionOutputs:
        """The reduced outputs of every batch."""
        import torch

        # predict gives at least one sample
        assert self.residual is not None and self.mean is not None and self.spread is not None
        return RegressionOutputs(self.residual, self.mean, self.spread, self.absolute, self.moved, self.samples,
                                 self.nonfinite, inputs, torch.cat(self.fingerprints))
