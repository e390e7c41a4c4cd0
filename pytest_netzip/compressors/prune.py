"""Pruning: global unstructured by magnitude or at random (the NetZIP paper's GUP_L1 and GUP_R), and
structured channel pruning, which removes channels so the model really shrinks."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, cast

from typing_extensions import override

from pytest_netzip.compressors.base import (
    CompressionContext,
    Compressor,
    describe_failure,
    outputs_on,
    report_partial,
    require_outputs,
    run_observed,
    tied_elsewhere,
)
from pytest_netzip.data.inputs import call
from pytest_netzip.devices import seeded
from pytest_netzip.errors import CompressionError, CompressorUnsupported

if TYPE_CHECKING:
    from torch import nn


def _prune_globally(model: nn.Module, amount: float, method: type, ctx: CompressionContext, compressor: str) -> nn.Module:
    """Zero ``amount`` of all Conv/Linear weights together, chosen by ``method``, made permanent; a layer whose
    weight a module it does not prune holds too (an embedding tied to it) is left whole, and the run says so."""
    from torch import nn
    from torch.nn.utils import prune

    layers: dict[str, nn.Module] = {name: module for name, module in model.named_modules()
                                    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear))}
    tied = tied_elsewhere(model, layers)
    targets = [(module, "weight") for name, module in layers.items() if name not in tied]
    if not targets and tied:
        raise CompressorUnsupported(f"{compressor} found no layer it can prune in {type(model).__name__}: "
                                    + "; ".join(tied.values()))
    if not targets:
        raise CompressionError(f"{type(model).__name__} has no Conv or Linear layer to prune")
    for reason in tied.values():
        ctx.report(f"{compressor}: {reason}")
    with seeded(ctx.seed):
        prune.global_unstructured(targets, pruning_method=method, amount=amount)
    for module, name in targets:
        prune.remove(module, name)  # type: ignore[no-untyped-call]  # torch leaves prune.remove unannotated
    pruned = sum(getattr(module, name).numel() for module, name in targets)
    report_partial(ctx, f"{compressor}: pruned", model, pruned, "it prunes Conv and Linear weights, not recurrent "
                   "layers, embeddings or norms")
    return model


@dataclass(frozen=True)
class _Pruning(Compressor):
    amount: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.amount < 1.0:
            raise ValueError(f"{self.name}: amount must be in [0, 1), got {self.amount!r}")

    @override
    def unchanged(self, model: nn.Module) -> str:
        if self.amount == 0:
            return f"{self.id} prunes nothing of {type(model).__name__}: its amount is 0 (allow_noop=True accepts that)"
        return super().unchanged(model)


@dataclass(frozen=True)
class PruneL1(_Pruning):
    """Zero the ``amount`` share of Conv/Linear weights with the smallest magnitude, across layers."""

    name: ClassVar[str] = "prune_l1"

    @override
    def transform(self, model: nn.Module, ctx: CompressionContext) -> nn.Module:
        from torch.nn.utils import prune

        return _prune_globally(model, self.amount, prune.L1Unstructured, ctx, self.id)


@dataclass(frozen=True)
class PruneRandom(_Pruning):
    """Zero a random ``amount`` share of Conv/Linear weights, across layers (seeded)."""

    name: ClassVar[str] = "prune_random"

    @override
    def transform(self, model: nn.Module, ctx: CompressionContext) -> nn.Module:
        from torch.nn.utils import prune

        return _prune_globally(model, self.amount, prune.RandomUnstructured, ctx, self.id)


def _output_layers(model: nn.Module, example_input: Any, read: Callable[[Any], Any]) -> list[nn.Module]:
    """The layers whose output is the model's output (the classifier): their channels must stay.

    Where a function makes the output of a layer's (a segmentation head's ``F.interpolate``), that is the last
    layer with weights whose output has the output's rank and channels. Every layer's output is held until the
    output is known: a freed hidden tensor's memory may be reused for the output, and its address would then name
    a hidden layer as an output layer too (on some runs only).
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
    exact = [module for module, out in produced if out.data_ptr() == output.data_ptr()]
    weighted = [module for module, out in produced if getattr(module, "weight", None) is not None
                and out.ndim == output.ndim > 1 and out.shape[1] == output.shape[1]]
    return exact or weighted[-1:]


#: The query, key and value projections of transformers' attention modules, by name: BERT's, ViT's, CLIP's and
#: Llama's, DistilBERT's.
_PROJECTIONS = (("query", "key", "value"), ("q_proj", "k_proj", "v_proj"), ("q_lin", "k_lin", "v_lin"))
#: The attributes an attention module holds its head count and head width in (transformers', timm's).
_HEAD_COUNTS = ("num_attention_heads", "num_heads", "n_heads", "n_head")
_HEAD_SIZES = ("attention_head_size", "head_dim", "head_size")
#: Names of the projections of attention modules netzip cannot prune by heads: fused (GPT-NeoX's, MPT's, a timm
#: ``qkv`` without ``attn_dim``, as Swin's) or T5's single letters.
_UNKNOWN_PROJECTIONS = frozenset({"query_key_value", "qkv", "to_qkv", "Wqkv", "c_attn", "q", "k", "v"})


