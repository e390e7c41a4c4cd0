"""MACs, CHATS and effective MACs on hand-counted layers and on torchvision's published figures."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils._python_dispatch import TorchDispatchMode

from pytest_netzip import FP16, CompressionContext, Int8Dynamic, Int8Static, PruneL1
from pytest_netzip.errors import MetricUnavailable
from pytest_netzip.metrics.compute import count_compute
from pytest_netzip.metrics.mac_formulas import FORMULAS, named_arguments
from pytest_netzip.metrics.size import count_params
from tests.helpers import write_test

CONTEXT = CompressionContext(device=torch.device("cpu"))

# The convention of every hand count below, torch's counter's: a MAC is one multiply-accumulate of
# a matrix product or a convolution; softmax, activations, norms, gates and biases are not counted.


class Ops(TorchDispatchMode):
    """The names of the ops a model runs, as the counter first sees them (not decomposed)."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        self.names.add(func.name())
        return func(*args, **(kwargs or {}))


def ops_of(model: nn.Module, *inputs: Any) -> set[str]:
    with torch.inference_mode(), Ops() as ops:
        model(*inputs)
    return ops.names


class Call(nn.Module):
    """A function as a model, for counting one op."""

    def __init__(self, function: Callable[..., Any]) -> None:
        super().__init__()
        self.function = function

    def forward(self, *inputs: Any) -> Any:
        return self.function(*inputs)


def test_linear_and_convolution_by_hand() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Flatten(), nn.Linear(8 * 5 * 5, 10))
    compute = count_compute(model.eval(), torch.rand(1, 3, 5, 5))
    conv = 8 * 5 * 5 * (3 * 3 * 3)  # one MAC per output value per kernel weight
    linear = 8 * 5 * 5 * 10
    assert compute.macs == conv + linear
    assert compute.chats == 32 * (conv + linear)
    assert compute.effective_macs == conv + linear


def test_half_precision_halves_chats_not_macs() -> None:
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 8)).eval()
    reference = count_compute(model, torch.rand(1, 64))
    half = count_compute(FP16().apply(model, CONTEXT), torch.rand(1, 64))
    assert (half.macs, half.chats) == (reference.macs, reference.chats // 2)


def test_int8_matmuls_are_counted_at_eight_bits() -> None:
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 8)).eval()
    compute = count_compute(Int8Dynamic().apply(model, CONTEXT), torch.rand(1, 64))
    assert compute.macs == 64 * 32 + 32 * 8  # torch's own counter sees 0 for aten._int_mm
    assert compute.chats == 8 * compute.macs


def test_effective_macs_skip_pruned_weights() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(100, 100, bias=False), nn.Linear(100, 100, bias=False)).eval()
    compute = count_compute(PruneL1(amount=0.75).apply(model, CONTEXT), torch.rand(1, 100))
    assert compute.macs == 20_000
    assert compute.effective_macs == pytest.approx(5_000)


