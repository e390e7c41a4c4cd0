"""``--netzip-cache``: compressed models and evaluation outputs reused across runs, keyed by content."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from pytest_netzip.output.disk_cache import MAGIC
from tests.helpers import PROJECT_CONFTEST, scripted_waits, write_test

#: The tiny repo, its model logging the batch size of every forward pass (written out at the end of the run).
LOGGED_CONFTEST = PROJECT_CONFTEST + '''

BATCHES = []


class Logged(Signed):
    def forward(self, x):
        BATCHES.append(len(x))
        return super().forward(x)


@pytest.fixture(scope="session")
def netzip_model():
    return Logged(hidden=int(os.environ.get("NETZIP_TEST_HIDDEN", "512"))).eval()


def pytest_sessionfinish(session):
    with open("batches.json", "w") as stream:
        json.dump(BATCHES, stream)
'''

GATED = """
@pytest.mark.netzip(compressors=["int8_dynamic", "prune_l1", "fp16"])
@pytest.mark.accuracy_drop(max=0.5)
@pytest.mark.agreement(min=0.5)
@pytest.mark.size_ratio(min=0.1)
@pytest.mark.compute_budget(max_ratio=10)
@pytest.mark.latency_budget(p50_ms=10_000)
@pytest.mark.memory_budget(max_mb=10_000)
def test_deployable(netzip_result):
    assert netzip_result.metrics["f1"] > 0
"""

#: Metrics timed (or otherwise read off) this run's machine: never cached, so not compared between runs.
_TIMED = re.compile(r"latency|throughput|speedup|memory|energy|pressure|seconds|efficiency")


@pytest.fixture
def repo(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """The logged repo with the gated test; no wait for a CPU, so that the latency budget is judged."""
    scripted_waits(monkeypatch, 0.0)
    pytester.makeconftest(LOGGED_CONFTEST)
    write_test(pytester, GATED)
    return pytester


def _run(pytester: pytest.Pytester, name: str, *args: str) -> tuple[pytest.RunResult, list[dict[str, Any]], list[int]]:
    """A cached run writing ``name``.json: its outcome, its records, and the batch sizes the model saw."""
    result = pytester.runpytest("--netzip", "--netzip-cache=cache", f"--netzip-json={name}.json",
                                "--benchmark-max-time=0.01", *args)
    records = json.loads((pytester.path / f"{name}.json").read_text())["results"]
    return result, records, json.loads((pytester.path / "batches.json").read_text())


def _untimed(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def strip(metrics: dict[str, Any]) -> dict[str, Any]:
        return {name: value for name, value in metrics.items() if not _TIMED.search(name)}

    return [
        {"test": record["test"], "metrics": strip(record["metrics"]), "reference": strip(record["reference"]["metrics"]),
         "budgets": [(b["marker"], b["keyword"], b["value"], b["passed"]) for b in record["budgets"]
                     if not _TIMED.search(b["metric"])]}
        for record in records
    ]


def _faithful(records: list[dict[str, Any]], top1: float = 0.9, hidden: int = 512) -> None:
    """Every record measured what the tiny repo is built to give: each compressor keeps the reference's predictions."""
    for record in records:
        metrics, reference = record["metrics"], record["reference"]["metrics"]
        assert (metrics["top1"], reference["top1"], metrics["agreement"]) == (top1, top1, 1.0), record["test"]
        assert metrics["macs"] == reference["macs"] == 2 * 6 * hidden, record["test"]
        assert all(budget["passed"] for budget in record["budgets"]), record["test"]


def _entries(pytester: pytest.Pytester, kind: str) -> list[Path]:
    return sorted((pytester.path / "cache" / kind).glob("*.pt"))


def _summary(reused: tuple[int, int], made: tuple[int, int]) -> str:
    def counted(count: int, what: str) -> str:
        return f"{count} {what}{'' if count == 1 else 's'}"

    return (f"netzip: cache *cache: {counted(reused[0], 'compressed model')} and {counted(reused[1], 'evaluation')} "
            f"reused; {counted(made[0], 'compressed model')} and {counted(made[1], 'evaluation')} made")


