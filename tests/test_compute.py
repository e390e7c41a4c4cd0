"""MACs, CHATS and effective MACs on hand-counted layers and on torchvision's published figures."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from pytest_netzip import FP16, CompressionContext, Int8Dynamic, PruneL1
from pytest_netzip.errors import MetricUnavailable
from pytest_netzip.metrics.compute import count_compute
from pytest_netzip.metrics.size import count_params
from tests.helpers import write_test

CONTEXT = CompressionContext(device=torch.device("cpu"))


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
    with warnings.catch_warnings():  # torch.ao's deprecation notices: this is the legacy path on purpose
        warnings.simplefilter("ignore")
        legacy = torch.ao.quantization.quantize_dynamic(nn.Sequential(nn.Linear(64, 64)), {nn.Linear}, torch.qint8)
        with pytest.raises(MetricUnavailable, match="no MAC formula for quantized::linear_dynamic"):
            count_compute(legacy, torch.rand(1, 64))


def test_resnet18_matches_torchvisions_published_figures() -> None:
    torchvision = pytest.importorskip("torchvision")
    model = torchvision.models.resnet18().eval()
    compute = count_compute(model, torch.rand(1, 3, 224, 224))
    assert round(compute.macs / 1e9, 2) == 1.81  # torchvision's ResNet18_Weights: 1.81 GFLOPS (MACs)
    assert count_params(model) == 11_689_512  # torchvision's num_params
    assert compute.chats == pytest.approx(57.9e9, rel=0.005)  # the NetZIP paper's CHATS for fp32 ResNet-18


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
