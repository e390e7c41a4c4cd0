"""The end of a run: saved runs from concurrent sessions, strict JSON, and outputs that cannot be written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_netzip.metrics import MetricRegistry
from pytest_netzip.output.storage import Storage
from pytest_netzip.output.tables import render_tables
from tests.helpers import write_test

GREEN = """
@pytest.mark.netzip(compressors=["fp16"])
@pytest.mark.size_ratio(min=0.5)
def test_deployable(netzip_result):
    pass
"""

#: The table of GREEN: fp16 stores 2 bytes a weight, and torch.save's overhead besides.
GREEN_TABLE = ["variant * size_bytes * size_ratio", "reference * kB * 1", "fp16 * kB (0.54x) * 1.86"]

#: A metric whose values a strict JSON parser cannot hold: inf for the reference, -inf, NaN and 10**400 for the others.
NON_FINITE_METRIC = """
import math

from pytest_netzip import metric


@metric("unbounded", "not finite")
def unbounded(subject, reference):
    return math.inf if subject is reference else {"low": -math.inf, "mid": math.nan, "huge": 10**400, "high": 1.0}


@pytest.hookimpl(optionalhook=True)
def pytest_netzip_metrics():
    return [unbounded]
"""

_SAVER = """
import sys, time
from pathlib import Path
from pytest_netzip.output.storage import Storage

root, name, go, count = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
while not go.exists():
    time.sleep(0.001)
for index in range(count):
    print(Storage(root).save(name, {"version": 1, "results": [], "saver": [name, index]}).name)
"""


def _strict(path: Path) -> object:
    """The JSON document in ``path``, read by a parser that refuses NaN and Infinity."""

    def refuse(constant: str) -> object:
        raise ValueError(f"{path} holds {constant}, which is not JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_concurrent_saves_each_get_their_own_counter(tmp_path: Path) -> None:
    """Six processes save at once, two under one name: every run is kept, each counter is used once."""
    go = tmp_path / "go"
    names = ["main", "main", "a", "b", "c", "d"]
    savers = [
        subprocess.Popen([sys.executable, "-c", _SAVER, str(tmp_path / "runs"), name, str(go), "8"],
                         stdout=subprocess.PIPE, text=True)
        for name in names
    ]
    go.touch()
    reported = [saver.communicate(timeout=120)[0].split() for saver in savers]
    assert [saver.returncode for saver in savers] == [0] * len(names)
    saved = Storage(tmp_path / "runs").runs()
    assert sorted(path.name for path in saved) == sorted(name for names in reported for name in names)
    counters = [path.name.split("_")[0] for path in saved]
    assert len(saved) == 8 * len(names) and len(set(counters)) == len(counters)
    for name, paths in zip(names, reported):
        held = [json.loads((tmp_path / "runs" / path).read_text())["saver"] for path in paths]
        assert [saver for saver, _ in held] == [name] * 8
    assert not [path.name for path in (tmp_path / "runs").iterdir() if path not in saved]


def test_non_finite_values_are_written_as_null(project: pytest.Pytester) -> None:
    project.makeconftest(project.path.joinpath("conftest.py").read_text() + NON_FINITE_METRIC)
    write_test(project, """
        @pytest.mark.netzip(compressors=["fp16"])
        def test_deployable(netzip_result):
            assert netzip_result.metrics["size_ratio"] > 0
            netzip_result.metrics["unbounded"]
    """)
    result = project.runpytest("--netzip", "--netzip-json", "out.json", "--netzip-save", "main", "--netzip-report", "report")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.OK
    assert (project.path / "report" / "index.html").is_file()
    for path in (project.path / "out.json", project.path / ".netzip" / "0001_main.json"):
        document = _strict(path)
        (record,) = document["results"]
        assert record["metrics"]["unbounded"] == {"low": None, "mid": None, "huge": None, "high": 1.0}
        assert record["reference"]["metrics"]["unbounded"] is None
        assert record["metrics"]["size_ratio"] > 0


@pytest.mark.parametrize("summary", ["missing/summary.md", "."], ids=["missing folder", "a directory"])
def test_an_unwritable_step_summary_is_a_warning(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, summary: str
) -> None:
    write_test(project, GREEN)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(project.path / summary))
    result = project.runpytest("--netzip")
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        f"netzip: WARNING: could not append the summary to GITHUB_STEP_SUMMARY {project.path / summary}: *",
        "*= 1 passed*",
    ])
    result.stdout.fnmatch_lines(GREEN_TABLE, consecutive=True)
    result.stdout.no_fnmatch_line("*Traceback*")


@pytest.mark.parametrize(
    ("option", "what"), [("--netzip-json=.", "results"), ("--netzip-report=test_model.py", "report")]
)
def test_an_output_that_cannot_be_written_fails_the_run_after_the_tables(
    project: pytest.Pytester, option: str, what: str
) -> None:
    write_test(project, GREEN)
    result = project.runpytest("--netzip", option)
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([f"netzip: ERROR: could not write the {what}: *", "Signed on cpu*", "*= 1 passed*"])
    result.stdout.fnmatch_lines(GREEN_TABLE, consecutive=True)


HUGE_METRICS = """
from pytest_netzip import metric


