"""How a model is run for latency, memory and energy: batch size, and pytest-benchmark's timing options."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest


@dataclass(frozen=True)
class Workload:
    """The runs behind latency, memory and energy metrics.

    ``min_rounds``, ``max_time``, ``warmup_iterations``, ``timer`` and ``disable_gc`` mean what
    pytest-benchmark's options of the same names mean; ``disabled`` says why timing is off.
    """

    batch_size: int = 1
    min_rounds: int = 5
    max_time: float = 1.0
    warmup_iterations: int = 100_000
    timer: Callable[[], float] = time.perf_counter
    disable_gc: bool = False
    disabled: str | None = None

    def batch(self, example_input: Any) -> Any:
        """The model input: each tensor of ``example_input`` cut to its first sample, repeated ``batch_size`` times.

        Scalars (0-d tensors) and other values pass as they are; ValueError when ``batch_size`` > 1
        finds no tensor to repeat. A detector's list of images is cut and repeated along the list.
        """
        import torch
        from torch.utils._pytree import tree_flatten, tree_unflatten

        from pytest_netzip.detection import ImageList

        if isinstance(example_input, ImageList):
            return ImageList(example_input[:1] * self.batch_size)

        leaves, spec = tree_flatten(example_input)
        batched = [isinstance(leaf, torch.Tensor) and leaf.ndim >= 1 for leaf in leaves]
        if self.batch_size > 1 and not any(batched):
            raise ValueError(f"batch_size={self.batch_size} needs a tensor with a batch dimension in the example input")
        return tree_unflatten([
            leaf[:1].repeat(self.batch_size, *[1] * (leaf.ndim - 1)) if is_batched else leaf
            for leaf, is_batched in zip(leaves, batched)
        ], spec)


#: Batch size 1 and pytest-benchmark's defaults: what a measurement outside pytest uses.
DEFAULT_WORKLOAD = Workload()

#: The keywords of pytest-benchmark's ``@pytest.mark.benchmark`` that netzip honours, with what each must be.
_BENCHMARK_KEYWORDS = {
    "min_rounds": "a whole number >= 1",
    "max_time": "a number of seconds > 0",
    "warmup_iterations": "a whole number >= 0",
    "timer": "a function returning seconds, or its dotted name",
    "disable_gc": "True or False",
}


def _valid(keyword: str, value: object) -> bool:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return {
        "min_rounds": isinstance(value, int) and not isinstance(value, bool) and value >= 1,
        "max_time": number and value > 0,
        "warmup_iterations": isinstance(value, int) and not isinstance(value, bool) and value >= 0,
        "timer": callable(value) or isinstance(value, str),
        "disable_gc": isinstance(value, bool),
    }[keyword]


def benchmark_options(node: pytest.Item | pytest.Collector) -> dict[str, Any]:
    """The timing keywords of ``node``'s ``@pytest.mark.benchmark``; BudgetError for a bad value."""
    from pytest_netzip.budgets import BudgetError

    marker = node.get_closest_marker("benchmark")
    options = {key: value for key, value in (marker.kwargs if marker else {}).items() if key in _BENCHMARK_KEYWORDS}
    for key, value in options.items():
        if not _valid(key, value):
            raise BudgetError(f"@pytest.mark.benchmark({key}={value!r}): netzip's timing needs {_BENCHMARK_KEYWORDS[key]}")
    if isinstance(options.get("timer"), str):
        from pytest_benchmark.utils import load_timer

        try:
            options["timer"] = load_timer(options["timer"]).target
        except Exception as exc:  # an import error or a missing attribute
            raise BudgetError(f"@pytest.mark.benchmark(timer={options['timer']!r}): cannot load it ({exc})") from None
    return options


def workload_of(item: pytest.Item, batch_size: int) -> Workload:
    """The workload of ``item``: pytest-benchmark's options, overridden by its ``benchmark`` marker."""
    config = item.config
    if not config.pluginmanager.hasplugin("benchmark"):  # -p no:benchmark: its defaults
        return Workload(batch_size, disabled=_under_xdist(config))
    from pytest_benchmark.utils import load_timer

    options: dict[str, Any] = {
        "min_rounds": config.getoption("benchmark_min_rounds"),
        "max_time": float(config.getoption("benchmark_max_time")),
        "warmup_iterations": config.getoption("benchmark_warmup_iterations"),
        "timer": load_timer(config.getoption("benchmark_timer")).target,
        "disable_gc": config.getoption("benchmark_disable_gc"),
    }
    options.update(benchmark_options(item))
    return Workload(batch_size, disabled=_timing_disabled(config), **options)


def _timing_disabled(config: pytest.Config) -> str | None:
    """Why pytest-benchmark's options switch timing off, or None (its own rules, applied to netzip)."""
    if config.getoption("benchmark_skip"):
        return "timing is skipped (--benchmark-skip)"
    if config.getoption("benchmark_disable") and not config.getoption("benchmark_enable"):
        return "timing is off (--benchmark-disable)"
    return None if config.getoption("benchmark_enable") else _under_xdist(config)


def _under_xdist(config: pytest.Config) -> str | None:
    if config.getoption("dist", "no") != "no" or hasattr(config, "workerinput"):
        return "timing is off under pytest-xdist, whose workers share the CPU (--benchmark-enable times anyway)"
    return None
