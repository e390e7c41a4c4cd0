"""Saved runs and regression budgets against them; CI outputs (Markdown summary, JUnit properties)."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

import pytest

from pytest_netzip.output.storage import write_document
from tests.helpers import write_test

GATED = """
@pytest.mark.netzip(compressors=["fp16", "prune_l1"])
@pytest.mark.accuracy_drop(max=0.5)
@pytest.mark.size_ratio(min=0.5)
def test_deployable(netzip_result):
    assert netzip_result.metrics["size_bytes"] > 0
"""


#: A saved run whose fp16 item measured top1 0.9.
_RECORD = json.dumps({"version": 1, "machine": {}, "results": [
    {"test": "test_model.py::test_deployable[fp16-cpu]", "metrics": {"top1": 0.9}}]})


@pytest.fixture
def gated(project: pytest.Pytester) -> pytest.Pytester:
    write_test(project, GATED)
    return project


def _saved(pytester: pytest.Pytester) -> list[Path]:
    return sorted((pytester.path / ".netzip").glob("*.json"))


def _measured(document: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """Each compressor's top1 and size_ratio in a run document."""
    return {record["compressor"]: (record["metrics"]["top1"], record["metrics"]["size_ratio"]) for record in document["results"]}


#: What GATED measures of the tiny repo: top1 0.9 for both; fp16 stores 2 bytes a weight, prune_l1 stores its zeros.
GATED_MEASURED = {"fp16": (0.9, pytest.approx(1.86, abs=0.01)), "prune_l1": (0.9, 1.0)}


def test_a_saved_run_holds_every_result_and_the_machine(gated: pytest.Pytester) -> None:
    result = gated.runpytest("--netzip", "--netzip-save", "main")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["netzip: run saved to *.netzip*0001_main.json"])
    gated.runpytest("--netzip", "--netzip-save", "main")
    assert [path.name for path in _saved(gated)] == ["0001_main.json", "0002_main.json"]
    document = json.loads(_saved(gated)[0].read_text())
    assert document["version"] == 1
    assert {"python", "torch", "cpu", "cpu_count", "threads", "cuda"} <= set(document["machine"])
    assert [record["compressor"] for record in document["results"]] == ["fp16", "prune_l1"]
    assert _measured(document) == GATED_MEASURED
    assert not list((gated.path / ".netzip").glob(".*.tmp"))


def test_autosave_names_the_run_by_commit_and_time(gated: pytest.Pytester) -> None:
    gated.runpytest("--netzip", "--netzip-autosave").assert_outcomes(passed=2)
    (saved,) = _saved(gated)
    assert saved.name.startswith("0001_nocommit_2")  # not a git repository
    assert _measured(json.loads(saved.read_text())) == GATED_MEASURED


def test_a_drop_beyond_the_budget_fails_the_item_with_both_values(
    gated: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    gated.runpytest("--netzip", "--netzip-save", "main").assert_outcomes(passed=2)  # top1 0.9
    monkeypatch.setenv("NETZIP_TEST_FLIP_EVERY", "5")  # a regression: top1 0.8
    monkeypatch.setenv("COLUMNS", "200")
    result = gated.runpytest("--netzip", "--netzip-compare-fail", "top1:0.05")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([
        "netzip: comparing with *0001_main.json",
        "*--netzip-compare-fail top1:0.05 * top1 worse than saved by <= 0.05 * 0.8000 * 0.9000 * FAIL (worse: +0.1 vs saved)",
        "variant * top1 * top1 saved",
        "fp16 * 0.8000 * 0.9000 (-0.1000) [*]",
    ])
    monkeypatch.setenv("NETZIP_TEST_FLIP_EVERY", "20")  # an improvement: top1 0.95
    result = gated.runpytest("--netzip", "--netzip-compare-fail", "top1:0.05")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["variant * top1 * top1 saved", "reference * 0.9500 * -",
                                 "fp16 * 0.9500 * 0.9000 (+0.0500)", "prune_l1 * 0.9500 * 0.9000 (+0.0500)"])


