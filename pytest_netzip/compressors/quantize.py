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

from pytest_netzip.compressors.base import CompressionContext, Compressor, report_partial
from pytest_netzip.compressors.training import fit, require_train_data
from pytest_netzip.data.inputs import batch_size, call, take
from pytest_netzip.data.losses import task_loss
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


def is_quantised(tensor: object) -> bool:
    """Whether ``tensor`` is one of torchao's quantised tensor subclasses (Int8Tensor, Float8Tensor, ...)."""
    import torch

    return isinstance(tensor, torch.Tensor) and type(tensor) not in (torch.Tensor, torch.nn.Parameter)


#: Which layers of a model to quantise: torchao's ``filter_fn``, given a module and its qualified name.
LayerFilter = Callable[["nn.Module", str], bool]


def quantise_linears(model: nn.Module, config: Any, compressor: Compressor, ctx: CompressionContext,
                     apply: Callable[[nn.Module, Any, LayerFilter], Any] | None = None,
                     eligible: LayerFilter | None = None) -> nn.Module:
    """``model`` with every nn.Linear (that ``eligible`` accepts) quantised by torchao's ``config`` (``apply``,
    default ``quantize_``).

    Recurrent layers (nn.LSTM, nn.GRU, nn.RNN) are first rewritten as nn.Linear gate projections
    (:mod:`pytest_netzip.compressors.recurrent`, checked against torch's), and transformers' Conv1D layers
    (GPT-2's) as nn.Linear (:mod:`pytest_netzip.compressors.transformers_layers`), so that they are quantised too.
    nn.MultiheadAttention's out_proj stays in float, as torchao leaves it, and so does a layer with one input
    feature (torchao's per-row scale of a one-column weight fails to reshape), which the run reports.
    A model in which no layer got quantised is refused with ``compressor.unchanged``.
    """
    from torch import nn

    from pytest_netzip.compressors.recurrent import decompose_recurrent
    from pytest_netzip.compressors.transformers_layers import linearise_conv1d

    quantization = _import_torchao_quantization()
    model, _ = decompose_recurrent(model, ctx.example_input, compressor.id)
    model, _ = linearise_conv1d(model, ctx.example_input, compressor.id)
    one_column: list[str] = []

    def quantisable(module: nn.Module, name: str) -> bool:
        if not isinstance(module, nn.Linear) or isinstance(module, nn.modules.linear.NonDynamicallyQuantizableLinear):
            return False
        if is_quantised(module.weight):  # shared by another Linear, quantised there
            return False
        if module.in_features == 1:
            one_column.append(name)
            return False
        return eligible is None or eligible(module, name)

    with warnings.catch_warnings():  # deprecation notices are torchao's business, not the user's
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        (apply or quantization.quantize_)(model, config, quantisable)
    if one_column:
        ctx.report(f"{compressor.id}: {', '.join(map(repr, one_column))} left in float: one input feature each, which "
                   "torchao's per-row quantisation cannot scale")
    quantised = sum(tensor.numel() for tensor in model.state_dict(keep_vars=True).values() if is_quantised(tensor))
    if not compressor.allow_noop and not quantised:
        raise CompressorUnsupported(compressor.unchanged(model))
    report_partial(ctx, f"{compressor.id}: quantised", model, quantised, f"the others stay float, {_float_holders(model)} "
                   "(it quantises nn.Linear layers, recurrent layers and Conv1D; not convolutions, embeddings, norms or "
                   "nn.MultiheadAttention's projections)")
    if ctx.example_input is not None:
        import torch

        from pytest_netzip.compressors.base import describe_failure

        try:
            with torch.no_grad():
                call(model, ctx.example_input)
        except Exception as exc:
            raise CompressorUnsupported(
                f"{compressor.id} cannot quantise {type(model).__name__}: the quantised model fails on the example "
                f"input ({describe_failure(exc)})"
            ) from exc
    return model


def quantise_float8(model: nn.Module, config: Any, compressor: Compressor, ctx: CompressionContext) -> nn.Module:
    """:func:`quantise_linears` for a float8 ``config``, leaving in float the nn.Linear layers with a row of zeros
    (torchao scales each row by its largest magnitude: a row of zeros would be 0/0, NaN outputs) and
    nn.MultiheadAttention's projections."""
    from torch import nn

    zero_rows: list[str] = []
    # nn.MultiheadAttention reads its out_proj's weight itself, with matmuls that float8 tensors do not implement
    owned = {id(child) for module in model.modules() if isinstance(module, nn.MultiheadAttention)
             for child in module.modules()}

    def eligible(module: nn.Module, name: str) -> bool:
        if id(module) in owned or not isinstance(module, nn.Linear):
            return False
        if bool((module.weight.detach().abs().amax(dim=1) == 0).any()):
            zero_rows.append(name)
            return False
        return True

    model = quantise_linears(model, config, compressor, ctx, eligible=eligible)
    if zero_rows:
        ctx.report(f"{compressor.id}: {', '.join(zero_rows)} left in float: a row of zero weights has no float8 scale")
    return model


