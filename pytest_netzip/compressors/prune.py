"""Global unstructured magnitude and random pruning (the NetZIP paper's GUP_L1 and GUP_R)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from pytest_netzip.compressors.base import CompressionContext, CompressionError, Compressor

if TYPE_CHECKING:
    from torch import nn


def _prune_globally(model: nn.Module, amount: float, method: type, seed: int) -> nn.Module:
    """Zero ``amount`` of all Conv/Linear weights together, chosen by ``method``, made permanent."""
    import torch
    from torch import nn
    from torch.nn.utils import prune

    targets = [
        (module, "weight")
        for module in model.modules()
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear))
    ]
    if not targets:
        raise CompressionError(f"{type(model).__name__} has no Conv or Linear layer to prune")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        prune.global_unstructured(targets, pruning_method=method, amount=amount)
    for module, name in targets:
        prune.remove(module, name)
    return model


@dataclass(frozen=True)
class _GlobalPrune(Compressor):
    amount: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.amount < 1.0:
            raise ValueError(f"{self.name}: amount must be in [0, 1), got {self.amount!r}")


@dataclass(frozen=True)
class PruneL1(_GlobalPrune):
    """Zero the ``amount`` share of Conv/Linear weights with the smallest magnitude, across layers."""

    name: ClassVar[str] = "prune_l1"

    def transform(self, model: nn.Module, ctx: CompressionContext) -> nn.Module:
        from torch.nn.utils import prune

        return _prune_globally(model, self.amount, prune.L1Unstructured, ctx.seed)


@dataclass(frozen=True)
class PruneRandom(_GlobalPrune):
    """Zero a random ``amount`` share of Conv/Linear weights, across layers (seeded)."""

    name: ClassVar[str] = "prune_random"

    def transform(self, model: nn.Module, ctx: CompressionContext) -> nn.Module:
        from torch.nn.utils import prune

        return _prune_globally(model, self.amount, prune.RandomUnstructured, ctx.seed)