def test_a_lower_is_better_metric_fails_when_it_grows_by_more_than_the_percentage(
    gated: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    gated.runpytest("--netzip", "--netzip-save", "main").assert_outcomes(passed=2)
    monkeypatch.setenv("NETZIP_TEST_HIDDEN", "1024")  # twice the weights
    result = gated.runpytest("--netzip", "--netzip-compare", "main", "--netzip-compare-fail", "size_bytes:10%")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*--netzip-compare-fail size_bytes:10% * FAIL (worse: +9*% vs saved)"])
    monkeypatch.setenv("NETZIP_TEST_HIDDEN", "256")  # half the weights
    monkeypatch.setenv("COLUMNS", "200")
    result = gated.runpytest("--netzip", "--netzip-compare-fail", "size_bytes:10%")
    result.assert_outcomes(passed=2)
    # each now 0.54 to 0.57 of its saved size: the weights halve, torch.save's overhead stays
    result.stdout.fnmatch_lines(["variant * size_bytes * size_bytes saved", "reference * kB * -",
                                 "fp16 * kB (0.57x) * kB (0.57x)", "prune_l1 * kB * kB (0.54x)"])


def test_what_the_saved_run_lacks_is_not_compared_and_said_so(gated: pytest.Pytester) -> None:
    gated.runpytest("--netzip", "--netzip-save", "main", "--netzip-compressors", "fp16")
    result = gated.runpytest(
        "--netzip", "--netzip-compare-fail", "top1:0", "--netzip-compare-fail", "macs:0", "--netzip-json", "out.json"
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([
        "netzip: --netzip-compare-fail top1:0 compared 1 of 2 items: the saved run 0001_main has no top1 for *prune_l1*",
        "netzip: --netzip-compare-fail macs:0 compared 0 of 2 items: the saved run 0001_main has no macs for *fp16*",
    ])
    budgets = {record["compressor"]: record["budgets"] for record in json.loads((gated.path / "out.json").read_text())["results"]}
    assert [budget["marker"] for budget in budgets["fp16"]] == ["accuracy_drop", "size_ratio", "--netzip-compare-fail"]
    assert [budget["marker"] for budget in budgets["prune_l1"]] == ["accuracy_drop", "size_ratio"]
    assert [(budget["value"], budget["reference"]) for budget in budgets["fp16"]] == [
        (0.9, 0.9), (pytest.approx(1.86, abs=0.01), 1.0), (0.9, 0.9)]  # top1 now and in the saved run
    assert [(budget["value"], budget["reference"]) for budget in budgets["prune_l1"]] == [(0.9, 0.9), (1.0, 1.0)]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "*the saved run *0001_main.json is not valid JSON (*); delete it or save a new run"),
        ('{"version": 99, "results": []}', "*0001_main.json has schema version 99; this pytest-netzip reads version 1"),
        ('{"version": 1, "results": [{"test": 3}]}', "*0001_main.json holds a result without a test id and metrics*"),
        ("[1, 2]", "*0001_main.json is not a pytest-netzip run (no list of results)"),
        ('{"version": 1, "machine": [], "results": []}', "*0001_main.json is not a pytest-netzip run (its machine is not an object)"),
        ("[" * 100_000 + "]" * 100_000, "*the saved run *0001_main.json is nested too deeply to be a run; delete it*"),
        ('{"version": 1, "results": [], "x": 1' + "0" * 5000 + "}", "*0001_main.json holds the number 100000000000..., beyond the range of a float; *"),
        (_RECORD.replace("0.9", "1" + "0" * 400), "*0001_main.json holds the number 100000000000..., beyond the range of a float; *"),
        (_RECORD.replace("0.9", "1e400"), "*0001_main.json holds the number 1e400, beyond the range of a float; *"),
        (_RECORD.replace("0.9", "NaN"), "*0001_main.json holds NaN, which is not JSON; delete it or save a new run"),
        (_RECORD.replace("0.9", "-Infinity"), "*0001_main.json holds -Infinity, which is not JSON; *"),
        (_RECORD.replace('"version": 1', '"version": true'), "*0001_main.json has schema version True; *"),
    ],
    ids=["not json", "version 99", "no test id", "a list", "machine a list", "nested", "5000 digits", "10**400",
         "1e400", "NaN", "-Infinity", "version true"],
)
def test_an_unreadable_saved_run_is_a_usage_error_naming_the_file(
    gated: pytest.Pytester, content: str, expected: str
) -> None:
    (gated.path / ".netzip").mkdir()
    (gated.path / ".netzip" / "0001_main.json").write_text(content)
    result = gated.runpytest("--netzip", "--netzip-compare-fail", "top1:0.05")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: --netzip-compare: {expected}"])
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--netzip-compare"], "ERROR: --netzip-compare: no saved run in *.netzip to compare with (save one with --netzip-save NAME)"),
        (["--netzip-compare", "dev"], "ERROR: --netzip-compare: no saved run 'dev' in *.netzip (saved: 0001_main)"),
        (["--netzip-compare", "test_model.py"], "ERROR: --netzip-compare: no saved run 'test_model.py' in *.netzip "
         "(saved: 0001_main); it is a path: put test paths before --netzip-compare, or write --netzip-compare= for the latest run"),
        (["--netzip-compare-fail", "top1"], "ERROR: --netzip-compare-fail 'top1': write metric:amount (top1:0.01) or metric:percent% (latency_p95_ms:10%)"),
        (["--netzip-compare-fail", "top_1:0.01"], "ERROR: --netzip-compare-fail top_1:0.01: unknown metric 'top_1': did you mean 'top1'? *"),
    ],
)
def test_bad_compare_options_are_usage_errors(gated: pytest.Pytester, options: list[str], expected: str) -> None:
    if options != ["--netzip-compare"]:
        gated.runpytest("--netzip", "--netzip-save", "main")
    result = gated.runpytest("--netzip", *options)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([expected])


