"""Latency per call and speedup: warmed up, synchronised with the device, reference and variant interleaved.

The loop is pytest-benchmark's (its timer, rounds, time budget, gc and tracer handling come from its
options), with what models need on top: a warm-up, ``torch.inference_mode``, a device synchronisation
inside every timed call, and the reference timed in the same rounds as the variant (A B, B A, ...),
so a speedup is the median of paired ratios with a distribution-free confidence interval. Absolute
latencies time each model alone, as it would run deployed. The CPU pressure over the timed rounds is
recorded with them (``cpu_pressure``, ``speedup_cpu_pressure``); where it distorts timing, the latency
metrics are unavailable, so their gates skip saying why (see :mod:`pytest_netzip.metrics.contention`).
"""

from __future__ import annotations

import contextlib
import gc
import math
import statistics
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property, partial
from typing import TYPE_CHECKING, TypeVar

from pytest_netzip.data.inputs import bound
from pytest_netzip.errors import MetricUnavailable
from pytest_netzip.metrics.base import Metric, metric
from pytest_netzip.metrics.contention import Pressure, watch

if TYPE_CHECKING:
    from pytest_netzip.data.workload import Workload
    from pytest_netzip.metrics.base import Subject

#: Rounds a paired timing runs at least: fewer than 6 pairs cannot bound a median at 95%.
MIN_PAIRED_ROUNDS = 20

#: Confidence of the speedup interval that relative latency gates decide on.
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Latency:
    """Seconds per call of one model on a batch of ``batch_size`` samples, and the CPU pressure they were timed under."""

    seconds: tuple[float, ...]
    batch_size: int
    pressure: Pressure | None = None

    def percentile_ms(self, percent: float) -> float:
        """The ``percent``-th percentile in milliseconds (linear interpolation between samples)."""
        if len(self.seconds) == 1:
            return self.seconds[0] * 1e3
        return statistics.quantiles(self.seconds, n=100, method="inclusive")[round(percent) - 1] * 1e3

    @property
    def mean_ms(self) -> float:
        """The mean call in milliseconds."""
        return statistics.fmean(self.seconds) * 1e3

    @property
    def throughput(self) -> float:
        """Samples per second at the mean call."""
        return self.batch_size / statistics.fmean(self.seconds)


@dataclass(frozen=True)
class PairedLatency:
    """Reference and variant timed in the same rounds; ``ratios`` are reference / variant per round."""

    reference: Latency
    compressed: Latency

    @property
    def pressure(self) -> Pressure | None:
        """The CPU pressure of the rounds both were timed in."""
        return self.compressed.pressure

    @cached_property
    def ratios(self) -> list[float]:
        """Per-round speedups, sorted."""
        return sorted(r / c for r, c in zip(self.reference.seconds, self.compressed.seconds))

    @property
    def speedup(self) -> float:
        """The median per-round speedup."""
        return statistics.median(self.ratios)

    @property
    def interval(self) -> tuple[float, float]:
        """A ``CONFIDENCE`` interval of the median speedup, (0, inf) when there are too few rounds."""
        rank = median_rank(len(self.ratios), CONFIDENCE)
        if rank == 0:
            return 0.0, math.inf
        return self.ratios[rank - 1], self.ratios[-rank]


