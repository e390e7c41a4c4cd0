"""On a CUDA GPU: the plugin's latency against CUDA events, its peak memory, NVML energy windows, the
CUDA-only compressors and the attention MAC formulas on CUDA's kernels.

Prints, for a 4096^3 bf16 matmul and torchvision's ResNet-18 (batch 32, 224x224, fp32 and fp16):
- the median call time by an unsynchronised timer (pytest-benchmark's default), by the plugin's
  synchronised loop, and by CUDA events (the GPU's own clock);
- the plugin's peak_memory_mb beside torch.cuda.max_memory_allocated over the same call;
- NVML energy per sample and power over windows of 0.1 s and of 1 s, five of each, to show why
  windows are at least a second.
Then, on a stack of 4096-wide Linear layers: each torchao compressor (int4_weight_only, float8 and
sparse_2_4 among them, which run on CUDA only) with its size ratio, MACs, CHATS, top-1 agreement
with the float model and latency; and the MACs of BERT-base and ViT-B/16 counted on CUDA (flash or
memory-efficient attention) beside the CPU's count.

    PYTHONPATH=. python benchmarks/gpu_check.py
"""

from __future__ import annotations

import argparse
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
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("gpu_check.py needs a CUDA GPU (torch.cuda.is_available() is False)")
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


def compressors() -> None:
    """Each torchao compressor on a Linear stack on the GPU: what it saves, what it costs, how far it strays."""
    from torch import nn

    from pytest_netzip.compressors import CompressionContext, CompressorRegistry, CompressorUnsupported
    from pytest_netzip.metrics.compute import count_compute
    from pytest_netzip.metrics.size import serialized_state_dict

    torch.manual_seed(0)
    model = nn.Sequential(*[nn.Sequential(nn.Linear(4096, 4096), nn.ReLU()) for _ in range(4)], nn.Linear(4096, 16))
    model = model.to(CUDA).eval()
    inputs = torch.randn(64, 4096, device=CUDA)
    with torch.inference_mode():
        reference = model(inputs).float()
    size = len(serialized_state_dict(model))
    registry = CompressorRegistry()
    for name in ("fp16", "bf16", "int8_dynamic", "int8_weight_only", "float8_weight_only", "int4_weight_only",
                 "float8", "sparse_2_4"):
        context = CompressionContext(device=CUDA, example_input=inputs[:1])
        try:
            compressed = registry[name].apply(model, context).to(CUDA)
        except CompressorUnsupported as unsupported:
            print(f"{name}: unsupported: {unsupported}")
            continue
        with torch.inference_mode():
            outputs = compressed(inputs).float()
        agreement = (outputs.argmax(1) == reference.argmax(1)).float().mean().item()
        try:
            compute = count_compute(compressed, inputs[:1])
            counted = f"MACs {compute.macs / 1e6:.1f} M, CHATS {compute.chats / 1e9:.2f} G"
        except Exception as exc:  # an unavailable count says why
            counted = f"MACs unavailable: {exc}"
        ratio = size / len(serialized_state_dict(compressed))
        print(f"{name}: size {ratio:.2f}x smaller, {counted}, agreement {agreement:.3f}, "
              f"{plugin_ms(lambda compressed=compressed: compressed(inputs)):.3f} ms a batch of 64")


def attention_macs() -> None:
    """MACs of BERT-base (128 tokens) and ViT-B/16 on CUDA's attention kernels, beside the CPU's count."""
    import torchvision
    from transformers import BertConfig, BertModel

    from pytest_netzip.data.inputs import call
    from pytest_netzip.metrics.compute import count_compute

    bert = BertModel(BertConfig()).eval()
    ids = torch.randint(0, 30522, (1, 128))
    vit = torchvision.models.vit_b_16().eval()
    image = torch.rand(1, 3, 224, 224)
    for name, model, inputs in (("BERT-base", bert, {"input_ids": ids}), ("ViT-B/16", vit, image)):
        cpu = count_compute(model, inputs).macs
        for dtype in (torch.float32, torch.float16):
            on_gpu = model.to(CUDA, dtype)
            gpu_inputs = {"input_ids": ids.to(CUDA)} if name == "BERT-base" else image.to(CUDA, dtype)
            with torch.inference_mode():
                call(on_gpu, gpu_inputs)
            gpu = count_compute(on_gpu, gpu_inputs).macs
            print(f"{name} {str(dtype).removeprefix('torch.')}: CUDA {gpu / 1e9:.3f} G MACs, CPU {cpu / 1e9:.3f} G "
                  f"({'equal' if gpu == cpu else 'DIFFERENT'})")
        model.cpu().float()


if __name__ == "__main__":
    main()
    compressors()
    attention_macs()
