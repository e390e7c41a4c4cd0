"""Latency: the timing loop, its statistics, and latency_budget's absolute and relative gates."""

from __future__ import annotations

import json
import statistics

import pytest

from pytest_netzip.data.workload import Workload
from pytest_netzip.metrics.latency import (
    Latency,
    PairedLatency,
    median_rank,
    time_calls,
)
from tests.helpers import scripted_waits, write_test


def test_percentiles_interpolate_between_samples() -> None:
    latency = Latency(tuple(ms / 1e3 for ms in range(1, 101)), batch_size=4)  # 1..100 ms
    assert latency.percentile_ms(50) == pytest.approx(50.5)
    assert latency.percentile_ms(95) == pytest.approx(95.05)
    assert latency.percentile_ms(99) == pytest.approx(99.01)
    assert latency.mean_ms == pytest.approx(50.5)
    assert latency.throughput == pytest.approx(4 / 0.0505)


def test_median_rank_is_the_binomial_order_statistic() -> None:
    # P(Bin(20, 1/2) <= 5) = 0.0207 and P(<= 6) = 0.0577: ranks 6 and 15 bound the median at 95%.
    assert median_rank(20, 0.95) == 6
    assert median_rank(6, 0.95) == 1  # 2 / 64 = 0.031 <= 0.05
    assert median_rank(5, 0.95) == 0  # 2 / 32 = 0.0625: five samples cannot bound a median at 95%


def test_paired_speedup_is_the_median_ratio_with_its_interval() -> None:
    reference = Latency((2.0,) * 20, 1)
    compressed = Latency(tuple(1.0 + index / 100 for index in range(20)), 1)  # ratios 2/1.00 .. 2/1.19
    paired = PairedLatency(reference, compressed)
    ratios = sorted(2.0 / (1.0 + index / 100) for index in range(20))
    assert paired.speedup == pytest.approx((ratios[9] + ratios[10]) / 2)
    assert paired.interval == (ratios[5], ratios[14])
    assert PairedLatency(Latency((1.0,) * 5, 1), Latency((1.0,) * 5, 1)).interval == (0.0, float("inf"))


def test_time_calls_alternates_order_and_times_with_the_workloads_timer() -> None:
    clock = [0.0]
    log: list[str] = []

    def call(name: str, seconds: float):  # noqa: ANN202
        def run() -> None:
            log.append(name)
            clock[0] += seconds

        return run

    synced: list[int] = []
    workload = Workload(min_rounds=3, max_time=4.0, warmup_iterations=1, timer=lambda: clock[0])
    first, second = time_calls([call("A", 1.0), call("B", 3.0)], lambda: synced.append(1), workload, min_rounds=3)
    assert first.seconds == (1.0,) * 3 and second.seconds == (3.0,) * 3  # max_time / (1 + 3) = 1 round < min_rounds
    assert log == ["A", "B", "A", "B", "B", "A", "A", "B"]  # one warm-up each, then A B, B A, A B
    assert len(synced) == 2 * len(log)  # before and after every call
    assert first.pressure is second.pressure is not None  # read once over the rounds both were timed in


def test_the_batch_repeats_the_first_sample_and_leaves_scalars() -> None:
    import torch

    example = {"x": torch.arange(6.0).reshape(2, 3), "scale": torch.tensor(0.5), "mode": "fast"}
    batch = Workload(batch_size=3).batch(example)
    assert torch.equal(batch["x"], torch.tensor([[0.0, 1.0, 2.0]] * 3))
    assert (batch["scale"], batch["mode"]) == (example["scale"], "fast")
    with pytest.raises(ValueError, match="batch_size=8 needs a tensor with a batch dimension"):
        Workload(batch_size=8).batch(["a", "b"])


SLOW_CONFTEST = """
import time

import pytest
import torch
from torch import nn

from pytest_netzip import Compressor


class Spin(nn.Module):
    '''Takes ``seconds`` per call on any machine: a busy wait, which keeps the CPU as a model would.'''

    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds
        self.linear = nn.Linear(4, 2)

    def forward(self, x):
        end = time.perf_counter() + self.seconds
        while time.perf_counter() < end:
            pass
        return self.linear(x)


class Same(Compressor):
    name = "same"

    def transform(self, model, ctx):
        return model


class Slower(Compressor):
    name = "slower"

    def transform(self, model, ctx):
        model.seconds *= 1.5
        return model


@pytest.hookimpl(optionalhook=True)
def pytest_netzip_compressors():
    return [Same(allow_noop=True), Slower]  # Same changes nothing, on purpose


@pytest.fixture(scope="session")
def netzip_model():
    return Spin(0.0005).eval()


@pytest.fixture(scope="session")
def netzip_data():
    return [(torch.ones(8, 4), torch.zeros(8, dtype=torch.long))]
"""