def _int_attribute(module: nn.Module, names: tuple[str, ...]) -> int | None:
    """The first of the plain int attributes ``names`` that ``module`` has, if any."""
    values = [value for name in names if type(value := getattr(module, name, None)) is int]
    return values[0] if values else None


def _projections(module: nn.Module) -> list[nn.Linear]:
    """The query, key and value projections of an attention module: three Linear layers, or timm's fused ``qkv``."""
    from torch import nn

    for names in _PROJECTIONS:
        layers = [getattr(module, name, None) for name in names]
        if all(isinstance(layer, nn.Linear) for layer in layers):
            return cast("list[nn.Linear]", layers)
    qkv = getattr(module, "qkv", None)
    return [qkv] if isinstance(qkv, nn.Linear) and hasattr(module, "attn_dim") else []


def _head_count(name: str, module: nn.Module, projections: list[nn.Linear], refusal: str) -> int:
    """The number of heads of an attention module, checked against its projections' widths; CompressorUnsupported,
    naming the module, where removing whole heads would leave it inconsistent."""
    width = projections[0].out_features // 3 if len(projections) == 1 else projections[0].out_features
    size = _int_attribute(module, _HEAD_SIZES)
    heads = _int_attribute(module, _HEAD_COUNTS) or (width // size if size else 0)
    if not heads or heads * (size or width // heads) != width:
        reason = "its head count and head width are attributes netzip does not know, or do not make up its width"
    elif any(layer.out_features != width for layer in projections[1:]):
        reason = "its keys and values have fewer heads than its queries (grouped-query attention)"
    elif any(word in parameter_name for parameter_name, _ in _own_parameters(module) for word in ("relative", "rel_pos")):
        reason = "it holds a tensor of one entry per head besides its projections (a relative position bias)"
    else:
        return heads
    raise CompressorUnsupported(f"{refusal}: cannot remove heads from {type(module).__name__} '{name}': {reason}")


def _own_parameters(module: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """The parameters of ``module`` outside its Linear layers (its projections), by name."""
    from torch import nn

    return [(f"{layer_name}.{name}".lstrip("."), parameter) for layer_name, layer in module.named_modules()
            if not isinstance(layer, nn.Linear) for name, parameter in layer.named_parameters(recurse=False)]


def _attention_heads(model: nn.Module, refusal: str) -> dict[nn.Module, int]:
    """The head count of each query, key and value projection (timm's fused ``qkv``) of the attention modules
    whose heads torch-pruning can remove. A module that holds a head count or width and Linear layers but is none
    of those (GPT-NeoX's fused ``query_key_value``, T5's attention) is refused naming it: torch-pruning would
    prune its channels across its heads."""
    from torch import nn

    heads: dict[nn.Module, int] = {}
    for name, module in model.named_modules():
        projections = _projections(module)
        if projections:
            count = _head_count(name, module, projections, refusal)
            heads.update((layer, count) for layer in projections)
        elif _int_attribute(module, _HEAD_COUNTS + _HEAD_SIZES) and any(
            isinstance(child, nn.Linear) and child_name in _UNKNOWN_PROJECTIONS for child_name, child in module.named_children()
        ):
            raise CompressorUnsupported(f"{refusal}: cannot remove heads from {type(module).__name__} '{name}': "
                                        "its query, key and value projections are not layers netzip knows")
    return heads


def _set_head_counts(model: nn.Module, heads: dict[nn.Module, int]) -> None:
    """Write the head counts torch-pruning left into the attributes the attention modules compute with: the head
    count, and the heads' total width (BERT's ``all_head_size``, timm's ``attn_dim``); the head width stays."""
    for module in model.modules():
        projections = _projections(module)
        if not projections or projections[0] not in heads:
            continue
        attention: Any = module  # the head counts are plain attributes of the attention modules
        count = heads[projections[0]]
        for name in _HEAD_COUNTS:
            if type(getattr(module, name, None)) is int:
                setattr(module, name, count)
        if hasattr(module, "all_head_size"):
            attention.all_head_size = projections[0].out_features
        if hasattr(module, "attn_dim"):
            attention.attn_dim = count * attention.head_dim


def _traced_without_cache(model: nn.Module, make: Callable[[], Any]) -> Any:
    """The pruner ``make`` builds, and its step taken, with a transformers model's key-value cache off: torch-pruning
    traces the cache's updates too, and on Llama's that graph did not finish in minutes (0.3 s without it). The
    model's setting is restored after."""
    config = getattr(model, "config", None)
    cached = getattr(config, "use_cache", None)
    if cached:
        config.use_cache = False  # type: ignore[union-attr]  # a transformers config, checked above
    try:
        pruner = make()
        pruner.step()
    finally:
        if cached:
            config.use_cache = cached  # type: ignore[union-attr]
    return pruner


def _input_layers(model: nn.Module, example_input: Any) -> list[nn.Module]:
    """The layers that read the model's inputs (token or patch embeddings), and every nn.Embedding."""
    import torch
    from torch import nn
    from torch.utils._pytree import tree_leaves

    inputs = {id(leaf) for leaf in tree_leaves(example_input) if isinstance(leaf, torch.Tensor)}
    readers: list[nn.Module] = [module for module in model.modules() if isinstance(module, nn.Embedding)]
    leaves = [module for module in model.modules() if not list(module.children())]
    run_observed(model, example_input, leaves,
                 lambda module, args: readers.append(module) if any(id(arg) in inputs for arg in args) else None)
    return readers


@dataclass(frozen=True)
class PruneStructured(_Pruning):
    """Remove the ``amount`` share of channels with the smallest L1 norm from every prunable layer.

    torch-pruning's dependency graph keeps the graph consistent (a removed channel goes from every
    layer that produces or consumes it); the layers producing the model's output are left whole.
    In transformers, whole attention heads go (the ``amount`` share of each layer's, transformers'
    and timm's attention) with the MLP's hidden units, while the embeddings, the residual stream
    they feed and nn.MultiheadAttention (whose width is its input's) stay whole; attention whose heads
    cannot be removed consistently (grouped queries, a per-head bias, unknown projections) is refused,
    naming it. Recurrent layers and
    transformers' Conv1D layers (GPT-2's) are refused, naming the layer. The pruned model must run on the
    example input and give outputs of the reference's shapes, or the model is refused as one that cannot
    be pruned safely.
    """

    name: ClassVar[str] = "prune_structured"
    amount: float = 0.3

    @override
    def unchanged(self, model: nn.Module) -> str:
        if self.amount == 0:
            return super().unchanged(model)
        return (
            f"{self.id} found no channel it can prune in {type(model).__name__}: every layer produces the output, "
            "reads the inputs or shares its width with one that does"
        )

    @override
    def transform(self, model: nn.Module, ctx: CompressionContext) -> nn.Module:
        import torch_pruning
        from torch import nn

        from pytest_netzip.compressors.transformers_layers import conv1d_layers

        if ctx.example_input is None:
            raise CompressionError(f"{self.id} needs an example input to trace the model")
        for name, module in model.named_modules():
            if isinstance(module, nn.RNNBase):
                raise CompressorUnsupported(
                    f"{self.id} cannot prune {type(model).__name__} safely: torch-pruning cannot prune the "
                    f"{type(module).__name__} layer '{name}' (it fails or leaves its gates inconsistent)"
                )
        conv1d = next(iter(conv1d_layers(model)), None)
        if conv1d is not None:
            raise CompressorUnsupported(
                f"{self.id} cannot prune {type(model).__name__} safely: torch-pruning cannot prune transformers' "
                f"Conv1D layer '{conv1d}' (a Linear with a transposed weight, and GPT-2's fused query, key and value "
                "projection, whose heads it does not know)"
            )
        expected = outputs_on(model, ctx.example_input)
        refusal = f"{self.id} cannot prune {type(model).__name__} safely"
        heads = _attention_heads(model, refusal)
        ignored = _output_layers(model, ctx.example_input, ctx.format.read)
        multihead = [module for module in model.modules() if isinstance(module, nn.MultiheadAttention)]
        if heads or multihead:  # a transformer: its residual stream, fed by the embeddings, stays whole
            ignored += multihead + _input_layers(model, ctx.example_input)
        with warnings.catch_warnings():
            # a ViT's class token and position embedding are parameters of no layer: torch-pruning says it would
            # prune their last dimension with the residual stream's, which stays whole here (and the result is
            # checked below)
            warnings.filterwarnings("ignore", "Unwrapped parameters detected", UserWarning)
            try:
                pruner = _traced_without_cache(model, lambda: torch_pruning.pruner.MetaPruner(
                    model,
                    ctx.example_input,
                    importance=torch_pruning.importance.MagnitudeImportance(p=1),
                    pruning_ratio=self.amount,
                    ignored_layers=ignored,
                    num_heads=heads,
                    prune_num_heads=bool(heads),
                    prune_head_dims=False,
                    head_pruning_ratio=self.amount if heads else 0.0,
                    in_channel_groups={},  # torch-pruning's defaults are dicts it fills, shared by every pruner
                    out_channel_groups={},
                    forward_fn=call,
                    output_transform=ctx.format.read,
                ))
            except (IndexError, RuntimeError, ValueError) as exc:  # its graph of the model is wrong: a concat of a
                raise CompressorUnsupported(  # flattened map and a Linear's output indexes past the channels
                    f"{self.id} cannot prune {type(model).__name__} safely: torch-pruning failed on its graph "
                    f"({describe_failure(exc)})"
                ) from exc
        _set_head_counts(model, pruner.num_heads)
        require_outputs(model, ctx.example_input, expected, refusal)
        return model
