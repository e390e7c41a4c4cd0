"""Tensor decomposition: truncated SVD for Linear layers, Tucker-2 for Conv2d layers."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, cast

from typing_extensions import override

from pytest_netzip.compressors.base import (
    CompressionContext,
    Compressor,
    outputs_on,
    require_outputs,
    run_observed,
    tied_elsewhere,
)
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


def _product(factors: nn.Sequential) -> torch.Tensor:
    """The weight ``factors`` apply, in the shape of the layer they replace."""
    import torch

    matrices = [cast(torch.Tensor, layer.weight) for layer in factors]
    if len(matrices) == 2:  # Linear(in, r), Linear(r, out)
        return matrices[1] @ matrices[0]
    squeeze, core, expand = matrices  # 1x1 convs around the core
    return torch.einsum("or,rshw,si->oihw", expand[:, :, 0, 0], core, squeeze[:, :, 0, 0])


@functools.cache
def _bytes_per_tensor() -> int:
    """The bytes ``torch.save`` adds to a checkpoint for each more tensor, besides its data: its record, its file's
    header in the zip archive and the padding that aligns the data. Measured on this torch, as the largest step
    of checkpoints of one to five tensors of 64 bytes (the alignment makes the steps differ)."""
    import io

    import torch

    def saved(count: int) -> int:
        buffer = io.BytesIO()
        torch.save({f"layer.{index}.weight": torch.zeros(16) for index in range(count)}, buffer)
        return len(buffer.getvalue())

    sizes = [saved(count) for count in range(1, 6)]
    return max(later - earlier for earlier, later in zip(sizes, sizes[1:])) - 64


def _saved_bytes(module: nn.Module) -> int:
    """About the bytes ``module``'s tensors take in a ``torch.save`` checkpoint: their data and each one's record."""
    return sum(tensor.numel() * tensor.element_size() + _bytes_per_tensor() for tensor in module.state_dict().values())


def _factor_linear(layer: nn.Linear, rank: int | None, energy: float) -> nn.Module:
    """``layer`` as Linear(in, r) then Linear(r, out) from its truncated SVD."""
    import torch
    from torch import nn

    u, s, vh = torch.linalg.svd(layer.weight.detach(), full_matrices=False)
    r = _rank(s, rank, energy)
    first = nn.Linear(layer.in_features, r, bias=False)
    second = nn.Linear(r, layer.out_features, bias=layer.bias is not None)
    with torch.no_grad():
        first.weight.copy_(vh[:r])
        second.weight.copy_(u[:, :r] * s[:r])
        if layer.bias is not None:
            second.bias.copy_(layer.bias)
    return nn.Sequential(first, second)


def _factor_conv(layer: nn.Conv2d, rank: int | None, energy: float) -> nn.Module:
    """``layer`` as a 1x1 conv in, a smaller core conv and a 1x1 conv out (Tucker-2 by HOSVD)."""
    import torch
    from torch import nn

    weight = layer.weight.detach()
    out_channels, in_channels, kh, kw = weight.shape
    u_out, s_out, _ = torch.linalg.svd(weight.reshape(out_channels, -1), full_matrices=False)
    u_in, s_in, _ = torch.linalg.svd(weight.transpose(0, 1).reshape(in_channels, -1), full_matrices=False)
    r_out, r_in = _rank(s_out, rank, energy), _rank(s_in, rank, energy)
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


def _factorings(model: nn.Module, kept: set[nn.Module], rank: int | None,
                energy: float) -> dict[str, tuple[nn.Module, nn.Module]]:
    """Each of the ``kept`` layers whose factors make the checkpoint smaller, by name: the layer and its factors."""
    from torch import nn

    factorings: dict[str, tuple[nn.Module, nn.Module]] = {}
    for name, layer in model.named_modules():
        if layer not in kept or not name:
            continue
        if isinstance(layer, nn.Linear):
            factors = _factor_linear(layer, rank, energy)
        elif isinstance(layer, nn.Conv2d) and layer.groups == 1:
            factors = _factor_conv(layer, rank, energy)
        else:
            continue
        factors.to(layer.weight.device, layer.weight.dtype)
        if _saved_bytes(factors) < _saved_bytes(layer):
            factorings[name] = (layer, factors)
    return factorings


def _registered_twice(model: nn.Module, layers: dict[str, nn.Module]) -> dict[str, str]:
    """Each of ``layers`` (by name) that ``model`` holds under other names too, saying so: replacing it under one
    name would leave it under the others, stored beside its factors."""
    names: dict[int, list[str]] = {}
    for name, module in model.named_modules(remove_duplicate=False):
        names.setdefault(id(module), []).append(name)
    return {name: f"{name} left whole: it is also {', '.join(other for other in names[id(layer)] if other != name)}"
            for name, layer in layers.items() if len(names[id(layer)]) > 1}


def _checked_readers(model: nn.Module, factors: list[nn.Module], example_input: Any, expected: tuple[Any, list[Any]],
                     refusal: str) -> set[nn.Module]:
    """Those of ``factors`` (nn.Sequential) whose ``weight`` or ``bias`` the model reads on ``example_input``, where
    it must give outputs of the ``expected`` shapes (CompressorUnsupported, beginning with ``refusal``, otherwise)."""
    from torch import nn

    read: set[nn.Module] = set()

    class Watched(nn.Sequential):  # for the check only: the factors' weight and bias, noting who reads them
        @property
        def weight(self) -> torch.Tensor:
            read.add(self)
            return _product(self)

        @property
        def bias(self) -> torch.Tensor | None:
            read.add(self)
            return cast("torch.Tensor | None", self[-1].bias)

    for module in factors:
        module.__class__ = Watched
    try:
        require_outputs(model, example_input, expected, refusal)
    finally:
        for module in factors:
            module.__class__ = nn.Sequential
    return read


def _keep_whole(model: nn.Module, factorings: dict[str, tuple[nn.Module, nn.Module]],
                readers: set[nn.Module]) -> str:
    """Put back the layers whose factors the model read the weight or bias of, and say which (empty if none): the
    factors would multiply the whole weight out on every read, more work than the layer they replace saves."""
    names = [name for name, (_, factors) in factorings.items() if factors in readers]
    for name in names:
        model.set_submodule(name, factorings.pop(name)[0])
    return f"{', '.join(repr(name) for name in names)} left whole: the model reads the weight of each besides " \
           "calling it, which factors would multiply out on every read" if names else ""


@dataclass(frozen=True)
class LowRank(Compressor):
    """Factor each Linear (truncated SVD) and ungrouped Conv2d (Tucker-2) layer where that saves bytes;
    transformers' Conv1D layers (GPT-2's) are rewritten as nn.Linear first.

    ``rank`` fixes the rank of every factorisation; otherwise each keeps the fewest singular values
    holding ``energy`` of the squared sum. A layer whose factors would not make the checkpoint smaller (their
    data and ``torch.save``'s record of each tensor) stays as it is, and so does one whose weight its parent
    reads directly: with an example input, only the layers the model calls on it are factored (not
    nn.MultiheadAttention's ``out_proj``), a layer whose weight the model also reads (transformers' ViT reads
    its patch projection's ``weight.dtype``) is put back and the run says so, and the factored model must
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
            "would make the checkpoint smaller"
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
        layers = {name: module for name, module in model.named_modules() if module in kept and name}
        tied = {**tied_elsewhere(model, layers), **_registered_twice(model, layers)}  # factors would only add to it
        factorings = _factorings(model, {module for name, module in layers.items() if name not in tied}, self.rank,
                                 self.energy)
        for name, (_, factors) in factorings.items():
            model.set_submodule(name, factors)
        kept_whole = ""
        if ctx.example_input is not None:
            refusal = f"{self.id} cannot factor {type(model).__name__}"
            readers = _checked_readers(model, [factors for _, factors in factorings.values()], ctx.example_input,
                                       expected, refusal)
            kept_whole = _keep_whole(model, factorings, readers)
        said = [*tied.values(), *([kept_whole] if kept_whole else [])]
        if not factorings:
            raise CompressorUnsupported("; ".join([self.unchanged(model), *said]))
        for reason in said:
            ctx.report(f"{self.id}: {reason}")
        return model
