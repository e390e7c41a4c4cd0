"""Each threshold marker passes, fails with one readable message, and skips what it cannot measure."""

from __future__ import annotations

import pytest

from tests.helpers import write_test


def run(project: pytest.Pytester, source: str, *args: str) -> pytest.RunResult:
    write_test(project, source)
    return project.runpytest("--netzip", "-p", "no:cacheprovider", *args)


#: The summary table of each faithful run: every compressor keeps Signed's predictions, so each matches the
#: reference (top-1 0.9, macro F1 0.9069, agreement 1); half precision stores 2 bytes a weight, int8 1.
FAITHFUL_TABLES = {
    "accuracy_drop(max=0.0)": [
        "variant * top1", "reference * 0.9000", "bf16 * 0.9000", "fp16 * 0.9000", "int8_dynamic * 0.9000",
    ],
    "accuracy_drop(max=0.0, metric='f1', max_class_drop=0.0)": [
        "variant * f1", "reference * 0.9069", "bf16 * 0.9069", "fp16 * 0.9069", "int8_dynamic * 0.9069",
    ],
    "agreement(min=1.0, max_negative_flips=0.0)": [
        "variant * agreement * negative_flip_rate", "reference * 1.0000 * 0.0000", "bf16 * 1.0000 * 0.0000",
        "fp16 * 1.0000 * 0.0000", "int8_dynamic * 1.0000 * 0.0000",
    ],
    "size_ratio(min=1.5, max_mb=0.05)": [
        "variant * size_bytes * size_ratio", "reference * kB * 1", "bf16 * kB (0.54x) * 1.86",
        "fp16 * kB (0.54x) * 1.86", "int8_dynamic * kB (0.46x) * 2.16",
    ],
}


@pytest.mark.parametrize(
    "marker",
    [
        "accuracy_drop(max=0.0)",
        "accuracy_drop(max=0.0, metric='f1', max_class_drop=0.0)",
        "agreement(min=1.0, max_negative_flips=0.0)",
        "size_ratio(min=1.5, max_mb=0.05)",
    ],
)
def test_a_faithful_compression_meets_its_budget(project: pytest.Pytester, marker: str) -> None:
    result = run(project, f"""
        @pytest.mark.netzip(compressors=["fp16", "bf16", "int8_dynamic"])
        @pytest.mark.{marker}
        def test_deployable():
            pass
        """)
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(FAITHFUL_TABLES[marker], consecutive=True)


def test_accuracy_drop_fails_with_every_threshold_in_one_message(project: pytest.Pytester) -> None:
    result = run(project, """
        @pytest.mark.netzip(compressors=["negate"])
        @pytest.mark.accuracy_drop(max=0.05, max_class_drop=0.1)
        @pytest.mark.agreement(min=0.5)
        @pytest.mark.size_ratio(min=0.5)
        def test_deployable():
            pass
        """)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*netzip budgets of negate on cpu: 3 of 4 failed",
        "*marker*threshold*measured*reference*verdict",
        "*accuracy_drop(max=0.05)*top1 drop <= 0.05*0.0000*0.9000*FAIL (drop 0.9000)",
        "*accuracy_drop(max_class_drop=0.1)*class_accuracy drop <= 0.1*0.0000*1.0000*FAIL (drop 1.0000 in class *",
        "*agreement(min=0.5)*agreement >= 0.5*0.0000*1.0000*FAIL",
        "*size_ratio(min=0.5)*size_ratio >= 0.5*1*1*pass",
    ])


def test_agreement_negative_flips_fail(project: pytest.Pytester) -> None:
    result = run(project, """
        @pytest.mark.netzip(compressors=["negate"])
        @pytest.mark.agreement(max_negative_flips=0.5)
        def test_deployable():
            pass
        """)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*agreement(max_negative_flips=0.5)*negative_flip_rate <= 0.5*0.9000*0.0000*FAIL"])


