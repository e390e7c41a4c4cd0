"""Bad markers are errors of their test's items, bad options usage errors, each naming the test, the bad word and the choices."""

from __future__ import annotations

import json
import sys

import pytest

from tests.helpers import write_test


@pytest.mark.parametrize(
    ("markers", "expected"),
    [
        (
            '@pytest.mark.netzip(compressors=["int8"])',
            "*test_deployable: unknown compressor 'int8': did you mean 'int8_qat'? (valid: bf16, *fp16*)",
        ),
        (
            '@pytest.mark.netzip(compressors=["fp16"], devices=["gpu"])',
            "*test_deployable: unknown device 'gpu' (valid: auto, cpu, cuda, cuda:N, mps)",
        ),
        (
            '@pytest.mark.netzip(compressors=[])',
            "*test_deployable: @pytest.mark.netzip(compressors=[]) names no compressor",
        ),
        (
            '@pytest.mark.netzip(["fp16"])',
            "*test_deployable: @pytest.mark.netzip takes the keywords compressors=[[]...[]], devices=[[]...[]] and task=..., "
            "got positional (*fp16*,)",
        ),
        (
            '@pytest.mark.netzip(compressor=["fp16"])',
            "*test_deployable: @pytest.mark.netzip: unknown keyword 'compressor': did you mean 'compressors'? *",
        ),
        (
            '@pytest.mark.netzip(compressors=["fp16", "fp16"])',
            "*test_deployable: @pytest.mark.netzip lists fp16-cpu more than once",
        ),
        (
            '@pytest.mark.netzip(compressors=["fp16"])\n@pytest.mark.accuracy_drop(maxx=0.01)',
            "*test_deployable: accuracy_drop: unknown keyword 'maxx': did you mean 'max'? "
            "(valid: max, max_class_drop, metric)",
        ),
        (
            '@pytest.mark.netzip(compressors=["fp16"])\n@pytest.mark.accuracy_drop(metric="top1")',
            "*test_deployable: accuracy_drop: missing 1 required keyword-only argument: 'max'",
        ),
        (
            '@pytest.mark.netzip(compressors=["fp16"])\n@pytest.mark.accuracy_drop(max=0.01, metric="top_1")',
            "*test_deployable: accuracy_drop(metric=...): unknown metric 'top_1': did you mean 'top1'? *",
        ),
        (
            '@pytest.mark.netzip(compressors=["fp16"])\n@pytest.mark.accuracy_drop(max=-0.01)',
            "*test_deployable: accuracy_drop(max=-0.01) is impossible: a share must lie in [[]0, 1[]]",
        ),
        (
            '@pytest.mark.netzip(compressors=["fp16"])\n@pytest.mark.agreement(min=1.5)',
            "*test_deployable: agreement(min=1.5) is impossible: a share must lie in [[]0, 1[]]",
        ),
        (
            '@pytest.mark.netzip(compressors=["fp16"])\n@pytest.mark.size_ratio(min=0)',
            "*test_deployable: size_ratio(min=0) is impossible: it must be positive",
        ),
        (
            '@pytest.mark.netzip(compressors=["fp16"])\n@pytest.mark.size_ratio(min="big")',
            "*test_deployable: size_ratio(min='big') must be a number",
        ),
        (
            '@pytest.mark.netzip(compressors=["fp16"])\n@pytest.mark.agreement()',
            "*test_deployable: agreement sets no threshold: give at least one of min, max_negative_flips",
        ),
        (
            '@pytest.mark.netzip(compressors=["fp16"])\n@pytest.mark.agreement(0.9)',
            "*test_deployable: agreement takes keywords only (min, max_negative_flips), got (0.9,)",
        ),
        (
            '@pytest.mark.netzip(compressors=["fp16"])\n@pytest.mark.compute_budget(max_ratio=0.5, metric="flops")',
            "*test_deployable: compute_budget(metric=...): unknown metric 'flops'*(valid: chats, effective_macs, macs)",
        ),
        (
            '@pytest.mark.netzip(compressors=["fp16"])\n@pytest.mark.compute_budget(max_macs=-1)',
            "*test_deployable: compute_budget(max_macs=-1) is impossible: it must be positive",
        ),
        (
            '@pytest.mark.netzip(compressors=["fp16"])\n@pytest.mark.latency_budget(p95_ms=5, batch_size=0)',
            "*test_deployable: latency_budget(batch_size=0) must be a whole number from 1 to 1,048,576",
        ),
        (
            '@pytest.mark.netzip(compressors=["fp16"])\n@pytest.mark.latency_budget(max_slowdown=-1)',
            "*test_deployable: latency_budget(max_slowdown=-1) is impossible: it must be positive",
        ),
        (
            '@pytest.mark.netzip(compressors=["fp16"])\n@pytest.mark.latency_budget(p90_ms=5)',
            "*test_deployable: latency_budget: unknown keyword 'p90_ms': did you mean 'p99_ms'? (valid: batch_size, max_slowdown, min_speedup, p50_ms, p95_ms, p99_ms)",
        ),
        (
            '@pytest.mark.netzip(compressors=["fp16"])\n@pytest.mark.memory_budget()',
            "*test_deployable: memory_budget: missing 1 required keyword-only argument: 'max_mb'",
        ),
        (
            '@pytest.mark.netzip(compressors=["fp16"])\n@pytest.mark.energy_budget(min_efficiency=0)',
            "*test_deployable: energy_budget(min_efficiency=0) is impossible: it must be positive",
        ),
        (
            '@pytest.mark.netzip(compressors=["fp16"])\n@pytest.mark.latency_budget(p50_ms=5, batch_size=2)\n'
            '@pytest.mark.memory_budget(max_mb=1, batch_size=4)',
            "*test_deployable: latency_budget(batch_size=2), memory_budget(batch_size=4): latency, memory and "
            "energy are measured on one batch size",
        ),
        (
            '@pytest.mark.netzip(compressors=["fp16"])\n@pytest.mark.latency_budget(p50_ms=5)\n'
            '@pytest.mark.benchmark(max_time=[1])',
            "*test_deployable: @pytest.mark.benchmark(max_time=[[]1[]]): netzip's timing needs a number of seconds > 0, at most 3600",
        ),
        (
            '@pytest.mark.netzip(compressors=["fp16"])\n@pytest.mark.latency_budget(p50_ms=5)\n'
            '@pytest.mark.benchmark(timer="nowhere.clock")',
            "*test_deployable: @pytest.mark.benchmark(timer='nowhere.clock'): cannot load it (*)",
        ),
        (
            '@pytest.mark.netzip(compressors=["fp16"])\n@pytest.mark.accuracy_drop(max=10**400)',
            "*test_deployable: accuracy_drop(max=10000000... (401 digits)) must be a finite number",
        ),
        (
            '@pytest.mark.netzip(compressors=["fp16"])\n@pytest.mark.size_ratio(min=float("inf"))',
            "*test_deployable: size_ratio(min=inf) must be a finite number",
        ),
        (
            '@pytest.mark.netzip(compressors=["fp16"], devices=["cuda:99999999999999999999"])',
            "*test_deployable: device 'cuda:99999999999999999999' is out of range: torch numbers devices from 0 to 127",
        ),
        (
            '@pytest.mark.netzip(compressors=["fp16"])\n@pytest.mark.latency_budget(p95_ms=9, batch_size=10**400)',
            "*test_deployable: latency_budget(batch_size=10000000... (401 digits)) must be a whole number from 1 to 1,048,576",
        ),
        (
            '@pytest.mark.netzip(compressors=["fp16"])\n@pytest.mark.latency_budget(p95_ms=9)\n'
            '@pytest.mark.benchmark(max_time=float("inf"))',
            "*test_deployable: @pytest.mark.benchmark(max_time=inf): netzip's timing needs a number of seconds > 0, at most 3600",
        ),
        (
            '@pytest.mark.netzip(compressors=["fp16"])\n@pytest.mark.latency_budget(p95_ms=9)\n'
            '@pytest.mark.benchmark(min_rounds=3)\n@pytest.mark.benchmark(max_time=0.5)',
            "*test_deployable: @pytest.mark.benchmark is given 2 times (on the test, its class or its module): give one",
        ),
        (
            '@pytest.mark.netzip(compressors=["fp16"], devices=[])',
            "*test_deployable: @pytest.mark.netzip(devices=[[][]]) names no device: list some, or leave devices out *",
        ),
        (
            '@pytest.mark.netzip(compressors=["fp16"])\n@pytest.mark.netzip(compressors=["bf16"])',
            "*test_deployable: @pytest.mark.netzip is given 2 times (on the test, its class or its module): give one*",
        ),
        (
            '@pytest.mark.netzip(compressors=["fp16"])\n@pytest.mark.latency_budget(p50_ms=5, batch_size=2)\n'
            '@pytest.mark.latency_budget(p95_ms=9, batch_size=8)',
            "*test_deployable: latency_budget(batch_size=2), latency_budget(batch_size=8): latency, memory and "
            "energy are measured on one batch size",
        ),
    ],
)
def test_a_bad_marker_errors_its_own_items_and_the_rest_runs(
    project: pytest.Pytester, markers: str, expected: str
) -> None:
    write_test(project, f"""
        {markers}
        def test_deployable():
            pass

        def test_plain():
            pass

        @pytest.mark.netzip(compressors=["fp16"])
        @pytest.mark.agreement(min=0.9)
        def test_good():
            pass
        """.replace("\n@", "\n        @"))
    for args, outcomes in (((), {"passed": 1, "skipped": 1}), (("--netzip",), {"passed": 2})):
        result = project.runpytest(*args)
        result.assert_outcomes(errors=1, **outcomes)
        assert result.ret == pytest.ExitCode.TESTS_FAILED
        result.stdout.fnmatch_lines(["*ERROR at setup of test_deployable*", expected])
        result.stdout.no_fnmatch_line("*INTERNALERROR*")
        result.stdout.no_fnmatch_line("*Traceback*")
        result.stdout.no_fnmatch_line("*Interrupted*")