@dataclass(frozen=True)
class _TorchaoLinears(Compressor):
    """A compressor that quantises nn.Linear layers (and recurrent layers decomposed into them) with torchao."""

    @override
    def unchanged(self, model: nn.Module) -> str:
        return (
            f"{self.id} found no layer it quantises in {type(model).__name__}: it quantises nn.Linear layers "
            "(and nn.LSTM, nn.GRU and nn.RNN, rewritten as nn.Linear gate projections, and transformers' Conv1D)"
        )


@dataclass(frozen=True)
class Int8Dynamic(_TorchaoLinears):
    """int8 weights for every ``nn.Linear``, activations quantised to int8 on the fly per batch.

    nn.LSTM, nn.GRU and nn.RNN layers are rewritten as nn.Linear gate projections (the same math,
    checked to 1e-5 against torch's), and transformers' Conv1D layers (GPT-2's) as nn.Linear, and quantised too.
    """

    name: ClassVar[str] = "int8_dynamic"

    @override
    def transform(self, model: nn.Module, ctx: CompressionContext) -> nn.Module:
        quantization = _import_torchao_quantization()
        return quantise_linears(model, quantization.Int8DynamicActivationInt8WeightConfig(), self, ctx)


def require_cuda(compressor: str, ctx: CompressionContext, capability: tuple[int, int], why: str) -> None:
    """Refuse, as unsupported, a device other than a CUDA GPU of at least ``capability`` (``why`` says what needs it)."""
    import torch

    if ctx.device.type != "cuda":
        raise CompressorUnsupported(f"{compressor} needs a CUDA GPU (compute capability {capability[0]}.{capability[1]} "
                                    f"or newer), not {ctx.device.type}: {why}")
    found = torch.cuda.get_device_capability(ctx.device)
    if found < capability:
        raise CompressorUnsupported(
            f"{compressor} needs compute capability {capability[0]}.{capability[1]} or newer, "
            f"{torch.cuda.get_device_name(ctx.device)} has {found[0]}.{found[1]}: {why}"
        )


@dataclass(frozen=True)
class Float8(_TorchaoLinears):
    """float8 (e4m3) weights and activations, scaled per row, for every ``nn.Linear`` (torchao's
    Float8DynamicActivationFloat8WeightConfig): CUDA GPUs of compute capability 8.9 or newer only."""

    name: ClassVar[str] = "float8"

    @override
    def transform(self, model: nn.Module, ctx: CompressionContext) -> nn.Module:
        require_cuda(self.id, ctx, (8, 9), "torchao's float8 matmuls run on Ada, Hopper and newer GPUs")
        quantization = _import_torchao_quantization()
        granularity = quantization.PerRow()
        config = quantization.Float8DynamicActivationFloat8WeightConfig(granularity=granularity)
        return quantise_float8(model.to(ctx.device), config, self, ctx)


def _float_holders(model: nn.Module, shown: int = 3) -> str:
    """Which kinds of layer hold the parameters a quantiser left in float, the largest first:
    ``most in MultiheadAttention (47%), LayerNorm (1%)``."""
    from collections import Counter

    from torch import nn

    total = sum(parameter.numel() for parameter in model.parameters()) or 1
    held: Counter[str] = Counter()
    for module in model.modules():
        kind = "MultiheadAttention" if isinstance(module, nn.modules.linear.NonDynamicallyQuantizableLinear) else (
            type(module).__name__)
        own = list(module.parameters(recurse=False))
        if not any(is_quantised(value) for value in own):  # a quantised layer's bias stays float, as it should
            held[kind] += sum(value.numel() for value in own)
    largest = [f"{kind} ({100 * count / total:.3g}%)" for kind, count in held.most_common(shown) if count]
    return "most in " + ", ".join(largest) if largest else "none"


def _require_x86_cpu(compressor: str, ctx: CompressionContext) -> None:
    """Refuse, as unsupported, a device other than an x86 CPU: the lowered kernels are oneDNN's."""
    if ctx.device.type != "cpu" or platform.machine().lower() not in _X86:
        where = ctx.device.type if ctx.device.type != "cpu" else f"a {platform.machine()} CPU"
        raise CompressorUnsupported(f"{compressor} runs oneDNN int8 kernels on x86 CPUs only, not on {where}")


