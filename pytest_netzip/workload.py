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
        """The model input: the first sample of ``example_input`` repeated ``batch_size`` times."""
        from torch.utils._pytree import tree_map

        def repeat(value: Any) -> Any:
            if not hasattr(value, "repeat"):
                return value
            return value[:1].repeat(self.batch_size, *[1] * (value.ndim - 1))

        return tree_map(repeat, example_input)


#: pytest-benchmark's keywords of ``@pytest.mark.benchmark`` that netzip honours.
_BENCHMARK_KEYWORDS = ("min_rounds", "max_time", "warmup_iterations", "timer", "disable_gc")


def workload_of(item: pytest.Item, batch_size: int) -> Workload:
    """The workload of ``item``: pytest-benchmark's options, overridden by its ``benchmark`` marker."""
    config = item.config
    if not config.pluginmanager.hasplugin("benchmark"):
        return Workload(batch_size)
    from pytest_benchmark.utils import load_timer

    options: dict[str, Any] = {
        "min_rounds": config.getoption("benchmark_min_rounds"),
        "max_time": float(config.getoption("benchmark_max_time")),
        "warmup_iterations": config.getoption("benchmark_warmup_iterations"),
        "timer": load_timer(config.getoption("benchmark_timer")).target,
        "disable_gc": config.getoption("benchmark_disable_gc"),
    }
    marker = item.get_closest_marker("benchmark")
    if marker is not None:
        options.update((key, value) for key, value in marker.kwargs.items() if key in _BENCHMARK_KEYWORDS)
    return Workload(batch_size, disabled=_timing_disabled(config), **options)


def _timing_disabled(config: pytest.Config) -> str | None:
    """Why pytest-benchmark's options switch timing off, or None (its own rules, applied to netzip)."""
    if config.getoption("benchmark_skip"):
        return "timing is skipped (--benchmark-skip)"
    if config.getoption("benchmark_disable") and not config.getoption("benchmark_enable"):
        return "timing is off (--benchmark-disable)"
    under_xdist = config.getoption("dist", "no") != "no" or hasattr(config, "workerinput")
    if under_xdist and not config.getoption("benchmark_enable"):
        return "timing is off under pytest-xdist, whose workers share the CPU (--benchmark-enable times anyway)"
    return None