def test_every_bad_marker_of_a_module_is_reported(project: pytest.Pytester) -> None:
    write_test(project, """
        @pytest.mark.netzip(compressors=["int9"])
        def test_first():
            pass

        @pytest.mark.netzip(compressors=["fp16"])
        @pytest.mark.agreement(min=2)
        @pytest.mark.size_ratio(mni=3)
        def test_second():
            pass
        """)
    result = project.runpytest("--netzip")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines_random([
        "*test_first: unknown compressor 'int9'*",
        "*test_second: agreement(min=2) is impossible: a share must lie in [[]0, 1[]]",
        "*test_second: size_ratio: unknown keyword 'mni': did you mean 'min'? *",
    ])


def test_every_bad_compressor_and_device_is_reported(project: pytest.Pytester) -> None:
    write_test(project, """
        @pytest.mark.netzip(compressors=["fp16", "nosuch", "int9"], devices=["cuda:999", "gpu"])
        def test_deployable():
            pass
        """)
    result = project.runpytest("--netzip")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "test_model.py::test_deployable: unknown compressor 'nosuch'*",
        "test_model.py::test_deployable: unknown compressor 'int9'*",
        "test_model.py::test_deployable: device 'cuda:999' is out of range*",
        "test_model.py::test_deployable: unknown device 'gpu'*",
    ])


