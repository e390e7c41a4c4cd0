"""2:4 semi-structured sparsity: two weights of every four zeroed by magnitude and stored compressed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from typing_extensions import override

from pytest_netzip.compressors.base import CompressionContext
from pytest_netzip.compressors.quantize import LayerFilter, _TorchaoLinears, quantise_linears, require_cuda

if TYPE_CHECKING:
    from torch import nn


def prune_2_4(model: nn.Module) -> None:
    """Zero, in every group of four consecutive input weights of each nn.Linear, the two smallest in magnitude."""
    import torch
    from torch import nn

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Linear) and module.in_features % 4 == 0:
                groups = module.weight.reshape(-1, 4)
                smallest = groups.abs().argsort(dim=1)[:, :2]
                groups.scatter_(1, smallest, 0.0)


@dataclass(frozen=True)
class Sparse24(_TorchaoLinears):
    """2:4 semi-structured sparse weights for every ``nn.Linear`` (magnitude pruning, then torchao's
    SemiSparseWeightConfig): half the weights, run by cuSPARSELt/CUTLASS on CUDA GPUs of compute
    capability 8.0 or newer only."""

    name: ClassVar[str] = "sparse_2_4"

    @override
    def unchanged(self, model: nn.Module) -> str:
        return f"{self.id} found no nn.Linear layer it makes 2:4 sparse in {type(model).__name__}"

    @override
    def transform(self, model: nn.Module, ctx: CompressionContext) -> nn.Module:
        require_cuda(self.id, ctx, (8, 0), "torch's semi-structured sparse matmuls (cuSPARSELt, CUTLASS) run on "
                     "Ampere and newer GPUs")
        from torchao.sparsity import sparsify_
        from torchao.sparsity.sparse_api import SemiSparseWeightConfig

        model = model.to(ctx.device)

        def sparsify(module: nn.Module, config: Any, quantisable: LayerFilter) -> None:
            prune_2_4(module)
            sparsify_(module, config, filter_fn=quantisable)

        return quantise_linears(model, SemiSparseWeightConfig(), self, ctx, apply=sparsify)