def test_size_ratio_fails_on_ratio_and_absolute_size(project: pytest.Pytester) -> None:
    result = run(project, """
        @pytest.mark.netzip(compressors=["prune_l1"])
        @pytest.mark.size_ratio(min=1.5, max_mb=0.01)
        def test_deployable():
            pass
        """)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*size_ratio(min=1.5)*size_ratio >= 1.5*FAIL",
        "*size_ratio(max_mb=0.01)*size_bytes <= 0.01 MB*kB*kB*FAIL (0.0* MB)",
    ])


def test_int8_and_fp16_shrink_the_model(project: pytest.Pytester) -> None:
    result = run(project, """
        @pytest.mark.netzip(compressors=["int8_dynamic", "fp16", "bf16"])
        @pytest.mark.size_ratio(min=1.8)
        def test_deployable(netzip_result):
            assert netzip_result.metrics["size_bytes"] < netzip_result.reference_metrics["size_bytes"]
        """)
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(FAITHFUL_TABLES["size_ratio(min=1.5, max_mb=0.05)"], consecutive=True)


def test_the_body_can_read_more_metrics(project: pytest.Pytester) -> None:
    result = run(project, """
        @pytest.mark.netzip(compressors=["prune_l1"])
        def test_deployable(netzip_result, netzip_compressed, netzip_compressor, netzip_device):
            metrics = netzip_result.metrics
            assert metrics["top1"] == pytest.approx(0.9)
            assert metrics["agreement"] == 1.0
            assert metrics["params"] == 2 * 6 * 512
            assert metrics["nonzero_params"] == 6 * 512  # magnitude pruning at 0.5 took the smaller half
            assert metrics["sparsity"] == 0.5
            assert netzip_compressor.name == "prune_l1" and netzip_device.type == "cpu"
            assert netzip_compressed.down.weight.count_nonzero() == 12 + 48  # its identity, and 48 spare weights
        """)
    result.assert_outcomes(passed=1)


def test_a_failing_body_still_shows_the_budgets(project: pytest.Pytester) -> None:
    result = run(project, """
        @pytest.mark.netzip(compressors=["fp16"])
        @pytest.mark.agreement(min=0.99)
        def test_deployable(netzip_result):
            assert netzip_result.metrics["top1"] > 0.95
        """)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*assert 0.9* > 0.95", "*netzip budgets call*", "*agreement >= 0.99*pass"])


UNAVAILABLE = """
from pytest_netzip import MetricUnavailable, metric

@metric("robust", "needs a counter this machine lacks", unit="share")
def robust(subject, reference):
    raise MetricUnavailable("no counter on this machine")

def pytest_netzip_metrics():
    return [robust]
"""


@pytest.mark.parametrize(
    ("args", "outcome", "expected"),
    [
        (("-rs",), "skipped", "SKIPPED*netzip cannot measure robust (no counter on this machine)"),
        (("--netzip-strict",), "failed", "*netzip cannot measure robust (no counter on this machine) (--netzip-strict)"),
    ],
)
def test_an_unmeasurable_metric_skips_or_fails_under_strict(
    project: pytest.Pytester, args: tuple[str, ...], outcome: str, expected: str
) -> None:
    (project.path / "conftest.py").write_text((project.path / "conftest.py").read_text() + UNAVAILABLE)
    result = run(project, """
        @pytest.mark.netzip(compressors=["fp16"])
        @pytest.mark.accuracy_drop(max=0.01, metric="robust")
        def test_deployable():
            pass
        """, *args)
    result.assert_outcomes(**{outcome: 1})
    result.stdout.fnmatch_lines([expected])


def test_an_absent_device_skips_with_the_reason(project: pytest.Pytester) -> None:
    result = run(project, """
        @pytest.mark.netzip(compressors=["fp16"], devices=["cpu", "cuda:99"])
        @pytest.mark.agreement(min=0.9)
        def test_deployable():
            pass
        """, "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["Signed on cpu *", "variant * agreement", "reference * 1.0000", "fp16 * 1.0000"])
    result.stdout.fnmatch_lines(["SKIPPED*cuda:99 is not available*"])