def test_a_bad_marker_on_an_xfail_test_is_still_an_error(project: pytest.Pytester) -> None:
    write_test(project, """
        @pytest.mark.xfail(reason="known to be slow")
        @pytest.mark.netzip(compressors=["fp16"])
        @pytest.mark.agreement(mn=0.99)
        def test_deployable():
            pass
        """)
    for args in ((), ("--netzip",)):
        result = project.runpytest(*args, "-rxX")
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(["*test_deployable: agreement: unknown keyword 'mn'*"])


def test_a_good_test_runs_by_its_node_id_beside_a_bad_marker(project: pytest.Pytester) -> None:
    write_test(project, """
        @pytest.mark.netzip(compressors=["int9"])
        def test_bad():
            pass

        def test_plain():
            pass
        """)
    project.runpytest("test_model.py::test_plain").assert_outcomes(passed=1)
    project.runpytest("--netzip", "test_model.py::test_bad").assert_outcomes(errors=1)


def test_devices_none_means_the_default_devices(project: pytest.Pytester) -> None:
    write_test(project, """
        @pytest.mark.netzip(compressors=["fp16"], devices=None)
        @pytest.mark.agreement(min=0.9)
        def test_deployable():
            pass
        """)
    result = project.runpytest("--netzip", "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*test_deployable[[]fp16-cpu[]] PASSED*"])
    result.stdout.fnmatch_lines(["Signed on cpu *", "variant * agreement", "reference * 1.0000", "fp16 * 1.0000"])


