"""Robustness gates: perturbations on hand-computed batches, attack settings, and whole pytest sessions."""

from __future__ import annotations

import inspect
import sys

import pytest
import torch
import torchattacks  # noqa: F401 - imported once here: pytester's in-process runs cannot re-import it

from pytest_netzip.budgets.robustness import (
    _NO_ALPHA,
    _NO_STEPS,
    attack_spec,
    perturbation_spec,
)
from pytest_netzip.budgets.signatures import THRESHOLD_MARKERS
from pytest_netzip.data.space import InputSpace
from pytest_netzip.errors import BudgetError, InputSpaceError
from pytest_netzip.metrics import MetricRegistry, perturbations
from pytest_netzip.metrics.attacks import ATTACKS

GENERATOR = torch.Generator().manual_seed(0)


def test_each_perturbation_does_what_its_severity_says() -> None:
    x = torch.tensor([[[[0.1, 0.9], [0.3, 0.7]]]])
    assert torch.equal(perturbations.brightness(x, 0.4, GENERATOR), (x + 0.2).clamp(0, 1))
    torch.testing.assert_close(perturbations.contrast(x, 1.0, GENERATOR), 0.5 + (x - 0.5) * 0.1)
    assert torch.equal(perturbations.shift(torch.ones(1, 1, 8, 8), 1.0, GENERATOR)[0, 0].sum(), torch.tensor(36.0))  # by 2, 2
    flat = torch.full((1, 1, 8, 8), 0.25)
    torch.testing.assert_close(perturbations.blur(flat, 1.0, GENERATOR), flat)  # blur keeps a flat image
    edge = torch.zeros(1, 1, 1, 9)
    edge[..., 4] = 1.0
    blurred = perturbations.blur(edge, 0.5, GENERATOR)  # sigma 1: the Gaussian's weights, normalised over 7 taps
    weights = torch.exp(-torch.arange(-3.0, 4.0) ** 2 / 2)
    torch.testing.assert_close(blurred[0, 0, 0, 1:8], weights / weights.sum())
    noisy = perturbations.noise(torch.full((1, 20000), 0.5), 0.2, torch.Generator().manual_seed(1))
    assert noisy.std().item() == pytest.approx(0.1, rel=0.03)
    assert torch.equal(noisy, perturbations.noise(torch.full((1, 20000), 0.5), 0.2, torch.Generator().manual_seed(1)))
    for kind in perturbations.KINDS.values():
        torch.testing.assert_close(kind(x, 0.0, GENERATOR), x)  # severity 0 changes nothing
    with pytest.raises(ValueError, match=r"blur needs images \(samples, ..., height, width\)"):
        perturbations.blur(torch.rand(4, 6), 0.5, GENERATOR)


def test_attack_defaults_reach_eps_and_bad_settings_name_the_valid_ones() -> None:
    pgd = attack_spec(attack="PGD", eps=0.1)
    assert (pgd.steps, pgd.alpha) == (10, pytest.approx(0.025))  # 10 steps of 2.5 eps / 10 can travel 2.5 eps
    assert attack_spec(attack="FGSM", eps=0.1).steps is None
    with pytest.raises(BudgetError, match=r"unknown attack 'PDG': did you mean 'PGD'\? \(valid: APGD, AutoAttack"):
        attack_spec(attack="PDG", eps=0.1)
    with pytest.raises(BudgetError, match=r"adversarial_robustness\(steps=5\): FGSM takes no steps"):
        attack_spec(attack="FGSM", eps=0.1, steps=5)
    with pytest.raises(BudgetError, match=r"adversarial_robustness\(eps=2\) is impossible"):
        attack_spec(attack="PGD", eps=2)
    with pytest.raises(BudgetError, match=r"adversarial_robustness\(eps=0\) attacks nothing"):
        attack_spec(attack="PGD", eps=0)
    assert attack_spec(attack="pgd", eps=0.1).attack == "PGD"
    with pytest.raises(BudgetError, match="perturbation_robustness sets no threshold: give max_drop or min_agreement"):
        THRESHOLD_MARKERS["perturbation_robustness"][0](MetricRegistry(), kinds="noise")
    with pytest.raises(BudgetError, match=r"perturbation_robustness\(kinds=5\) must list perturbation kinds"):
        perturbation_spec(kinds=5)
    with pytest.raises(BudgetError, match=r"unknown perturbation kind 'fog'"):
        perturbation_spec(kinds=["fog"])
    with pytest.raises(BudgetError, match=r"max_severity=1.5\) is impossible: severities lie in \(0, 1\]"):
        perturbation_spec(max_severity=1.5)


