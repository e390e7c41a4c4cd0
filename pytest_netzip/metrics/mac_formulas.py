"""MAC formulas for the fused ops that torch.utils.flop_counter does not count.

Attention (every scaled-dot-product kernel, ``nn.MultiheadAttention``'s and
``nn.TransformerEncoderLayer``'s fast paths), the recurrent layers (LSTM, GRU, RNN, their cells)
and the kernels that static quantisation lowers to (oneDNN's int8 ones, MKL's float matmul for the
layers left in float, and the legacy ``quantized::`` ones). Each op is counted as a whole, so the count does not depend on which kernel it reaches on
a machine. The convention is torch's counter's: a MAC is one multiply-accumulate of a matrix
product or a convolution; softmax, activations, norms, the gates' elementwise products and biases
are not counted, and attention is counted dense (a causal mask's skipped half too).

Each formula reads the op's arguments by name and its output, and returns the :class:`Product`
ops it performs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Product:
    """One matrix product of an op: its MACs, the wider bit width of its operands, and its weight, if any."""

    macs: int
    bits: int
    weight: torch.Tensor | None = None


Formula = Callable[[Mapping[str, Any], Any], list[Product]]


def bits(*operands: torch.Tensor) -> int:
    """The widest bit width among ``operands``."""
    return max(operand.element_size() * 8 for operand in operands)


def _positions(tensor: torch.Tensor) -> int:
    """How many vectors of the last dimension ``tensor`` holds (tokens, or time steps x samples)."""
    return tensor.numel() // tensor.shape[-1]


def _attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> list[Product]:
    """``softmax(Q K^T) V`` over every head: ``(..., L, E) x (..., S, E)`` then ``(..., L, S) x (..., S, Ev)``.

    Grouped-query attention broadcasts the keys' heads to the query's, so the query's heads count.
    """
    queries, keys = _positions(query), key.shape[-2]
    return [
        Product(queries * keys * query.shape[-1], bits(query, key)),
        Product(queries * keys * value.shape[-1], bits(query, value)),
    ]


def _sdpa(a: Mapping[str, Any], out: Any) -> list[Product]:
    return _attention(a["query"], a["key"], a["value"])


def _projection(inputs: torch.Tensor, weight: torch.Tensor, rows: slice | None = None) -> Product:
    """``inputs @ weight[rows].T``, a linear layer (all of ``weight``'s rows unless ``rows`` says which)."""
    outputs = len(range(weight.shape[0])[rows]) if rows is not None else weight.shape[0]
    return Product(_positions(inputs) * outputs * weight.shape[1], bits(inputs, weight), weight)


def _multi_head(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, a: Mapping[str, Any]) -> list[Product]:
    """In-projections of query, key and value (one packed weight), the attention, and the out-projection.

    A nested tensor (``nn.TransformerEncoder`` given a padding mask) is counted sample by sample, on
    the tokens it holds: the padding is not computed.
    """
    if query.is_nested:
        return [
            product for sample in zip(query.unbind(), key.unbind(), value.unbind())
            for product in _multi_head(*sample, a)
        ]
    width, packed = a["embed_dim"], a["qkv_weight"]
    return [
        _projection(query, packed, slice(0, width)),
        _projection(key, packed, slice(width, 2 * width)),
        _projection(value, packed, slice(2 * width, 3 * width)),
        *_attention(query, key, value),  # the heads' (L, E/H) x (E/H, S) products add up to (L, E) x (E, S)
        _projection(query, a["proj_weight"]),
    ]


def _native_multi_head_attention(a: Mapping[str, Any], out: Any) -> list[Product]:
    return _multi_head(a["query"], a["key"], a["value"], a)


def _transformer_encoder_layer(a: Mapping[str, Any], out: Any) -> list[Product]:
    """Self-attention, then the feed-forward block's two linear layers."""
    src = a["src"]
    feed_forward = [
        _projection(sample, weight)  # the hidden layer has as many positions as src
        for sample in (src.unbind() if src.is_nested else (src,))
        for weight in (a["ffn_weight_1"], a["ffn_weight_2"])
    ]
    return [*_multi_head(src, src, src, a), *feed_forward]


def _recurrent(a: Mapping[str, Any], out: Any) -> list[Product]:
    """``lstm``, ``gru``, ``rnn_tanh``, ``rnn_relu``: every weight matrix once per time step and sample.

    ``params`` holds, for each layer and direction, the input-to-gates and hidden-to-gates weights
    (gates x hidden rows: 4 for LSTM, 3 for GRU, 1 for RNN), their biases, and LSTM's projection.
    Each layer and direction runs over every position of the sequence (``data`` of a packed one).
    """
    inputs = a["data"] if "data" in a else a["input"]
    positions = len(inputs) if "data" in a else _positions(inputs)
    return [Product(positions * w.numel(), bits(inputs, w), w) for w in a["params"] if w.ndim == 2]


def _cell(a: Mapping[str, Any], out: Any) -> list[Product]:
    """One step of a recurrent cell: input-to-gates and hidden-to-gates."""
    inputs = a["input"]
    return [Product(_positions(inputs) * w.numel(), bits(inputs, w), w) for w in (a["w_ih"], a["w_hh"])]


def _int8_convolution(a: Mapping[str, Any], out: torch.Tensor) -> list[Product]:
    """oneDNN's int8 convolution: one MAC per output value per weight of its group (``qw`` is prepacked)."""
    weight = a["qw"]
    return [Product(out.numel() * math.prod(weight.shape[1:]), bits(a["qx"], weight))]


def _int8_linear(a: Mapping[str, Any], out: torch.Tensor) -> list[Product]:
    """oneDNN's int8 matmul: inputs x output features (``qw`` is prepacked, transposed)."""
    return [Product(a["qx"].numel() * out.shape[-1], bits(a["qx"], a["qw"]))]


def _mkl_linear(a: Mapping[str, Any], out: torch.Tensor) -> list[Product]:
    """MKL's float matmul that freezing lowers a float ``nn.Linear`` to; ``ORI_W`` is the original weight."""
    return [_projection(a["X"], a["ORI_W"])]


def _legacy_int8_linear(a: Mapping[str, Any], out: torch.Tensor) -> list[Product]:
    """``quantized::linear*``: int8 weights; the dynamic kernels quantise the inputs to 8 bits first."""
    return [Product(a["X"].numel() * out.shape[-1], 8)]


def _legacy_int8_convolution(a: Mapping[str, Any], out: torch.Tensor) -> list[Product]:
    """``quantized::conv*d``: int8 weights held in packed parameters, unpacked to read the kernel's size."""
    packed = a["packed_weight"] if "packed_weight" in a else a["weight"]
    weight, _ = packed.unpack()
    return [Product(out.numel() * math.prod(weight.shape[1:]), 8)]


_SDPA = (
    "scaled_dot_product_attention",
    "_scaled_dot_product_attention_math",
    "_scaled_dot_product_attention_math_for_mps",
    "_scaled_dot_product_flash_attention",
    "_scaled_dot_product_flash_attention_for_cpu",
    "_scaled_dot_product_efficient_attention",
    "_scaled_dot_product_cudnn_attention",
    "_scaled_dot_product_fused_attention_overrideable",
)
_RECURRENT = tuple(f"{op}.{variant}" for op in ("lstm", "gru", "rnn_tanh", "rnn_relu") for variant in ("input", "data"))
_ONEDNN_CONVOLUTIONS = tuple(
    f"{op}{variant}" for op in ("qconv_pointwise", "qconv1d_pointwise", "qconv2d_pointwise", "qconv3d_pointwise")
    for variant in ("", ".tensor", ".binary", ".binary_tensor")
)
_ONEDNN_LINEAR = tuple(f"qlinear_pointwise{variant}" for variant in ("", ".tensor", ".binary", ".binary_tensor"))
_LEGACY_LINEAR = ("linear", "linear_relu", "linear_dynamic", "linear_relu_dynamic", "linear_leaky_relu", "linear_tanh")
_LEGACY_CONVOLUTIONS = (
    "conv1d", "conv1d_relu", "conv1d_dynamic", "conv2d_add", "conv2d_add_relu", "conv2d_dynamic", "conv3d_dynamic",
    *(f"{op}{variant}" for op in ("conv2d", "conv2d_relu", "conv3d", "conv3d_relu") for variant in ("", ".new")),
)

#: Formulas by operator name, as ``OpOverload.name()`` spells it (``aten::lstm.input``).
FORMULAS: dict[str, Formula] = {
    **{f"aten::{op}": _sdpa for op in _SDPA},
    "aten::_native_multi_head_attention": _native_multi_head_attention,
    "aten::_transformer_encoder_layer_fwd": _transformer_encoder_layer,
    **{f"aten::{op}": _recurrent for op in _RECURRENT},
    **{f"aten::{op}": _cell for op in ("lstm_cell", "gru_cell", "rnn_tanh_cell", "rnn_relu_cell")},
    **{f"onednn::{op}": _int8_convolution for op in _ONEDNN_CONVOLUTIONS},
    **{f"onednn::{op}": _int8_linear for op in _ONEDNN_LINEAR},
    "mkl::_mkl_linear": _mkl_linear,
    **{f"quantized::{op}": _legacy_int8_linear for op in _LEGACY_LINEAR},
    **{f"quantized::{op}": _legacy_int8_convolution for op in _LEGACY_CONVOLUTIONS},
}


def named_arguments(schema: Any, args: Sequence[Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """An op's arguments by their names in its schema, defaults filled in."""
    named = {}
    for position, argument in enumerate(schema.arguments):
        if position < len(args) and not argument.kwarg_only:
            named[argument.name] = args[position]
        else:
            named[argument.name] = kwargs.get(argument.name, argument.default_value)
    return named


def products(func: Any, args: Sequence[Any], kwargs: Mapping[str, Any], out: Any) -> list[Product] | None:
    """The products ``func`` performed on ``args`` giving ``out``; None where this module has no formula for it."""
    formula = FORMULAS.get(func.name())
    if formula is None:
        return None
    return formula(named_arguments(func._schema, args, kwargs), out)
