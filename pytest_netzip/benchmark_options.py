"""pytest-benchmark's options and ``@pytest.mark.benchmark``, read into the Workload an item is timed with.

Under pytest-xdist, timing stays on only for a CUDA item on a GPU its worker has to itself (each worker owns
one GPU: ``devices.worker_gpu``); the workers share the CPU, so CPU (and MPS) items are not timed.
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_netzip.data.workload import Workload
from pytest_netzip.devices import shared_gpu_reason
from pytest_netzip.errors import BudgetError
from pytest_netzip.metrics.base import is_number, is_whole

#: The keywords of pytest-benchmark's ``@pytest.mark.benchmark`` that netzip honours, with what each must be.
_BENCHMARK_KEYWORDS = {
    "min_rounds": "a whole number from 1 to 100,000",
    "max_time": "a number of seconds > 0, at most 3600",
    "warmup_iterations": "a whole number >= 0",
    "timer": "a function returning seconds, or its dotted name",
    "disable_gc": "True or False",
}


def _valid(keyword: str, value: object) -> bool:
    return {
        "min_rounds": is_whole(value) and 1 <= value <= 100_000,
        "max_time": is_number(value) and 0 < value <= 3600,
        "warmup_iterations": is_whole(value) and value >= 0,
        "timer": callable(value) or isinstance(value, str),
        "disable_gc": isinstance(value, bool),
    }[keyword]


def benchmark_options(node: pytest.Item | pytest.Collector) -> dict[str, Any]:
    """The timing keywords of ``node``'s ``@pytest.mark.benchmark``; BudgetError for a bad value."""
    marks = list(node.iter_markers("benchmark"))
    if len(marks) > 1:
        raise BudgetError(
            f"@pytest.mark.benchmark is given {len(marks)} times (on the test, its class or its module): give one"
        )
    marker = marks[0] if marks else None
    options = {key: value for key, value in (marker.kwargs if marker else {}).items() if key in _BENCHMARK_KEYWORDS}
    for key, value in options.items():
        if not _valid(key, value):
            raise BudgetError(f"@pytest.mark.benchmark({key}={value!r}): netzip's timing needs {_BENCHMARK_KEYWORDS[key]}")
    if isinstance(options.get("timer"), str):
        from pytest_benchmark.utils import load_timer

        try:
            options["timer"] = load_timer(options["timer"]).target  # type: ignore[no-untyped-call]  # pytest_benchmark leaves load_timer unannotated
        except Exception as exc:  # an import error or a missing attribute
            raise BudgetError(f"@pytest.mark.benchmark(timer={options['timer']!r}): cannot load it ({exc})") from None
    return options


def workload_of(item: pytest.Item, batch_size: int, device: str | None) -> Workload:
    """The workload of ``item`` on ``device`` (as its variant writes it: ``cuda``, ``cuda:1``, ``cpu``):
    pytest-benchmark's options, overridden by its ``benchmark`` marker."""
    config = item.config
    if not config.pluginmanager.hasplugin("benchmark"):  # -p no:benchmark: its defaults
        return Workload(batch_size, disabled=_under_xdist(config, device))
    from pytest_benchmark.utils import load_timer

    options: dict[str, Any] = {
        "min_rounds": config.getoption("benchmark_min_rounds"),
        "max_time": float(config.getoption("benchmark_max_time")),
        "warmup_iterations": config.getoption("benchmark_warmup_iterations"),
        "timer": load_timer(config.getoption("benchmark_timer")).target,  # type: ignore[no-untyped-call]  # pytest_benchmark leaves load_timer unannotated
        "disable_gc": config.getoption("benchmark_disable_gc"),
    }
    options.update(benchmark_options(item))
    return Workload(batch_size, disabled=_timing_disabled(config, device), **options)


def _timing_disabled(config: pytest.Config, device: str | None) -> str | None:
    """Why pytest-benchmark's options switch timing off on ``device``, or None (its own rules, applied to netzip)."""
    if config.getoption("benchmark_skip"):
        return "timing is skipped (--benchmark-skip)"
    if config.getoption("benchmark_disable") and not config.getoption("benchmark_enable"):
        return "timing is off (--benchmark-disable)"
    return None if config.getoption("benchmark_enable") else _under_xdist(config, device)


def _under_xdist(config: pytest.Config, device: str | None) -> str | None:
    """Why pytest-xdist keeps an item on ``device`` from being timed: its workers share the CPU, and a GPU where
    there are more workers than GPUs; None outside xdist, and for a CUDA item on a GPU its worker has to itself."""
    worker = getattr(config, "workerinput", None)
    if worker is None and config.getoption("dist", "no") == "no":
        return None
    if worker is not None and device is not None and device.startswith("cuda"):
        import torch

        reason = shared_gpu_reason(device, worker["workerid"], worker["workercount"], torch.cuda.device_count())
        return f"timing is off under pytest-xdist: {reason} (--benchmark-enable times anyway)" if reason else None
    return "timing is off under pytest-xdist, whose workers share the CPU (--benchmark-enable times anyway)"