@pytest.mark.parametrize("attack", ATTACKS)
def test_the_attack_table_matches_torchattacks(attack: str) -> None:
    parameters = inspect.signature(getattr(torchattacks, attack).__init__).parameters
    assert "eps" in parameters
    assert ("steps" not in parameters) == (attack in _NO_STEPS)
    assert ("alpha" not in parameters) == (attack in _NO_ALPHA)


def test_an_input_space_maps_ranges_and_normalisation_to_unit_values() -> None:
    x = torch.tensor([[0.0, 127.5, 255.0]])
    space = InputSpace.of((0, 255), None)
    torch.testing.assert_close(space.to_unit(x), torch.tensor([[0.0, 0.5, 1.0]]))
    torch.testing.assert_close(space.from_unit(space.to_unit(x)), x)
    normalised = InputSpace.of((0, 1), ([0.5, 0.25], [0.5, 0.25]))
    pixels = torch.rand(2, 2, 3, 3)
    inputs = (pixels - torch.tensor([0.5, 0.25]).view(1, 2, 1, 1)) / torch.tensor([0.5, 0.25]).view(1, 2, 1, 1)
    torch.testing.assert_close(normalised.to_unit(inputs), pixels)
    with pytest.raises(InputSpaceError, match=r"inputs reach \[-1, 2\], outside the declared range \(0, 1\)"):
        InputSpace().to_unit(torch.tensor([-1.0, 2.0]))
    with pytest.raises(InputSpaceError, match="netzip_input_range must return"):
        InputSpace.of((1, 0), None)


ROBUST_PROJECT = '''
import pytest
import torch
from torch import nn

from pytest_netzip import Compressor


class Trapped(nn.Module):
    """The reference, plus a class-5 boost once no feature reaches 0.45 (every clean sample has one at 0.5 or
    more), or once the mean of a sample passes 0.45."""

    def __init__(self, model, on_mean=False):
        super().__init__()
        self.model = model
        self.on_mean = on_mean

    def forward(self, x):
        if self.on_mean:
            trigger = torch.relu(x.mean(dim=1, keepdim=True) - 0.45)
        else:
            trigger = torch.relu(0.45 - x.max(dim=1, keepdim=True).values)
        return self.model(x) + 1000 * trigger * torch.tensor([0, 0, 0, 0, 0, 1.0])


class Trap(Compressor):
    name = "trap"

    def transform(self, model, ctx):
        return Trapped(model)


class Fragile(Compressor):
    """Misclassifies once a sample's mean passes 0.45: brightness breaks it, contrast (which keeps the mean) does not."""

    name = "fragile"

    def transform(self, model, ctx):
        return Trapped(model, on_mean=True)


@pytest.hookimpl(optionalhook=True)
def pytest_netzip_compressors():
    return [Trap, Fragile]


@pytest.fixture(scope="session")
def netzip_model():
    model = nn.Linear(6, 6, bias=False)
    with torch.no_grad():  # off the diagonal, weights too small to move a prediction, for pruning to take
        model.weight.copy_(torch.eye(6) + torch.linspace(1e-7, 1e-6, 36).reshape(6, 6) * (1 - torch.eye(6)))
    return model.eval()


def make_inputs():
    """Class c: 0.5 at feature c, plus noise below 0.1 everywhere: a margin of at least 0.4."""
    labels = torch.arange(40) % 6
    noise = torch.rand(40, 6, generator=torch.Generator().manual_seed(0)) * 0.1
    return nn.functional.one_hot(labels, 6) * 0.5 + noise, labels


@pytest.fixture(scope="session")
def netzip_data():
    inputs, labels = make_inputs()
    return [(inputs[i:i + 10], labels[i:i + 10]) for i in range(0, 40, 10)]
'''


