"""Does the plugin time models right, and what does a full gated run cost over a hand-written loop?

1. The plugin's p50 (the code behind ``latency_p50_ms``, through the public ``evaluate``) against the
   median of ``torch.utils.benchmark.Timer.blocked_autorange`` on the same model, input and threads:
   example_project's DigitsCNN and torchvision's ResNet-18 (224x224), batch 1, measured alternately;
   the median of the per-round ratios and the ratio of the fastest rounds are printed (a shared
   machine's speed drifts by tens of percent between seconds). Goal: within 10%.
2. Wall time of ``pytest --netzip`` on a generated repo gating DigitsCNN under fp16, int8_dynamic and
   prune_l1 (top-1 drop, size ratio, p95 latency, slowdown) against a script that does the same
   passes by hand: compress, one pass over the data, torch.save, and the same timing loops (each
   model alone, then each variant interleaved with the reference), with the same time per loop.
   Both run as fresh processes, alternately. Goal: <= 1.25x.

    python benchmarks/latency_check.py [--rounds 3] [--max-time 1.0]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "example_project"

CONFTEST = f"""
import sys

import pytest
from torch.utils.data import DataLoader

sys.path.insert(0, {str(EXAMPLE)!r})
from digits_model import load_digits_split, load_model


@pytest.fixture(scope="session")
def netzip_model():
    return load_model()


@pytest.fixture(scope="session")
def netzip_data():
    return DataLoader(load_digits_split()[1], batch_size=64)
"""

GATES = """
import pytest


@pytest.mark.netzip(compressors=["fp16", "int8_dynamic", "prune_l1"])
@pytest.mark.accuracy_drop(max=0.05)
@pytest.mark.size_ratio(min=0.5)
@pytest.mark.latency_budget(p95_ms=1000, max_slowdown=20)
def test_gates():
    pass
"""

HAND_LOOP = f"""
import io, math, statistics, sys, time

import torch
from torch.utils.data import DataLoader

sys.path.insert(0, {str(EXAMPLE)!r})
from digits_model import load_digits_split, load_model
from pytest_netzip import FP16, Int8Dynamic, PruneL1, CompressionContext

MAX_TIME = float(sys.argv[1])


def accuracy(model, data):
    with torch.inference_mode():
        hits = sum((model(x).argmax(1) == y).sum().item() for x, y in data)
    return hits / sum(len(y) for _, y in data)


def size(model):
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return len(buffer.getvalue())


def timings(*models, example):
    def once(model):
        start = time.perf_counter()
        model(example)
        return time.perf_counter() - start

    with torch.inference_mode():
        estimate = 0.0
        for model in models:
            spent, count = 0.0, 0
            while count < 1 or spent < MAX_TIME / 10:
                last = once(model)
                spent, count = spent + last, count + 1
            estimate += last
        rounds = max(5 if len(models) == 1 else 20, math.ceil(MAX_TIME / estimate))
        samples = [[] for _ in models]
        for index in range(rounds):
            for which in (range(len(models)) if index % 2 == 0 else reversed(range(len(models)))):
                samples[which].append(once(models[which]))
    return samples


model, data = load_model(), DataLoader(load_digits_split()[1], batch_size=64)
example = next(iter(data))[0][:1]
reference_accuracy, reference_size = accuracy(model, data), size(model)
(alone,) = timings(model, example=example)
for compressor in (FP16(), Int8Dynamic(), PruneL1()):
    compressed = compressor.apply(model, CompressionContext(device=torch.device("cpu")))
    drop = reference_accuracy - accuracy(compressed, data)
    ratio = reference_size / size(compressed)
    (variant,) = timings(compressed, example=example)
    reference, paired = timings(model, compressed, example=example)
    speedup = statistics.median(r / c for r, c in zip(reference, paired))
    p95 = statistics.quantiles(variant, n=100)[94] * 1e3
    print(f"{{compressor.id}}: drop {{drop:.4f}}, size ratio {{ratio:.2f}}, p95 {{p95:.3f}} ms, speedup {{speedup:.2f}}")
"""


def plugin_vs_timer(name: str, model, example, rounds: int) -> None:  # noqa: ANN001
    """Print the plugin's p50 and blocked_autorange's median for ``model(example)``, alternately ``rounds`` times."""
    import torch
    from torch.utils.benchmark import Timer

    from pytest_netzip import evaluate

    data = [(example, torch.zeros(1, dtype=torch.long))]
    timer = Timer("model(example)", globals={"model": model, "example": example}, num_threads=torch.get_num_threads())
    plugin, autorange = [], []
    for _ in range(rounds):
        plugin.append(evaluate(model, model, data, ["latency_p50_ms"])["reference"]["latency_p50_ms"])
        with torch.inference_mode():  # as the plugin times
            autorange.append(timer.blocked_autorange(min_run_time=1.0).median * 1e3)
        print(f"  {name}: plugin p50 {plugin[-1]:.3f} ms, Timer.blocked_autorange median {autorange[-1]:.3f} ms, "
              f"ratio {plugin[-1] / autorange[-1]:.3f}")
    ratios = [mine / theirs for mine, theirs in zip(plugin, autorange)]
    print(f"{name}: median ratio {statistics.median(ratios):.3f}; fastest {min(plugin):.3f} vs {min(autorange):.3f} ms, "
          f"ratio {min(plugin) / min(autorange):.3f}")


def seconds(command: list[str], cwd: Path) -> float:
    """Wall seconds of ``command`` run in ``cwd``."""
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-time", type=float, default=1.0, help="seconds per timing loop (--benchmark-max-time)")
    options = parser.parse_args()

    import torch
    import torchvision

    sys.path.insert(0, str(EXAMPLE))
    from digits_model import load_model

    print(f"1. latency p50, plugin vs torch.utils.benchmark, {options.rounds} alternating runs, "
          f"{torch.get_num_threads()} threads (goal: ratio within 0.90-1.10)")
    plugin_vs_timer("DigitsCNN", load_model(), torch.rand(1, 1, 8, 8), options.rounds)
    plugin_vs_timer("ResNet-18", torchvision.models.resnet18().eval(), torch.rand(1, 3, 224, 224), options.rounds)

    print(f"2. full run vs hand loop, {options.rounds} alternating runs, {options.max_time} s per timing loop "
          "(goal: ratio <= 1.25)")
    with tempfile.TemporaryDirectory() as directory:
        repo = Path(directory)
        (repo / "conftest.py").write_text(textwrap.dedent(CONFTEST))
        (repo / "test_gates.py").write_text(textwrap.dedent(GATES))
        (repo / "hand_loop.py").write_text(textwrap.dedent(HAND_LOOP))
        (repo / "pytest.ini").write_text("[pytest]\n")
        plugin_run = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--netzip",
                      f"--benchmark-max-time={options.max_time}", "test_gates.py"]
        hand_run = [sys.executable, "hand_loop.py", str(options.max_time)]
        runs: dict[str, list[float]] = {"plugin": [], "hand": []}
        for _ in range(options.rounds):
            runs["plugin"].append(seconds(plugin_run, repo))
            runs["hand"].append(seconds(hand_run, repo))
    plugin, hand = statistics.median(runs["plugin"]), statistics.median(runs["hand"])
    print(f"pytest --netzip {plugin:.2f} s, hand loop {hand:.2f} s (medians), ratio {plugin / hand:.3f}, "
          f"difference {plugin - hand:.2f} s")


if __name__ == "__main__":
    main()
