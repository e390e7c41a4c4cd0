"""Tasks end to end: models as users hold them (any inputs, any outputs), scored as their task and gated."""

from __future__ import annotations

import json
import textwrap

import pytest

from tests.helpers import scripted_waits, write_test

try:  # imported once here, as tests/conftest.py does for torch: pytester's in-process runs would import them again
    import transformers.modeling_outputs  # noqa: F401
    from transformers import BatchEncoding, BertForSequenceClassification, GPT2LMHeadModel  # noqa: F401
except ImportError:
    pass

INPUT_FORMS = """
import torch
from torch import nn
from transformers import BatchEncoding

from conftest import Signed
from pytest_netzip import PruneL1

FORMS = ["tensor", "tuple", "dict", "batch_encoding", "nested", "labels", "target_key"]


class Summed(nn.Module):
    # Signed's logits of x + y, however the two arrive; small weights into hidden units that feed nothing give
    # prune_l1 (beyond the 51% of weights that are zeros) something to remove, without changing a logit
    def __init__(self):
        super().__init__()
        self.net = Signed()
        with torch.no_grad():
            self.net.up.weight[12:] = 1e-3 * torch.randn(500, 6, generator=torch.Generator().manual_seed(1))

    def forward(self, x=None, y=None, pair=None):
        if pair is not None:
            x, y = pair
        return self.net(x if y is None else x + y)


@pytest.fixture(scope="session")
def netzip_model():
    return Summed().eval()


@pytest.fixture(scope="session", params=FORMS)
def netzip_data(request):
    inputs = torch.randn(40, 6, generator=torch.Generator().manual_seed(0))
    targets = inputs.argmax(dim=1)
    targets[::10] = (targets[::10] + 1) % 6
    positive, negative = inputs.clamp(min=0), inputs.clamp(max=0)  # exact halves of inputs, in any precision
    batches = []
    for start in range(0, 40, 10):
        x, y, t = positive[start:start + 10], negative[start:start + 10], targets[start:start + 10]
        batches.append({
            "tensor": lambda: (x + y, t),
            "tuple": lambda: ((x, y), t),
            "dict": lambda: ({"x": x, "y": y}, t),
            "batch_encoding": lambda: (BatchEncoding({"x": x, "y": y}), t),
            "nested": lambda: ({"pair": (x, y)}, t),
            "labels": lambda: {"x": x, "y": y, "labels": t},
            "target_key": lambda: {"x": x, "y": y, "target": t},
        }[request.param]())
    return batches


@pytest.fixture(scope="session")
def netzip_target_key(netzip_data):
    return "target" if "target" in netzip_data[0] else "labels"


@pytest.mark.netzip(compressors=["fp16", PruneL1(amount=0.6), "int8_dynamic"])
@pytest.mark.agreement(min=1.0)
@pytest.mark.accuracy_drop(max=0.0)
@pytest.mark.compute_budget(max_macs=6144)
@pytest.mark.latency_budget(p50_ms=1000)
@pytest.mark.memory_budget(max_mb=1000)
def test_forms(netzip_result):
    assert netzip_result.metrics["top1"] == pytest.approx(0.9)
"""


def test_every_input_form_is_evaluated_compressed_counted_and_timed(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("transformers")
    scripted_waits(monkeypatch, 0.0)  # a quiet CPU, so that the latency budget is judged on a shared machine
    write_test(project, INPUT_FORMS)
    result = project.runpytest("--netzip", "--netzip-json=out.json", "--benchmark-max-time=0.01", "-v")
    result.assert_outcomes(passed=21)
    records = json.loads((project.path / "out.json").read_text())["results"]
    assert len(records) == 21
    for record in records:
        assert record["metrics"]["macs"] == record["reference"]["metrics"]["macs"] == 6144, record["test"]
        assert record["metrics"]["latency_p50_ms"] > 0
        assert record["metrics"]["peak_memory_mb"] > 0


def with_data(project: pytest.Pytester, data: str, *args: str, key: str = "labels") -> pytest.RunResult:
    """Gate the tiny model on ``netzip_data`` returning the expression ``data`` (of ``x``, 30 samples, and ``t``)."""
    write_test(project, textwrap.dedent(f"""
        import torch

        @pytest.fixture(scope="session")
        def netzip_data():
            x = torch.randn(30, 6, generator=torch.Generator().manual_seed(0))
            t = x.argmax(1)
            t[::10] = (t[::10] + 1) % 6
            return {data}

        @pytest.fixture(scope="session")
        def netzip_target_key():
            return {key!r}

        @pytest.mark.netzip(compressors=["fp16"])
        @pytest.mark.agreement(min=1.0)
        def test_gated():
            pass
        """))
    return project.runpytest("--netzip", *args)


def test_a_dict_batch_without_the_target_key_names_the_key_and_the_fixture(project: pytest.Pytester) -> None:
    result = with_data(project, '[{"x": x, "target": t}]')
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "*netzip_data batch 0 is a dict of x, target, without 'labels': put the targets under 'labels' (or name "
        "their key with a session fixture netzip_target_key)*"
    ])
    result = with_data(project, '[{"x": x, "target": t}]', key="target")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["variant * agreement", "reference * 1.0000", "fp16 * 1.0000"], consecutive=True)
    result = with_data(project, '[{"x": x, "labels": t}]', key="target")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*without 'target': put the targets under 'target'*"])