@pytest.mark.parametrize("registered", [False, True])
def test_a_threshold_marker_without_the_netzip_marker_is_not_touched(
    project: pytest.Pytester, registered: bool
) -> None:
    """A project's own ``agreement`` marker is its business; under --netzip a stray one is at most a note."""
    if registered:
        project.makeini("[pytest]\nmarkers =\n    agreement(min): the project's own marker\n")
    write_test(project, """
        @pytest.mark.agreement(min=0.9)
        def test_own_marker(request):
            assert request.node.get_closest_marker("agreement").kwargs == {"min": 0.9}
        """)
    project.runpytest("--strict-markers").assert_outcomes(passed=1)
    result = project.runpytest("--netzip")
    result.assert_outcomes(passed=1)
    note = "netzip: test_model.py::test_own_marker has @pytest.mark.agreement but no @pytest.mark.netzip(*): netzip does not check it"
    if registered:
        result.stdout.no_fnmatch_line("*netzip does not check it*")
    else:
        result.stdout.fnmatch_lines([note])


def test_a_compressor_filter_that_matches_nothing_says_so(project: pytest.Pytester) -> None:
    write_test(project, '@pytest.mark.netzip(compressors=["fp16"])\ndef test_deployable():\n    pass\n')
    result = project.runpytest("--netzip", "--netzip-compressors", "int8_static")
    result.assert_outcomes(deselected=1)
    result.stdout.fnmatch_lines(["netzip: --netzip-compressors: no collected test uses int8_static"])
    unknown = project.runpytest("--netzip", "--netzip-compressors", "int8")  # no compressor's name: a usage error
    assert unknown.ret == pytest.ExitCode.USAGE_ERROR
    unknown.stderr.fnmatch_lines(["ERROR: --netzip-compressors: unknown compressor 'int8'*(valid: bf16, *)"])


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("--netzip-max-samples=0", "*--netzip-max-samples takes a whole number >= 1, got '0'"),
        ("--netzip-seed=abc", f"*--netzip-seed takes a whole number from 0 to {2**64 - 1}, got 'abc'"),
        ("--netzip-devices=gpu", "*--netzip-devices: unknown device 'gpu' (valid: auto, cpu, cuda, cuda:N, mps)"),
        ("--netzip-threads=0", "*--netzip-threads takes a whole number from 1 to 1024, got '0'"),
        ("--netzip-threads=100000", "*--netzip-threads takes a whole number from 1 to 1024, got '100000'"),
        ("--netzip-ocs-weights=1,2", "*--netzip-ocs-weights takes four finite numbers >= 0, the weights of P, S, C and E*'1,2'"),
        ("--netzip-ocs-weights=nan,1,1,1", "*--netzip-ocs-weights takes four finite numbers >= 0*'nan,1,1,1'"),
        ("--netzip-ocs-weights=1,-1,1,1", "*--netzip-ocs-weights takes four finite numbers >= 0*'1,-1,1,1'"),
        (f"--netzip-seed={2**64}", f"*--netzip-seed takes a whole number from 0 to {2**64 - 1}, got '{2**64}'"),
        ("--netzip-json=a\0b.json", "*--netzip-json: the path 'a\\x00b.json' holds a NUL character"),
        (
            "--netzip-save=" + "r" * 201,
            "*--netzip-storage/--netzip-save: a run name holds at most 200 characters; 'rrrrrrrrrrrrrrrrrrrr'... has 201",
        ),
    ],
)
def test_a_bad_option_value_is_a_usage_error(project: pytest.Pytester, option: str, expected: str) -> None:
    write_test(project, "def test_plain():\n    pass\n")
    result = project.runpytest("--netzip", option)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([expected])


@pytest.mark.parametrize("fixture", ["netzip_model", "netzip_data"])
def test_a_missing_user_fixture_says_what_to_define(pytester: pytest.Pytester, fixture: str) -> None:
    other = {"netzip_model": "netzip_data", "netzip_data": "netzip_model"}[fixture]
    pytester.makeconftest(f"""
        import pytest, torch
        @pytest.fixture(scope="session")
        def {other}():
            return torch.nn.Linear(2, 2) if "{other}" == "netzip_model" else [(torch.ones(1, 2), torch.zeros(1))]
        """)
    write_test(pytester, '@pytest.mark.netzip(compressors=["fp16"])\ndef test_deployable():\n    pass\n')
    result = pytester.runpytest("--netzip")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*Define a fixture `{fixture}` in the conftest.py beside your tests*"])


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("iter([(torch.ones(1, 6), torch.zeros(1))])", "*netzip_data must be iterable more than once*"),
        ("[torch.ones(1, 6)]", "*netzip_data batch 0 is a float32 tensor of shape (1, 6); expected (inputs, targets), "
                               "or a dict holding the targets under 'labels'"),
        ("[]", "*netzip_data yielded no batches"),
        ("None", "*netzip_data returned NoneType None; it must return a re-iterable of (inputs, targets) batches*"),
        ("7", "*netzip_data returned int 7; it must return a re-iterable of (inputs, targets) batches*"),
        (
            "[(__import__('numpy').ones((2, 6), dtype='float32'), torch.zeros(2, dtype=torch.long))]",
            "*netzip_data batch 0: the inputs hold a numpy.ndarray; models take torch tensors: convert it with "
            "torch.as_tensor(...) in netzip_data",
        ),
    ],
)
def test_bad_data_is_a_clear_failure(project: pytest.Pytester, data: str, expected: str) -> None:
    write_test(project, f"""
        import torch

        @pytest.fixture(scope="session")
        def netzip_data():
            return {data}

        @pytest.mark.netzip(compressors=["fp16"])
        @pytest.mark.agreement(min=0.9)
        def test_deployable():
            pass
        """)
    result = project.runpytest("--netzip")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([expected])
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