@pytest.fixture
def robust_project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(ROBUST_PROJECT)
    return pytester


def test_an_attack_that_hurts_the_compressed_model_more_fails_its_budget(robust_project: pytest.Pytester) -> None:
    robust_project.makepyfile(test_model="""
        import pytest

        @pytest.mark.netzip(compressors=["prune_l1", "trap"])
        @pytest.mark.adversarial_robustness(attack="FGSM", eps=0.1, max_drop=0.05)
        def test_robust():
            pass
    """)
    result = robust_project.runpytest("--netzip", "--netzip-json", "out.json")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*adversarial_robustness(max_drop=0.05)*robust_accuracy drop <= 0.05*FAIL (drop 0.*; FGSM(eps=0.1): "
        "white-box 0.*, transfer 0.*, * stronger; robust to both 0.*)",
    ])
    import json

    records = {record["compressor"]: record for record in json.loads((robust_project.path / "out.json").read_text())["results"]}
    assert records["prune_l1"]["metrics"]["attack_mode"] == "white-box"  # gradients flow through pruned weights
    assert records["prune_l1"]["metrics"]["robust_accuracy"] == records["prune_l1"]["reference"]["metrics"]["robust_accuracy"]
    assert records["trap"]["metrics"]["robust_accuracy"] < records["trap"]["reference"]["metrics"]["robust_accuracy"] - 0.05
    assert records["trap"]["metrics"]["attack_seconds"] > 0
    assert records["trap"]["settings"]["robust_accuracy"] == "FGSM(eps=0.1)"


def test_a_model_attacked_under_two_settings_shows_both_and_marks_the_one_over_budget(
    robust_project: pytest.Pytester,
) -> None:
    robust_project.makepyfile(test_model="""
        import pytest

        @pytest.mark.netzip(compressors=["prune_l1"])
        @pytest.mark.adversarial_robustness(attack="FGSM", eps=0.05, min_accuracy=0.5)
        def test_weak():
            pass

        @pytest.mark.netzip(compressors=["prune_l1"])
        @pytest.mark.adversarial_robustness(attack="FGSM", eps=0.3, min_accuracy=0.5)
        def test_strong():
            pass
    """)
    result = robust_project.runpytest("--netzip", "--netzip-json", "out.json")
    result.assert_outcomes(passed=1, failed=1)  # a margin of 0.4 holds against 0.05, not against 0.3
    headers = [line for line in result.stdout.lines if line.startswith("variant ")]  # a block or two: the width
    assert sum("robust_accuracy [FGSM(eps=0.05)]" in line for line in headers) == 1
    assert sum("robust_accuracy [FGSM(eps=0.3)]" in line for line in headers) == 1
    pruned = [line for line in result.stdout.lines if line.startswith("prune_l1 ")]
    assert sum("0.0000 *" in line for line in pruned) == 1 and not any("1.0000 *" in line for line in pruned)
    import json

    document = json.loads((robust_project.path / "out.json").read_text())
    (pruned,) = [variant["metrics"] for variant in document["variants"] if variant["compressor"] == "prune_l1"]
    assert (pruned["robust_accuracy [FGSM(eps=0.05)]"], pruned["robust_accuracy [FGSM(eps=0.3)]"]) == (1.0, 0.0)
    assert "robust_accuracy" not in pruned and pruned["top1"] == 1.0  # one setting for top1: its plain name