def test_leaves_that_disagree_on_the_batch_size_are_named(project: pytest.Pytester) -> None:
    write_test(project, """
        import torch
        from torch import nn

        class Two(nn.Module):
            def forward(self, x, y):
                return x + y.sum()

        @pytest.fixture(scope="session")
        def netzip_model():
            return Two()

        @pytest.fixture(scope="session")
        def netzip_data():
            x = torch.randn(10, 6)
            return [({"x": x, "y": torch.zeros(9, 6)}, x.argmax(1))]

        @pytest.mark.netzip(compressors=["fp16"])
        @pytest.mark.agreement(min=1.0)
        def test_gated():
            pass
        """)
    result = project.runpytest("--netzip")
    result.assert_outcomes(errors=1)  # at setup: the example input of the compressor is checked first
    result.stdout.fnmatch_lines([
        "*netzip_data batch 0: the inputs disagree on the batch size: inputs[[]'x'[]] has 10 samples, inputs[[]'y'[]] has 9 "
        "(dimension 0 of every tensor is the batch)*"
    ])


def test_max_samples_cuts_dict_batches(project: pytest.Pytester) -> None:
    write_test(project, """
        import torch
        from torch import nn
        from conftest import Signed

        class Keyword(nn.Module):
            def __init__(self):
                super().__init__()
                self.net = Signed()

            def forward(self, features, mask):
                return self.net(features * mask)

        @pytest.fixture(scope="session")
        def netzip_model():
            return Keyword().eval()

        @pytest.fixture(scope="session")
        def netzip_data():
            x = torch.randn(30, 6, generator=torch.Generator().manual_seed(0))
            t = x.argmax(1)
            t[::10] = (t[::10] + 1) % 6  # samples 0, 10 and 20 are wrong
            return [{"features": x[i:i + 10], "mask": torch.ones(10, 1), "labels": t[i:i + 10]} for i in (0, 10, 20)]

        @pytest.mark.netzip(compressors=["fp16"])
        def test_gated(netzip_result):
            assert netzip_result.metrics["top1"] == pytest.approx(13 / 15)  # 15 samples: 0 and 10 wrong
        """)
    project.runpytest("--netzip", "--netzip-max-samples=15").assert_outcomes(passed=1)


OUTPUT_FORMS = """
import torch
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput

from conftest import Signed


class Wrapped(nn.Module):
    # Signed's logits inside the container ``form`` names
    def __init__(self, form):
        super().__init__()
        self.form = form
        self.net = Signed()

    def forward(self, x):
        logits = self.net(x)
        hidden = torch.zeros_like(logits).sum(dim=1)
        return {
            "tensor": lambda: logits,
            "tuple": lambda: (logits, hidden),
            "nested_tuple": lambda: ((logits, hidden), hidden),
            "dict": lambda: {"hidden": hidden, "logits": logits},
            "model_output": lambda: SequenceClassifierOutput(logits=logits),
            "out": lambda: {"out": logits, "aux": hidden},
        }[self.form]()


@pytest.fixture(scope="session", params=["tensor", "tuple", "nested_tuple", "dict", "model_output", "out"])
def netzip_model(request):
    return Wrapped(request.param).eval()


@pytest.mark.netzip(compressors=["fp16", "int8_dynamic"])
@pytest.mark.agreement(min=1.0)
@pytest.mark.accuracy_drop(max=0.0)
def test_outputs(netzip_result):
    assert netzip_result.metrics["top1"] == pytest.approx(0.9)
    assert netzip_result.reference_metrics["top1"] == pytest.approx(0.9)
"""


