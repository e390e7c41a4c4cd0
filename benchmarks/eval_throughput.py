"""Evaluation throughput: the plugin's top-1 pass over a DataLoader against a hand-written ``torch.no_grad()`` loop.

A torchvision classifier (``--model``: mobilenet_v3_small by default, whose small convolutions leave the
per-batch work of the evaluation the most room to show; resnet18 for a heavier one; ``weights=None``, eval
mode, CPU) on ``--images`` generated 3 x ``--size`` x ``--size`` images (default 2048 of 3x32x32, which keeps
a run under two minutes on two busy cores) in batches of 64. The plugin side is the public
``pytest_netzip.evaluate(model, model, loader, ["top1"])``, which evaluates the reference and the
"compressed" model (here the same one) in one pass each; the hand side is the loop a user would write, run
over both models likewise. The two alternate ``--rounds`` times in one process (hand, plugin, plugin, hand,
...), so a shared machine's drift falls on both; the images/s of each round, their medians and the ratio
plugin / hand are printed. Goal: ratio >= 0.8. No timing is asserted. ``--threads 1`` gives steadier figures
on a busy machine, where torch's threads wait for each other.

    python benchmarks/eval_throughput.py [--rounds 5] [--images 2048] [--size 32] [--threads N]
                                         [--model mobilenet_v3_small]
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import time
from collections.abc import Callable

import torch
import torchvision
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from pytest_netzip.results import evaluate


def make_loader(images: int, size: int) -> DataLoader[tuple[torch.Tensor, ...]]:
    """``images`` random 3 x ``size`` x ``size`` images in [0, 1] with random ImageNet labels, fixed by a seed, in
    batches of 64."""
    generator = torch.Generator().manual_seed(0)
    inputs = torch.rand(images, 3, size, size, generator=generator)
    targets = torch.randint(0, 1000, (images,), generator=generator)
    return DataLoader(TensorDataset(inputs, targets), batch_size=64)


def hand_top1(model: nn.Module, loader: DataLoader[tuple[torch.Tensor, ...]]) -> float:
    """Top-1 of ``model`` over ``loader``, as a user writes it."""
    correct = total = 0
    with torch.no_grad():
        for inputs, targets in loader:
            correct += int((model(inputs).argmax(dim=1) == targets).sum())
            total += len(targets)
    return correct / total


def hand(model: nn.Module, loader: DataLoader[tuple[torch.Tensor, ...]]) -> tuple[float, float]:
    """The hand loop's top-1 of the reference and of the compressed model (the same model)."""
    return hand_top1(model, loader), hand_top1(model, loader)


def plugin(model: nn.Module, loader: DataLoader[tuple[torch.Tensor, ...]]) -> tuple[float, float]:
    """The plugin's top-1 of the reference and of the compressed model (the same model)."""
    measured = evaluate(model, model, loader, metrics=["top1"])
    reference, compressed = measured["reference"]["top1"], measured["compressed"]["top1"]
    if not isinstance(reference, float) or not isinstance(compressed, float):
        raise SystemExit(f"the plugin measured no top-1: {measured}")
    return reference, compressed


def images_per_second(run: Callable[[], tuple[float, float]], images: int) -> tuple[float, tuple[float, float]]:
    """Images evaluated per second by ``run`` (two models, ``images`` each), and the top-1s it found."""
    start = time.perf_counter()
    top1 = run()
    return 2 * images / (time.perf_counter() - start), top1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--model", choices=["mobilenet_v3_small", "resnet18"], default="mobilenet_v3_small")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's own)")
    options = parser.parse_args()
    if options.threads is not None:
        torch.set_num_threads(options.threads)
    model = torchvision.models.get_model(options.model, weights=None).eval()
    loader = make_loader(options.images, options.size)
    runs = {"hand": lambda: hand(model, loader), "plugin": lambda: plugin(model, loader)}
    warm_up = make_loader(256, options.size)
    hand(model, warm_up), plugin(model, warm_up)  # torch's kernels, its allocator and the plugin's imports
    rates: dict[str, list[float]] = {name: [] for name in runs}
    top1s: dict[str, tuple[float, float]] = {}
    for round_ in range(options.rounds):
        for name in runs if round_ % 2 == 0 else reversed(runs):
            rate, top1s[name] = images_per_second(runs[name], options.images)
            rates[name].append(rate)
    if top1s["hand"] != top1s["plugin"]:
        raise SystemExit(f"the two disagree on top-1: hand {top1s['hand']}, plugin {top1s['plugin']}")
    ratios = [plugin_rate / hand_rate for plugin_rate, hand_rate in zip(rates["plugin"], rates["hand"])]
    hand_median, plugin_median = statistics.median(rates["hand"]), statistics.median(rates["plugin"])
    threads = torch.get_num_threads()
    print(
        f"top-1 evaluation of {options.model} (weights=None) on {options.images} images of "
        f"3x{options.size}x{options.size}, batch 64, CPU, {threads} thread{'s' if threads > 1 else ''}; "
        f"{datetime.date.today()}, torch {torch.__version__}; {options.rounds} alternating rounds, each "
        "evaluating two models"
    )
    for name in runs:
        print(f"  {name}: " + ", ".join(f"{rate:.0f}" for rate in rates[name]) + " images/s")
    print(f"hand-written no_grad loop: median {hand_median:.0f} images/s")
    print(f"pytest_netzip.evaluate:    median {plugin_median:.0f} images/s")
    print(f"plugin / hand: ratio of medians {plugin_median / hand_median:.3f}, median of per-round ratios "
          f"{statistics.median(ratios):.3f} (goal >= 0.8)")


if __name__ == "__main__":
    main()