def test_a_model_without_gradients_is_attacked_by_transfer(robust_project: pytest.Pytester) -> None:
    robust_project.makepyfile(test_model="""
        import pytest

        @pytest.mark.netzip(compressors=["int8_dynamic", "fp16"])
        @pytest.mark.adversarial_robustness(attack="PGD", eps=0.1, min_accuracy=0.99)
        def test_robust(netzip_result, netzip_compressor):
            expected = "transfer" if netzip_compressor.name == "int8_dynamic" else "white-box"
            assert netzip_result.metrics["attack_mode"] == expected
            if expected == "transfer":
                assert "no gradient reaches its input" in netzip_result.metrics["attack_detail"]
    """)
    result = robust_project.runpytest("--netzip")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["variant*attack_mode*", "reference*white-box*", "fp16*white-box*", "int8_dynamic*transfer*"])
    # eps 0.1 moves two features by 0.1 each: the 0.4 margin of every sample holds, for every model, either way
    result.stdout.fnmatch_lines(["variant * top1 * robust_accuracy * attack_mode", "reference * 1.0000 * 1.0000 * white-box",
                                 "fp16 * 1.0000 * 1.0000 * white-box", "int8_dynamic * 1.0000 * 1.0000 * transfer"],
                                consecutive=True)


def test_an_unknown_attack_is_a_usage_error(robust_project: pytest.Pytester) -> None:
    robust_project.makepyfile(test_model="""
        import pytest

        @pytest.mark.netzip(compressors=["fp16"])
        @pytest.mark.adversarial_robustness(attack="Carlini", eps=0.05, max_drop=0.05)
        def test_robust():
            pass
    """)
    result = robust_project.runpytest("--netzip")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*test_robust: adversarial_robustness(attack=...): unknown attack 'Carlini'*(valid: APGD,*"])


def test_a_breaking_perturbation_is_shrunk_to_the_smallest_severity(robust_project: pytest.Pytester) -> None:
    robust_project.makepyfile(test_model="""
        import pytest

        @pytest.mark.netzip(compressors=["prune_l1", "fragile"])
        @pytest.mark.perturbation_robustness(kinds=["contrast", "brightness"], max_drop=0.05)
        def test_perturbed():
            pass
    """)
    result = robust_project.runpytest("--netzip", "--netzip-json", "out.json")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*perturbation_robustness(max_drop=0.05)*perturbation_drop <= 0.05*FAIL (brightness at severity *",
    ])
    import json

    record = next(r for r in json.loads((robust_project.path / "out.json").read_text())["results"] if r["compressor"] == "fragile")
    severity = float(record["metrics"]["worst_perturbation"].split("severity ")[1].split(" ")[0])
    # by hand: a sample breaks once its mean passes 0.45; the third sample to break (of those not of class 5) is 7.5%
    inputs = torch.nn.functional.one_hot(torch.arange(40) % 6, 6) * 0.5
    inputs = inputs + torch.rand(40, 6, generator=torch.Generator().manual_seed(0)) * 0.1
    others = inputs[torch.arange(40) % 6 != 5]
    edge = next(s / 10_000 for s in range(10_001)
                if (perturbations.brightness(others, s / 10_000, GENERATOR).mean(dim=1) > 0.45).sum() >= 3)
    assert edge - 1e-3 <= severity <= edge + 1 / 256 + 1e-3