@metric("huge_count", "an int beyond a float", unit="count")
def huge_count(subject, reference):
    return 10**400


@metric("largest_ms", "the largest float", unit="ms")
def largest_ms(subject, reference):
    return 1e308


@pytest.hookimpl(optionalhook=True)
def pytest_netzip_metrics():
    return [huge_count, largest_ms]
"""


def test_numbers_at_the_edges_are_tabled_and_written(project: pytest.Pytester) -> None:
    project.makeconftest(project.path.joinpath("conftest.py").read_text() + HUGE_METRICS)
    write_test(project, """
        @pytest.mark.netzip(compressors=["fp16"])
        def test_deployable(netzip_result):
            assert netzip_result.metrics["huge_count"] == float("inf")
            assert netzip_result.metrics["largest_ms"] == 1e308
    """)
    result = project.runpytest("--netzip", "--netzip-json", "out.json")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["variant * huge_count * largest_ms", "reference * inf * 1e+308 ms"])
    result.stdout.no_fnmatch_line("*100000000000000000*")
    (record,) = _strict(project.path / "out.json")["results"]
    assert record["metrics"]["huge_count"] is None
    assert record["metrics"]["largest_ms"] == 1e308


GROWING = """
from dataclasses import dataclass
from typing import ClassVar

from pytest_netzip import Compressor, metric


@metric("grows", "tiny for the reference, huge for the compressed model", unit="ms")
def grows(subject, reference):
    return 1.0 if subject is reference else 1e200


@dataclass(frozen=True)
class Priced(Compressor):
    name: ClassVar[str] = "priced"
    tag: str = ""

    def transform(self, model, ctx):
        with torch.no_grad():
            model.down.weight.mul_(2)  # the same predictions, twice the logits
        return model


@pytest.hookimpl(optionalhook=True)
def pytest_netzip_metrics():
    return [grows]


@pytest.hookimpl(optionalhook=True)
def pytest_netzip_compressors():
    return [Priced(tag="$5_$x^2$")]
"""


def test_huge_changes_and_dollars_are_shown_plainly(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    project.makeconftest(project.path.joinpath("conftest.py").read_text() + GROWING)
    summary = project.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    write_test(project, """
        @pytest.mark.netzip(compressors=["priced"])
        def test_deployable(netzip_result):
            assert netzip_result.metrics["grows"] == 1e200
    """)
    result = project.runpytest("--netzip")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["priced* 1e+200 ms (1e+200x)"])
    markdown = summary.read_text()
    assert "| priced(tag='\\$5_\\$x^2\\$') | 1e+200 ms (1e+200x) |" in markdown


def test_a_dict_valued_metric_gets_no_column_even_where_unavailable() -> None:
    def record(compressor: str, metrics: dict[str, object]) -> dict[str, object]:
        return {"test": "t.py::t", "model": "M", "device": "cpu", "compressor": compressor, "threads": 1, "budgets": [],
                "metrics": metrics, "reference": {"metrics": {"size_ratio": 1.0, "speedup_interval": {"low": 1.0, "high": 1.0}}}}

    (table,) = render_tables([record("fp16", {"size_ratio": 2.0, "speedup_interval": None})], MetricRegistry())
    assert "speedup_interval" not in table and "2 values" not in table
    assert table.splitlines()[1].split() == ["variant", "size_ratio"]


UNAVAILABLE_METRIC = """
from pytest_netzip import MetricUnavailable, metric


