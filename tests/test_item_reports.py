"""What an item's report shows: skips located at the test, and no library debug records in its captured log."""

from __future__ import annotations

import pytest

from tests.helpers import write_test


def test_a_skip_the_plugin_raises_points_at_the_test(project: pytest.Pytester) -> None:
    write_test(project, """
        @pytest.mark.netzip(compressors=["fp16"], devices=["cuda:7"])
        @pytest.mark.agreement(min=0.9)
        def test_deployable():
            pass
        """)
    result = project.runpytest("--netzip", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED [[]1[]] test_model.py:4: cuda:7 is not available*"])
    result.stdout.no_fnmatch_line("*plugin.py*")


def test_a_skip_in_the_test_body_keeps_its_own_line(project: pytest.Pytester) -> None:
    write_test(project, """
        @pytest.mark.netzip(compressors=["fp16"])
        @pytest.mark.agreement(min=0.9)
        def test_deployable():
            pytest.skip("the body's own reason")
        """)
    result = project.runpytest("--netzip", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED [[]1[]] test_model.py:7: the body's own reason"])


def test_library_debug_records_stay_out_of_the_captured_log(project: pytest.Pytester) -> None:
    write_test(project, """
        import logging

        @pytest.mark.netzip(compressors=["int8_static"])
        @pytest.mark.size_ratio(min=1000)
        def test_deployable():
            logging.getLogger("my_model").debug("the test's own debug line")
        """)
    result = project.runpytest("--netzip", "--log-level=DEBUG")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*Captured log call*", "DEBUG*the test's own debug line"])
    result.stdout.no_fnmatch_line("DEBUG    torchao*")
    result.stdout.no_fnmatch_line("DEBUG    torch.*trace*")
