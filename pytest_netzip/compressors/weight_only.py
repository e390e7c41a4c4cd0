"""Weight-only quantisation through torchao: int8, float8 or int4 weights, activations left in float."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from typing_extensions import override

from pytest_netzip.compressors.base import CompressionContext
from pytest_netzip.compressors.quantize import (
    _import_torchao_quantization,
    _TorchaoLinears,
    quantise_float8,
    quantise_linears,
    require_cuda,
)
from pytest_netzip.errors import CompressorUnsupported

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class Int8WeightOnly(_TorchaoLinears):
    """int8 weights (one scale per output channel) for every ``nn.Linear``, dequantised in the matmul;
    recurrent layers are rewritten as nn.Linear gate projections, transformers' Conv1D as nn.Linear, and quantised
    too."""

    name: ClassVar[str] = "int8_weight_only"

    @override
    def transform(self, model: nn.Module, ctx: CompressionContext) -> nn.Module:
        quantization = _import_torchao_quantization()
        return quantise_linears(model, quantization.Int8WeightOnlyConfig(), self, ctx)


@dataclass(frozen=True)
class Float8WeightOnly(_TorchaoLinears):
    """float8 (e4m3) weights, one scale per output channel, for every ``nn.Linear``; activations stay float.

    Runs on CPUs too (the weights are dequantised in the matmul); recurrent layers are rewritten as
    nn.Linear gate projections, transformers' Conv1D layers as nn.Linear, and quantised too. A layer with
    a row of zero weights stays in float (torchao's per-row scale would be zero, its outputs NaN) and the
    run says so.
    """

    name: ClassVar[str] = "float8_weight_only"

    @override
    def transform(self, model: nn.Module, ctx: CompressionContext) -> nn.Module:
        quantization = _import_torchao_quantization()
        return quantise_float8(model, quantization.Float8WeightOnlyConfig(), self, ctx)


@dataclass(frozen=True)
class Int4WeightOnly(_TorchaoLinears):
    """int4 weights in groups of ``group_size`` input channels for every ``nn.Linear`` whose input width
    is a multiple of it (torchao's Int4WeightOnlyConfig), the model run in bfloat16: CUDA GPUs only.

    Uses the mslk package's kernels where it is installed, else tinygemm's tile-packed format (torch's own).
    """

    name: ClassVar[str] = "int4_weight_only"
    group_size: int = 128

    def __post_init__(self) -> None:
        if self.group_size not in (32, 64, 128, 256):
            raise ValueError(f"int4_weight_only: group_size must be 32, 64, 128 or 256, got {self.group_size!r}")

    @override
    def transform(self, model: nn.Module, ctx: CompressionContext) -> nn.Module:
        import torch

        from pytest_netzip.compressors.wrappers import CastInputs

        if ctx.device.type != "cuda":
            raise CompressorUnsupported(
                f"{self.id} needs a CUDA GPU, not {ctx.device.type}: torchao's int4 weight-only kernels (mslk's, "
                "or tinygemm's tile-packed format) have no CPU implementation"
            )
        require_cuda(self.id, ctx, (8, 0), "torchao's int4 kernels need bfloat16 tensor cores")
        quantization = _import_torchao_quantization()
        packing = "plain" if importlib.util.find_spec("mslk") is not None else "tile_packed_to_4d"
        config = quantization.Int4WeightOnlyConfig(group_size=self.group_size, int4_packing_format=packing)
        wrapped = CastInputs(model.to(ctx.device), torch.bfloat16)
        wrapped.module = quantise_linears(wrapped.module, config, self, ctx)
        return wrapped
