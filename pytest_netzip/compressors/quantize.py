"""Integer quantisation through torchao, the maintained successor of ``torch.ao.quantization``."""

from __future__ import annotations

import logging
import platform
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar, cast

from typing_extensions import override

from pytest_netzip.compressors.base import CompressionContext, Compressor
from pytest_netzip.compressors.training import fit, require_train_data
from pytest_netzip.data.inputs import batch_size, call, take
from pytest_netzip.data.workload import Workload
from pytest_netzip.devices import seeded
from pytest_netzip.errors import CompressionError, CompressorUnsupported

if TYPE_CHECKING:
    from torch import fx, nn

#: Machines whose CPUs run the oneDNN int8 kernels that ``int8_static`` lowers to.
_X86 = {"x86_64", "amd64", "i386", "i686"}


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
    return cast(ModuleType, torchao.quantization)  # torchao has no type information


@dataclass(frozen=True)
class Int8Dynamic(Compressor):
    """int8 weights for every ``nn.Linear``, activations quantised to int8 on the fly per batch."""

    name: ClassVar[str] = "int8_dynamic"

    @override
    def transform(self, model: nn.Module, ctx: CompressionContext) -> nn.Module:
        quantization = _import_torchao_quantization()
        with warnings.catch_warnings():  # deprecation notices are torchao's business, not the user's
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            quantization.quantize_(model, quantization.Int8DynamicActivationInt8WeightConfig())
        return model


def _require_x86_cpu(compressor: str, ctx: CompressionContext) -> None:
    """Refuse, as unsupported, a device other than an x86 CPU: the lowered kernels are oneDNN's."""
    if ctx.device.type != "cpu" or platform.machine().lower() not in _X86:
        where = ctx.device.type if ctx.device.type != "cpu" else f"a {platform.machine()} CPU"
        raise CompressorUnsupported(f"{compressor} runs oneDNN int8 kernels on x86 CPUs only, not on {where}")


def _program(model: nn.Module, ctx: CompressionContext, batches: Any, observe: Any, qat: bool = False) -> nn.Module:
    """``model`` quantised through PT2E, observed by ``observe``, lowered for the example's shape.

    The example is ``netzip_example_input``'s first sample; without one, the inputs of the first of ``batches``.
    """
    import pytest_netzip.compressors.pt2e as pt2e

    example = ctx.example_input
    if example is None:
        example = take(ctx.format.inputs_of(next(iter(batches))), 1)
    program = pt2e.quantize(model.cpu(), Workload(batch_size=2).batch(example), observe, qat=qat)
    call(program, example)  # lowers for the example's shape now, so that counting MACs on it runs no compiler
    return program


@dataclass(frozen=True)
class Int8Static(Compressor):
    """int8 weights and activations, activation ranges observed once on ``netzip_calibration_data``.

    Post-training static quantisation through PT2E (``torch.export`` + torchao's x86 quantiser),
    lowered to oneDNN's int8 kernels: on x86 CPUs only. The model must be capturable by
    ``torch.export`` with a free batch size.
    """

    name: ClassVar[str] = "int8_static"

    @override
    def transform(self, model: nn.Module, ctx: CompressionContext) -> nn.Module:
        _require_x86_cpu(self.id, ctx)
        if ctx.calibration_data is None:
            raise CompressionError(f"{self.id} needs calibration batches: define a fixture netzip_calibration_data")

        def calibrate(prepared: fx.GraphModule, run: Callable[[Any], Any]) -> None:
            import torch

            samples = 0
            with torch.no_grad():
                for index, batch in enumerate(ctx.calibration_data):
                    inputs = ctx.format.inputs_of(batch)
                    run(inputs)
                    samples += batch_size(inputs, f"netzip_calibration_data batch {index}")
            if samples == 0:
                raise CompressionError(f"{self.id}: netzip_calibration_data yielded no batches")
            ctx.report(f"{self.id}: calibrated on {samples} samples")

        return _program(model, ctx, ctx.calibration_data, calibrate)


@dataclass(frozen=True)
class Int8QAT(Compressor):
    """``int8_static``'s int8 program, its weights fine-tuned with fake quantisation on ``netzip_train_data``.

    Quantisation-aware training through PT2E: batch norm folds into the convolutions, then Adam at
    ``lr`` trains ``epochs`` passes against the labels (cross-entropy) while every weight and
    activation is rounded as int8 will round it; seeded by ``--netzip-seed``. x86 CPUs only.
    """

    name: ClassVar[str] = "int8_qat"
    epochs: int = 1
    lr: float = 1e-4

    def __post_init__(self) -> None:
        if not (isinstance(self.epochs, int) and self.epochs >= 1 and self.lr > 0):
            raise ValueError(f"int8_qat: epochs must be a whole number >= 1 and lr positive, got {self!r}")

    @override
    def transform(self, model: nn.Module, ctx: CompressionContext) -> nn.Module:
        import torch.nn.functional as F

        _require_x86_cpu(self.id, ctx)
        data = require_train_data(ctx, self.id)

        def train(prepared: fx.GraphModule, run: Callable[[Any], Any]) -> None:
            from torchao.quantization.pt2e import move_exported_model_to_train

            move_exported_model_to_train(prepared)
            fit(prepared, lambda inputs, targets: F.cross_entropy(ctx.format.read(run(inputs)), targets), ctx,
                self.id, self.epochs, self.lr)

        with seeded(ctx.seed):
            return _program(model.train(), ctx, data, train, qat=True)
