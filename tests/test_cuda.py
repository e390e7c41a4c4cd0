"""CUDA: latency against CUDA events, peak memory against the allocator, NVML energy. Skipped without a GPU."""

from __future__ import annotations

import json
import statistics

import pytest
import torch
from torch import nn

from benchmarks.gpu_check import event_ms
from pytest_netzip.data.workload import Workload
from pytest_netzip.metrics.latency import time_calls
from pytest_netzip.metrics.memory import peak_memory_bytes
from tests.helpers import write_test

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

CUDA = torch.device("cuda")


def test_synchronised_latency_agrees_with_cuda_events() -> None:
    a = torch.randn(4096, 4096, device=CUDA, dtype=torch.bfloat16)

    def matmul() -> None:
        a @ a

    (seconds,) = time_calls([matmul], lambda: torch.cuda.synchronize(CUDA), Workload(max_time=0.5), min_rounds=20)
    assert statistics.median(seconds) * 1e3 == pytest.approx(event_ms(matmul), rel=0.25)


def test_peak_memory_on_cuda_counts_weights_inputs_and_activations() -> None:
    model = nn.Sequential(nn.Linear(1024, 4096), nn.ReLU(), nn.Linear(4096, 10)).to(CUDA).eval()
    inputs = torch.randn(64, 1024, device=CUDA)
    weights = sum(parameter.numel() * 4 for parameter in model.parameters())
    peak = peak_memory_bytes(model, inputs, CUDA)
    assert peak >= weights + inputs.numel() * 4 + 2 * 64 * 4096 * 4  # two hidden activations at once


def test_cuda_gates_run_end_to_end(project: pytest.Pytester) -> None:
    write_test(project, """
        @pytest.mark.netzip(compressors=["fp16"], devices=["cuda"])
        @pytest.mark.accuracy_drop(max=0.01)
        @pytest.mark.latency_budget(p95_ms=1000, max_slowdown=10)
        @pytest.mark.memory_budget(max_mb=100)
        def test_on_gpu():
            pass
    """)
    result = project.runpytest("--netzip", "--netzip-json=out.json", "--benchmark-max-time=0.2")
    result.assert_outcomes(passed=1)
    metrics = json.loads((project.path / "out.json").read_text())["results"][0]["metrics"]
    assert metrics["latency_p95_ms"] > 0 and metrics["peak_memory_mb"] > 0