def test_rules_without_any_saved_run_say_that_nothing_was_compared(gated: pytest.Pytester) -> None:
    result = gated.runpytest("--netzip", "--netzip-compare-fail", "top1:0.01")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["netzip: no saved run in *.netzip to compare with: --netzip-compare-fail checked nothing"])
    result.stdout.fnmatch_lines(["variant * top1 *", "reference * 0.9000 *", "fp16 * 0.9000 * 1.86 *",
                                 "prune_l1 * 0.9000 *"], consecutive=True)


def test_a_different_machine_is_warned_about(gated: pytest.Pytester) -> None:
    gated.runpytest("--netzip", "--netzip-save", "main")
    (saved,) = _saved(gated)
    document = json.loads(saved.read_text())
    document["machine"]["torch"] = "1.0.0"
    saved.write_text(json.dumps(document))
    result = gated.runpytest("--netzip", "--netzip-compare=")  # empty: the latest
    result.stdout.fnmatch_lines([
        "netzip: comparing with *0001_main.json",
        "netzip: WARNING: this machine differs from the saved run's: torch '*' here, '1.0.0' saved",
    ])


def test_a_write_killed_midway_leaves_the_previous_run_whole(tmp_path: Path) -> None:
    target = tmp_path / "0001_main.json"
    write_document(target, {"version": 1, "results": ["before"]})
    killer = f"""
import json, os, signal
from pathlib import Path
from pytest_netzip.output.storage import write_document

def half_then_die(document, stream, **options):
    stream.write('{{"version": 1, "results": [')
    stream.flush()
    os.kill(os.getpid(), signal.SIGKILL)

json.dump = half_then_die
write_document(Path({str(target)!r}), {{"version": 1, "results": ["after"]}})
"""
    finished = subprocess.run([sys.executable, "-c", killer], capture_output=True)
    assert finished.returncode == -9
    assert json.loads(target.read_text()) == {"version": 1, "results": ["before"]}
    (leftover,) = tmp_path.glob(".0001_main.json.*.tmp")  # the half-written temporary, never the run itself
    assert leftover.read_text() == '{"version": 1, "results": ['