def test_every_output_form_is_read_as_logits(project: pytest.Pytester) -> None:
    pytest.importorskip("transformers")
    write_test(project, OUTPUT_FORMS)
    result = project.runpytest("--netzip", "-v")
    result.assert_outcomes(passed=12)
    result.stdout.fnmatch_lines(["*test_outputs[[]model_output-fp16-cpu[]] PASSED*"])


@pytest.mark.parametrize(("output", "found"), [("'scores'", "a str"), ("object()", "a object")])
def test_an_unreadable_output_asks_for_netzip_output(project: pytest.Pytester, output: str, found: str) -> None:
    write_test(project, f"""
        from torch import nn

        class Odd(nn.Module):
            def forward(self, x):
                return {output}

        @pytest.fixture(scope="session")
        def netzip_model():
            return Odd()

        @pytest.mark.netzip(compressors=["fp16"])
        @pytest.mark.agreement(min=1.0)
        def test_gated():
            pass
        """)
    result = project.runpytest("--netzip")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        f"*cannot read predictions from the model's output, {found}: define a session fixture netzip_output "
        "returning a function that takes the model's output and returns its predictions*"
    ])


def test_netzip_output_reads_an_unusual_output(project: pytest.Pytester) -> None:
    write_test(project, """
        from torch import nn
        from conftest import Signed

        class Scores:
            def __init__(self, values):
                self.values = values

        class Boxed(nn.Module):
            def __init__(self):
                super().__init__()
                self.net = Signed()

            def forward(self, x):
                return Scores(self.net(x))

        @pytest.fixture(scope="session")
        def netzip_model():
            return Boxed().eval()

        @pytest.fixture(scope="session")
        def netzip_output():
            return lambda output: output.values

        @pytest.mark.netzip(compressors=["fp16", "int8_dynamic"])
        @pytest.mark.agreement(min=1.0)
        @pytest.mark.compute_budget(max_macs=6144)
        def test_gated(netzip_result):
            assert netzip_result.metrics["top1"] == pytest.approx(0.9)
        """)
    project.runpytest("--netzip").assert_outcomes(passed=2)


#: A regression repo: ``Affine`` returns its input through an identity Linear; ``shift`` adds 1 to every value.
#: On the data, values 1, 2, 3, 4 meet targets 1, 2, 3, 6: mae 0.5, rmse 1, r2 1 - 4/14 = 5/7 (errors 0, 0,
#: 0, -2; the targets' squares about their mean 3: 4 + 1 + 0 + 9); shifted, the errors are 1, 1, 1, -1: mae 1,
#: rmse 1, r2 5/7 again. NETZIP_TEST_OUTPUTS=2 adds a second output whose target is 5 throughout, as is its input.
REGRESSION_CONFTEST = '''
import os

import pytest
import torch
from torch import nn

from pytest_netzip import Compressor


class Affine(nn.Module):
    def __init__(self, outputs):
        super().__init__()
        self.linear = nn.Linear(outputs, outputs)
        with torch.no_grad():
            self.linear.weight.copy_(torch.eye(outputs))
            self.linear.bias.zero_()

    def forward(self, x):
        return self.linear(x)


class Shift(Compressor):
    name = "shift"

    def transform(self, model, ctx):
        with torch.no_grad():
            model.linear.bias += 1.0
        return model


@pytest.hookimpl(optionalhook=True)
def pytest_netzip_compressors():
    return [Shift]


OUTPUTS = int(os.environ.get("NETZIP_TEST_OUTPUTS", "1"))


@pytest.fixture(scope="session")
def netzip_model():
    return Affine(OUTPUTS).eval()


@pytest.fixture(scope="session")
def netzip_data():
    x = torch.tensor([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0], [4.0, 5.0]])[:, :OUTPUTS]
    t = torch.tensor([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0], [6.0, 5.0]])[:, :OUTPUTS]
    t = t[:, 0] if OUTPUTS == 1 else t  # targets (N,) against values (N, 1)
    return [(x[:2], t[:2]), (x[2:], t[2:])]
'''


@pytest.fixture
def regression_project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester dir holding the regression repo's conftest.py."""
    pytester.makeconftest(REGRESSION_CONFTEST)
    return pytester