@pytest.fixture
def quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    """No wait for a CPU, whatever else runs on this machine: these tests are of the verdicts (test_contention's of skips)."""
    scripted_waits(monkeypatch, 0.0)


@pytest.fixture
def spinning(pytester: pytest.Pytester, quiet: None) -> pytest.Pytester:
    pytester.makeconftest(SLOW_CONFTEST)
    return pytester


def test_a_variant_1_5x_slower_fails_max_slowdown_1_05_showing_the_interval(spinning: pytest.Pytester) -> None:
    write_test(spinning, """
        @pytest.mark.netzip(compressors=["slower"])
        @pytest.mark.latency_budget(max_slowdown=1.05)
        def test_speed():
            pass
    """)
    result = spinning.runpytest("--netzip", "--benchmark-max-time=0.1")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([  # [[] is a literal [ to fnmatch
        "*latency_budget(max_slowdown=1.05)*speedup >= 0.952 (95% CI)*0.6*FAIL (95% CI [[]0.6*, 0.6*] lies below 0.952)",
    ])


def test_an_unchanged_model_passes_max_slowdown_1_05_in_20_runs(spinning: pytest.Pytester) -> None:
    write_test(spinning, """
        @pytest.mark.netzip(compressors=["same"])
        @pytest.mark.latency_budget(max_slowdown=1.05, min_speedup=0.95)
        def test_speed():
            pass
    """)
    speedups = []
    for run in range(20):
        result = spinning.runpytest("--netzip", "--benchmark-max-time=0.05", f"--netzip-json=run{run}.json")
        result.assert_outcomes(passed=1)
        speedups.append(json.loads((spinning.path / f"run{run}.json").read_text())["results"][0]["metrics"]["speedup"])
    assert 0.9 < statistics.median(speedups) < 1.1


def test_absolute_percentiles_gate_and_every_latency_metric_is_recorded(project: pytest.Pytester, quiet: None) -> None:
    write_test(project, """
        @pytest.mark.netzip(compressors=["prune_l1"])
        @pytest.mark.latency_budget(p50_ms=10_000, p95_ms=1e-6, max_slowdown=1000, batch_size=8)
        def test_speed():
            pass
    """)
    result = project.runpytest("--netzip", "--benchmark-max-time=0.05", "--netzip-json=out.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*latency_budget(p50_ms=10000)*latency_p50_ms <= 10000*pass",
        "*latency_budget(p95_ms=1e-06)*latency_p95_ms <= 1e-06*ms*FAIL",
    ])
    record = json.loads((project.path / "out.json").read_text())["results"][0]
    metrics = record["metrics"]
    assert record["batch_size"] == 8
    assert record["settings"]["latency_p50_ms"] == record["settings"]["speedup"] == "batch_size=8"
    assert "size_bytes" not in record["settings"]  # a model's size does not depend on the batch it runs
    assert metrics["latency_p50_ms"] <= metrics["latency_p95_ms"] <= metrics["latency_p99_ms"]
    assert metrics["throughput_per_s"] == pytest.approx(8 / metrics["latency_mean_ms"] * 1e3)
    assert metrics["speedup_interval"]["low"] <= metrics["speedup"] <= metrics["speedup_interval"]["high"]
    assert set(record["reference"]["metrics"]) >= {"latency_p50_ms", "speedup"}


@pytest.mark.parametrize(
    ("option", "reason"),
    [("--benchmark-disable", "timing is off (--benchmark-disable)"),
     ("--benchmark-skip", "timing is skipped (--benchmark-skip)")],
)
def test_switched_off_timing_skips_latency_gates_with_the_reason(
    project: pytest.Pytester, option: str, reason: str
) -> None:
    write_test(project, """
        @pytest.mark.netzip(compressors=["prune_l1"])
        @pytest.mark.accuracy_drop(max=0.01)
        @pytest.mark.latency_budget(max_slowdown=2)
        def test_speed():
            pass
    """)
    result = project.runpytest("--netzip", option, "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines([f"*netzip cannot measure speedup ({reason})*"])
    project.runpytest("--netzip", option, "--netzip-strict").assert_outcomes(failed=1)
