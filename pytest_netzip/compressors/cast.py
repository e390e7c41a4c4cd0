"""Half-precision compressors: weights and activations in float16 or bfloat16."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from typing_extensions import override

from pytest_netzip.compressors.base import CompressionContext, Compressor

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class FP16(Compressor):
    """Every floating-point weight and activation in IEEE half precision (2 bytes)."""

    name: ClassVar[str] = "fp16"

    @override
    def transform(self, model: nn.Module, ctx: CompressionContext) -> nn.Module:
        import torch

        from pytest_netzip.compressors.wrappers import CastInputs

        return CastInputs(model, torch.float16)


@dataclass(frozen=True)
class BF16(Compressor):
    """Every floating-point weight and activation in bfloat16 (2 bytes, float32's exponent range)."""

    name: ClassVar[str] = "bf16"

    @override
    def transform(self, model: nn.Module, ctx: CompressionContext) -> nn.Module:
        import torch

        from pytest_netzip.compressors.wrappers import CastInputs

        return CastInputs(model, torch.bfloat16)
