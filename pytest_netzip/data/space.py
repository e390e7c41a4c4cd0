"""The space a model's inputs lie in (a range, or normalised pixels), and models that take [0, 1] inputs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn

from pytest_netzip.errors import InputSpaceError


@dataclass(frozen=True)
class InputSpace:
    """A value range ``(low, high)``, or ``mean`` and ``std`` per channel (dimension 1) of normalised inputs."""

    low: float = 0.0
    high: float = 1.0
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    @classmethod
    def of(cls, input_range: Sequence[float], normalization: Sequence[Sequence[float]] | None) -> InputSpace:
        """The space the two fixtures declare; InputSpaceError naming the fixture that is malformed."""
        if normalization is not None:
            try:
                mean, std = (tuple(float(value) for value in values) for values in normalization)
            except (TypeError, ValueError):
                raise InputSpaceError(
                    f"netzip_input_normalization must return (mean, std), two sequences of numbers; got {normalization!r}"
                ) from None
            if len(mean) != len(std) or not all(value > 0 for value in std):
                raise InputSpaceError(f"netzip_input_normalization: mean and std need one value per channel, std > 0; "
                                      f"got {normalization!r}")
            return cls(mean=mean, std=std)
        try:
            low, high = (float(value) for value in input_range)
        except (TypeError, ValueError):
            raise InputSpaceError(f"netzip_input_range must return (low, high); got {input_range!r}") from None
        if not low < high:
            raise InputSpaceError(f"netzip_input_range must return (low, high) with low < high; got {input_range!r}")
        return cls(low, high)

    def _affine(self, like: torch.Tensor) -> tuple[float | torch.Tensor, float | torch.Tensor]:
        """``offset`` and ``scale`` with model input = offset + scale x unit value."""
        if self.mean is None:
            return self.low, self.high - self.low
        import torch

        if like.ndim < 2 or like.shape[1] != len(self.mean):
            raise InputSpaceError(
                f"netzip_input_normalization gives {len(self.mean)} channels, but netzip_data's inputs have shape "
                f"{tuple(like.shape)} (channels are dimension 1)"
            )
        shape = (1, len(self.mean), *[1] * (like.ndim - 2))
        mean = torch.tensor(self.mean, dtype=like.dtype, device=like.device).view(shape)
        std = torch.tensor(self.std, dtype=like.dtype, device=like.device).view(shape)
        return -mean / std, 1 / std

    def to_unit(self, inputs: torch.Tensor) -> torch.Tensor:
        """``inputs`` as values in [0, 1]; InputSpaceError when they lie outside the declared space."""
        offset, scale = self._affine(inputs)
        unit = (inputs - offset) / scale
        tolerance = 1e-4
        if unit.numel() and (unit.min() < -tolerance or unit.max() > 1 + tolerance):
            declared = (f"normalisation mean={self.mean}, std={self.std}" if self.mean is not None
                        else f"range ({self.low:g}, {self.high:g})")
            raise InputSpaceError(
                f"netzip_data's inputs reach [{float(inputs.min()):.3g}, {float(inputs.max()):.3g}], outside the "
                f"declared {declared}: define a session fixture netzip_input_range returning (low, high), or "
                "netzip_input_normalization returning (mean, std) per channel"
            )
        return unit.clamp(0, 1)

    def from_unit(self, unit: torch.Tensor) -> torch.Tensor:
        """Values in [0, 1] as model inputs."""
        offset, scale = self._affine(unit)
        return offset + scale * unit


def on_unit_inputs(model: nn.Module, space: InputSpace, read: Callable[[Any], Any]) -> nn.Module:
    """``model`` taking inputs in [0, 1] of ``space`` and returning its predictions (``read`` from its output), as
    torchattacks expects."""
    from torch import nn

    class OnUnitInputs(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, unit: torch.Tensor) -> torch.Tensor:
            output: torch.Tensor = read(self.model(space.from_unit(unit)))
            return output

    return OnUnitInputs().eval()
