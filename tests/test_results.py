"""What a run leaves behind: the summary table, the JSON file, hook calls; and the one-pass rule."""

from __future__ import annotations

import json
import textwrap

import pytest

from tests.helpers import write_test

TWO_TESTS = """
@pytest.mark.netzip(compressors=["fp16", "prune_l1", "negate"])
@pytest.mark.accuracy_drop(max=0.05)
@pytest.mark.agreement(min=0.9)
@pytest.mark.size_ratio(min=1.5)
def test_deployable():
    pass

@pytest.mark.netzip(compressors=["fp16", "prune_l1"])
@pytest.mark.accuracy_drop(max=0.01, metric="f1")
def test_f1(netzip_result):
    assert netzip_result.metrics["top5"] == 1.0
"""


def test_every_model_is_run_once_per_session(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    forwards = project.path / "forwards.json"
    monkeypatch.setenv("NETZIP_TEST_FORWARDS", str(forwards))
    write_test(project, TWO_TESTS)
    result = project.runpytest("--netzip")
    result.assert_outcomes(passed=3, failed=2)
    # four batches each, for the reference, fp16, prune_l1 and negate: shared by all five items
    assert json.loads(forwards.read_text()) == [4, 4, 4, 4]
    result.stdout.fnmatch_lines(["variant * top1 *", "reference * 0.9000 *", "fp16 * 0.9000 *"])


def test_max_samples_bounds_the_evaluation(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    forwards = project.path / "forwards.json"
    monkeypatch.setenv("NETZIP_TEST_FORWARDS", str(forwards))
    write_test(project, """
        @pytest.mark.netzip(compressors=["fp16"])
        def test_deployable(netzip_result):
            assert netzip_result.metrics["top1"] == pytest.approx(13 / 15)  # samples 0 and 10 are mislabelled
        """)
    project.runpytest("--netzip", "--netzip-max-samples", "15").assert_outcomes(passed=1)
    assert json.loads(forwards.read_text()) == [2, 2]


def test_the_summary_table_compares_with_the_reference(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    write_test(project, TWO_TESTS)
    result = project.runpytest("--netzip")
    result.stdout.fnmatch_lines([
        "*= netzip =*",
        "Signed on cpu (* CPU thread*)",
        "variant * top1 * top5 * f1 * agreement * performance_ratio * size_ratio * ocs",
        "reference * 0.9000 * 1.0000 * 0.9069 * 1.0000 * 1 * 1 * 0",
        "fp16 * 0.9000 * 1.0000 * 0.9069 * 1.0000 * 1 * 1.86 * 0.858",  # OCS = P (C - 1) = 1.86 - 1
        "negate * 0.0000 (-0.9000) [*] * - * - * 0.0000 [*] * 0 * 1 [*] * 0",
        "prune_l1 * 0.9000 * 1.0000 * 0.9069 * 1.0000 * 1 * 1 [*] * 0",
        "[*]: over budget, *",
    ])


def test_ocs_weights_are_settable(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    write_test(project, TWO_TESTS)
    result = project.runpytest("--netzip", "--netzip-ocs-weights=1,1,0.5,1", "--netzip-json=out.json")
    (fp16,) = [v["metrics"] for v in json.loads((project.path / "out.json").read_text())["variants"] if v["compressor"] == "fp16"]
    assert fp16["ocs"] == pytest.approx(0.5 * (fp16["size_ratio"] - 1))  # P = 1: only C counts, at half weight
    result.stdout.fnmatch_lines(["fp16 * 1.86 * 0.429"])


def test_json_holds_every_result(project: pytest.Pytester) -> None:
    write_test(project, TWO_TESTS)
    project.runpytest("--netzip", "--netzip-json", "out/results.json").assert_outcomes(passed=3, failed=2)
    document = json.loads((project.path / "out" / "results.json").read_text())
    assert document["version"] == 1
    by_id = {record["test"]: record for record in document["results"]}
    assert sorted(by_id) == [
        "test_model.py::test_deployable[fp16-cpu]",
        "test_model.py::test_deployable[negate-cpu]",
        "test_model.py::test_deployable[prune_l1-cpu]",
        "test_model.py::test_f1[fp16-cpu]",
        "test_model.py::test_f1[prune_l1-cpu]",
    ]
    negate = by_id["test_model.py::test_deployable[negate-cpu]"]
    assert (negate["compressor"], negate["device"], negate["model"]) == ("negate", "cpu", "Signed")
    assert negate["metrics"]["top1"] == 0.0
    assert negate["reference"]["metrics"]["top1"] == pytest.approx(0.9)
    assert {"marker": "accuracy_drop", "keyword": "max", "metric": "top1", "threshold": 0.05, "value": 0.0,
            "reference": pytest.approx(0.9), "passed": False, "note": "drop 0.9000"} in negate["budgets"]
    assert [budget["passed"] for budget in negate["budgets"]] == [False, False, False]
    # what the item read, NetZIP's P beside the size ratio another item measured, and the top1 P is the ratio of
    assert set(by_id["test_model.py::test_f1[fp16-cpu]"]["metrics"]) == {
        "top5", "f1", "performance_ratio", "top1", "compress_seconds",
    }
    assert 0 < by_id["test_model.py::test_f1[fp16-cpu]"]["metrics"]["compress_seconds"] < 60


def test_ini_sets_the_json_path_relative_to_the_rootdir(project: pytest.Pytester) -> None:
    project.makeini("[pytest]\nnetzip = true\nnetzip_json = results.json\n")
    write_test(project, TWO_TESTS)
    project.runpytest()
    assert len(json.loads((project.path / "results.json").read_text())["results"]) == 5


def test_compressor_filter_deselects_the_others(project: pytest.Pytester) -> None:
    write_test(project, TWO_TESTS)
    result = project.runpytest("--netzip", "--netzip-compressors", "fp16,prune_l1")
    result.assert_outcomes(passed=3, failed=1, deselected=1)
    result.stdout.fnmatch_lines(["variant * top1 *", "reference * 0.9000 *", "fp16 * 0.9000 *", "prune_l1 * 0.9000 *"],
                                consecutive=True)  # and no row of negate


def test_a_compressor_object_with_parameters_is_named_by_them(project: pytest.Pytester) -> None:
    write_test(project, """
        from pytest_netzip import PruneRandom

        @pytest.mark.netzip(compressors=[PruneRandom(amount=0.25), "prune_random"])
        def test_deployable(netzip_result, netzip_compressor):
            # the amount at random, and some of Signed's 120 zeros (0.0195 of its weights) besides
            assert netzip_compressor.amount <= netzip_result.metrics["sparsity"] < netzip_compressor.amount + 0.0196
        """)
    result = project.runpytest("--netzip", "-v")
    result.stdout.fnmatch_lines(["*test_deployable[[]prune_random(amount=0.25)-cpu[]] PASSED*"])
    result.assert_outcomes(passed=2)


def test_the_result_hook_sees_every_item(project: pytest.Pytester) -> None:
    (project.path / "conftest.py").write_text((project.path / "conftest.py").read_text() + """
@pytest.hookimpl(optionalhook=True)
def pytest_netzip_result(item, result, record):
    record["seen_by_hook"] = True
    print("hook saw", item.name, result.compressor, round(result.metrics["top1"], 2))
""")
    write_test(project, TWO_TESTS)
    result = project.runpytest("--netzip", "-s", "--netzip-json", "out.json")
    result.stdout.fnmatch_lines(["*hook saw test_deployable[[]negate-cpu[]] negate 0.0"])
    assert all(record["seen_by_hook"] for record in json.loads((project.path / "out.json").read_text())["results"])


def test_a_failing_metric_without_a_column_marks_its_row(project: pytest.Pytester) -> None:
    write_test(project, """
        @pytest.mark.netzip(compressors=["negate"])
        @pytest.mark.accuracy_drop(max=1.0, max_class_drop=0.1)
        def test_deployable():
            pass
        """)
    project.runpytest("--netzip").stdout.fnmatch_lines(["negate [*] * 0.0000 (-0.9000)"])


def test_models_with_the_same_class_name_get_their_own_tables(pytester: pytest.Pytester) -> None:
    for directory, seed in (("a", 0), ("b", 1)):
        pytester.mkpydir(directory)
        (pytester.path / directory / "conftest.py").write_text(textwrap.dedent(f"""
            import pytest, torch

            @pytest.fixture(scope="session")
            def netzip_model():
                torch.manual_seed({seed})
                return torch.nn.Linear(6, 6)

            @pytest.fixture(scope="session")
            def netzip_data():
                torch.manual_seed(5)
                return [(torch.randn(300, 6), torch.randint(0, 6, (300,)))]
            """))
        (pytester.path / directory / f"test_{directory}.py").write_text(textwrap.dedent("""
            import pytest

            @pytest.mark.netzip(compressors=["prune_random"])
            @pytest.mark.accuracy_drop(max=1.0)
            def test_it():
                pass
            """))
    result = pytester.runpytest("--netzip", "--netzip-json", "out.json")
    result.stdout.fnmatch_lines(["Linear (a) on cpu (*)", "*", "reference *", "prune_random *", "*", "", "Linear (b) on cpu (*)"])
    records = json.loads((pytester.path / "out.json").read_text())["results"]
    assert sorted(record["model"] for record in records) == ["Linear (a)", "Linear (b)"]
    references = {record["model"]: record["reference"]["metrics"]["top1"] for record in records}
    assert len(set(references.values())) == 2  # two different reference models, each measured on its own
    # the names depend on where each model is defined, not on what else ran: a folder alone (a shard) and each
    # pytest-xdist worker name them as the whole run does, so saved runs and merged shards pair them right
    alone = pytester.runpytest("--netzip", "--netzip-json", "b.json", "b")
    assert [record["model"] for record in json.loads((pytester.path / "b.json").read_text())["results"]] == ["Linear (b)"]
    alone.assert_outcomes(passed=1)
    pytest.importorskip("xdist")
    pytester.runpytest_subprocess("--netzip", "-n", "2", "--netzip-json", "xdist.json").assert_outcomes(passed=2)
    document = json.loads((pytester.path / "xdist.json").read_text())
    assert {record["model"]: record["reference"]["metrics"]["top1"] for record in document["results"]} == references
    assert sorted(variant["model"] for variant in document["variants"]) == ["Linear (a)", "Linear (a)", "Linear (b)", "Linear (b)"]


def test_models_made_from_a_parametrised_fixture_are_named_by_its_parameter(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("""
        import pytest, torch

        @pytest.fixture(scope="session", params=[6, 12])
        def width(request):
            return request.param

        @pytest.fixture(scope="session")
        def netzip_model(width):
            torch.manual_seed(0)
            return torch.nn.Sequential(torch.nn.Linear(6, width), torch.nn.Linear(width, 6))

        @pytest.fixture(scope="session")
        def netzip_data():
            torch.manual_seed(5)
            return [(torch.randn(30, 6), torch.randint(0, 6, (30,)))]
        """)
    write_test(pytester, """
        @pytest.mark.netzip(compressors=["fp16"])
        @pytest.mark.agreement(min=0.5)
        def test_it():
            pass
        """)
    result = pytester.runpytest("--netzip", "--netzip-json", "out.json")
    result.assert_outcomes(passed=2)
    records = json.loads((pytester.path / "out.json").read_text())["results"]
    assert sorted(record["model"] for record in records) == ["Sequential [12]", "Sequential [6]"]  # not numbered
    result.stdout.no_fnmatch_line("*function-scoped*")


def test_a_function_scoped_model_is_noted(project: pytest.Pytester) -> None:
    conftest = (project.path / "conftest.py").read_text()
    assert conftest.count('@pytest.fixture(scope="session")\ndef netzip_model') == 1
    (project.path / "conftest.py").write_text(conftest.replace('@pytest.fixture(scope="session")\ndef netzip_model',
                                                               "@pytest.fixture\ndef netzip_model"))
    write_test(project, """
        @pytest.mark.netzip(compressors=["fp16", "bf16"])
        @pytest.mark.agreement(min=0.9)
        def test_deployable():
            pass
        """)
    result = project.runpytest("--netzip")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["netzip: netzip_model is function-scoped (conftest.py:*): each test gets its own, "
                                 'evaluated again and in a table of its own; give it scope="session"'])
    assert sum("is function-scoped" in line for line in result.stdout.lines) == 1


def test_xdist_gives_the_same_outcomes_and_one_table(project: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    write_test(project, TWO_TESTS)
    result = project.runpytest_subprocess("--netzip", "-n", "2", "--netzip-json", "out.json")
    result.assert_outcomes(passed=3, failed=2)
    result.stdout.fnmatch_lines(["*= netzip =*", "Signed on cpu (*)", "variant *", "reference *"])
    records = json.loads((project.path / "out.json").read_text())["results"]
    assert len(records) == 5
    # the workers' measurements of what each item gates: top1 for test_deployable, f1 for test_f1
    gated = {record["test"]: record["metrics"]["f1" if "test_f1" in record["test"] else "top1"] for record in records}
    assert gated == {
        "test_model.py::test_deployable[fp16-cpu]": 0.9,
        "test_model.py::test_deployable[negate-cpu]": 0.0,
        "test_model.py::test_deployable[prune_l1-cpu]": 0.9,
        "test_model.py::test_f1[fp16-cpu]": pytest.approx(0.9069, abs=1e-4),
        "test_model.py::test_f1[prune_l1-cpu]": pytest.approx(0.9069, abs=1e-4),
    }


def test_a_wide_table_continues_below_within_the_terminal_width(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    write_test(project, TWO_TESTS)
    result = project.runpytest("--netzip")
    result.stdout.fnmatch_lines([
        "Signed on cpu (* CPU thread*)",
        "variant * top1 * top5 * f1 * agreement",
        "reference * 0.9000 * 1.0000 * 0.9069 * 1.0000",
        "*",
        "prune_l1 * 0.9000 * 1.0000 * 0.9069 * 1.0000",
        "",
        "variant * performance_ratio * size_bytes * size_ratio",  # the sizes behind size_ratio
        "reference * 1 * kB * 1",
    ])
    lines = result.stdout.lines
    table = lines[next(i for i, line in enumerate(lines) if line.startswith("Signed on cpu")) + 1:]
    assert max(len(line) for line in table[:11]) <= 60  # two blocks of five rows and the line between


def test_iterating_the_metrics_measures_nothing(project: pytest.Pytester) -> None:
    write_test(project, """
        @pytest.mark.netzip(compressors=["fp16"])
        def test_deployable(netzip_result):
            assert dict(netzip_result.metrics) == {}
            top1 = netzip_result.metrics["top1"]
            assert dict(netzip_result.metrics) == {"top1": top1}
            assert "top1" in netzip_result.metrics and "robust_accuracy" not in netzip_result.metrics
            assert len(netzip_result.metrics) == 1
        """)
    project.runpytest("--netzip").assert_outcomes(passed=1)
