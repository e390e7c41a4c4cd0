"""Tensor decomposition: truncated SVD for Linear layers, Tucker-2 for Conv2d layers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, cast

from typing_extensions import override

from pytest_netzip.compressors.base import CompressionContext, Compressor, outputs_on, require_outputs, run_observed
from pytest_netzip.errors import CompressorUnsupported

if TYPE_CHECKING:
    import torch
    from torch import nn


def _rank(singular_values: torch.Tensor, rank: int | None, energy: float) -> int:
    """``rank`` (at most the number of values), or the fewest values holding ``energy`` of their squared sum."""
    if rank is not None:
        return min(rank, len(singular_values))
    shares = (singular_values**2).cumsum(0) / (singular_values**2).sum()
    return int((shares < energy - 1e-9).sum().item()) + 1


def _factor_linear(layer: nn.Linear, rank: int | None, energy: float) -> nn.Module | None:
    """``layer`` as Linear(in, r) then Linear(r, out) from its truncated SVD; None when that is not smaller."""
    import torch
    from torch import nn

    u, s, vh = torch.linalg.svd(layer.weight.detach(), full_matrices=False)
    r = _rank(s, rank, energy)
    if r * (layer.in_features + layer.out_features) >= layer.in_features * layer.out_features:
        return None
    first = nn.Linear(layer.in_features, r, bias=False)
    second = nn.Linear(r, layer.out_features, bias=layer.bias is not None)
    with torch.no_grad():
        first.weight.copy_(vh[:r])
        second.weight.copy_(u[:, :r] * s[:r])
        if layer.bias is not None:
            second.bias.copy_(layer.bias)
    return nn.Sequential(first, second)


def _factor_conv(layer: nn.Conv2d, rank: int | None, energy: float) -> nn.Module | None:
    """``layer`` as a 1x1 conv in, a smaller core conv and a 1x1 conv out (Tucker-2 by HOSVD); None if not smaller."""
    import torch
    from torch import nn

    weight = layer.weight.detach()
    out_channels, in_channels, kh, kw = weight.shape
    u_out, s_out, _ = torch.linalg.svd(weight.reshape(out_channels, -1), full_matrices=False)
    u_in, s_in, _ = torch.linalg.svd(weight.transpose(0, 1).reshape(in_channels, -1), full_matrices=False)
    r_out, r_in = _rank(s_out, rank, energy), _rank(s_in, rank, energy)
    if in_channels * r_in + r_in * r_out * kh * kw + r_out * out_channels >= weight.numel():
        return None
    u_out, u_in = u_out[:, :r_out], u_in[:, :r_in]
    core = torch.einsum("oihw,or,is->rshw", weight, u_out, u_in)
    squeeze = nn.Conv2d(in_channels, r_in, 1, bias=False)
    # a Conv2d's stride, padding and dilation are pairs (or a padding string), typed as tuples of any length
    middle = nn.Conv2d(r_in, r_out, (kh, kw), stride=cast("tuple[int, int]", layer.stride),
                       padding=cast("str | tuple[int, int]", layer.padding),
                       dilation=cast("tuple[int, int]", layer.dilation), bias=False, padding_mode=layer.padding_mode)
    expand = nn.Conv2d(r_out, out_channels, 1, bias=layer.bias is not None)
    with torch.no_grad():
        squeeze.weight.copy_(u_in.t()[:, :, None, None])
        middle.weight.copy_(core)
        expand.weight.copy_(u_out[:, :, None, None])
        if layer.bias is not None:
            assert expand.bias is not None  # made with bias=True when layer has one
            expand.bias.copy_(layer.bias)
    return nn.Sequential(squeeze, middle, expand)


def _called(model: nn.Module, candidates: list[nn.Module], example_input: Any) -> set[nn.Module]:
    """Those of ``candidates`` that the model calls as modules on ``example_input``.

    A layer that is never called has its weight read by its parent instead (as nn.MultiheadAttention
    reads ``out_proj.weight``): replacing it by factors would break the parent.
    """
    called: set[nn.Module] = set()
    run_observed(model, example_input, candidates, lambda module, args: called.add(module))
    return called


@dataclass(frozen=True)
class LowRank(Compressor):
    """Factor each Linear (truncated SVD) and ungrouped Conv2d (Tucker-2) layer where that saves parameters;
    transformers' Conv1D layers (GPT-2's) are rewritten as nn.Linear first.

    ``rank`` fixes the rank of every factorisation; otherwise each keeps the fewest singular values
    holding ``energy`` of the squared sum. A layer whose factors would not be smaller stays as it is,
    and so does one whose weight its parent reads directly (nn.MultiheadAttention's projections): with
    an example input, only the layers the model calls on it are factored, and the factored model must
    give outputs of the reference's shapes on it.
    """

    name: ClassVar[str] = "lowrank"
    energy: float = 0.9
    rank: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.energy <= 1.0:
            raise ValueError(f"lowrank: energy must be in (0, 1], got {self.energy!r}")
        if self.rank is not None and (not isinstance(self.rank, int) or self.rank < 1):
            raise ValueError(f"lowrank: rank must be a whole number >= 1, got {self.rank!r}")

    @override
    def unchanged(self, model: nn.Module) -> str:
        return (
            f"{self.id} factored no layer of {type(model).__name__}: no Linear, Conv1D or Conv2d layer that the model calls "
            "would get smaller"
        )

    @override
    def transform(self, model: nn.Module, ctx: CompressionContext) -> nn.Module:
        from torch import nn

        from pytest_netzip.compressors.transformers_layers import linearise_conv1d

        model, _ = linearise_conv1d(model, ctx.example_input, self.id)  # GPT-2's blocks: Conv1D, not nn.Linear
        candidates: list[nn.Module] = [module for module in model.modules()
                      if isinstance(module, nn.Linear) or (isinstance(module, nn.Conv2d) and module.groups == 1)]
        if ctx.example_input is None:  # no input to watch: keep the projections that MultiheadAttention reads
            owned = {id(child) for module in model.modules() if isinstance(module, nn.MultiheadAttention)
                     for child in module.modules()}
            kept = {module for module in candidates if id(module) not in owned}
        else:
            expected = outputs_on(model, ctx.example_input)
            kept = _called(model, candidates, ctx.example_input)
        factored = 0
        for parent in list(model.modules()):
            for child_name, child in list(parent.named_children()):
                if child not in kept:
                    continue
                if isinstance(child, nn.Linear):
                    replacement = _factor_linear(child, self.rank, self.energy)
                elif isinstance(child, nn.Conv2d) and child.groups == 1:
                    replacement = _factor_conv(child, self.rank, self.energy)
                else:
                    continue
                if replacement is not None:
                    setattr(parent, child_name, replacement.to(child.weight.device, child.weight.dtype))
                    factored += 1
        if factored == 0:
            raise CompressorUnsupported(self.unchanged(model))
        if ctx.example_input is not None:
            require_outputs(model, ctx.example_input, expected, f"{self.id} cannot factor {type(model).__name__}")
        return model
