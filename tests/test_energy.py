"""Energy: reading RAPL and NVML-like counters over a window, and energy_budget where no counter reads."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
import torch

from pytest_netzip.errors import MetricUnavailable
from pytest_netzip.metrics import energy
from pytest_netzip.metrics.energy import RaplCounter, counter_for, measure_energy
from tests.helpers import write_test


def _zone(root: Path, name: str, microjoules: int, wraps_at: int = 2**32, kind: str = "package-0") -> Path:
    zone = root / name
    zone.mkdir(parents=True)
    (zone / "name").write_text(f"{kind}\n")
    (zone / "energy_uj").write_text(f"{microjoules}\n")
    (zone / "max_energy_range_uj").write_text(f"{wraps_at}\n")
    return zone


def test_rapl_sums_the_packages_and_survives_wrap_around(tmp_path: Path) -> None:
    first = _zone(tmp_path, "intel-rapl:0", 1_000_000, wraps_at=3_000_000)
    second = _zone(tmp_path, "intel-rapl:1", 5_000_000, kind="package-1")
    _zone(tmp_path, "intel-rapl:0:0", 0, kind="core")  # a sub-zone inside package 0: not counted twice
    _zone(tmp_path, "intel-rapl:2", 0, kind="psys")  # the whole platform, packages included: not counted
    counter = RaplCounter(tmp_path)
    assert counter.name == "RAPL package energy of intel-rapl:0, intel-rapl:1"
    assert counter.joules() == 0.0
    (first / "energy_uj").write_text("500000\n")  # wrapped: 3.0 - 1.0 + 0.5 = 2.5 J later
    (second / "energy_uj").write_text("5250000\n")
    assert counter.joules() == pytest.approx(2.75)


def test_no_counter_is_unavailable_with_the_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(energy, "POWERCAP", tmp_path)
    with pytest.raises(MetricUnavailable, match=r"no RAPL package energy counter \(.*intel-rapl:\*/name package-N"):
        counter_for(torch.device("cpu"))
    with pytest.raises(MetricUnavailable, match="no energy counter is known for mps"):
        counter_for(torch.device("mps"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the path of a machine without a GPU")
def test_nvml_without_a_gpu_is_unavailable_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(MetricUnavailable, match="NVML cannot read the GPU's energy: "):
        counter_for(torch.device("cuda:0"))
    monkeypatch.setitem(sys.modules, "pynvml", None)  # not installed
    with pytest.raises(MetricUnavailable, match=r"NVML is not installed \(pip install nvidia-ml-py\)"):
        counter_for(torch.device("cuda:0"))


class WattMeter:
    """A counter of a device drawing a constant ``watts``."""

    name = "test meter"

    def __init__(self, watts: float) -> None:
        self.watts = watts

    def joules(self) -> float:
        return self.watts * time.perf_counter()


def test_energy_per_sample_and_power_come_from_one_window() -> None:
    calls = []
    reading = measure_energy(lambda: calls.append(time.sleep(0.01)), lambda: None, WattMeter(5.0), 4, window=0.2)
    assert reading.seconds >= 0.2
    assert reading.watts == pytest.approx(5.0, rel=0.05)
    assert reading.samples == 4 * (len(calls) - 1)  # the first call warms up, outside the window
    assert reading.millijoules_per_sample == pytest.approx(5.0 * reading.seconds / reading.samples * 1e3, rel=0.05)


def test_a_counter_that_never_moves_is_unavailable() -> None:
    with pytest.raises(MetricUnavailable, match=r"test meter did not advance in (0\.[1-9]|[1-9])[0-9.]* s"):  # >= 10 windows
        measure_energy(lambda: None, lambda: None, WattMeter(0.0), 1, window=0.01)


def test_energy_budget_skips_with_the_reason_where_no_counter_reads(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(energy, "POWERCAP", project.path / "no-powercap")
    write_test(project, """
        @pytest.mark.netzip(compressors=["prune_l1"])
        @pytest.mark.accuracy_drop(max=0.01)
        @pytest.mark.energy_budget(max_mj_per_sample=5)
        def test_frugal():
            pass
    """)
    result = project.runpytest("--netzip", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*netzip cannot measure energy_mj_per_sample (no RAPL package energy counter (*)*"])
    result = project.runpytest("--netzip", "--netzip-strict")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*no RAPL package energy counter*(--netzip-strict)"])


def test_energy_budget_gates_what_a_counter_reads(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(energy, "counter_for", lambda device: WattMeter(5.0))
    write_test(project, """
        @pytest.mark.netzip(compressors=["prune_l1"])
        @pytest.mark.accuracy_drop(max=0.01)
        @pytest.mark.energy_budget(max_mj_per_sample=1e6, min_efficiency=0.5)
        def test_frugal():
            pass
    """)
    result = project.runpytest("--netzip", "--netzip-json=out.json", "--benchmark-max-time=0.01")
    result.assert_outcomes(passed=1)
    record = json.loads((project.path / "out.json").read_text())["results"][0]
    metrics = record["metrics"]
    assert metrics["power_w"] == pytest.approx(5.0, rel=0.05)
    reference = record["reference"]["metrics"]["energy_mj_per_sample"]
    assert metrics["efficiency_ratio"] == pytest.approx(reference / metrics["energy_mj_per_sample"])
    (variant,) = [v for v in json.loads((project.path / "out.json").read_text())["variants"] if v["compressor"] == "prune_l1"]
    assert variant["metrics"]["ocs"] == pytest.approx(metrics["performance_ratio"] * (
        metrics["performance_ratio"] - 1 + metrics["efficiency_ratio"] - 1
    ))
