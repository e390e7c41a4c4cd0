"""Modules that compressors wrap around a model (imported only when a compressor runs)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils._pytree import tree_map
from typing_extensions import override


def _cast(value: Any, dtype: torch.dtype) -> Any:
    return value.to(dtype) if isinstance(value, torch.Tensor) and value.is_floating_point() else value


class CastInputs(nn.Module):
    """Runs ``module`` in ``dtype`` while taking and returning float32 tensors like the reference."""

    def __init__(self, module: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.module = module.to(dtype)
        self.dtype = dtype

    @override
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        args, kwargs = tree_map(lambda value: _cast(value, self.dtype), (args, kwargs))
        return tree_map(lambda value: _cast(value, torch.float32), self.module(*args, **kwargs))