def test_a_second_run_reuses_every_model_and_evaluation_and_passes_no_evaluation_batch(repo: pytest.Pytester) -> None:
    cold, first, cold_batches = _run(repo, "cold")
    cold.assert_outcomes(passed=3)
    cold.stdout.fnmatch_lines([_summary((0, 0), (3, 4))])  # 3 compressed models; the outputs of 4 models
    _faithful(first)
    assert 10 in cold_batches  # the evaluation batches: 4 of 10 samples per model
    warm, second, warm_batches = _run(repo, "warm")
    warm.assert_outcomes(passed=3)
    warm.stdout.fnmatch_lines([_summary((3, 4), (0, 0))])
    # only the runs on the example input (MACs) and on the workload's batch of 1 (latency, memory) remain
    assert warm_batches and set(warm_batches) == {1}
    assert _untimed(second) == _untimed(first)
    _faithful(second)
    assert [record["cache"] for record in first] == [
        {"compressed_model": "made", "outputs": "made", "reference_outputs": "made"}] * 3
    assert [record["cache"] for record in second] == [
        {"compressed_model": "reused", "outputs": "reused", "reference_outputs": "reused"}] * 3
    assert "latency_p50_ms" in second[0]["metrics"] and "macs" in second[0]["metrics"]
    assert not list((repo.path / "cache").rglob("*.tmp"))


