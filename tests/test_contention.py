"""CPU contention while timing: the schedstat reader, its fallback, and latency gates that skip under it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_netzip.metrics import contention
from pytest_netzip.metrics.contention import CPU_TIME, MAX_PRESSURE, Pressure, watch
from tests.helpers import scripted_waits, write_test


def _thread(tasks: Path, tid: str, running: int, waiting: int) -> None:
    (tasks / tid).mkdir(exist_ok=True)
    (tasks / tid / "schedstat").write_text(f"{running} {waiting} 7\n")


def test_pressure_is_the_waiting_share_of_the_threads_ready_time(tmp_path: Path) -> None:
    _thread(tmp_path, "100", running=1_000, waiting=0)
    _thread(tmp_path, "101", running=5_000, waiting=5_000)  # ends before the second reading: left out
    pressure = watch(threads=2, tasks=tmp_path)
    _thread(tmp_path, "100", running=4_000, waiting=1_000)  # ran 3000 ns, waited 1000 ns
    (tmp_path / "101" / "schedstat").unlink()
    _thread(tmp_path, "102", running=2_000, waiting=2_000)  # started in the window: counted from zero
    (tmp_path / "103").mkdir()
    (tmp_path / "103" / "schedstat").write_text("garbled\n")  # unreadable: left out
    measured = pressure()
    assert measured.share == pytest.approx(3_000 / 8_000)
    assert measured.source == f"the run-queue wait in {tmp_path}/*/schedstat"
    assert measured.threads == 2


class _Clock:
    """``time`` for one reading: ``cpu_seconds`` of process time over one second of wall time."""

    def __init__(self, cpu_seconds: float) -> None:
        self._cpu, self._wall = iter([10.0, 10.0 + cpu_seconds]), iter([50.0, 51.0])

    def process_time(self) -> float:
        return next(self._cpu)

    def perf_counter(self) -> float:
        return next(self._wall)


def test_without_schedstat_the_fallback_is_cpu_time_against_wall_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(contention, "time", _Clock(cpu_seconds=0.4))  # the process got 0.4 s of CPU in 1 s
    measured = watch(threads=1, tasks=tmp_path)()
    assert (measured.share, measured.source) == (pytest.approx(0.6), CPU_TIME)


def test_schedstat_that_counts_nothing_falls_back_to_cpu_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A kernel without schedstats lists the files but keeps them at zero: no reading, not "no contention"."""
    _thread(tmp_path, "100", running=0, waiting=0)

    monkeypatch.setattr(contention, "time", _Clock(cpu_seconds=0.5))
    measured = watch(threads=1, tasks=tmp_path)()
    assert (measured.share, measured.source) == (pytest.approx(0.5), CPU_TIME)


def test_the_fallback_judges_cpu_timing_only_and_the_reason_names_the_setting_that_helps() -> None:
    assert Pressure(0.6, CPU_TIME, 1).distorts("cpu")
    assert not Pressure(0.6, CPU_TIME, 1).distorts("mps")  # a GPU's synchronisation sleeps: not a wait for a CPU
    assert Pressure(0.6, "schedstat", 1).distorts("cuda")
    assert not Pressure(MAX_PRESSURE, "schedstat", 4).distorts("cpu")
    assert "--netzip-threads 1" in Pressure(0.6, "schedstat", 2).reason
    assert "--netzip-threads" not in Pressure(0.6, "schedstat", 1).reason


GATED = """
    @pytest.mark.netzip(compressors=["prune_l1"])
    @pytest.mark.latency_budget(p50_ms=10_000, max_slowdown=1000)
    def test_speed():
        pass
"""


def test_latency_gates_skip_under_contention_saying_why_and_fail_under_strict(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripted_waits(monkeypatch, 0.75)
    write_test(project, GATED)
    result = project.runpytest("--netzip", "--benchmark-max-time=0.02", "--netzip-json=out.json", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines([
        "Signed on cpu (* CPU pressure 75% > 10%)",
        ("*netzip cannot measure latency_p50_ms (the CPU was contended while timing: netzip's threads waited for a "
         "CPU 75% of the time they were ready to run (over 10%, read from the run-queue wait in *schedstat); "
         "rerun on a quiet machine*"),
    ])
    record = json.loads((project.path / "out.json").read_text())["results"][0]
    assert record["metrics"]["cpu_pressure"] == record["metrics"]["speedup_cpu_pressure"] == pytest.approx(0.75)
    assert record["metrics"]["latency_p50_ms"] is None and record["metrics"]["speedup"] is None
    assert "contended" in record["unavailable"]["speedup"]
    project.runpytest("--netzip", "--benchmark-max-time=0.02", "--netzip-strict").assert_outcomes(failed=1)


def test_latency_gates_are_judged_under_low_pressure(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    scripted_waits(monkeypatch, 0.05)
    write_test(project, GATED)
    result = project.runpytest("--netzip", "--benchmark-max-time=0.02", "--netzip-json=out.json")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["Signed on cpu (* CPU pressure 5%)"])
    assert json.loads((project.path / "out.json").read_text())["results"][0]["metrics"]["cpu_pressure"] == pytest.approx(0.05)
