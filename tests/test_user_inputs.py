"""Models, data, compressors and hooks as users really write them, including the wrong ways."""

from __future__ import annotations

import json
import textwrap

import pytest

from tests.helpers import PROJECT_CONFTEST, second_folder, write_test

GATED = """
@pytest.mark.netzip(compressors=["fp16"])
@pytest.mark.agreement(min=0.9)
def test_deployable():
    pass
"""


def with_data(project: pytest.Pytester, data: str) -> pytest.RunResult:
    """Run GATED with ``netzip_data`` overridden by the expression ``data``."""
    write_test(project, textwrap.dedent(f"""
        import torch

        @pytest.fixture(scope="session")
        def netzip_data():
            inputs = torch.randn(30, 6, generator=torch.Generator().manual_seed(0))
            return {data}
        """) + GATED)
    return project.runpytest("--netzip")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("[(inputs, torch.nn.functional.one_hot(inputs.argmax(1), 6))]",
         "*netzip: the model returns a float32 tensor of shape (30, 6) and the targets are an int64 tensor of shape "
         "(30, 6): one-hot targets? A classifier's targets are class indices: use .argmax(dim=1)*"),
        ("[(inputs, inputs.argmax(1).float())]",
         "*the targets are a float32 tensor of shape (30,): a classifier's targets are class indices, an integer "
         "tensor: use .long()*"),
        ("[(inputs, inputs.argmax(1)[:10])]",
         "*netzip_data batch 0: 30 samples in the inputs but targets of shape (10,) (dimension 0 of the targets is "
         "the batch)"),
        ("[(inputs, inputs.argmax(1) + 6)]", "*targets must be class indices in [[]0, 6) for a model with 6 outputs*"),
        ("[(inputs.double(), inputs.argmax(1))]",
         "*netzip: evaluating reference on cpu failed: RuntimeError: *dtype*"),
    ],
)
def test_bad_targets_and_inputs_fail_with_the_reason(project: pytest.Pytester, data: str, expected: str) -> None:
    result = with_data(project, data)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([expected])
    result.stdout.no_fnmatch_line("*During handling*")


def test_column_targets_are_accepted(project: pytest.Pytester) -> None:
    with_data(project, "[(inputs, inputs.argmax(1)[:, None])]").assert_outcomes(passed=1)


def test_shuffled_data_is_refused_rather_than_scored(project: pytest.Pytester) -> None:
    result = with_data(project, "torch.utils.data.DataLoader(list(zip(inputs, inputs.argmax(1))), batch_size=8, "
                                "shuffle=True)")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*netzip_data gave different samples to the reference and to fp16: shuffle=True*"])


def test_the_users_model_is_neither_moved_nor_switched_to_eval(project: pytest.Pytester) -> None:
    write_test(project, """
        @pytest.fixture(scope="session")
        def netzip_model():
            model = Signed()
            model.train()
            return model

        @pytest.mark.netzip(compressors=["fp16", "int8_dynamic"])
        @pytest.mark.agreement(min=1.0)
        def test_deployable(netzip_model, netzip_result):
            assert netzip_result.metrics["top1"] == pytest.approx(0.9)
            assert netzip_model.training
            assert netzip_model.up.weight.dtype == torch.float32

        from conftest import Signed
        import torch
        """)
    project.runpytest("--netzip").assert_outcomes(passed=2)


def test_a_parametrised_model_fixture_gates_an_empty_test(project: pytest.Pytester) -> None:
    write_test(project, """
        from conftest import Signed

        @pytest.fixture(scope="session", params=[256, 512])
        def netzip_model(request):
            return Signed(hidden=request.param).eval()

        @pytest.mark.netzip(compressors=["int8_dynamic"])
        @pytest.mark.agreement(min=1.0)
        def test_deployable():
            pass
        """)
    result = project.runpytest("--netzip", "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_deployable[[]256-int8_dynamic-cpu[]] PASSED*"])


def test_a_compressor_with_hidden_parameters_is_refused(project: pytest.Pytester) -> None:
    write_test(project, """
        from pytest_netzip import Compressor

        class Scale(Compressor):
            name = "scale"

            def __init__(self, factor):
                object.__setattr__(self, "factor", factor)

        @pytest.mark.netzip(compressors=[Scale(1.0), Scale(-1.0)])
        def test_deployable():
            pass
        """)
    result = project.runpytest("--netzip")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "*test_deployable: Scale keeps factor outside dataclass fields: decorate it with @dataclass(frozen=True)*"
    ])