def test_a_compressor_that_returns_no_model_is_one_message(project: pytest.Pytester) -> None:
    project.makeconftest(project.path.joinpath("conftest.py").read_text() + """

class Forgetful(Compressor):
    name = "forgetful"

    def transform(self, model, ctx):
        model.down.weight.data.mul_(1)


@pytest.hookimpl(optionalhook=True)
def pytest_netzip_compressors():
    return [Forgetful]
""")
    write_test(project, """
        @pytest.mark.netzip(compressors=["forgetful"])
        @pytest.mark.agreement(min=0.9)
        def test_deployable():
            pass
        """)
    result = project.runpytest("--netzip")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "netzip: compressor forgetful returned NoneType, not an nn.Module: its transform must return the compressed "
        "model (the full traceback: --netzip-traceback or -vv)",
    ])
    result.stdout.no_fnmatch_line("*AttributeError*")


@pytest.mark.parametrize(
    ("failing", "expected"),
    [
        (
            "explode",
            "netzip: compressor explode failed on Signed: RuntimeError: cannot compress layer 'down' "
            "(at conftest.py:*, in transform) (the full traceback: --netzip-traceback or -vv)",
        ),
        (
            "prune_l1+explode",
            "netzip: compressor prune_l1+explode failed at its step explode on Signed: RuntimeError: cannot compress "
            "layer 'down' (at conftest.py:*, in transform)*",
        ),
    ],
)
def test_a_failing_compressor_errors_that_item_only(project: pytest.Pytester, failing: str, expected: str) -> None:
    write_test(project, f"""
        @pytest.mark.netzip(compressors=["{failing}", "fp16"])
        @pytest.mark.agreement(min=0.9)
        def test_deployable():
            pass
        """)
    result = project.runpytest("--netzip")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([expected])
    result.stdout.fnmatch_lines(["variant * agreement", "reference * 1.0000", "fp16 * 1.0000"], consecutive=True)
    result.stdout.no_fnmatch_line("*plugin.py*")  # one message, not a traceback through the plugin
    result.stdout.no_fnmatch_line("*raise RuntimeError*")
    for asked in ("--netzip-traceback", "-vv"):
        project.runpytest("--netzip", asked).stdout.fnmatch_lines(["*raise RuntimeError(\"cannot compress layer 'down'\")*"])


def test_items_that_end_before_measuring_are_in_the_json_with_why(project: pytest.Pytester) -> None:
    write_test(project, """
        @pytest.mark.netzip(compressors=["explode", "fp16"], devices=["cpu", "mps"])
        @pytest.mark.agreement(min=0.9)
        def test_deployable():
            pass

        @pytest.mark.netzip(compressors=["fp16"])
        @pytest.mark.agreement(mni=0.9)
        def test_misspelt():
            pass
        """)
    result = project.runpytest("--netzip", "--netzip-json", "out.json", "--netzip-save", "run")
    result.assert_outcomes(passed=1, skipped=2, errors=2)
    document = json.loads((project.path / "out.json").read_text())
    records = {record["test"].split("::")[1]: record for record in document["results"]}
    assert {name: record["outcome"] for name, record in records.items()} == {
        "test_deployable[explode-cpu]": "error", "test_deployable[fp16-cpu]": "passed",
        "test_deployable[explode-mps]": "skipped", "test_deployable[fp16-mps]": "skipped",
        "test_misspelt[fp16-cpu]": "error",
    }
    assert records["test_deployable[explode-cpu]"]["reason"].startswith(
        "netzip: compressor explode failed on Signed: RuntimeError: cannot compress layer 'down'")
    assert records["test_deployable[fp16-mps]"]["reason"] == "mps is not available on this machine"
    assert "mni" in records["test_misspelt[fp16-cpu]"]["reason"]
    assert records["test_deployable[explode-cpu]"]["model"] == "Signed"
    assert all(not record["metrics"] for name, record in records.items() if record["outcome"] != "passed")
    assert [variant["compressor"] for variant in document["variants"]] == ["reference", "fp16"]  # the measured only
    merged = project.run(sys.executable, "-m", "pytest_netzip", "merge", "out.json", "--out", "both.json")
    assert merged.ret == 0, merged.stdout.str() + merged.stderr.str()


