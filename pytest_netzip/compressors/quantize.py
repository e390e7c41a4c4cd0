"""Integer quantisation through torchao, the maintained successor of ``torch.ao.quantization``."""

from __future__ import annotations

import logging
import warnings
from types import ModuleType
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from pytest_netzip.compressors.base import CompressionContext, Compressor

if TYPE_CHECKING:
    from torch import nn


def _import_torchao_quantization() -> ModuleType:
    """Import ``torchao.quantization`` without letting its import-time chatter reach the user."""
    pytree_logger = logging.getLogger("torch.utils._pytree")
    level = pytree_logger.level
    pytree_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            import torchao.quantization
    finally:
        pytree_logger.setLevel(level)
    return torchao.quantization


@dataclass(frozen=True)
class Int8Dynamic(Compressor):
    """int8 weights for every ``nn.Linear``, activations quantised to int8 on the fly per batch."""

    name: ClassVar[str] = "int8_dynamic"

    def transform(self, model: nn.Module, ctx: CompressionContext) -> nn.Module:
        quantization = _import_torchao_quantization()
        with warnings.catch_warnings():  # deprecation notices are torchao's business, not the user's
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            quantization.quantize_(model, quantization.Int8DynamicActivationInt8WeightConfig())
        return model
