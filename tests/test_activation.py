"""The plugin is off without --netzip, costs no torch import then, and names its items readably."""

from __future__ import annotations

import json

import pytest
import torch

from tests.helpers import write_test

TEST = """
@pytest.mark.netzip(compressors=["fp16", "int8_dynamic"])
@pytest.mark.accuracy_drop(max=0.01)
def test_deployable(netzip_result):
    pass

def test_plain():
    pass
"""


def test_netzip_tests_skip_without_the_flag(project: pytest.Pytester) -> None:
    write_test(project, TEST)
    result = project.runpytest("-rs")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(["SKIPPED [[]2[]] test_model.py:*: needs --netzip"])


def test_each_compressor_and_device_is_an_item_with_a_readable_id(project: pytest.Pytester) -> None:
    write_test(project, TEST)
    result = project.runpytest("--co", "-q")
    result.stdout.fnmatch_lines(
        ["test_model.py::test_deployable[[]fp16-cpu[]]", "test_model.py::test_deployable[[]int8_dynamic-cpu[]]"]
    )


def test_without_the_flag_torch_is_never_imported(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import sys
        import pytest

        @pytest.fixture(scope="session")
        def netzip_model():
            import torch
            return torch.nn.Linear(2, 2)

        def pytest_unconfigure():
            print("torch imported:", "torch" in sys.modules)
        """
    )
    write_test(pytester, TEST)
    result = pytester.runpytest_subprocess("-s")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(["torch imported: False"])


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_lists_every_netzip_option(pytester: pytest.Pytester, flag: str) -> None:
    """argparse %-formats option help: a literal % in ours once broke ``pytest --help`` in every project."""
    from pytest_netzip.settings import _OPTIONS

    result = pytester.runpytest(flag)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["compressed-model budgets (pytest-netzip):"])
    result.stdout.fnmatch_lines(["*metric:10% (relative)*"])
    for option, key, _, _ in _OPTIONS:
        result.stdout.fnmatch_lines([f"  {option}*"])
        result.stdout.fnmatch_lines([f"  {key} *"])


def test_disabling_the_plugin_by_name(project: pytest.Pytester) -> None:
    write_test(project, "def test_plain():\n    pass\n")
    project.runpytest("-p", "no:netzip").assert_outcomes(passed=1)


def test_ini_key_switches_the_plugin_on(project: pytest.Pytester) -> None:
    project.makeini("[pytest]\nnetzip = true\n")
    write_test(project, TEST)
    result = project.runpytest()
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["variant * top1", "reference * 0.9000", "fp16 * 0.9000", "int8_dynamic * 0.9000"],
                                consecutive=True)


def test_threads_are_set_and_reported(project: pytest.Pytester) -> None:
    write_test(project, """
        import torch

        @pytest.mark.netzip(compressors=["fp16"])
        def test_deployable(netzip_result):
            assert netzip_result.metrics["top1"] > 0
            assert torch.get_num_threads() == 1
        """)
    result = project.runpytest_subprocess("--netzip", "--netzip-threads", "1", "--netzip-json", "out.json")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["Signed on cpu (1 CPU thread)"])
    assert json.loads((project.path / "out.json").read_text())["results"][0]["threads"] == 1


def test_auto_expands_to_the_devices_present(project: pytest.Pytester) -> None:
    write_test(project, TEST)
    result = project.runpytest("--co", "-q", "--netzip", "--netzip-devices", "auto")
    expected = ["cpu"] + (["cuda"] if torch.cuda.is_available() else []) + (
        ["mps"] if torch.backends.mps.is_available() else []
    )
    result.stdout.fnmatch_lines([f"test_model.py::test_deployable[[]fp16-{device}[]]" for device in expected])
    assert f"{len(expected) * 2 + 1} tests collected" in result.stdout.str()