def test_a_filter_selects_compressors_by_name_or_by_id(project: pytest.Pytester) -> None:
    write_test(project, """
        from pytest_netzip import PruneL1

        @pytest.mark.netzip(compressors=["prune_l1", PruneL1(amount=0.75), "fp16", "bf16"])
        def test_deployable():
            pass
        """)
    result = project.runpytest("--netzip", "-v", "--netzip-compressors", "prune_l1(amount=0.75),fp16")
    result.assert_outcomes(passed=2, deselected=2)
    result.stdout.fnmatch_lines(["*[[]prune_l1(amount=0.75)-cpu[]] PASSED*", "*[[]fp16-cpu[]] PASSED*"])
    by_name = project.runpytest("--netzip", "--netzip-compressors", "prune_l1")
    by_name.assert_outcomes(passed=2, deselected=2)  # a name selects every parametrisation of it
    defaults = project.runpytest("--netzip", "-v", "--netzip-compressors", "prune_l1(amount=0.5)")
    defaults.assert_outcomes(passed=1, deselected=3)  # prune_l1's default amount, which its id leaves out
    defaults.stdout.fnmatch_lines(["*[[]prune_l1-cpu[]] PASSED*"])
    refused = project.runpytest("--netzip", "--netzip-compressors", "fp16,prune_l1(amount='x')")
    assert refused.ret == pytest.ExitCode.USAGE_ERROR  # a parameter no marker would take selects nothing: an error
    refused.stderr.fnmatch_lines(["ERROR: --netzip-compressors: compressor \"prune_l1(amount='x')\": amount takes a "
                                  "float (its default is 0.5), got 'x'"])
    unused = project.runpytest("--netzip", "--netzip-compressors", "int8_dynamic,lowrank+int8_static")
    unused.assert_outcomes(deselected=4)  # known compressors that no test uses: a note, not an error
    unused.stdout.fnmatch_lines(["netzip: --netzip-compressors: no collected test uses int8_dynamic, lowrank+int8_static"])
    for typo, part, close in (("int8_dynamc", "int8_dynamc", "int8_dynamic"), ("lowrank+int8_statik", "int8_statik", "int8_static")):
        misspelt = project.runpytest("--netzip", "--netzip-compressors", f"fp16,{typo}")
        assert misspelt.ret == pytest.ExitCode.USAGE_ERROR
        misspelt.stderr.fnmatch_lines([
            f"ERROR: --netzip-compressors: unknown compressor '{part}': did you mean '{close}'? (valid: *)"])


def test_a_failing_result_hook_fails_its_item_only(project: pytest.Pytester) -> None:
    (project.path / "conftest.py").write_text((project.path / "conftest.py").read_text() + """
@pytest.hookimpl(optionalhook=True)
def pytest_netzip_result(item, result, record):
    if result.compressor == "fp16":
        raise ZeroDivisionError("oops")
""")
    write_test(project, '@pytest.mark.netzip(compressors=["fp16", "bf16"])\ndef test_deployable():\n    pass\n')
    result = project.runpytest("--netzip", "--netzip-json", "out.json")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*netzip: a pytest_netzip_result hook raised ZeroDivisionError: oops"])
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    outcomes = {r["compressor"]: r["outcome"] for r in json.loads((project.path / "out.json").read_text())["results"]}
    assert outcomes == {"fp16": "failed", "bf16": "passed"}


def test_a_metric_must_return_numbers(project: pytest.Pytester) -> None:
    (project.path / "conftest.py").write_text((project.path / "conftest.py").read_text() + """
from pytest_netzip import metric

@metric("logits_sum", "not a number", unit="share")
def logits_sum(subject, reference):
    return subject.logits.sum()

@pytest.hookimpl(optionalhook=True)
def pytest_netzip_metrics():
    return [logits_sum]
""")
    write_test(project, """
        @pytest.mark.netzip(compressors=["fp16"])
        @pytest.mark.accuracy_drop(max=0.1, metric="logits_sum")
        def test_deployable():
            pass
        """)
    result = project.runpytest("--netzip", "--netzip-json", "out.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*TypeError: metric 'logits_sum' returned Tensor; a metric returns a float, a dict of floats, or (with unit='label') a str*"])
    assert json.loads((project.path / "out.json").read_text())["results"][0]["outcome"] == "failed"


