"""transformers' ``Conv1D`` (GPT-2's and GPT's blocks: a Linear whose weight is stored transposed, (in, out))
rewritten as the equivalent nn.Linear, for the compressors that only handle nn.Linear (torchao's, lowrank's SVD),
checked against it on what the model gives it.

transformers is an optional extra, never imported here: a Conv1D exists only once its module has been imported.
"""

from __future__ import annotations

import sys
from typing import Any, cast

import torch
from torch import nn

from pytest_netzip.compressors.recurrent import record_calls
from pytest_netzip.errors import CompressorUnsupported

#: How far the rewritten layer's outputs may lie from the Conv1D's (float32) before it is refused.
TOLERANCE = 1e-5


def conv1d_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The ``transformers.pytorch_utils.Conv1D`` layers of ``model`` by name (none where transformers is not loaded)."""
    kind = getattr(sys.modules.get("transformers.pytorch_utils"), "Conv1D", None)
    if not (isinstance(kind, type) and issubclass(kind, nn.Module)):
        return {}
    return {name: layer for name, layer in model.named_modules() if isinstance(layer, kind)}


def as_linear(conv: nn.Module) -> nn.Linear:
    """The nn.Linear that computes what ``conv`` (a Conv1D, weight (in, out)) does: weight transposed, bias kept."""
    weight = cast(torch.Tensor, conv.weight)
    bias = cast("torch.Tensor | None", getattr(conv, "bias", None))
    linear = nn.Linear(weight.shape[0], weight.shape[1], bias=bias is not None, device=weight.device,
                       dtype=weight.dtype)
    with torch.no_grad():
        linear.weight.copy_(weight.t())
        if bias is not None:
            linear.bias.copy_(bias)
    return linear.train(conv.training)


def _difference(first: torch.Tensor, second: torch.Tensor) -> float:
    return float((first - second).detach().abs().max()) if first.numel() else 0.0


def linearise_conv1d(model: nn.Module, example_input: Any, compressor: str) -> tuple[nn.Module, int]:
    """``model`` with every transformers Conv1D replaced by its :func:`as_linear`, and their number.

    With an ``example_input``, only the layers the model calls on it are rewritten (a parent that read
    a Conv1D's weight itself would break), and each must give the Conv1D's outputs within TOLERANCE
    on every call it got; CompressorUnsupported, naming the layer, otherwise.
    """
    layers = conv1d_layers(model)
    if not layers:
        return model, 0
    calls = record_calls(model, layers, example_input)
    if example_input is not None:
        layers = {name: layer for name, layer in layers.items() if calls[name]}
    for name, conv in layers.items():
        linear = as_linear(conv)
        with torch.no_grad():
            for args in calls[name]:
                difference = _difference(conv(*args), linear(*args))
                if difference > TOLERANCE:
                    raise CompressorUnsupported(
                        f"{compressor}: the nn.Linear rewrite of Conv1D layer '{name}' differs from it by "
                        f"{difference:.2e} (more than {TOLERANCE:g}), so it is left out"
                    )
        if not name:
            return linear, 1
        model.set_submodule(name, linear)
    return model, len(layers)
