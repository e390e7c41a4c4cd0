"""On a CUDA GPU: the plugin's latency against CUDA events, its peak memory, and NVML energy windows.

Prints, for a 4096^3 bf16 matmul and torchvision's ResNet-18 (batch 32, 224x224, fp32 and fp16):
- the median call time by an unsynchronised timer (pytest-benchmark's default), by the plugin's
  synchronised loop, and by CUDA events (the GPU's own clock);
- the plugin's peak_memory_mb beside torch.cuda.max_memory_allocated over the same call;
- NVML energy per sample and power over windows of 0.1 s and of 1 s, five of each, to show why
  windows are at least a second.

    PYTHONPATH=. python benchmarks/gpu_check.py
"""

from __future__ import annotations

import datetime
import statistics
import time
from collections.abc import Callable

import torch

from pytest_netzip.data.workload import Workload
from pytest_netzip.devices import synchronize
from pytest_netzip.metrics.energy import NvmlCounter, measure_energy
from pytest_netzip.metrics.latency import time_calls
from pytest_netzip.metrics.memory import peak_memory_bytes

CUDA = torch.device("cuda")


def unsynchronised_ms(call: Callable[[], object], rounds: int = 50) -> float:
    """What a timer around the call alone reads: the launch, not the work."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
        torch.cuda.synchronize()
    return statistics.median(times) * 1e3


def event_ms(call: Callable[[], object], rounds: int = 50) -> float:
    """CUDA events around the call: the GPU's own clock."""
    times = []
    for _ in range(rounds):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        call()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def plugin_ms(call: Callable[[], object]) -> float:
    """The plugin's loop: warm-up, synchronised timer, inference_mode."""
    (seconds,) = time_calls([call], lambda: synchronize(CUDA), Workload(max_time=1.0), min_rounds=20)
    return statistics.median(seconds) * 1e3


def latency(name: str, call: Callable[[], object]) -> None:
    with torch.inference_mode():
        for _ in range(10):
            call()
        torch.cuda.synchronize()
        print(f"{name}: unsynchronised {unsynchronised_ms(call):.3f} ms, plugin {plugin_ms(call):.3f} ms, "
              f"CUDA events {event_ms(call):.3f} ms")


def main() -> None:
    print(f"{datetime.date.today()}  {torch.cuda.get_device_name()}  torch {torch.__version__}")
    a = torch.randn(4096, 4096, device=CUDA, dtype=torch.bfloat16)
    latency("matmul 4096^3 bf16", lambda: a @ a)

    import torchvision

    batch = torch.randn(32, 3, 224, 224, device=CUDA)
    for dtype in (torch.float32, torch.float16):
        model = torchvision.models.resnet18().to(CUDA, dtype).eval()
        inputs = batch.to(dtype)
        name = f"resnet18 b32 {str(dtype).removeprefix('torch.')}"
        latency(name, lambda model=model, inputs=inputs: model(inputs))
        peak = peak_memory_bytes(model, inputs, CUDA)
        torch.cuda.reset_peak_memory_stats()
        with torch.inference_mode():
            model(inputs)
        print(f"{name}: plugin peak_memory {peak / 1e6:.1f} MB, max_memory_allocated over the call "
              f"{torch.cuda.max_memory_allocated() / 1e6:.1f} MB (includes every tensor resident on the GPU)")
        counter = NvmlCounter(torch.cuda.current_device())
        for window in (0.1, 1.0):
            readings = [measure_energy(lambda model=model, inputs=inputs: model(inputs), torch.cuda.synchronize, counter, 32, window)
                        for _ in range(5)]
            per_sample = [reading.millijoules_per_sample for reading in readings]
            print(f"{name}: NVML {window:g} s windows: mJ/sample {', '.join(f'{v:.2f}' for v in per_sample)} "
                  f"(spread {(max(per_sample) - min(per_sample)) / statistics.median(per_sample):.0%}), "
                  f"power {statistics.median(r.watts for r in readings):.0f} W")


if __name__ == "__main__":
    main()
