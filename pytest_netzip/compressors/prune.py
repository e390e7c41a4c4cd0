"""Pruning: global unstructured by magnitude or at random (the NetZIP paper's GUP_L1 and GUP_R), and
structured channel pruning, which removes channels so the model really shrinks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from typing_extensions import override

from pytest_netzip.compressors.base import CompressionContext, Compressor
from pytest_netzip.data.inputs import call
from pytest_netzip.devices import seeded
from pytest_netzip.errors import CompressionError

if TYPE_CHECKING:
    from torch import nn


def _prune_globally(model: nn.Module, amount: float, method: type, seed: int) -> nn.Module:
    """Zero ``amount`` of all Conv/Linear weights together, chosen by ``method``, made permanent."""
    from torch import nn
    from torch.nn.utils import prune

    targets = [
        (module, "weight")
        for module in model.modules()
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear))
    ]
    if not targets:
        raise CompressionError(f"{type(model).__name__} has no Conv or Linear layer to prune")
    with seeded(seed):
        prune.global_unstructured(targets, pruning_method=method, amount=amount)
    for module, name in targets:
        prune.remove(module, name)  # type: ignore[no-untyped-call]  # torch leaves prune.remove unannotated
    return model


@dataclass(frozen=True)
class _Pruning(Compressor):
    amount: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.amount < 1.0:
            raise ValueError(f"{self.name}: amount must be in [0, 1), got {self.amount!r}")


@dataclass(frozen=True)
class PruneL1(_Pruning):
    """Zero the ``amount`` share of Conv/Linear weights with the smallest magnitude, across layers."""

    name: ClassVar[str] = "prune_l1"

    @override
    def transform(self, model: nn.Module, ctx: CompressionContext) -> nn.Module:
        from torch.nn.utils import prune

        return _prune_globally(model, self.amount, prune.L1Unstructured, ctx.seed)


@dataclass(frozen=True)
class PruneRandom(_Pruning):
    """Zero a random ``amount`` share of Conv/Linear weights, across layers (seeded)."""

    name: ClassVar[str] = "prune_random"

    @override
    def transform(self, model: nn.Module, ctx: CompressionContext) -> nn.Module:
        from torch.nn.utils import prune

        return _prune_globally(model, self.amount, prune.RandomUnstructured, ctx.seed)


def _output_layers(model: nn.Module, example_input: Any, read: Callable[[Any], Any]) -> list[nn.Module]:
    """The layers whose output is the model's output (the classifier): their channels must stay.

    Every layer's output is held until the output is known: a freed hidden tensor's memory may be reused for
    the output, and its address would then name a hidden layer as an output layer too (on some runs only).
    """
    import torch

    produced: list[tuple[nn.Module, torch.Tensor]] = []
    hooks = [
        module.register_forward_hook(
            lambda module, args, out: produced.append((module, out)) if isinstance(out, torch.Tensor) else None
        )
        for module in model.modules()
        if not list(module.children())
    ]
    try:
        with torch.no_grad():
            output = read(call(model, example_input))
    finally:
        for hook in hooks:
            hook.remove()
    if not isinstance(output, torch.Tensor):
        return []
    return [module for module, out in produced if out.data_ptr() == output.data_ptr()]


@dataclass(frozen=True)
class PruneStructured(_Pruning):
    """Remove the ``amount`` share of channels with the smallest L1 norm from every prunable layer.

    torch-pruning's dependency graph keeps the graph consistent (a removed channel goes from every
    layer that produces or consumes it); the layers producing the model's output are left whole.
    """

    name: ClassVar[str] = "prune_structured"
    amount: float = 0.3

    @override
    def transform(self, model: nn.Module, ctx: CompressionContext) -> nn.Module:
        import torch_pruning

        if ctx.example_input is None:
            raise CompressionError(f"{self.id} needs an example input to trace the model")
        pruner = torch_pruning.pruner.MetaPruner(
            model,
            ctx.example_input,
            importance=torch_pruning.importance.MagnitudeImportance(p=1),
            pruning_ratio=self.amount,
            ignored_layers=_output_layers(model, ctx.example_input, ctx.format.read),
            forward_fn=call,
            output_transform=ctx.format.read,
        )
        pruner.step()
        return model