def test_the_corruption_error_ratio_compares_errors_summed_over_severities(robust_project: pytest.Pytester) -> None:
    robust_project.makeconftest(ROBUST_PROJECT + """
class ClassZero(nn.Module):
    def forward(self, x):
        return torch.nn.functional.one_hot(torch.zeros(len(x), dtype=torch.long), 6).float()


class Constant(Compressor):
    name = "constant"

    def transform(self, model, ctx):
        return ClassZero()


@pytest.hookimpl(optionalhook=True)
def pytest_netzip_compressors():
    return [Constant]
""")
    robust_project.makepyfile(test_model="""
        import pytest

        @pytest.mark.netzip(compressors=["prune_l1", "constant"])
        @pytest.mark.perturbation_robustness(kinds=["noise"], max_severity=0.8, max_drop=1.0)
        def test_perturbed(netzip_result):
            netzip_result.metrics["corruption_error_ratio"]
    """)
    result = robust_project.runpytest("--netzip", "--netzip-json", "out.json")
    result.assert_outcomes(passed=2)
    import json

    ratios = {r["compressor"]: r["metrics"]["corruption_error_ratio"]
              for r in json.loads((robust_project.path / "out.json").read_text())["results"]}
    # by hand: the constant model is wrong on the 33 samples not of class 0 at every severity; the reference's
    # errors under noise at 0.16, 0.32, ..., 0.8 (seed 0), summed, divide its 5 x 33
    inputs = torch.nn.functional.one_hot(torch.arange(40) % 6, 6) * 0.5
    inputs = inputs + torch.rand(40, 6, generator=torch.Generator().manual_seed(0)) * 0.1
    reference_errors = sum(
        (perturbations.noise(inputs, level * 0.8, torch.Generator().manual_seed(0)).argmax(dim=1) != torch.arange(40) % 6)
        .sum().item() for level in (0.2, 0.4, 0.6, 0.8, 1.0)
    )
    assert ratios["prune_l1"] == 1.0
    assert ratios["constant"] == pytest.approx(5 * 33 / reference_errors)


@pytest.mark.parametrize(
    "batches",
    [
        "self.batches[self.passes % 4:] + self.batches[:self.passes % 4]",  # each pass starts one batch later
        # the same targets each pass, the inputs with fresh noise (a random transform)
        "[(x + 0.01 * torch.rand(x.shape, generator=torch.Generator().manual_seed(self.passes)), y) "
        "for x, y in self.batches]",
    ],
    ids=["shuffled", "noisy"],
)
def test_data_that_changes_between_passes_fails_with_the_reason(robust_project: pytest.Pytester, batches: str) -> None:
    robust_project.makeconftest(ROBUST_PROJECT + f"""
class Changing:
    def __init__(self, batches):
        self.batches, self.passes = batches, 0

    def __iter__(self):
        self.passes += 1
        return iter({batches})


@pytest.fixture(scope="session")
def netzip_data():
    inputs, labels = make_inputs()
    return Changing([(inputs[i:i + 10], labels[i:i + 10]) for i in range(0, 40, 10)])
""")
    robust_project.makepyfile(test_model="""
        import pytest

        @pytest.mark.netzip(compressors=["int8_dynamic"])  # no gradient: attacked by transfer, no clean pass of its own
        @pytest.mark.adversarial_robustness(attack="pgd", eps=0.05, max_drop=0.05)
        def test_robust():
            pass
    """)
    result = robust_project.runpytest("--netzip")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*netzip: netzip_data gave other samples on a second pass (shuffle=True?)*"])


def test_perturbations_default_to_the_kinds_that_fit_the_inputs(robust_project: pytest.Pytester) -> None:
    robust_project.makepyfile(test_model="""
        import pytest

        @pytest.mark.netzip(compressors=["prune_l1"])
        @pytest.mark.perturbation_robustness(max_drop=0.01, max_examples=5)
        def test_any_kind():
            pass

        @pytest.mark.netzip(compressors=["prune_l1"])
        @pytest.mark.perturbation_robustness(kinds=["blur"], max_drop=0.01)
        def test_blur():
            pass
    """)
    result = robust_project.runpytest("--netzip", "-rs", "--netzip-json", "out.json")
    result.assert_outcomes(passed=1, skipped=1)
    import json

    (any_kind,) = [r for r in json.loads((robust_project.path / "out.json").read_text())["results"] if "any_kind" in r["test"]]
    # pruning takes only the weights off the diagonal, too small to move a prediction, perturbed or not
    assert (any_kind["metrics"]["perturbation_drop"], any_kind["metrics"]["perturbation_agreement"]) == (0.0, 1.0)
    # no perturbation moved it: the strongest tried is named, not the unperturbed inputs as if they trailed
    worst = any_kind["metrics"]["worst_perturbation"]
    assert " at severity " in worst and "trails" not in worst and worst.endswith("agreement 1.0000"), worst
    result.stdout.fnmatch_lines([
        "SKIPPED*blur need images (samples, ..., height, width); the inputs have shape (40, 6): choose kinds among "
        "noise, brightness, contrast)",
    ])