def test_each_folder_reads_its_batches_with_its_own_target_key(project: pytest.Pytester) -> None:
    write_test(project, """
        @pytest.mark.netzip(compressors=["fp16"])
        @pytest.mark.agreement(min=1.0)
        def test_tuples():
            pass
        """)
    keyed = second_folder(project, "keyed", """
        @pytest.fixture(scope="session")
        def netzip_data():
            x = torch.randn(20, 6, generator=torch.Generator().manual_seed(1))
            return [{"x": x, "target": x.argmax(dim=1)}]

        @pytest.fixture(scope="session")
        def netzip_target_key():
            return "target"
        """)
    (keyed / "test_keyed.py").write_text((project.path / "test_model.py").read_text().replace("test_tuples", "test_dicts"))
    result = project.runpytest("--netzip", "test_model.py", "keyed")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["Signed (keyed) on cpu*", "variant * agreement", "reference * 1.0000", "fp16 * 1.0000"],
                                consecutive=True)


def test_data_that_does_not_fit_the_model_blames_the_data_not_the_compressor(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("""
        import pytest
        import torch
        from torch import nn


        @pytest.fixture(scope="session")
        def netzip_model():
            return nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 3)).eval()


        @pytest.fixture(scope="session")
        def netzip_data():  # 10 features for a model of 8
            return [(torch.rand(16, 10), torch.randint(0, 3, (16,)))]
    """)
    write_test(pytester, """
        @pytest.mark.netzip(compressors=["int8_dynamic", "prune_structured"])
        @pytest.mark.agreement(min=0.5)
        def test_deployable():
            pass
        """)
    result = pytester.runpytest("--netzip")
    result.assert_outcomes(errors=2)  # was: int8_dynamic skipped, "cannot quantise Sequential"
    result.stdout.fnmatch_lines([
        "netzip: Sequential itself fails on the first sample of netzip_example_input (by default, of netzip_data's "
        "first batch), so no compressor can be checked on it: RuntimeError: mat1 and mat2 shapes cannot be "
        "multiplied (1x10 and 8x32)*",
    ] * 2)
    result.stdout.no_fnmatch_line("*cannot quantise*")


@pytest.mark.parametrize(("returned", "expected"), [
    ("nn.Linear(6, 6).state_dict()", "got OrderedDict: a state dict? build the model and return it with the weights "
                                     "loaded, model.load_state_dict(...)"),
    ("nn.Linear", "got type: the class itself; return an instance, Linear(...).eval()"),
    ("42", "got int"),
])
def test_a_model_fixture_returning_no_module_fails_saying_what_it_got(
    project: pytest.Pytester, returned: str, expected: str,
) -> None:
    project.makeconftest(PROJECT_CONFTEST + f"""

@pytest.fixture(scope="session")
def netzip_model():
    return {returned}
""")
    write_test(project, '@pytest.mark.netzip(compressors=["fp16"])\ndef test_deployable():\n    pass\n')
    result = project.runpytest("--netzip")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"netzip: netzip_model must return a torch.nn.Module, {expected}"])


def test_a_compressor_may_be_named_by_its_id_with_parameters(project: pytest.Pytester) -> None:
    write_test(project, """
        @pytest.mark.netzip(compressors=["prune_l1(amount=0.75)", "prune_l1(amount=0.75)+fp16"])
        def test_deployable(netzip_compressor):
            pruning = netzip_compressor.steps[0] if "+" in netzip_compressor.id else netzip_compressor
            assert pruning.amount == 0.75

        @pytest.mark.netzip(compressors=["prune_l1(amont=0.75)", "prune_l1(0.75)", "prune_l1(amount='0.75')"])
        def test_misspelt():
            pass
        """)
    result = project.runpytest("--netzip", "-v")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines([
        "*test_deployable[[]prune_l1(amount=0.75)-cpu[]] PASSED*",
        "*test_deployable[[]prune_l1(amount=0.75)+fp16-cpu[]] PASSED*",
    ])
    result.stdout.fnmatch_lines([
        "test_model.py::test_misspelt: compressor 'prune_l1(amont=0.75)': PruneL1 takes allow_noop, amount, as "
        "keywords with plain values (prune_l1(amount=0.5)); or give the object, PruneL1(...)",
        "test_model.py::test_misspelt: compressor 'prune_l1(0.75)': PruneL1 takes *",
        "test_model.py::test_misspelt: compressor \"prune_l1(amount='0.75')\": amount takes a float (its default is "
        "0.5), got '0.75'",
    ])