def test_error_increase_gates_mae_absolute_and_as_a_ratio(regression_project: pytest.Pytester) -> None:
    write_test(regression_project, """
        @pytest.mark.netzip(compressors=["fp16", "shift"])
        @pytest.mark.error_increase(metric="mae", max=0.4)
        def test_absolute(netzip_result):
            assert netzip_result.reference_metrics["mae"] == pytest.approx(0.5)
            assert netzip_result.reference_metrics["rmse"] == pytest.approx(1.0)
            assert netzip_result.reference_metrics["r2"] == pytest.approx(5 / 7)

        @pytest.mark.netzip(compressors=["shift"])
        @pytest.mark.error_increase(metric="mae", max=0.5)
        @pytest.mark.accuracy_drop(metric="r2", max=0.0)
        def test_within():
            pass

        @pytest.mark.netzip(compressors=["fp16", "shift"])
        @pytest.mark.error_increase(metric="mae", max_ratio=1.5)
        def test_ratio():
            pass
        """)
    result = regression_project.runpytest("--netzip", "--netzip-json=out.json")
    result.assert_outcomes(passed=3, failed=2)
    result.stdout.fnmatch_lines([
        "*netzip budgets of shift on cpu: 1 of 1 failed*",
        "*error_increase(max=0.4)*mae rise <= 0.4*1 *0.5 *FAIL (rise 0.5)",
    ])
    result.stdout.fnmatch_lines(["*error_increase(max_ratio=1.5)*mae / reference <= 1.5*FAIL (ratio 2)"])
    records = {(r["test"].split("[")[0], r["compressor"]): r for r in
               json.loads((regression_project.path / "out.json").read_text())["results"]}
    shifted = records["test_model.py::test_absolute", "shift"]["metrics"]
    assert shifted["mae"] == pytest.approx(1.0)
    assert records["test_model.py::test_absolute", "fp16"]["outcome"] == "passed"
    assert records["test_model.py::test_within", "shift"]["outcome"] == "passed"


def test_several_outputs_and_a_constant_target(regression_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETZIP_TEST_OUTPUTS", "2")
    write_test(regression_project, """
        import math

        @pytest.mark.netzip(compressors=["shift"])
        @pytest.mark.error_increase(metric="rmse", max=0.25)
        def test_two_outputs(netzip_result):
            reference, shifted = netzip_result.reference_metrics, netzip_result.metrics
            # errors 0, 0, 0, -2 and 0, 0, 0, 0: mae 2 / 8, rmse sqrt(4 / 8); the constant column is exact: r2 1
            assert reference["mae"] == pytest.approx(0.25)
            assert reference["rmse"] == pytest.approx(math.sqrt(0.5))
            assert reference["r2"] == pytest.approx((5 / 7 + 1) / 2)
            # shifted: every error is 1 or -1; the constant column is missed: r2 0 (scikit-learn's force_finite)
            assert shifted["mae"] == shifted["rmse"] == pytest.approx(1.0)
            assert shifted["r2"] == pytest.approx((5 / 7 + 0) / 2)
            assert shifted["output_rmse_vs_reference"] == pytest.approx(1.0)
            assert reference["output_rmse_vs_reference"] == 0.0
        """)
    result = regression_project.runpytest("--netzip")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*error_increase(max=0.25)*rmse rise <= 0.25*FAIL (rise 0.2929)"])


def test_classification_metrics_of_a_regressor_skip_saying_why(regression_project: pytest.Pytester) -> None:
    write_test(regression_project, """
        @pytest.mark.netzip(compressors=["shift"])
        @pytest.mark.accuracy_drop(max=0.01)
        def test_top1():
            pass
        """)
    result = regression_project.runpytest("--netzip", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*netzip cannot measure top1 (top1 needs a classification model; this model returns "
                                 "values*"])


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ('metric="top1", max=0.1',
         "*error_increase(metric=...): unknown metric 'top1' (valid: *kl_divergence, macs, mae, *output_rmse_vs_reference,"
         " *perplexity, *rmse, *)"),
        ('metric="maes", max=0.1', "*unknown metric 'maes': did you mean 'mae'?*"),
        ('metric="kl_divergence", max_ratio=1.1',
         "*error_increase(max_ratio=...): kl_divergence is measured against the reference already (the reference's "
         "own is 0, so no ratio): bound it with max*"),
        ('metric="mae", max=-1', "*error_increase(max=-1) is impossible: it must be at least 0*"),
        ('metric="mae"', "*error_increase sets no threshold: give at least one of *max, max_ratio*"),
    ],
)
def test_error_increase_usage_errors_are_setup_errors(
    regression_project: pytest.Pytester, marker: str, message: str
) -> None:
    write_test(regression_project, f"""
        @pytest.mark.netzip(compressors=["shift"])
        @pytest.mark.error_increase({marker})
        def test_gated():
            pass
        """)
    result = regression_project.runpytest("--netzip")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([message])