def test_zeros_in_activations_are_not_pruned_weights() -> None:
    class Gram(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            hidden = torch.relu(x)  # about half zeros, but no weight of the model
            return torch.bmm(hidden, hidden.transpose(1, 2))

    compute = count_compute(Gram(), torch.randn(1, 4, 8))
    assert compute.effective_macs == compute.macs == 4 * 4 * 8


def test_an_op_without_a_formula_makes_the_count_unavailable() -> None:
    weight, scales = torch.randint(-8, 8, (32, 64), dtype=torch.int8), torch.rand(32)
    int8_weight_only = Call(lambda x: torch.ops.aten._weight_int8pack_mm(x, weight, scales))
    with pytest.raises(MetricUnavailable, match=r"no MAC formula for aten::_weight_int8pack_mm$"):
        count_compute(int8_weight_only, torch.rand(1, 64))


def test_legacy_quantized_kernels_are_counted_at_eight_bits() -> None:
    class Quantized(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.quant, self.dequant = torch.ao.quantization.QuantStub(), torch.ao.quantization.DeQuantStub()
            self.conv, self.linear = nn.Conv2d(3, 4, 3, groups=1), nn.Linear(4 * 4 * 4, 5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.dequant(self.linear(self.conv(self.quant(x)).flatten(1)))

    with warnings.catch_warnings():  # torch.ao's deprecation notices: this is the legacy path on purpose
        warnings.simplefilter("ignore")
        dynamic = torch.ao.quantization.quantize_dynamic(nn.Sequential(nn.Linear(64, 32)), {nn.Linear}, torch.qint8)
        model = Quantized().eval()
        model.qconfig = torch.ao.quantization.get_default_qconfig("x86")
        prepared = torch.ao.quantization.prepare(model)
        prepared(torch.rand(2, 3, 6, 6))
        static = torch.ao.quantization.convert(prepared)
        dynamic_compute, static_compute = count_compute(dynamic, torch.rand(1, 64)), count_compute(static, torch.rand(1, 3, 6, 6))
    assert (dynamic_compute.macs, dynamic_compute.chats) == (64 * 32, 8 * 64 * 32)  # quantized::linear_dynamic
    conv = 4 * 4 * 4 * (3 * 3 * 3)  # quantized::conv2d.new: 4 x 4 x 4 outputs, 3 x 3 x 3 weights each
    linear = 64 * 5  # quantized::linear
    assert (static_compute.macs, static_compute.chats) == (conv + linear, 8 * (conv + linear))


def test_resnet18_matches_torchvisions_published_figures() -> None:
    torchvision = pytest.importorskip("torchvision")
    model = torchvision.models.resnet18().eval()
    compute = count_compute(model, torch.rand(1, 3, 224, 224))
    assert round(compute.macs / 1e9, 2) == 1.81  # torchvision's ResNet18_Weights: 1.81 GFLOPS (MACs)
    assert count_params(model) == 11_689_512  # torchvision's num_params
    assert compute.chats == pytest.approx(57.9e9, rel=0.005)  # the NetZIP paper's CHATS for fp32 ResNet-18


# Attention: (..., L, E) queries against (..., S, E) keys, then (..., L, S) weights against (..., S, Ev)
# values: L x S x (E + Ev) MACs per head and sample, however the kernel computes it.
QUERY, KEY, VALUE = torch.rand(2, 3, 5, 8), torch.rand(2, 3, 7, 8), torch.rand(2, 3, 7, 8)
ATTENTION = 2 * 3 * 5 * 7 * (8 + 8)


def sdpa(*inputs: torch.Tensor) -> torch.Tensor:
    return nn.functional.scaled_dot_product_attention(*inputs)


def sdpa_math(*inputs: torch.Tensor) -> torch.Tensor:
    with sdpa_kernel(SDPBackend.MATH):
        return nn.functional.scaled_dot_product_attention(*inputs)


def flash_for_cpu(*inputs: torch.Tensor) -> torch.Tensor:
    return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(*inputs)[0]


def math_kernel(*inputs: torch.Tensor) -> torch.Tensor:
    return torch.ops.aten._scaled_dot_product_attention_math(*inputs)[0]


@pytest.mark.parametrize("attention", [sdpa, sdpa_math, flash_for_cpu, math_kernel])
def test_scaled_dot_product_attention_by_hand(attention: Callable[..., torch.Tensor]) -> None:
    compute = count_compute(Call(attention), (QUERY, KEY, VALUE))
    assert (compute.macs, compute.chats, compute.effective_macs) == (ATTENTION, 32 * ATTENTION, ATTENTION)


def test_grouped_query_attention_counts_the_query_heads() -> None:
    keys, values = torch.rand(2, 1, 7, 8), torch.rand(2, 1, 7, 4)  # one key head shared by three query heads
    grouped = Call(lambda q, k, v: nn.functional.scaled_dot_product_attention(q, k, v, enable_gqa=True))
    assert count_compute(grouped, (QUERY, keys, values)).macs == 2 * 3 * 5 * 7 * (8 + 4)


@pytest.mark.parametrize("kernel", ["_scaled_dot_product_flash_attention", "_scaled_dot_product_efficient_attention",
                                    "_scaled_dot_product_cudnn_attention"])
def test_the_gpu_attention_kernels_count_as_torchs_formulas_do(kernel: str) -> None:
    from torch.utils.flop_counter import flop_registry

    op = getattr(torch.ops.aten, kernel)
    query, key, value = (tensor.to("meta") for tensor in (QUERY, KEY, VALUE))
    extra = () if "flash" in kernel else (None, False)  # attn_bias, compute_log_sumexp
    named = named_arguments(op.default._schema, (query, key, value, *extra), {})
    ours = sum(product.macs for product in FORMULAS[f"aten::{kernel}"](named, None))
    assert ours == flop_registry[op](query, key, value, *extra, out_val=(query,)) // 2 == ATTENTION


def test_multi_head_attention_fast_path_by_hand() -> None:
    attention = nn.MultiheadAttention(16, 4, batch_first=True).eval()
    tokens = torch.rand(2, 5, 16)
    assert "aten::_native_multi_head_attention" in ops_of(attention, tokens, tokens, tokens)
    compute = count_compute(attention, (tokens, tokens, tokens))
    projections = 4 * 5 * 16 * 16  # query, key and value in, and out: 5 tokens x 16 x 16 each
    heads = 2 * 5 * 5 * 16  # Q K^T and A V: 5 x 5 x 4 per head, 4 heads
    assert compute.macs == 2 * (projections + heads)


def test_transformer_encoder_fast_path_by_hand() -> None:
    def per_sample(tokens: int) -> int:  # projections, attention, and a 16 -> 32 -> 16 feed-forward
        return 4 * tokens * 16 * 16 + 2 * tokens * tokens * 16 + 2 * tokens * 16 * 32

    layer = nn.TransformerEncoderLayer(16, 4, dim_feedforward=32, batch_first=True).eval()
    tokens = torch.rand(2, 5, 16)
    assert "aten::_transformer_encoder_layer_fwd" in ops_of(layer, tokens)
    assert count_compute(layer, tokens).macs == 2 * per_sample(5)

    class Padded(nn.Module):  # a padding mask turns the tokens into a nested tensor: padding is not computed
        def __init__(self) -> None:
            super().__init__()
            self.encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 4, 32, batch_first=True), 2)

        def forward(self, x: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
            return self.encoder(x, src_key_padding_mask=padding)

    padding = torch.tensor([[False] * 5, [False] * 3 + [True] * 2])  # five tokens, then three
    with warnings.catch_warnings():  # torch's notice that nested tensors are a prototype
        warnings.simplefilter("ignore")
        compute = count_compute(Padded().eval(), (tokens, padding))
    assert compute.macs == 2 * (per_sample(5) + per_sample(3))


# Recurrent layers: every weight matrix once per time step and sample, in every layer and
# direction: gates x hidden x (inputs + hidden) (LSTM 4 gates, GRU 3, RNN 1), and LSTM's projection
# hidden x proj_size. Sequences of 4 steps, 2 samples: 8 positions.
POSITIONS = 4 * 2


@pytest.mark.parametrize(("layer", "by_hand"), [
    (nn.LSTM(6, 5), 4 * 5 * (6 + 5) * POSITIONS),
    (nn.LSTM(6, 5, batch_first=True), 4 * 5 * (6 + 5) * POSITIONS),
    (nn.LSTM(6, 5, num_layers=2, bidirectional=True, proj_size=3),  # the second layer reads 2 x 3 inputs
     2 * 2 * (4 * 5 * (6 + 3) + 5 * 3) * POSITIONS),
    (nn.GRU(6, 5, num_layers=2, bidirectional=True), 2 * (3 * 5 * (6 + 5) + 3 * 5 * (10 + 5)) * POSITIONS),
    (nn.RNN(6, 5, nonlinearity="relu", bias=False), 5 * (6 + 5) * POSITIONS),
    (nn.RNN(6, 5, num_layers=3), 5 * ((6 + 5) + 2 * (5 + 5)) * POSITIONS),
], ids=["lstm", "lstm-batch-first", "lstm-2-layers-bidirectional-proj", "gru-2-layers-bidirectional", "rnn-relu",
        "rnn-3-layers"])
def test_recurrent_layers_by_hand(layer: nn.Module, by_hand: int) -> None:
    with warnings.catch_warnings():  # torch's notice that oneDNN has no LSTM with projections
        warnings.simplefilter("ignore")
        compute = count_compute(layer.eval(), torch.rand(4, 2, 6))
    assert (compute.macs, compute.chats) == (by_hand, 32 * by_hand)


def test_packed_sequences_and_cells_by_hand() -> None:
    lstm = nn.LSTM(6, 5).eval()
    packed = nn.utils.rnn.pack_padded_sequence(torch.rand(4, 2, 6), [4, 2])  # 4 + 2 steps are run
    assert count_compute(lstm, (packed,)).macs == 4 * 5 * (6 + 5) * 6  # in a tuple: a PackedSequence is one too
    assert count_compute(nn.LSTMCell(6, 5), torch.rand(2, 6)).macs == 4 * 5 * (6 + 5) * 2
    assert count_compute(nn.GRUCell(6, 5), torch.rand(2, 6)).macs == 3 * 5 * (6 + 5) * 2


def test_an_lstm_classifier_counts_its_lstm() -> None:
    class Classifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm, self.head = nn.LSTM(6, 5, batch_first=True), nn.Linear(5, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.lstm(x)[0][:, -1])

    assert count_compute(Classifier().eval(), torch.rand(1, 4, 6)).macs == 4 * 5 * (6 + 5) * 4 + 5 * 2


def test_vit_b_16_matches_torchvisions_published_figure() -> None:
    torchvision = pytest.importorskip("torchvision")
    model = torchvision.models.vit_b_16().eval()
    assert "aten::_native_multi_head_attention" in ops_of(model, torch.rand(1, 3, 224, 224))
    macs = count_compute(model, torch.rand(1, 3, 224, 224)).macs
    assert macs == pytest.approx(17.564e9, rel=0.01)  # ViT_B_16_Weights: 17.564 GFLOPS (MACs); measured 17.5638 G


def transformer_by_hand(layers: int, width: int, tokens: int) -> int:
    """An encoder's MACs: Q, K, V and out projections, Q K^T and A V, a 4 x width feed-forward."""
    return layers * (4 * width * width * tokens + 2 * tokens * tokens * width + 2 * width * 4 * width * tokens)


def test_bert_base_by_hand() -> None:
    transformers = pytest.importorskip("transformers")
    model = transformers.BertModel(transformers.BertConfig()).eval()
    tokens = {"input_ids": torch.randint(0, 30522, (1, 128)), "attention_mask": torch.ones(1, 128, dtype=torch.long)}
    pooler = 768 * 768
    assert count_compute(model, tokens).macs == transformer_by_hand(12, 768, 128) + pooler  # measured 11.17 G


def test_timm_vit_tiny_by_hand() -> None:
    timm = pytest.importorskip("timm")
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False).eval()
    patches = 16 * 16 * 3 * 192 * 14 * 14  # a 16 x 16 convolution to 192 channels on 14 x 14 patches
    head = 192 * 1000
    by_hand = patches + transformer_by_hand(12, 192, 14 * 14 + 1) + head  # the class token joins the patches
    assert count_compute(model, torch.rand(1, 3, 224, 224)).macs == by_hand  # measured 1.25 G


def test_static_int8_counts_the_float_macs_at_eight_bits() -> None:
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2, groups=2), nn.Flatten(),
        nn.Linear(8 * 3 * 3, 16), nn.ReLU(), nn.Linear(16, 4),
    ).eval()
    calibration = [(torch.rand(4, 3, 8, 8), torch.zeros(4)) for _ in range(2)]
    context = CompressionContext(device=torch.device("cpu"), example_input=torch.rand(1, 3, 8, 8),
                                 calibration_data=calibration)
    compute = count_compute(Int8Static().apply(model, context), torch.rand(1, 3, 8, 8))
    by_hand = 8 * 8 * 8 * (3 * 3 * 3) + 8 * 3 * 3 * (4 * 3 * 3) + 72 * 16 + 16 * 4  # two groups of 4 channels
    assert count_compute(model, torch.rand(1, 3, 8, 8)).macs == compute.macs == by_hand
    assert compute.chats == 8 * compute.macs