@metric("band", "unavailable for the compressed model")
def band(subject, reference):
    if subject is reference:
        return 1.0
    raise MetricUnavailable("not measured here")


@pytest.hookimpl(optionalhook=True)
def pytest_netzip_metrics():
    return [band]
"""


def test_a_body_reading_an_unavailable_metric_skips_naming_it(project: pytest.Pytester) -> None:
    project.makeconftest(project.path.joinpath("conftest.py").read_text() + UNAVAILABLE_METRIC)
    write_test(project, """
        @pytest.mark.netzip(compressors=["fp16"])
        def test_deployable(netzip_result):
            assert netzip_result.metrics["band"] > 0
    """)
    result = project.runpytest("--netzip", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED * netzip cannot measure band (not measured here)"])


def test_a_timing_at_two_batch_sizes_gets_a_column_each() -> None:
    def record(test: str, batch_size: int, p50: float) -> dict[str, object]:
        settings = {"latency_p50_ms": f"batch_size={batch_size}"} if batch_size > 1 else {}
        return {"test": test, "model": "M", "device": "cpu", "compressor": "fp16", "threads": 1, "settings": settings,
                "metrics": {"latency_p50_ms": p50, "size_ratio": 2.0}, "budgets": [],
                "reference": {"metrics": {"latency_p50_ms": p50 / 2, "size_ratio": 1.0}}}

    (table,) = render_tables([record("t.py::one", 1, 2.0), record("t.py::eight", 8, 9.0)], MetricRegistry())
    header, reference, fp16 = table.splitlines()[1:4]
    assert header.split("  ")[0] == "variant" and [cell.strip() for cell in header.split("  ") if cell][1:] == [
        "size_ratio", "latency_p50_ms", "latency_p50_ms [batch_size=8]"]
    assert reference.split() == ["reference", "1", "1", "ms", "4.5", "ms"]
    assert fp16.split() == ["fp16", "2", "2", "ms", "(2.00x)", "9", "ms", "(2.00x)"]



def test_the_step_summary_counts_outcomes_and_says_why_each_item_failed(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
) -> None:
    summary = project.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    write_test(project, """
        from pytest_netzip import PruneL1

        @pytest.mark.netzip(compressors=["fp16", "explode", PruneL1(amount=0.9)], devices=["cpu", "mps"])
        @pytest.mark.size_ratio(min=1.5)
        def test_deployable(netzip_result, netzip_compressor):
            assert netzip_compressor.name != "fp16", "fp16 is not wanted here"
        """)
    result = project.runpytest("--netzip", "--netzip-json", "out.json")
    result.assert_outcomes(failed=2, errors=1, skipped=3)
    pytest.LineMatcher(summary.read_text().splitlines()).fnmatch_lines([
        "**netzip**: 1 error, 2 failed, 3 skipped",
        "",
        "- error: `test_model.py::test_deployable[[]explode-cpu]`: netzip: compressor explode failed on Signed: "
        "RuntimeError: cannot compress layer 'down' *",
        "- failed: `test_model.py::test_deployable[[]fp16-cpu]`: AssertionError: fp16 is not wanted here*",
        "- failed: `test_model.py::test_deployable[[]prune_l1(amount=0.9)-cpu]`: size_ratio(min=1.5): size_ratio 1",
        "",
        "### netzip: Signed on cpu*",
    ], consecutive=True)
    records = {record["compressor"]: record for record in json.loads((project.path / "out.json").read_text())["results"]
               if record["device"] == "cpu"}
    assert records["fp16"]["reason"].startswith("AssertionError: fp16 is not wanted here")
    assert records["prune_l1(amount=0.9)"]["reason"].startswith("netzip budgets of prune_l1(amount=0.9) on cpu")