AMBIGUOUS = """
import torch

@pytest.fixture(scope="session")
def netzip_data():
    x = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    return [(x, torch.tensor([1, 2, 3, 6]))]  # integer targets, one value per sample
"""

DECLARED = """
@pytest.mark.netzip(compressors=["shift"], task="regression")
@pytest.mark.error_increase(metric="mae", max=0.6)
def test_declared(netzip_result):
    assert netzip_result.reference_metrics["mae"] == pytest.approx(0.5)
    assert netzip_result.metrics["mae"] == pytest.approx(1.0)  # shifted: errors 1, 1, 1, -1
"""

UNDECLARED = """
@pytest.mark.netzip(compressors=["shift"])
def test_undeclared(netzip_result):
    netzip_result.metrics["mae"]
"""


@pytest.mark.parametrize("tests", [DECLARED + UNDECLARED, UNDECLARED + DECLARED], ids=["declared_first", "declared_last"])
def test_integer_targets_are_ambiguous_until_declared_whatever_runs_first(
    regression_project: pytest.Pytester, tests: str
) -> None:
    write_test(regression_project, AMBIGUOUS + tests)
    result = regression_project.runpytest("--netzip")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*the model returns a float32 tensor of shape (4, 1) and the targets are an int64 tensor of shape (4,): "
        "regression on integer targets, or a classifier with one logit? Declare task='regression' (in "
        "@pytest.mark.netzip or evaluate)*"
    ])
    result.stdout.fnmatch_lines(["FAILED test_model.py::test_undeclared*"])


#: A segmentation repo: ``Painter`` returns its input as per-pixel logits ({"out": ...}, as torchvision's models
#: do) through an identity 1x1 convolution; ``swap`` exchanges classes 0 and 1. The inputs are one-hot maps of
#: PREDICTED; TARGETS leave a 255 and a -100 pixel unscored. Of the 10 scored pixels (rows: target, columns:
#: predicted) class 0 has 3 right, class 1 4 right and 1 taken for class 2, class 2 2 right: pixel accuracy 9/10;
#: IoU 3/3, 4/5 and 2/3. Swapped: class 0 is predicted 1 and class 1 predicted 0: accuracy 2/10, IoU 0, 0 and
#: 2/3; only the 3 pixels predicted 2 agree with the reference.
SEGMENTATION_CONFTEST = '''
import pytest
import torch
from torch import nn

from pytest_netzip import Compressor

PREDICTED = torch.tensor([[[0, 0, 1], [1, 2, 2]], [[2, 2, 0], [0, 1, 1]]])
TARGETS = torch.tensor([[[0, 0, 1], [1, 1, 255]], [[2, 2, 0], [-100, 1, 1]]])


class Painter(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.eye(3)[:, :, None, None])

    def forward(self, x):
        logits = self.conv(x)
        return {"out": logits, "aux": logits.mean()}


class Swap(Compressor):
    name = "swap"

    def transform(self, model, ctx):
        with torch.no_grad():
            model.conv.weight.copy_(model.conv.weight[[1, 0, 2]])
        return model


@pytest.hookimpl(optionalhook=True)
def pytest_netzip_compressors():
    return [Swap]


@pytest.fixture(scope="session")
def netzip_model():
    return Painter().eval()


@pytest.fixture(scope="session")
def netzip_data():
    x = torch.nn.functional.one_hot(PREDICTED, 3).permute(0, 3, 1, 2).float()
    return [(x[:1], TARGETS[:1]), (x[1:], TARGETS[1:])]
'''