@pytest.mark.filterwarnings("default::pytest.PytestUnknownMarkWarning")  # what pytest gives the project's runs
def test_a_misspelt_netzip_marker_is_an_error_of_its_test_not_a_warning(project: pytest.Pytester) -> None:
    project.makeini("[pytest]\nmarkers =\n    latency_budgets: the project's own, registered\n")
    write_test(project, """
        @pytest.mark.netzip(compressors=["fp16"])
        @pytest.mark.acuracy_drop(max=0.05)
        def test_misspelt():
            pass

        @pytest.mark.netzip(compressors=["fp16"])
        @pytest.mark.size_ratio(min=1.5)
        @pytest.mark.latency_budgets
        @pytest.mark.slow
        def test_fine():
            pass
        """)
    for args in (["--netzip"], []):
        result = project.runpytest(*args)
        result.assert_outcomes(**({"passed": 1} if args else {"skipped": 1}), errors=1)
        result.stdout.fnmatch_lines([
            "test_model.py::test_misspelt: unknown marker 'acuracy_drop': did you mean 'accuracy_drop'? "
            "(netzip's markers: accuracy_drop, *)",
        ])
        result.stdout.no_fnmatch_line("*latency_budgets*did you mean*")


def test_a_misspelt_metric_read_in_a_body_fails_at_the_tests_line(project: pytest.Pytester) -> None:
    write_test(project, """
        @pytest.mark.netzip(compressors=["fp16"])
        def test_body(netzip_result):
            assert netzip_result.metrics["top_1"] > 0.5
        """)
    result = project.runpytest("--netzip")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([  # pytest 9 adds a line of carets under the call
        '>       assert netzip_result.metrics["top_1"] > 0.5',
        "E       KeyError: \"unknown metric 'top_1': did you mean 'top1'? (valid: *",
        "test_model.py:*: KeyError",
    ])
    result.stdout.no_fnmatch_line("*pytest_netzip*registry.py*")


def test_a_netzip_test_that_checks_nothing_is_noted_once(project: pytest.Pytester) -> None:
    write_test(project, """
        @pytest.mark.netzip(compressors=["fp16", "bf16"])
        def test_nothing():
            pass

        @pytest.mark.netzip(compressors=["fp16"])
        def test_body(netzip_result):
            assert netzip_result.metrics["top1"] > 0.5

        @pytest.mark.netzip(compressors=["fp16"])
        @pytest.mark.size_ratio(min=1.5)
        def test_gated():
            pass
        """)
    result = project.runpytest("--netzip")
    result.assert_outcomes(passed=4)
    note = ("netzip: test_model.py::test_nothing has no threshold marker and its body reads no metric: it checks only "
            "that each compressor runs (add one, such as @pytest.mark.accuracy_drop(max=0.01))")
    assert result.stdout.lines.count(note) == 1
    result.stdout.no_fnmatch_line("*test_body has no threshold*")
    result.stdout.no_fnmatch_line("*test_gated has no threshold*")


def test_an_items_fixture_in_a_test_without_the_netzip_marker_is_named(project: pytest.Pytester) -> None:
    write_test(project, """
        def test_result(netzip_result):
            pass

        def test_device(netzip_device):
            pass

        @pytest.fixture
        def compressed_twice(netzip_compressed):
            return netzip_compressed

        def test_through_a_fixture(compressed_twice):
            pass
        """)
    result = project.runpytest("--netzip")
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines(["*netzip_compressed is only for tests marked*"])
    result.stdout.fnmatch_lines(["*netzip_result is only for tests marked @pytest.mark.netzip(compressors=[[]...[]])*"])
    result.stdout.fnmatch_lines(["*netzip_device is only for tests marked @pytest.mark.netzip(compressors=[[]...[]])*"])
    result.stdout.no_fnmatch_line("*netzip_compressor is only*")