def test_static_int8_counts_the_layers_it_leaves_in_float() -> None:
    class Recurrent(nn.Module):  # the LSTM stays float: lowering runs its projections through MKL's matmul
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(3, 5, batch_first=True)
            self.head = nn.Linear(5, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.lstm(x)[0][:, -1])

    model = Recurrent().eval()
    context = CompressionContext(device=torch.device("cpu"), example_input=torch.rand(1, 4, 3),
                                 calibration_data=[(torch.rand(4, 4, 3), torch.zeros(4))])
    compute = count_compute(Int8Static().apply(model, context), torch.rand(1, 4, 3))
    lstm, head = 4 * 4 * 5 * (3 + 5), 5 * 2  # 4 gates x (input + hidden) x hidden per step, 4 steps
    assert count_compute(model, torch.rand(1, 4, 3)).macs == compute.macs == lstm + head


@pytest.mark.models
def test_static_int8_resnet18_matches_the_netzip_papers_chats() -> None:
    torchvision = pytest.importorskip("torchvision")
    calibration = [(torch.rand(2, 3, 224, 224), torch.zeros(2))]
    context = CompressionContext(device=torch.device("cpu"), example_input=torch.rand(1, 3, 224, 224),
                                 calibration_data=calibration)
    compute = count_compute(Int8Static().apply(torchvision.models.resnet18().eval(), context), torch.rand(1, 3, 224, 224))
    assert round(compute.macs / 1e9, 2) == 1.81  # as fp32: measured 1.814 G
    assert compute.chats == pytest.approx(14.48e9, rel=0.01)  # the NetZIP paper: 8 bits x 1.81 G; measured 14.51e9


