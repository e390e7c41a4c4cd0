"""Static int8 quantisation through PT2E, torchao's maintained successor of eager and FX quantisation.

The model is captured with ``torch.export``, annotated by torchao's x86 quantiser, calibrated (or
trained with fake quantisation) and converted to int8 weights with fixed activation scales. That
program is what is saved: its state dict holds int8 weights. To run, it is lowered to oneDNN's int8
convolution and matmul kernels once per input shape, as ``torch.compile`` specialises.

This module imports torch and torchao; the compressors import it when they run.
"""

from __future__ import annotations

import inspect
import re
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import fx, nn
from torch.utils._pytree import tree_flatten, tree_leaves, tree_map
from typing_extensions import override

from pytest_netzip.data.inputs import arguments, convention_error
from pytest_netzip.errors import CompressionError, CompressorUnsupported


class Signature:
    """How a model's ``forward`` takes its arguments, to pass keyword inputs positionally: an exported and lowered
    program takes positional arguments only."""

    def __init__(self, model: nn.Module) -> None:
        self.model = type(model).__name__
        self.signature = inspect.signature(model.forward)

    def positional(self, inputs: Any) -> tuple[Any, ...]:
        """A model input (a tensor, positional or keyword arguments) as the model's positional arguments."""
        return self.bind(*arguments(inputs))

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
        """``args`` and ``kwargs`` as positional arguments, the parameters between them given their defaults;
        CompressorUnsupported where an input would land in ``*args`` or ``**kwargs``, which no position holds."""
        if not kwargs:
            return args
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise CompressionError(str(convention_error(self.model, args, kwargs, exc))) from None
        bound.apply_defaults()
        positional: list[Any] = []
        for name, parameter in self.signature.parameters.items():
            value = bound.arguments[name]
            if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
                positional.append(value)
            elif value is not parameter.default and value not in ((), {}):  # *args, **kwargs and keyword-only ones
                raise CompressorUnsupported(
                    f"forward's {name} would take {value!r:.60}, which a captured int8 program cannot pass (it takes "
                    "positional arguments only)"
                )
        return tuple(positional)


def _batch_dims(args: tuple[Any, ...], sequence: bool = True) -> tuple[Any, ...]:
    """``dynamic_shapes`` for ``torch.export``: dimension 0 of every batched tensor is the batch, shared, and
    (with ``sequence``) dimension 1 of every integer tensor of rank 2 (token ids, attention masks) is free too,
    so that the program runs on batches padded to another length. ``Dim.AUTO`` lets the capture infer that
    dimension's range (GPT-2's 32 positions) or fix it where the model needs a fixed one."""
    batch = torch.export.Dim("batch")

    def dims(leaf: Any) -> Any:
        if not isinstance(leaf, torch.Tensor) or leaf.ndim < 1:
            return None
        return {0: batch, 1: torch.export.Dim.AUTO} if sequence and _is_sequence(leaf) else {0: batch}

    return tuple(tree_map(dims, arg) for arg in args)


def _is_sequence(leaf: Any) -> bool:
    """Whether ``leaf`` is a batch of integer sequences (token ids, an attention mask): (N, T) integers."""
    return (isinstance(leaf, torch.Tensor) and leaf.ndim == 2 and not leaf.dtype.is_floating_point
            and not leaf.dtype.is_complex)


def _cloned(example: Any) -> Any:
    """``example`` with its tensors copied, so that tensors made under ``inference_mode`` can be traced."""
    return tree_map(lambda leaf: leaf.clone() if isinstance(leaf, torch.Tensor) else leaf, example)


def _capture(model: nn.Module, args: tuple[Any, ...]) -> fx.GraphModule:
    """``model`` as an ATen graph with a free batch size (and sequence length: :func:`_batch_dims`), taking
    ``args`` positionally.

    Strict (dynamo) capture first: it tells apart the calls of a module used twice (ResNet's ReLU),
    which the quantiser's patterns need. Non-strict capture where dynamo refuses the model (side
    effects in ``forward``). Where neither captures a free sequence length, the length is fixed to the example's.
    """
    shapes = [_batch_dims(args)]
    if any(_is_sequence(leaf) for leaf in tree_leaves(args)):
        shapes.append(_batch_dims(args, sequence=False))
    attempts = [(dims, strict) for dims in shapes for strict in (True, False)]
    first_error: Exception | None = None
    for dims, strict in attempts:
        try:
            with warnings.catch_warnings():  # dynamo's notes on the model's side effects: it copes, or falls back
                warnings.simplefilter("ignore", UserWarning)
                return torch.export.export(model, args, dynamic_shapes=dims, strict=strict).module()
        except Exception as error:
            first_error = first_error or error
    raise CompressionError(
        f"torch.export could not capture {type(model).__name__}: {first_error}{_hint(first_error)}"
    ) from None


