"""Under pytest-xdist each worker owns one GPU: which one, when its CUDA items are timed, and loadgroup's groups.

No GPU is needed: the projects below fake torch.cuda's device count; the test on real GPUs skips without two.
"""

from __future__ import annotations

import json

import pytest

from pytest_netzip.devices import cuda_index, shared_gpu_reason, worker_gpu
from tests.helpers import PROJECT_CONFTEST


@pytest.mark.parametrize(("worker", "gpus", "expected"), [
    ("gw0", 2, 0), ("gw1", 2, 1), ("gw2", 2, 0), ("gw5", 4, 1), ("gw3", 1, 0),
    ("gw0", 0, None),  # no GPU to own
    ("main", 2, None),  # a worker named with --tx popen//id=main
])
def test_worker_gwk_owns_gpu_k_mod_the_devices_torch_sees(worker: str, gpus: int, expected: int | None) -> None:
    assert worker_gpu(worker, gpus) == expected


def test_cuda_index_reads_only_an_explicit_index() -> None:
    assert [cuda_index(name) for name in ("cuda:3", "cuda", "cpu", "auto")] == [3, None, None, None]


def test_a_worker_alone_on_its_gpu_times_it() -> None:
    assert shared_gpu_reason("cuda", "gw1", 2, 2) is None
    assert shared_gpu_reason("cuda:1", "gw1", 2, 2) is None  # its own GPU, named explicitly
    assert shared_gpu_reason("cuda", "gw1", 3, 2) is None  # of 3 workers on 2 GPUs, gw1 is alone on cuda:1
    assert shared_gpu_reason("cuda", "gw0", 2, 0) is None  # no GPU: the item skips for want of one


def test_workers_sharing_a_gpu_say_which() -> None:
    assert shared_gpu_reason("cuda", "gw2", 4, 2) == "4 xdist workers share 2 GPUs: gw0 and gw2 run on cuda:0"
    assert shared_gpu_reason("cuda", "gw0", 2, 1) == "2 xdist workers share 1 GPU: gw0 and gw1 run on cuda:0"
    assert shared_gpu_reason("cuda:0", "gw4", 6, 2) == "6 xdist workers share 2 GPUs: gw0, gw2 and gw4 run on cuda:0"


def test_an_explicit_index_of_another_workers_gpu_is_not_timed() -> None:
    reason = shared_gpu_reason("cuda:1", "gw0", 2, 2)
    assert reason == (
        "cuda:1 is named explicitly, and this xdist worker (gw0) owns cuda:0: the worker that owns cuda:1 may be "
        "running on it"
    )
    assert "is not named gwN" in (shared_gpu_reason("cuda", "main", 2, 2) or "")


#: A project whose torch sees FAKE_GPUS CUDA devices; set_device and current_device keep a number. Its
#: ``netzip_result`` (the plugin's, overridden) writes down what each item would run on, and stops there.
FAKE_GPUS = '''
import json
import os
from pathlib import Path

import pytest
import torch

CURRENT = [None]
torch.cuda.is_available = lambda: True
torch.cuda.device_count = lambda: int(os.environ["FAKE_GPUS"])
torch.cuda.set_device = lambda index: CURRENT.__setitem__(0, index)
torch.cuda.current_device = lambda: CURRENT[0]


@pytest.fixture(scope="session")
def netzip_model():
    return torch.nn.Linear(2, 2)


@pytest.fixture(scope="session")
def netzip_data():
    return [(torch.zeros(1, 2), torch.zeros(1, dtype=torch.long))]


@pytest.fixture
def netzip_result(request, netzip_device):
    from pytest_netzip.fixtures import PLAN_KEY

    seen = {
        "worker": os.environ["PYTEST_XDIST_WORKER"], "device": str(netzip_device),
        "current": torch.cuda.current_device(), "timing_off": request.node.stash[PLAN_KEY].workload.disabled,
    }
    Path(request.node.name + ".json").write_text(json.dumps(seen))
'''

ON_EVERY_DEVICE = """
import pytest

@pytest.mark.netzip(compressors=["fp16", "bf16", "prune_l1", "prune_random"], devices=["cuda", "cuda:1", "cpu"])
@pytest.mark.latency_budget(p95_ms=100)
def test_fast():
    pass
"""


def _seen(pytester: pytest.Pytester) -> dict[str, dict[str, object]]:
    return {path.stem: json.loads(path.read_text()) for path in pytester.path.glob("test_fast*.json")}