def _program(model: nn.Module, ctx: CompressionContext, batches: Any, observe: Any, compressor: str,
             qat: bool = False) -> nn.Module:
    """``model`` quantised through PT2E, observed by ``observe``, lowered for the example's shape.

    The example is ``netzip_example_input``'s first sample; without one, the inputs of the first of ``batches``.
    transformers' Conv1D layers become nn.Linear first (the quantiser annotates linear layers, not Conv1D's
    matmul), and a key-value cache that torch.export cannot return is switched off (:func:`_without_cache`).
    """
    import torch

    import pytest_netzip.compressors.pt2e as pt2e
    from pytest_netzip.compressors.transformers_layers import linearise_conv1d

    example = ctx.example_input
    if example is None:
        example = take(ctx.format.inputs_of(next(iter(batches))), 1)
    model, _ = linearise_conv1d(model.cpu(), example, compressor)
    _without_cache(model, example, ctx, compressor)
    program = pt2e.quantize(model, Workload(batch_size=2).batch(example), observe, qat=qat)
    call(program, example)  # lowers for the example's shape now, so that counting MACs on it runs no compiler
    quantised = sum(tensor.numel() for tensor in program.state_dict().values() if tensor.dtype == torch.int8)
    report_partial(ctx, f"{compressor}: quantised", program, quantised, "the others stay float (the x86 quantiser "
                   "quantises convolutions and linear layers, not recurrent layers or embeddings)",
                   name=type(model).__name__)
    return program


def _without_cache(model: nn.Module, example: Any, ctx: CompressionContext, compressor: str) -> None:
    """Set ``model.config.use_cache`` to False where the model returns transformers' key-value cache (a
    DynamicCache, which torch.export cannot return and an int8 program has no use for) and its predictions
    on ``example`` stay the same without it; leave it on otherwise (the capture then fails saying so)."""
    import torch
    from torch.utils._pytree import tree_leaves

    config: Any = getattr(model, "config", None)  # a transformers PretrainedConfig
    if not getattr(config, "use_cache", False):
        return
    training = model.training
    model.eval()  # the same predictions twice: no dropout
    try:
        with torch.no_grad():
            cached = call(model, example)
            caches = {type(leaf).__name__ for leaf in tree_leaves(cached) if "Cache" in type(leaf).__name__}
            if not caches:
                return
            config.use_cache = False
            plain = call(model, example)
    finally:
        model.train(training)
    expected, found = ctx.format.read(cached), ctx.format.read(plain)
    same = (isinstance(expected, torch.Tensor) and isinstance(found, torch.Tensor) and expected.shape == found.shape
            and torch.allclose(expected, found, rtol=0, atol=1e-5))
    if not same or any("Cache" in type(leaf).__name__ for leaf in tree_leaves(plain)):
        config.use_cache = True
        return
    ctx.report(f"{compressor}: captured with use_cache=False: torch.export cannot return {type(model).__name__}'s "
               f"{', '.join(sorted(caches))}, and the predictions are the same without it")


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

        return _program(model, ctx, ctx.calibration_data, calibrate, self.id)


@dataclass(frozen=True)
class Int8QAT(Compressor):
    """``int8_static``'s int8 program, its weights fine-tuned with fake quantisation on ``netzip_train_data``.

    Quantisation-aware training through PT2E: batch norm folds into the convolutions, then Adam at
    ``lr`` trains ``epochs`` passes against the labels with the task's loss (``data.losses.task_loss``)
    while every weight and activation is rounded as int8 will round it; seeded by ``--netzip-seed``.
    x86 CPUs only.
    """

    name: ClassVar[str] = "int8_qat"
    epochs: int = 1
    lr: float = 1e-4

    def __post_init__(self) -> None:
        if not (isinstance(self.epochs, int) and self.epochs >= 1 and self.lr > 0):
            raise ValueError(f"int8_qat: epochs must be a whole number >= 1 and lr positive, got {self!r}")

    @override
    def transform(self, model: nn.Module, ctx: CompressionContext) -> nn.Module:
        _require_x86_cpu(self.id, ctx)
        data = require_train_data(ctx, self.id)

        def train(prepared: fx.GraphModule, run: Callable[[Any], Any]) -> None:
            from torchao.quantization.pt2e import move_exported_model_to_train

            move_exported_model_to_train(prepared)
            fit(prepared, lambda inputs, targets: task_loss(ctx.format.read(run(inputs)), targets, inputs), ctx,
                self.id, self.epochs, self.lr)

        with seeded(ctx.seed):
            return _program(model.train(), ctx, data, train, self.id, qat=True)