def test_a_normalisation_for_other_channels_is_refused(robust_project: pytest.Pytester) -> None:
    robust_project.makeconftest(ROBUST_PROJECT + """
@pytest.fixture(scope="session")
def netzip_input_normalization():
    return ([0.5, 0.5, 0.5], [0.2, 0.2, 0.2])
""")
    robust_project.makepyfile(test_model="""
        import pytest

        @pytest.mark.netzip(compressors=["fp16"])
        @pytest.mark.adversarial_robustness(eps=0.05, max_drop=0.05)
        def test_robust():
            pass
    """)
    result = robust_project.runpytest("--netzip")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*netzip_input_normalization gives 3 channels, but netzip_data's inputs have shape (40, 6)*",
    ])


def test_without_torchattacks_an_attack_gate_errors_saying_how_to_install_it(
    robust_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "torchattacks", None)  # as where it is not installed: import fails
    robust_project.makepyfile(test_model="""
        import pytest

        @pytest.mark.netzip(compressors=["prune_l1"])
        @pytest.mark.adversarial_robustness(attack="FGSM", eps=0.1, max_drop=0.05)
        def test_gated():
            pass

        @pytest.mark.netzip(compressors=["prune_l1"])
        def test_body(netzip_result):
            assert netzip_result.metrics["robust_accuracy"] > 0.5

        @pytest.mark.netzip(compressors=["prune_l1"])
        @pytest.mark.agreement(min=0.9)
        def test_unattacked():
            pass
    """)
    result = robust_project.runpytest("--netzip", "-rs")
    result.assert_outcomes(passed=1, skipped=1, errors=1)
    result.stdout.fnmatch_lines([
        "test_model.py::test_gated: adversarial_robustness needs torchattacks, an optional dependency of the plugin "
        "(it pins requests~=2.25.1, which would downgrade requests): python -m pip install torchattacks "
        "(the plugin's attacks extra)",
    ])
    result.stdout.fnmatch_lines(["SKIPPED * robust_accuracy (FGSM(eps=0.00784) needs torchattacks, an optional *"])


def test_robustness_of_dict_batches_is_unavailable_once_for_every_model(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("""
        import pytest
        import torch
        from torch import nn

        class Keyed(nn.Linear):
            def forward(self, x):
                return super().forward(x)

        @pytest.fixture(scope="session")
        def netzip_model():
            torch.manual_seed(0)
            return Keyed(6, 6).eval()

        @pytest.fixture(scope="session")
        def netzip_data():
            x = torch.rand(20, 6, generator=torch.Generator().manual_seed(1))
            return [{"x": x, "labels": x.argmax(dim=1)}]
        """)
    pytester.makepyfile(test_model="""
        import pytest

        @pytest.mark.netzip(compressors=["fp16"])
        @pytest.mark.perturbation_robustness(max_drop=0.3, samples=8, max_examples=2)
        def test_perturbed(netzip_result):
            netzip_result.metrics["perturbation_drop"]
        """)
    result = pytester.runpytest("--netzip", "-rs")
    result.assert_outcomes(skipped=1)
    why = "perturbation_drop (attacks and perturbations need one input tensor; netzip_data gives a dict of x)"
    result.stdout.fnmatch_lines([f"SKIPPED * netzip cannot measure {why}"])
    assert sum(line.count("perturbation_drop (") for line in result.stdout.lines) == 1  # the gate's, and the body's
    result.stdout.fnmatch_lines(["variant * perturbation_drop", "reference * n/a", "fp16 * n/a"])  # not 0 for one