def test_changed_weights_compress_and_evaluate_afresh(repo: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    _run(repo, "cold")[0].assert_outcomes(passed=3)
    monkeypatch.setenv("NETZIP_TEST_HIDDEN", "256")
    result, records, batches = _run(repo, "changed")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines([_summary((0, 0), (3, 4))])
    assert 10 in batches
    assert records[0]["reference"]["metrics"]["size_bytes"] < 26_000  # the smaller model was measured
    _faithful(records, hidden=256)
    assert len(_entries(repo, "models")) == 6  # the entries of both models are kept


def test_changed_data_is_evaluated_afresh(repo: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    _run(repo, "cold")[0].assert_outcomes(passed=3)
    monkeypatch.setenv("NETZIP_TEST_FLIP_EVERY", "5")  # other targets: top1 0.8
    result, records, _ = _run(repo, "changed")
    result.assert_outcomes(passed=3)
    # the calibration data (by default netzip_data's first samples) changed too: the models are made again
    result.stdout.fnmatch_lines([_summary((0, 0), (3, 4))])
    assert {record["metrics"]["top1"] for record in records} == {0.8}


def test_fewer_samples_are_evaluated_afresh_with_the_same_models(repo: pytest.Pytester) -> None:
    _run(repo, "cold")[0].assert_outcomes(passed=3)
    result, records, batches = _run(repo, "fewer", "--netzip-max-samples=25")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines([_summary((3, 0), (0, 4))])
    assert sorted(set(batches)) == [1, 5, 10]  # 10 + 10 + 5 samples
    _faithful(records, top1=22 / 25)  # samples 0, 10 and 20 are mislabelled
    assert {record["cache"]["outputs"] for record in records} == {"made"}


def test_a_changed_compressor_parameter_is_compressed_afresh(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(PROJECT_CONFTEST)
    for amount, made in ((0.5, 1), (0.5, 0), (0.6, 1)):
        write_test(pytester, f"""
            from pytest_netzip.compressors import PruneL1

            @pytest.mark.netzip(compressors=[PruneL1(amount={amount}, allow_noop=True)])
            @pytest.mark.size_ratio(min=0.1)
            def test_size():
                pass
        """)
        result = pytester.runpytest("--netzip", "--netzip-cache=cache")
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines([f"netzip: cache *: {1 - made} compressed model* reused; {made} compressed model*"])
        # pruning zeroes weights in place: the state dict keeps its size, made or reused
        result.stdout.fnmatch_lines(["variant * size_bytes * size_ratio", "reference * kB * 1",
                                     "prune_l1(allow_noop=True*) * kB * 1"], consecutive=True)


def _damage(pytester: pytest.Pytester, how: str) -> Path:
    """Damage the entry of the fp16 model's outputs (the one whose header names fp16) as ``how`` says."""
    (entry,) = [path for path in _entries(pytester, "outputs") if b'"subject": "fp16"' in path.read_bytes()[:2000]]
    blob = entry.read_bytes()
    header_line, _, payload = blob[len(MAGIC):].partition(b"\n")
    header = json.loads(header_line)
    if how == "truncated":
        entry.write_bytes(blob[: len(blob) - 100])
    elif how == "bad pickle":
        payload = b"not a pickle" * 10
        header |= {"size": len(payload), "sha256": __import__("hashlib").sha256(payload).hexdigest()}
        entry.write_bytes(MAGIC + json.dumps(header).encode() + b"\n" + payload)
    elif how == "foreign":  # another entry's file under this one's name
        (other,) = [path for path in _entries(pytester, "outputs") if b'"subject": "prune_l1"' in path.read_bytes()[:2000]]
        entry.write_bytes(other.read_bytes())
    else:  # written by another release of torch
        header["versions"]["torch"] = "0.1"
        entry.write_bytes(MAGIC + json.dumps(header).encode() + b"\n" + payload)
    return entry


@pytest.mark.parametrize(("how", "note"), [
    ("truncated", "is truncated (* of * payload bytes)"),
    ("bad pickle", "does not load (UnpicklingError: *)"),
    ("foreign", "holds a key that does not match its file name"),
    ("version", "was written by pytest-netzip *, torch 0.1, torchao *; this run has pytest-netzip *, torch 2.*"),
], ids=["truncated", "bad-pickle", "foreign", "version"])
def test_a_damaged_or_foreign_entry_is_noted_made_again_and_overwritten(repo: pytest.Pytester, how: str,
                                                                         note: str) -> None:
    _, first, _ = _run(repo, "cold")
    entry = _damage(repo, how)
    result, second, _ = _run(repo, "damaged")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines([f"netzip: cache entry {entry}*{note}*; not trusted: made again and overwritten",
                                 _summary((3, 3), (0, 1))])
    assert _untimed(second) == _untimed(first)
    _faithful(second)
    assert [record["cache"]["outputs"] for record in second] == ["reused", "reused", "made"]
    again, _, _ = _run(repo, "again")
    again.stdout.fnmatch_lines([_summary((3, 4), (0, 0))])  # the entry was overwritten with a sound one
    assert "cache entry" not in again.stdout.str()


def test_a_model_that_cannot_be_pickled_is_noted_once_and_its_outputs_still_cached(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(PROJECT_CONFTEST)
    write_test(pytester, """
        @pytest.mark.netzip(compressors=["int8_static"])
        @pytest.mark.accuracy_drop(max=0.5)
        def test_accuracy():
            pass

        @pytest.mark.netzip(compressors=["int8_static"])
        @pytest.mark.agreement(min=0.5)
        def test_agreement():
            pass
    """)
    for reused in (0, 2):
        result = pytester.runpytest("--netzip", "--netzip-cache=cache")
        result.assert_outcomes(passed=2)
        result.stdout.fnmatch_lines([
            "netzip: the int8_static model of Signed cannot be saved (*); it is not cached, so it is made again in "
            "each run",
            f"netzip: cache *: 0 compressed models and {reused} evaluations reused; 0 compressed models and "
            f"{2 - reused} evaluations made",
        ])
        assert result.stdout.str().count("cannot be saved") == 1
        # the reused evaluations read as the made ones: int8_static keeps Signed's predictions
        result.stdout.fnmatch_lines(["variant * top1 * agreement", "reference * 0.9000 * 1.0000",
                                     "int8_static * 0.9000 * 1.0000"], consecutive=True)


def test_the_ini_key_names_the_folder_relative_to_the_rootdir(project: pytest.Pytester,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    project.makeini("[pytest]\nnetzip_cache = .netzip-cache\n")
    write_test(project, """
        @pytest.mark.netzip(compressors=["fp16"])
        @pytest.mark.accuracy_drop(max=0.5)
        def test_accuracy():
            pass
    """)
    monkeypatch.chdir(project.mkdir("elsewhere"))
    result = project.runpytest("--netzip", str(project.path / "test_model.py"))
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"netzip: cache {project.path / '.netzip-cache'}: *; 1 compressed model and 2 *"])
    result.stdout.fnmatch_lines(["variant * top1", "reference * 0.9000", "fp16 * 0.9000"], consecutive=True)
    assert len(list((project.path / ".netzip-cache" / "models").glob("*.pt"))) == 1
    uncached = project.runpytest("--netzip", "-o", "netzip_cache=", str(project.path / "test_model.py"),
                                 "--netzip-json=plain.json")
    assert "netzip: cache" not in uncached.stdout.str()
    assert json.loads((project.path / "elsewhere" / "plain.json").read_text())["results"][0]["cache"] is None


def test_a_file_for_the_folder_is_a_usage_error(project: pytest.Pytester) -> None:
    project.makefile(".txt", cache="not a folder")
    result = project.runpytest("--netzip", "--netzip-cache=cache.txt")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--netzip-cache / netzip_cache: *cache.txt is a file; it takes a folder (made if missing)"])


def test_xdist_workers_share_the_folder_and_the_controller_counts_them_all(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    pytester.makeconftest(PROJECT_CONFTEST)
    write_test(pytester, """
        @pytest.mark.netzip(compressors=["fp16", "prune_l1", "int8_dynamic", "bf16"])
        @pytest.mark.accuracy_drop(max=0.5)
        def test_accuracy():
            pass
    """)
    cold = pytester.runpytest_subprocess("--netzip", "--netzip-cache=cache", "-n", "2")
    cold.assert_outcomes(passed=4)
    # a worker may find the reference's outputs that the other has just written
    cold.stdout.fnmatch_lines(["netzip: cache *: 0 compressed models and * reused; 4 compressed models and * made"])
    warm = pytester.runpytest_subprocess("--netzip", "--netzip-cache=cache", "-n", "2")
    warm.assert_outcomes(passed=4)
    # each worker reads the reference's outputs for itself: 4 compressed models' and 2 readings of the reference's
    warm.stdout.fnmatch_lines(["netzip: cache *: 4 compressed models and 6 evaluations reused; 0 compressed models "
                               "and 0 evaluations made"])
    warm.stdout.fnmatch_lines(["variant * top1", "reference * 0.9000", "bf16 * 0.9000", "fp16 * 0.9000",
                               "int8_dynamic * 0.9000", "prune_l1 * 0.9000"], consecutive=True)
    assert not list((pytester.path / "cache").rglob("*.tmp"))


def test_digests_read_content_never_identity() -> None:
    import torch
    from torch import nn

    from pytest_netzip.data.content import batches_digest, model_digest, value_digest

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    twin = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    twin.load_state_dict(model.state_dict())
    assert model_digest(model) == model_digest(twin)
    with torch.no_grad():
        twin[0].bias[0] += 1e-6
    assert model_digest(model) != model_digest(twin)
    assert model_digest(model) != model_digest(nn.Sequential(nn.Linear(4, 3), nn.Tanh()).requires_grad_(False))
    batches = [(torch.ones(2, 4), torch.zeros(2))]
    assert batches_digest(batches) == batches_digest([(torch.ones(2, 4), torch.zeros(2))])
    assert batches_digest(batches) != batches_digest([(torch.ones(2, 4), torch.ones(2))])
    with pytest.raises(TypeError, match="one-shot iterator"):
        batches_digest(iter(batches))
    with pytest.raises(TypeError, match="no content to key a cache entry by"):
        value_digest(object())
