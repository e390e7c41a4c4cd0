"""Under pytest-xdist the summary is that of a serial run, whichever worker measured what."""

from __future__ import annotations

import json

import pytest

from pytest_netzip.output.tables import variant_summaries
from tests.helpers import ACCURACY_TEST, PROJECT_CONFTEST, SIZE_TEST


def _record(test: str, compressor: str, metrics: dict[str, float], reference: dict[str, float]) -> dict[str, object]:
    return {
        "test": test, "model": "M", "device": "cpu", "compressor": compressor, "metrics": metrics,
        "reference": {"metrics": reference}, "budgets": [],
    }


def test_ratios_measured_by_other_items_combine_into_p_and_ocs() -> None:
    """As two xdist workers report them: one item measured top1, another the sizes."""
    records = [
        _record("t::acc[fp16-cpu]", "fp16", {"top1": 0.45}, {"top1": 0.5}),
        _record("t::size[fp16-cpu]", "fp16", {"size_ratio": 2.0}, {"size_ratio": 1.0}),
    ]
    summary = {variant["compressor"]: variant["metrics"] for variant in variant_summaries(records)}
    assert summary["fp16"]["performance_ratio"] == pytest.approx(0.9)
    assert summary["fp16"]["ocs"] == pytest.approx(0.9 * ((0.9 - 1) + (2.0 - 1)))  # P (l1 (P-1) + l3 (C-1))
    assert summary["reference"]["performance_ratio"] == 1.0
    assert summary["reference"]["ocs"] == 0.0


def test_xdist_summarises_as_a_serial_run_does(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    pytester.makeconftest(PROJECT_CONFTEST)
    pytester.makepyfile(test_accuracy=ACCURACY_TEST, test_size=SIZE_TEST)
    summaries = {}
    for name, args in (("serial", ()), ("xdist", ("-n", "2", "--dist", "loadfile"))):
        result = pytester.runpytest_subprocess("--netzip", "--netzip-json", f"{name}.json", *args)
        result.assert_outcomes(passed=4)
        document = json.loads((pytester.path / f"{name}.json").read_text())
        summaries[name] = {  # every figure but the time compression took
            variant["compressor"]: {k: v for k, v in variant["metrics"].items() if k != "compress_seconds"}
            for variant in document["variants"]
        }
    assert summaries["xdist"] == summaries["serial"]
    assert summaries["xdist"]["fp16"]["performance_ratio"] == pytest.approx(1.0)
    assert "ocs" in summaries["xdist"]["prune_l1"]


def test_notes_a_worker_makes_reach_the_summary_once(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    pytester.makeconftest(PROJECT_CONFTEST)
    pytester.makepyfile(test_stray="""
        import pytest

        @pytest.mark.size_ratio(min=2)
        def test_stray():
            pass

        def test_plain():
            pass
        """)
    result = pytester.runpytest_subprocess("--netzip", "-n", "2", "--netzip-compressors", "int8_static")
    result.assert_outcomes(passed=2)
    stray = "netzip: test_stray.py::test_stray has @pytest.mark.size_ratio but no @pytest.mark.netzip(*): netzip does not check it"
    result.stdout.fnmatch_lines([stray])
    assert sum("does not check it" in line for line in result.stdout.lines) == 1  # every worker collects it
    assert sum("no collected test uses int8_static" in line for line in result.stdout.lines) == 1
    misspelt = pytester.runpytest_subprocess("--netzip", "-n", "2", "--netzip-compressors", "int9")
    assert misspelt.ret == pytest.ExitCode.USAGE_ERROR  # found by the workers, which must not crash xdist
    misspelt.stdout.no_fnmatch_line("*INTERNALERROR*")
    misspelt.stdout.fnmatch_lines(["netzip: ERROR: --netzip-compressors: unknown compressor 'int9' (valid: bf16, *)"])
    assert sum("unknown compressor 'int9'" in line for line in misspelt.stdout.lines) == 1  # each worker found it
    misspelt.stdout.no_fnmatch_line("*no collected test uses int9*")
    misspelt.assert_outcomes()  # as in a serial run, no test ran
    misspelt.stdout.fnmatch_lines(["*no tests ran in*"])