def test_compute_budget_gates_absolute_and_relative(project: pytest.Pytester) -> None:
    write_test(project, """
        @pytest.mark.netzip(compressors=["fp16", "int8_dynamic", "prune_l1"])
        @pytest.mark.compute_budget(max_ratio=0.5, metric="chats")
        @pytest.mark.compute_budget(max_macs=6200)
        def test_deployable(netzip_result):
            assert netzip_result.metrics["macs"] == 2 * 6 * 512
        """)
    result = project.runpytest("--netzip")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([
        "*netzip budgets of prune_l1 on cpu: 1 of 2 failed",
        "*compute_budget(max_ratio=0.5)*chats / reference <= 0.5*196.61 k*196.61 k*FAIL (ratio 1)",
        "*compute_budget(max_macs=6200)*macs <= 6200*6.14 k*6.14 k*pass",
        "variant * macs * chats",
        "int8_dynamic * 6.14 k * 49.15 k (0.25x)",
    ])


def test_the_example_input_can_be_given(project: pytest.Pytester) -> None:
    write_test(project, """
        import torch

        @pytest.fixture
        def netzip_example_input():
            return torch.rand(4, 6)  # a batch of four: MACs are counted on its first sample

        @pytest.mark.netzip(compressors=["fp16"])
        def test_deployable(netzip_result):
            assert netzip_result.metrics["macs"] == 2 * 6 * 512
        """)
    project.runpytest("--netzip").assert_outcomes(passed=1)


EXAMPLE_MODULE = """
import pytest, torch

@pytest.fixture
def netzip_example_input():
    return torch.ones({batch}, 6)

@pytest.mark.netzip(compressors=["fp16"])
@pytest.mark.compute_budget(max_ratio=1.0)
def test_it():
    pass
"""


def test_tests_sharing_data_must_share_the_example_input(project: pytest.Pytester) -> None:
    project.makepyfile(test_one=EXAMPLE_MODULE.format(batch=1), test_two=EXAMPLE_MODULE.format(batch=8))
    result = project.runpytest("--netzip")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*netzip: netzip_example_input differs between tests that share one netzip_data*"])
    result.stdout.fnmatch_lines(["variant * macs", "reference * 6.14 k", "fp16 * 6.14 k"], consecutive=True)  # 2 x 6 x 512