def _hint(error: BaseException | None) -> str:
    """What to do about a capture failure that has a known cause."""
    if "Cache" in str(error):
        return (" (the model returns a key-value cache, transformers' use_cache=True: build it with "
                "use_cache=False, or set model.config.use_cache = False)")
    if re.search(r"target meta\.\S+ references nonexistent attribute", str(error)):
        return (" (torch.export cannot capture a submodule named 'meta', the name of its graph nodes' metadata: "
                "rename it)")
    return ""


def quantize(
    model: nn.Module, example: Any, observe: Callable[[fx.GraphModule, Callable[[Any], Any]], None], qat: bool = False
) -> nn.Module:
    """``model`` as an int8 program, its scales set by ``observe(prepared, run)``, where ``run(inputs)`` runs the
    prepared graph on a model input.

    ``example`` is a model input with at least two samples, so that the batch size stays free.
    """
    from torchao.quantization.pt2e import move_exported_model_to_eval
    from torchao.quantization.pt2e.quantize_pt2e import (
        convert_pt2e,
        prepare_pt2e,
        prepare_qat_pt2e,
    )
    from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as x86

    quantizer = x86.X86InductorQuantizer()
    quantizer.set_global(x86.get_default_x86_inductor_quantization_config(is_qat=qat))
    signature = Signature(model)
    with torch.inference_mode(False):
        graph = _capture(model, _cloned(signature.positional(example)))
        prepared = (prepare_qat_pt2e if qat else prepare_pt2e)(graph, quantizer)
        observe(prepared, lambda inputs: prepared(*signature.positional(inputs)))
        if qat:
            move_exported_model_to_eval(prepared)
        with torch.no_grad():
            converted = convert_pt2e(prepared)
    return Int8Program(_keep_only_used(converted), signature)


def _keep_only_used(program: fx.GraphModule) -> fx.GraphModule:
    """Drop the float weights that conversion replaced by int8 ones, and hold the weights as parameters.

    ``convert_pt2e`` adds the int8 weights as constants beside the float ones it no longer reads;
    those would double the saved size, and constants would hide the weights from ``parameters()``.
    Scales and zero points stay buffers.
    """
    read = {node.target for node in program.graph.nodes if node.op == "get_attr"}
    scales = {
        operand.target
        for node in program.graph.nodes
        if node.op == "call_function" and "quantize" in str(node.target)
        for operand in node.args[1:3]
        if isinstance(operand, fx.Node) and operand.op == "get_attr"
    }
    for name, _ in [*program.named_parameters(), *program.named_buffers()]:
        if name not in read:
            owner_name, _, leaf = name.rpartition(".")
            delattr(program.get_submodule(owner_name), leaf)
    program.delete_all_unused_submodules()
    for name in sorted(read - scales):
        owner_name, _, leaf = name.rpartition(".")
        owner = program.get_submodule(owner_name)
        value = getattr(owner, leaf)
        if isinstance(value, torch.Tensor) and not isinstance(value, nn.Parameter):
            delattr(owner, leaf)
            owner.register_parameter(leaf, nn.Parameter(value, requires_grad=False))
    return program


def _shape_key(inputs: Any) -> tuple[Any, ...]:
    """What a lowered program is specialised to: the structure, shapes and dtypes of the input."""
    leaves, spec = tree_flatten(inputs)
    return (str(spec), *((tuple(leaf.shape), leaf.dtype) if isinstance(leaf, torch.Tensor) else leaf for leaf in leaves))


class Int8Program(nn.Module):
    """An int8 PT2E program: its state dict holds the int8 weights; it runs lowered oneDNN kernels.

    The lowering for each input shape is made on the first call with that shape (seconds for a
    ResNet) and kept, outside the state dict.
    """

    def __init__(self, program: fx.GraphModule, signature: Signature) -> None:
        super().__init__()
        self.program = program
        self.signature = signature
        self._lowered: dict[tuple[Any, ...], fx.GraphModule] = {}  # a plain dict: neither saved nor a submodule

    def train(self, mode: bool = True) -> Int8Program:
        """Record the mode only: a converted program always runs as in evaluation (and refuses ``train``)."""
        self.training = mode
        return self

    @override
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        positional = self.signature.bind(args, kwargs)
        key = _shape_key(positional)
        if key not in self._lowered:
            self._lowered[key] = _lower(self.program, positional)
        return self._lowered[key](*positional)


def _lower(program: fx.GraphModule, example: tuple[Any, ...]) -> fx.GraphModule:
    """``program`` for ``example``'s shape, its quantise / op / dequantise patterns fused into oneDNN int8 kernels.

    On a static shape the lowering reaches faster kernels than on a free batch size (ResNet-18:
    7 ms against 10 ms a sample on two cores).
    """
    from torchao.quantization.pt2e.lowering import lower_pt2e_quantized_to_x86

    with torch.inference_mode(False), torch.no_grad():
        lowered: fx.GraphModule = lower_pt2e_quantized_to_x86(program, _cloned(example))
    # oneDNN may hand back channels-last activations, which a traced ``view`` (``x.view(len(x), -1)``) rejects
    for node in lowered.graph.nodes:
        if node.target is torch.ops.aten.view.default:
            node.target = torch.ops.aten.reshape.default
    lowered.recompile()
    return lowered