def test_segmentation_gates_miou_and_pixel_accuracy(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(SEGMENTATION_CONFTEST)
    write_test(pytester, """
        @pytest.mark.netzip(compressors=["fp16", "swap"])
        @pytest.mark.accuracy_drop(metric="miou", max=0.05)
        @pytest.mark.accuracy_drop(metric="pixel_accuracy", max=0.05)
        def test_segmenter(netzip_result):
            assert netzip_result.reference_metrics["miou"] == pytest.approx((1 + 4 / 5 + 2 / 3) / 3)
            assert netzip_result.reference_metrics["pixel_accuracy"] == pytest.approx(0.9)
            assert netzip_result.reference_metrics["pixel_agreement"] == 1.0

        @pytest.mark.netzip(compressors=["swap"], task="segmentation")
        def test_swapped(netzip_result):
            assert netzip_result.metrics["miou"] == pytest.approx((0 + 0 + 2 / 3) / 3)
            assert netzip_result.metrics["pixel_accuracy"] == pytest.approx(0.2)
            assert netzip_result.metrics["pixel_agreement"] == pytest.approx(0.3)
        """)
    result = pytester.runpytest("--netzip")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([
        "*netzip budgets of swap on cpu: 2 of 2 failed*",
        "*accuracy_drop(max=0.05)*miou drop <= 0.05*FAIL (drop 0.6000)",
        "*accuracy_drop(max=0.05)*pixel_accuracy drop <= 0.05*FAIL (drop 0.7000)",
    ])


def test_a_declared_task_the_model_does_not_fit_fails_saying_what_it_returns(project: pytest.Pytester) -> None:
    write_test(project, """
        @pytest.mark.netzip(compressors=["fp16"], task="segmentation")
        @pytest.mark.agreement(min=0.9)
        def test_as_segmenter():
            pass

        @pytest.mark.netzip(compressors=["fp16"], task="language_modeling")
        def test_as_language_model(netzip_result):
            netzip_result.metrics["perplexity"]

        @pytest.mark.netzip(compressors=["fp16"], task="regression")
        def test_as_regressor(netzip_result):
            netzip_result.metrics["mae"]
        """)
    result = project.runpytest("--netzip")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines([
        "*netzip: task='segmentation' was declared, but the model returns logits*",
        "*netzip: task='language_modeling' was declared, but the model returns logits*",
        "*netzip: task='regression' was declared, but the model returns logits*",
    ])


#: A language-model repo: ``Bigram`` gives the next token's logits from the current token alone: log 2 for the
#: same token, 0 for the two others (probabilities 1/2, 1/4, 1/4); ``sharpen`` doubles them (4/6, 1/6, 1/6).
#: The labels are the input ids (HuggingFace's style, shifted), -100 where not scored. Scored: 0->0, 0->1, 1->2 in
#: the first sequence, 2->2, 2->0 in the second: two tokens at 1/2, three at 1/4, so perplexity
#: (2 * 2 * 4 * 4 * 4) ** (1 / 5) = 2 ** 1.6; top-1 right for 2 of 5. Sharpened: (1.5 ** 2 * 6 ** 3) ** (1 / 5),
#: 1.137 times as much, and a KL(reference || sharpened) of 1/2 log(1/2 / (4/6)) + 1/2 log(1/4 / (1/6)) =
#: 1/2 log 1.125 at every position.
LANGUAGE_CONFTEST = '''
import math

import pytest
import torch
from torch import nn

from pytest_netzip import Compressor


class Bigram(nn.Module):
    def __init__(self):
        super().__init__()
        self.table = nn.Embedding(3, 3)
        with torch.no_grad():
            self.table.weight.copy_(math.log(2) * torch.eye(3))

    def forward(self, input_ids, attention_mask=None):
        return {"logits": self.table(input_ids)}


class Sharpen(Compressor):
    name = "sharpen"

    def transform(self, model, ctx):
        with torch.no_grad():
            model.table.weight *= 2
        return model


@pytest.hookimpl(optionalhook=True)
def pytest_netzip_compressors():
    return [Sharpen]


@pytest.fixture(scope="session")
def netzip_model():
    return Bigram().eval()


@pytest.fixture(scope="session")
def netzip_data():
    first = torch.tensor([[0, 0, 1, 2]])
    second = torch.tensor([[2, 2, 0, 1]])
    return [
        {"input_ids": first, "attention_mask": torch.ones(1, 4), "labels": first},
        {"input_ids": second, "attention_mask": torch.ones(1, 4), "labels": torch.tensor([[-100, 2, 0, -100]])},
    ]
'''


@pytest.fixture
def language_project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester dir holding the language-model repo's conftest.py."""
    pytester.makeconftest(LANGUAGE_CONFTEST)
    return pytester


def test_language_model_gates_perplexity_and_kl_divergence(language_project: pytest.Pytester) -> None:
    write_test(language_project, """
        import math

        @pytest.mark.netzip(compressors=["fp16", "sharpen"])
        @pytest.mark.error_increase(metric="perplexity", max_ratio=1.1)
        @pytest.mark.error_increase(metric="kl_divergence", max=0.05)
        def test_language_model(netzip_result):
            assert netzip_result.reference_metrics["perplexity"] == pytest.approx(2 ** 1.6)
            assert netzip_result.reference_metrics["token_accuracy"] == pytest.approx(2 / 5)
            assert netzip_result.reference_metrics["token_agreement"] == 1.0
            assert netzip_result.reference_metrics["kl_divergence"] == pytest.approx(0.0, abs=1e-12)
            assert netzip_result.metrics["token_agreement"] == 1.0

        @pytest.mark.netzip(compressors=["sharpen"])
        @pytest.mark.error_increase(metric="perplexity", max_ratio=1.14)
        @pytest.mark.error_increase(metric="kl_divergence", max=0.06)
        def test_within(netzip_result):
            assert netzip_result.metrics["perplexity"] == pytest.approx((1.5 ** 2 * 6 ** 3) ** (1 / 5))
            assert netzip_result.metrics["kl_divergence"] == pytest.approx(0.5 * math.log(1.125))
            assert netzip_result.metrics["token_accuracy"] == pytest.approx(2 / 5)
        """)
    result = language_project.runpytest("--netzip", "--netzip-json=out.json")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([
        "*netzip budgets of sharpen on cpu: 2 of 2 failed*",
        "*error_increase(max_ratio=1.1)*perplexity / reference <= 1.1*FAIL (ratio 1.14)",
        "*error_increase(max=0.05)*kl_divergence rise <= 0.05*FAIL (rise 0.05889)",
    ])
    records = json.loads((language_project.path / "out.json").read_text())["results"]
    fp16 = next(record for record in records if record["compressor"] == "fp16")
    assert fp16["outcome"] == "passed"
    assert fp16["metrics"]["kl_divergence"] == pytest.approx(0.0, abs=1e-6)  # log 2 rounded to half precision
    assert fp16["metrics"]["perplexity"] == pytest.approx(2**1.6, rel=1e-3)


def test_aligned_targets_are_scored_where_they_stand(language_project: pytest.Pytester) -> None:
    write_test(language_project, """
        @pytest.fixture(scope="session")
        def netzip_data():
            # the tokens each position predicts, not the inputs: the same five scored pairs as the shifted labels
            return [
                (torch.tensor([[0, 0, 1, 2]]), torch.tensor([[0, 1, 2, -100]])),
                (torch.tensor([[2, 2, 0, 1]]), torch.tensor([[2, 0, -100, -100]])),
            ]

        @pytest.mark.netzip(compressors=["sharpen"])
        def test_language_model(netzip_result):
            assert netzip_result.reference_metrics["perplexity"] == pytest.approx(2 ** 1.6)
            assert netzip_result.reference_metrics["token_accuracy"] == pytest.approx(2 / 5)

        import torch
        """)
    language_project.runpytest("--netzip").assert_outcomes(passed=1)


def test_a_gpt2_perplexity_is_exp_of_its_own_loss(pytester: pytest.Pytester) -> None:
    pytest.importorskip("transformers")
    pytester.makeconftest("""
        import pytest
        import torch
        from transformers import GPT2Config, GPT2LMHeadModel

        @pytest.fixture(scope="session")
        def netzip_model():
            torch.manual_seed(0)
            config = GPT2Config(vocab_size=40, n_positions=16, n_embd=16, n_layer=1, n_head=2, attn_pdrop=0.0,
                                embd_pdrop=0.0, resid_pdrop=0.0)
            return GPT2LMHeadModel(config).eval()

        @pytest.fixture(scope="session")
        def netzip_data():
            ids = torch.randint(0, 40, (6, 8), generator=torch.Generator().manual_seed(0))
            mask = torch.ones_like(ids)
            mask[3:, 6:] = 0  # padding at the end of three sequences, not scored
            labels = ids.masked_fill(mask == 0, -100)
            return [{"input_ids": ids[i:i + 3], "attention_mask": mask[i:i + 3], "labels": labels[i:i + 3]}
                    for i in (0, 3)]
        """)
    write_test(pytester, """
        import math

        import torch

        @pytest.mark.netzip(compressors=["fp16"])
        @pytest.mark.error_increase(metric="perplexity", max_ratio=1.01)
        @pytest.mark.compute_budget(max_macs=1e6)
        def test_gpt2(netzip_result, netzip_model, netzip_data):
            batch = {key: torch.cat([b[key] for b in netzip_data]) for key in netzip_data[0]}
            with torch.no_grad():
                loss = netzip_model(**batch).loss  # shifted inside the model, -100 ignored
            assert netzip_result.reference_metrics["perplexity"] == pytest.approx(math.exp(loss), rel=1e-5)
            assert netzip_result.metrics["token_agreement"] > 0.9
            assert netzip_result.metrics["macs"] > 0
        """)
    result = pytester.runpytest("--netzip")
    result.assert_outcomes(passed=1)


#: A tiny BERT classifier built from a config, run on dict batches with the labels inside, as transformers' own
#: training loops hold them. Its labels are its own predictions, every fourth moved to the next class: top-1 3/4.
BERT_CONFTEST = """
import pytest
import torch
from transformers import BatchEncoding, BertConfig, BertForSequenceClassification


@pytest.fixture(scope="session")
def netzip_model():
    torch.manual_seed(0)
    config = BertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=16, num_labels=3)
    return BertForSequenceClassification(config).eval()


@pytest.fixture(scope="session")
def netzip_data(netzip_model):
    ids = torch.randint(0, 30, (16, 8), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    with torch.no_grad():
        labels = netzip_model(input_ids=ids, attention_mask=mask).logits.argmax(dim=1)
    labels[::4] = (labels[::4] + 1) % 3
    return [BatchEncoding({"input_ids": ids[i:i + 8], "attention_mask": mask[i:i + 8], "labels": labels[i:i + 8]})
            for i in (0, 8)]
"""


def test_a_transformers_classifier_on_dict_batches_needs_no_wrapper(pytester: pytest.Pytester) -> None:
    pytest.importorskip("transformers")
    pytester.makeconftest(BERT_CONFTEST)
    write_test(pytester, """
        @pytest.mark.netzip(compressors=["fp16", "int8_dynamic"])
        @pytest.mark.agreement(min=0.9)
        @pytest.mark.accuracy_drop(max=0.2)
        @pytest.mark.compute_budget(max_macs=18736)
        def test_bert(netzip_result):
            assert netzip_result.reference_metrics["top1"] == pytest.approx(0.75)
        """)
    result = pytester.runpytest("--netzip", "--netzip-json=out.json")
    result.assert_outcomes(passed=2)
    for record in json.loads((pytester.path / "out.json").read_text())["results"]:
        # per sample of 8 tokens, hidden 16: q, k, v and the output projection 4 * 8 * 16 * 16, the scores and
        # their sum over values 2 * 8 * 8 * 16, the feed-forward 2 * 8 * 16 * 32, the pooler 16 * 16, the head 16 * 3
        assert record["reference"]["metrics"]["macs"] == 8192 + 2048 + 8192 + 256 + 48


def test_robustness_on_token_ids_is_unavailable(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("""
        import pytest
        import torch
        from torch import nn

        class Bag(nn.Module):
            def __init__(self):
                super().__init__()
                self.bag = nn.EmbeddingBag(10, 3)
                self.head = nn.Linear(3, 3)

            def forward(self, input_ids):
                return self.head(self.bag(input_ids))

        @pytest.fixture(scope="session")
        def netzip_model():
            torch.manual_seed(0)
            return Bag().eval()

        @pytest.fixture(scope="session")
        def netzip_data():
            ids = torch.randint(0, 10, (8, 5), generator=torch.Generator().manual_seed(0))
            return [(ids, torch.arange(8) % 3)]
        """)
    write_test(pytester, """
        @pytest.mark.netzip(compressors=["fp16"])
        @pytest.mark.adversarial_robustness(eps=0.1, max_drop=0.1)
        def test_robust():
            pass

        @pytest.mark.netzip(compressors=["fp16"])
        @pytest.mark.perturbation_robustness(max_drop=0.1)
        def test_perturbed():
            pass
        """)
    result = pytester.runpytest("--netzip", "-rs")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines([
        "*attacks and perturbations need continuous inputs; netzip_data's are an int64 tensor of shape (8, 5) (token "
        "ids or other integers)*",
    ])



def test_error_increase_without_a_bound_names_only_the_bounds(regression_project: pytest.Pytester) -> None:
    # known bug, left failing for the owner (not committed): the message offers metric=... as a threshold
    write_test(regression_project, """
        @pytest.mark.netzip(compressors=["shift"])
        @pytest.mark.error_increase(metric="mae")
        def test_gated():
            pass
        """)
    result = regression_project.runpytest("--netzip")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*error_increase sets no threshold: give at least one of max, max_ratio"])