def median_rank(samples: int, confidence: float) -> int:
    """The rank k such that [k-th smallest, k-th largest] of ``samples`` values covers their median.

    Distribution-free: the number of values below the median is Binomial(n, 1/2), so the interval
    misses it with probability 2 P(X < k) <= 1 - confidence. Returns 0 when no k is small enough.
    """
    log_half = samples * math.log(0.5)
    below, rank = 0.0, 0
    for k in range(samples // 2 + 1):
        term = math.exp(math.lgamma(samples + 1) - math.lgamma(k + 1) - math.lgamma(samples - k + 1) + log_half)
        if 2 * (below + term) > 1 - confidence:
            break
        below += term
        rank = k + 1
    return rank


@contextlib.contextmanager
def _quiet_interpreter(disable_gc: bool) -> Iterator[None]:
    """pytest-benchmark's conditions for timed code: no tracer or profiler (coverage), gc off if asked."""
    from pytest_benchmark.fixture import PauseInstrumentation

    enabled = gc.isenabled()
    if disable_gc:
        gc.disable()
    try:
        with PauseInstrumentation():  # type: ignore[no-untyped-call]  # pytest_benchmark leaves it unannotated
            yield
    finally:
        if enabled:
            gc.enable()


def time_calls(
    calls: Sequence[Callable[[], object]], sync: Callable[[], None], workload: Workload, min_rounds: int
) -> list[Latency]:
    """The latency of each call in ``calls``, timed in alternating order (A B, B A, ...) after a warm-up.

    Each call is warmed up for a tenth of ``workload.max_time`` (at least once, at most
    ``warmup_iterations`` times); then rounds run until ``max_time`` is spent, at least ``min_rounds``.
    The CPU pressure is read over the rounds, after the warm-up has started torch's threads.
    """
    import torch

    timer = workload.timer

    def timed(call: Callable[[], object]) -> float:
        sync()
        start = timer()
        call()
        sync()
        return timer() - start

    with torch.inference_mode(), _quiet_interpreter(workload.disable_gc):
        estimate = 0.0
        for call in calls:
            spent, count, last = 0.0, 0, 0.0
            while count < 1 or (spent < workload.max_time / 10 and count < workload.warmup_iterations):
                last = timed(call)
                spent, count = spent + last, count + 1
            estimate += last
        rounds = max(min_rounds, math.ceil(workload.max_time / max(estimate, 1e-9)))
        samples: list[list[float]] = [[] for _ in calls]
        order = list(range(len(calls)))
        pressure = watch(torch.get_num_threads())
        for round_index in range(rounds):
            for index in order if round_index % 2 == 0 else reversed(order):
                samples[index].append(timed(calls[index]))
        measured = pressure()
    return [Latency(tuple(seconds), workload.batch_size, measured) for seconds in samples]


Timing = TypeVar("Timing", Latency, PairedLatency)


def _timing(subject: Subject, workload: Workload, measure: Callable[[Workload], Timing], judged: bool = True) -> Timing:
    """``measure(workload)``; MetricUnavailable where timing is off, or (if ``judged``) contention distorted it."""
    if workload.disabled:
        raise MetricUnavailable(workload.disabled)
    timing = measure(workload)
    if judged and timing.pressure is not None and timing.pressure.distorts(subject.device.type):
        raise MetricUnavailable(timing.pressure.reason)
    return timing


def _share(pressure: Pressure | None) -> float:
    if pressure is None:
        raise MetricUnavailable("no CPU pressure was read with this timing")
    return pressure.share


def _percentile(percent: int) -> Metric[float]:
    @metric(f"latency_p{percent}_ms", f"{percent}th percentile of the time of one call on a batch", unit="ms",
            higher_is_better=False, group="latency", summary=percent < 99)
    def percentile(subject: Subject, reference: Subject, workload: Workload) -> float:
        return _timing(subject, workload, partial(latency_of, subject)).percentile_ms(percent)

    return percentile


@metric("latency_mean_ms", "mean time of one call on a batch", unit="ms", higher_is_better=False, group="latency",
        summary=False)
def latency_mean_ms(subject: Subject, reference: Subject, workload: Workload) -> float:
    """Mean milliseconds per call."""
    return _timing(subject, workload, partial(latency_of, subject)).mean_ms


@metric("throughput_per_s", "samples per second at the mean call", unit="/s", group="latency")
def throughput_per_s(subject: Subject, reference: Subject, workload: Workload) -> float:
    """Samples per second."""
    return _timing(subject, workload, partial(latency_of, subject)).throughput


@metric("speedup", "median of reference / compressed time over interleaved rounds (NetZIP's S)", relative=True,
        group="speedup")
def speedup(subject: Subject, reference: Subject, workload: Workload) -> float:
    """How many times faster than the reference."""
    if subject is reference:
        return 1.0
    return _timing(subject, workload, partial(paired_latency_of, subject)).speedup


@metric("speedup_interval", f"{CONFIDENCE:.0%} confidence interval of speedup", relative=True, group="speedup")
def speedup_interval(subject: Subject, reference: Subject, workload: Workload) -> dict[str, float]:
    """The interval relative latency gates decide on."""
    if subject is reference:
        return {"low": 1.0, "high": 1.0}
    low, high = _timing(subject, workload, partial(paired_latency_of, subject)).interval
    return {"low": low, "high": high}


@metric("cpu_pressure", "share of the time netzip's threads were ready to run but waited for a CPU, while timing",
        unit="share", higher_is_better=False, group="latency", summary=False)
def cpu_pressure(subject: Subject, reference: Subject, workload: Workload) -> float:
    """The pressure during the model's own timing: above 0.1, its latency metrics are unavailable."""
    return _share(_timing(subject, workload, partial(latency_of, subject), judged=False).pressure)


@metric("speedup_cpu_pressure", "cpu_pressure while the model was timed with its reference", unit="share",
        higher_is_better=False, group="speedup", summary=False)
def speedup_cpu_pressure(subject: Subject, reference: Subject, workload: Workload) -> float:
    """The pressure during the paired rounds: above 0.1, speedup is unavailable."""
    if subject is reference:
        raise MetricUnavailable("the reference is timed in the rounds of each compressed variant")
    return _share(_timing(subject, workload, partial(paired_latency_of, subject), judged=False).pressure)


LATENCY_METRICS = (
    _percentile(50), _percentile(95), _percentile(99), latency_mean_ms, throughput_per_s, cpu_pressure, speedup,
    speedup_interval, speedup_cpu_pressure,
)


def latency_of(subject: Subject, workload: Workload) -> Latency:
    """``subject``'s time per call, timed alone (tried once per workload)."""
    return subject.once(("latency", workload), lambda: _time(subject, workload)[0])


def paired_latency_of(subject: Subject, workload: Workload) -> PairedLatency:
    """``subject`` and its reference timed in the same rounds (tried once per workload)."""
    if subject.reference is None:
        raise MetricUnavailable("a paired timing needs a reference")
    reference = subject.reference
    return subject.once(("paired_latency", workload), lambda: PairedLatency(*_time(subject, workload, reference)))


def _time(subject: Subject, workload: Workload, *others: Subject) -> list[Latency]:
    """Latencies of ``others`` and ``subject``, timed in the same rounds."""
    from pytest_netzip.devices import synchronize

    rounds = workload.min_rounds if not others else max(workload.min_rounds, MIN_PAIRED_ROUNDS)

    def run() -> list[Latency]:
        calls = [bound(timed.model, timed.batch(workload)) for timed in (*others, subject)]
        return time_calls(calls, partial(synchronize, subject.device), workload, rounds)

    return subject.blamed("timing", run)
