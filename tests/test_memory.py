"""Peak memory of inference: hand-counted bytes, the operating system's view, and memory_budget."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from pytest_netzip.metrics.memory import held_tensors, peak_memory_bytes
from tests.helpers import write_test

CPU = torch.device("cpu")


def _mlp(inplace: bool) -> nn.Module:
    return nn.Sequential(nn.Linear(100, 1000), nn.ReLU(inplace=inplace), nn.Linear(1000, 10)).eval()


def test_peak_is_weights_inputs_and_the_most_activations_alive_at_once() -> None:
    weights = (100 * 1000 + 1000 + 1000 * 10 + 10) * 4
    inputs = 5 * 100 * 4
    hidden = 5 * 1000 * 4
    # relu's output and the first layer's are alive together; the last layer's output is small
    assert peak_memory_bytes(_mlp(inplace=False), torch.randn(5, 100), CPU) == weights + inputs + 2 * hidden
    # an in-place relu writes into the first layer's output: one hidden activation, then the output
    assert peak_memory_bytes(_mlp(inplace=True), torch.randn(5, 100), CPU) == weights + inputs + hidden + 5 * 10 * 4


def test_views_of_weights_and_inputs_are_not_counted_again() -> None:
    class Reshaping(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.ones(10, 10))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.view(-1, 10) @ self.weight.t()

    peak = peak_memory_bytes(Reshaping().eval(), torch.ones(4, 10), CPU)
    assert peak == 100 * 4 + 40 * 4 + 40 * 4  # weight, input, product


#: Measured in a fresh interpreter: memory freed by earlier tests, kept resident by the allocator, would hide growth.
_RESIDENT_GROWTH = """
import json, re
from pathlib import Path
import torch
from torch import nn
from pytest_netzip.metrics.memory import peak_memory_bytes


def kilobytes(field):
    return int(re.search(field + r":\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1))


class Wide(nn.Module):  # a 200 MB intermediate, large enough to dwarf allocator noise
    def forward(self, x):
        return (x.repeat(50_000, 1) * 2).sum(dim=0, keepdim=True)


model, example = Wide().eval(), torch.ones(1, 1000)
model(example)  # first call outside the measurement, as peak_memory_bytes does
Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current resident size
before = kilobytes("VmRSS")
with torch.inference_mode():
    model(example)
grown = (kilobytes("VmHWM") - before) * 1024
print(json.dumps({"grown": grown, "counted": peak_memory_bytes(model, example, torch.device("cpu")) - 1000 * 4}))
"""


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's resettable peak RSS")
def test_the_activation_peak_matches_the_growth_of_peak_resident_memory() -> None:
    done = subprocess.run([sys.executable, "-c", _RESIDENT_GROWTH], capture_output=True, text=True, check=True)
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    assert measured["counted"] == 2 * 50_000 * 1000 * 4  # the repeat and its double are alive together
    assert measured["grown"] == pytest.approx(measured["counted"], rel=0.1)


def test_an_int8_programs_packed_weights_are_counted() -> None:
    from pytest_netzip.compressors import CompressionContext, Int8Static

    model = nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), nn.Conv2d(16, 16, 3), nn.Flatten(), nn.Linear(16 * 4 * 4, 4))
    context = CompressionContext(device=torch.device("cpu"), example_input=torch.rand(1, 3, 8, 8),
                                 calibration_data=[(torch.rand(4, 3, 8, 8), torch.zeros(4))])
    program = Int8Static().apply(model.eval(), context)
    peak = peak_memory_bytes(program, torch.rand(1, 3, 8, 8), torch.device("cpu"))
    packed = [tensor for tensor in held_tensors(program) if tensor.is_mkldnn]
    assert packed  # lowering packs the convolution weights for oneDNN, outside parameters() and buffers()
    weights = sum(parameter.numel() * parameter.element_size() for parameter in program.parameters())
    assert peak >= weights + sum(tensor.numel() * tensor.element_size() for tensor in packed)


def test_memory_budget_takes_its_own_batch_size(project: pytest.Pytester) -> None:
    write_test(project, """
        @pytest.mark.netzip(compressors=["prune_l1"])
        @pytest.mark.memory_budget(max_mb=1, batch_size=4)
        def test_batched():
            pass
    """)
    project.runpytest("--netzip", "--netzip-json=out.json").assert_outcomes(passed=1)
    record = json.loads((project.path / "out.json").read_text())["results"][0]
    assert record["batch_size"] == 4
    assert record["metrics"]["peak_memory_mb"] == (2 * 6 * 512 + 4 * 6 + 2 * 4 * 512) * 4 / 1e6


def test_memory_budget_gates_the_peak_and_records_it(project: pytest.Pytester) -> None:
    write_test(project, """
        @pytest.mark.netzip(compressors=["prune_l1"])
        @pytest.mark.memory_budget(max_mb=0.05)
        def test_roomy():
            pass

        @pytest.mark.netzip(compressors=["prune_l1"])
        @pytest.mark.memory_budget(max_mb=0.02)
        def test_tight():
            pass
    """)
    result = project.runpytest("--netzip", "--netzip-json=out.json")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*memory_budget(max_mb=0.02)*peak_memory_mb <= 0.02*0.0287 MB*0.0287 MB*FAIL"])
    record = json.loads((project.path / "out.json").read_text())["results"][0]
    # Signed at batch 1: 2 * 6 * 512 float weights, a 6-float input, and at the peak two 512-float
    # activations (the first layer's output and its relu); the 6 outputs come after the first is freed
    assert record["metrics"]["peak_memory_mb"] == (2 * 6 * 512 + 6 + 2 * 512) * 4 / 1e6