def test_the_summary_is_appended_to_github_step_summary_as_markdown(
    gated: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = gated.path / "summary.md"
    summary.write_text("# earlier steps\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    gated.runpytest("--netzip").assert_outcomes(passed=2)
    pytest.LineMatcher(summary.read_text().splitlines()).fnmatch_lines([
        "# earlier steps",
        "**netzip**: 2 passed",
        "",
        "### netzip: Signed on cpu (* CPU thread*)",
        "",
        "| variant | top1 | performance_ratio | size_bytes | size_ratio | ocs |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        "| reference | 0.9000 | 1 | * kB | 1 | 0 |",
        "| fp16 | 0.9000 | 1 | * kB (0.54x) | 1.86 | 0.858 |",
    ], consecutive=True)


def test_each_item_records_its_metrics_as_junit_properties(gated: pytest.Pytester) -> None:
    gated.runpytest("--netzip", "--junitxml=junit.xml").assert_outcomes(passed=2)
    cases = ElementTree.parse(gated.path / "junit.xml").getroot().iter("testcase")
    properties = {case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")} for case in cases}
    fp16 = properties["test_deployable[fp16-cpu]"]
    assert fp16["netzip.compressor"] == "fp16"
    assert float(fp16["netzip.top1"]) == pytest.approx(0.9)
    assert float(fp16["netzip.size_ratio"]) == pytest.approx(1.86, abs=0.01)
    assert float(fp16["netzip.reference.size_ratio"]) == 1.0


def test_under_xdist_the_controller_saves_every_item_and_workers_compare(
    gated: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("xdist")
    summary = gated.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    gated.runpytest_subprocess("--netzip", "-n", "2", "--netzip-save", "main").assert_outcomes(passed=2)
    assert summary.read_text().count("### netzip:") == 1  # the controller's, not one per worker
    (saved,) = _saved(gated)
    assert len(json.loads(saved.read_text())["results"]) == 2
    assert _measured(json.loads(saved.read_text())) == GATED_MEASURED  # the workers' values, saved by the controller
    monkeypatch.setenv("NETZIP_TEST_FLIP_EVERY", "5")
    result = gated.runpytest_subprocess("--netzip", "-n", "2", "--netzip-compare-fail", "top1:0.05")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*--netzip-compare-fail top1:0.05 * FAIL (worse: +0.1 vs saved)"])


def test_ini_keys_set_the_storage_and_the_rules_once(gated: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    gated.makeini("[pytest]\nnetzip = true\nnetzip_storage = runs\nnetzip_compare_fail = top1:0.05\n")
    result = gated.runpytest("--netzip-save", "main")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["netzip: no saved run in *runs to compare with: --netzip-compare-fail checked nothing"])
    assert (gated.path / "runs" / "0001_main.json").exists()
    assert _measured(json.loads((gated.path / "runs" / "0001_main.json").read_text())) == GATED_MEASURED
    monkeypatch.setenv("NETZIP_TEST_FLIP_EVERY", "5")
    gated.runpytest().assert_outcomes(failed=2)


def test_a_rule_measures_its_metric_so_the_next_run_can_compare(gated: pytest.Pytester) -> None:
    gated.runpytest("--netzip", "--netzip-save", "first", "--netzip-compare-fail", "macs:0").assert_outcomes(passed=2)
    first = json.loads(_saved(gated)[0].read_text())
    assert all("macs" in record["metrics"] for record in first["results"])  # no gate asked for MACs
    assert [record["metrics"]["macs"] for record in first["results"]] == [2 * 6 * 512] * 2  # pruning keeps the shapes
    result = gated.runpytest("--netzip", "--netzip-compare-fail", "macs:0", "--netzip-json", "out.json")
    result.assert_outcomes(passed=2)
    result.stdout.no_fnmatch_line("*compared 0 of*")
    for record in json.loads((gated.path / "out.json").read_text())["results"]:
        (compared,) = [budget for budget in record["budgets"] if budget["marker"] == "--netzip-compare-fail"]
        assert (compared["metric"], compared["value"], compared["reference"]) == ("macs", 2 * 6 * 512, 2 * 6 * 512)


def test_a_rule_on_a_metric_unavailable_now_skips_and_keeps_the_table(
    gated: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_netzip.metrics import energy

    monkeypatch.setattr(energy, "POWERCAP", gated.path / "no-powercap")
    monkeypatch.setenv("COLUMNS", "200")
    gated.runpytest("--netzip", "--netzip-save", "main")
    (saved,) = _saved(gated)
    document = json.loads(saved.read_text())
    for record in document["results"]:
        record["metrics"]["energy_mj_per_sample"] = 1.0  # as if saved on a machine with RAPL
    saved.write_text(json.dumps(document))
    result = gated.runpytest("--netzip", "--netzip-compare-fail", "energy_mj_per_sample:50%", "-rs")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["fp16 * 1 mJ (now n/a)", "*netzip cannot measure energy_mj_per_sample (no RAPL*"])


def test_two_rules_on_one_metric_show_the_failing_one(gated: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    gated.runpytest("--netzip", "--netzip-save", "main")
    monkeypatch.setenv("NETZIP_TEST_FLIP_EVERY", "5")
    monkeypatch.setenv("COLUMNS", "200")
    result = gated.runpytest("--netzip", "--netzip-compare-fail", "top1:50%", "--netzip-compare-fail", "top1:0.05")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["fp16 * 0.9000 (-0.1000) [*]", "[*]: over budget, *"])


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--netzip-storage", "afile", "--netzip-save", "x"], "ERROR: --netzip-storage/--netzip-save: the storage folder *afile is a file"),
        (["--netzip-save", "0001"], "ERROR: --netzip-storage/--netzip-save: a run cannot be named '0001': it would read as a counter or as the latest run"),
    ],
)
def test_bad_storage_or_run_names_are_usage_errors(gated: pytest.Pytester, options: list[str], expected: str) -> None:
    (gated.path / "afile").write_text("")
    result = gated.runpytest("--netzip", *options)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([expected])


def test_a_run_is_found_by_the_name_it_was_saved_under(gated: pytest.Pytester) -> None:
    gated.runpytest("--netzip", "--netzip-save", "feature/fast path")
    assert [path.name for path in _saved(gated)] == ["0001_feature-fast-path.json"]
    result = gated.runpytest("--netzip", "--netzip-compare", "feature/fast path")
    result.stdout.fnmatch_lines(["netzip: comparing with *0001_feature-fast-path.json"])
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["variant * top1 *", "reference * 0.9000 *", "fp16 * 0.9000 * 1.86 *",
                                 "prune_l1 * 0.9000 *"], consecutive=True)


NAN_METRIC = """

from pytest_netzip import metric


@metric("wobbly", "a number today, NaN tomorrow")
def wobbly(subject, reference):
    return float("nan")


@pytest.hookimpl(optionalhook=True)
def pytest_netzip_metrics():
    return [wobbly]
"""


def test_a_value_that_is_not_a_number_now_fails_its_rule_saying_so(project: pytest.Pytester) -> None:
    project.makeconftest(project.path.joinpath("conftest.py").read_text() + NAN_METRIC)
    write_test(project, """
        @pytest.mark.netzip(compressors=["fp16"])
        def test_deployable():
            pass
    """)
    saved = {"version": 1, "machine": {}, "results": [
        {"test": "test_model.py::test_deployable[fp16-cpu]", "metrics": {"wobbly": 1.0}}]}
    (project.path / ".netzip").mkdir()
    (project.path / ".netzip" / "0001_main.json").write_text(json.dumps(saved))
    result = project.runpytest("--netzip", "--netzip-compare-fail", "wobbly:0.01")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*--netzip-compare-fail wobbly:0.01*FAIL (now nan, not a finite number, vs saved)"])