def test_as_many_workers_as_gpus_time_every_cuda_item_each_on_its_own_gpu(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("xdist")
    monkeypatch.setenv("FAKE_GPUS", "2")
    pytester.makeconftest(FAKE_GPUS)
    pytester.makepyfile(test_fast=ON_EVERY_DEVICE.replace('"cuda", "cuda:1", "cpu"', '"cuda"'))
    pytester.runpytest_subprocess("--netzip", "-n", "2").assert_outcomes(passed=4)
    seen = _seen(pytester)
    assert {item["worker"] for item in seen.values()} == {"gw0", "gw1"}
    for item in seen.values():
        assert item["current"] == int(str(item["worker"]).removeprefix("gw")) and item["device"] == "cuda"
        assert item["timing_off"] is None


def test_more_workers_than_gpus_time_only_a_gpu_a_worker_has_alone(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """3 workers on 2 GPUs: gw1 has cuda:1 to itself and times; gw0 and gw2 share cuda:0 and do not."""
    pytest.importorskip("xdist")
    monkeypatch.setenv("FAKE_GPUS", "2")
    pytester.makeconftest(FAKE_GPUS)
    pytester.makepyfile(test_fast=ON_EVERY_DEVICE)
    result = pytester.runpytest_subprocess("--netzip", "-n", "3")
    result.assert_outcomes(passed=12)
    seen = _seen(pytester)
    assert len(seen) == 12
    for name, item in seen.items():
        worker = int(str(item["worker"]).removeprefix("gw"))
        assert item["current"] == worker % 2, name  # a bare cuda means the worker's own GPU
        if name.endswith("-cpu]"):
            assert item["device"] == "cpu"
            assert "workers share the CPU" in str(item["timing_off"])
        elif name.endswith("-cuda]"):  # the id and the device read as written
            assert item["device"] == "cuda"
            shared = "3 xdist workers share 2 GPUs: gw0 and gw2 run on cuda:0 (--benchmark-enable times anyway)"
            assert item["timing_off"] == (None if worker == 1 else f"timing is off under pytest-xdist: {shared}")
        else:  # cuda:1, named explicitly: run there, timed only by its owner
            assert item["device"] == "cuda:1"
            assert (item["timing_off"] is None) == (worker == 1), name
    assert {item["worker"] for item in seen.values()} >= {"gw1"}, "gw1 ran nothing: the run checked too little"


def test_without_xdist_nothing_claims_a_gpu(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("xdist")
    monkeypatch.setenv("FAKE_GPUS", "2")
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "none")  # what the conftest writes down
    pytester.makeconftest(FAKE_GPUS)
    pytester.makepyfile(test_fast=ON_EVERY_DEVICE)
    pytester.runpytest_subprocess("--netzip").assert_outcomes(passed=12)
    assert all(item["current"] is None and item["timing_off"] is None for item in _seen(pytester).values())


GROUPED = """
import pytest

@pytest.mark.netzip(compressors=["fp16", "prune_l1", "bf16"])
@pytest.mark.accuracy_drop(max=1)
def test_accuracy():
    pass

@pytest.mark.xdist_group("mine")
@pytest.mark.netzip(compressors=["fp16"])
@pytest.mark.size_ratio(min=0.5)
def test_own_group():
    pass
"""


def _xdist_groups_here(pytester: pytest.Pytester) -> bool:
    """Whether pytest-xdist's ``--dist loadgroup`` groups at all with this pytest: on pytest 9.2 it does not
    (pytest-dev/pytest-xdist#1386: xdist 3.8 marks a group by rewriting the node id, which pytest 9.2 ignores)."""
    pytester.makepyfile(test_xdist_alone="""
        import pytest

        @pytest.mark.xdist_group(name="g")
        def test_a():
            pass
    """)
    result = pytester.runpytest_subprocess("-p", "no:netzip", "-n", "1", "--dist", "loadgroup", "-v",
                                           "test_xdist_alone.py")
    (pytester.path / "test_xdist_alone.py").unlink()
    return any(line.endswith("test_a@g") or "test_a@g " in line for line in result.stdout.lines)


def test_loadgroup_keeps_a_models_variants_on_one_worker_and_records_plain_ids(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    if not _xdist_groups_here(pytester):
        pytest.skip(f"pytest-xdist's --dist loadgroup does not group on pytest {pytest.__version__} "
                    "(pytest-dev/pytest-xdist#1386)")
    pytester.makeconftest(PROJECT_CONFTEST)
    pytester.makepyfile(test_grouped=GROUPED, test_more=GROUPED.replace("test_", "test_more_"))
    result = pytester.runpytest_subprocess("--netzip", "-n", "2", "--dist", "loadgroup", "-v", "--netzip-json=out.json")
    result.assert_outcomes(passed=8)
    ran = [line.split() for line in result.stdout.lines if line.startswith("[gw") and "PASSED" in line]
    workers = {words[-1]: words[0] for words in ran}  # [gw1] [ 50%] PASSED test_grouped.py::...@netzip:cpu
    assert sorted(test for test in workers if test.endswith("@netzip:cpu")) == sorted(
        f"test_{module}.py::test_{prefix}accuracy[{compressor}-cpu]@netzip:cpu"
        for module, prefix in (("grouped", ""), ("more", "more_")) for compressor in ("fp16", "prune_l1", "bf16")
    )
    assert len({worker for test, worker in workers.items() if test.endswith("@netzip:cpu")}) == 1
    assert "test_grouped.py::test_own_group[fp16-cpu]@mine" in workers  # a group of the user's own is kept
    records = json.loads((pytester.path / "out.json").read_text())["results"]
    assert {record["test"] for record in records} == {test.split("@")[0] for test in workers}  # as a serial run keys them


def test_on_real_gpus_each_worker_runs_on_its_own(pytester: pytest.Pytester) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("xdist")
    if torch.cuda.device_count() < 2:
        pytest.skip("needs two CUDA GPUs")
    pytester.makeconftest(PROJECT_CONFTEST + '''

@pytest.fixture(autouse=True)
def _own_gpu(request):
    yield
    if hasattr(request.node, "callspec"):
        expected = int(os.environ["PYTEST_XDIST_WORKER"].removeprefix("gw")) % torch.cuda.device_count()
        assert torch.cuda.current_device() == expected
''')
    pytester.makepyfile(test_gpu="""
        import pytest

        @pytest.mark.netzip(compressors=["fp16", "bf16"], devices=["cuda"])
        @pytest.mark.accuracy_drop(max=1)
        @pytest.mark.latency_budget(p95_ms=1000)
        def test_gpu():
            pass
    """)
    result = pytester.runpytest_subprocess("--netzip", "-n", "2", "--benchmark-max-time=0.1")
    result.assert_outcomes(passed=2)
