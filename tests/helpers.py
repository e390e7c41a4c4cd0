"""Helpers that several test modules share: the tiny model repo, writing its test file, scripted CPU waits."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_netzip.metrics import contention


def scripted_waits(monkeypatch: pytest.MonkeyPatch, waiting_share: float) -> None:
    """Make every read of the threads' schedstat show ``waiting_share`` of the time since the last one spent waiting."""

    def reads() -> Iterator[dict[str, tuple[int, int]]]:
        total = 0
        while True:
            yield {"1": (round(total * (1 - waiting_share)), round(total * waiting_share))}
            total += 1_000_000

    read = reads()
    monkeypatch.setattr(contention, "_scheduled", lambda tasks: next(read))


#: conftest.py of a tiny model repo. ``Signed`` computes out = x exactly (relu(x) - relu(-x)) through
#: mostly-zero weights, so every built-in compressor keeps its predictions and prune_l1 removes only
#: zeros; labels are argmax(x) with every tenth one flipped, so top-1 is exactly 0.9. The variables
#: NETZIP_TEST_HIDDEN (512) and NETZIP_TEST_FLIP_EVERY (10) change the size and the top-1 between runs.
PROJECT_CONFTEST = '''
import json
import os
from collections import Counter

import pytest
import torch
from torch import nn

from pytest_netzip import Compressor

FORWARDS = Counter()


class Signed(nn.Module):
    def __init__(self, classes=6, hidden=512):
        super().__init__()
        self.up = nn.Linear(classes, hidden, bias=False)
        self.down = nn.Linear(hidden, classes, bias=False)
        with torch.no_grad():
            self.up.weight.zero_()
            self.down.weight.zero_()
            eye = torch.eye(classes)
            self.up.weight[:classes] = eye
            self.up.weight[classes:2 * classes] = -eye
            self.down.weight[:, :classes] = eye
            self.down.weight[:, classes:2 * classes] = -eye
            # the spare units get weights too small to move the output (< 1e-7) and larger than zero, so that
            # magnitude pruning at 0.5 takes all of down's but 48 and changes the model
            for spare, low, high in ((self.up.weight[2 * classes:], 5e-5, 1e-4),
                                     (self.down.weight[:, 2 * classes:], 1e-6, 2e-6)):
                spare.copy_(torch.linspace(low, high, spare.numel()).reshape(spare.shape))

    def forward(self, x):
        FORWARDS[id(self)] += 1
        return self.down(torch.relu(self.up(x)))


class Negate(Compressor):
    name = "negate"

    def transform(self, model, ctx):
        with torch.no_grad():
            model.down.weight.neg_()
        return model


class Explode(Compressor):
    name = "explode"

    def transform(self, model, ctx):
        raise RuntimeError("cannot compress layer 'down'")


@pytest.hookimpl(optionalhook=True)
def pytest_netzip_compressors():
    return [Negate, Explode]


@pytest.fixture(scope="session")
def netzip_model():
    return Signed(hidden=int(os.environ.get("NETZIP_TEST_HIDDEN", "512"))).eval()


@pytest.fixture(scope="session")
def netzip_data():
    inputs = torch.randn(40, 6, generator=torch.Generator().manual_seed(0))
    targets = inputs.argmax(dim=1)
    every = int(os.environ.get("NETZIP_TEST_FLIP_EVERY", "10"))
    targets[::every] = (targets[::every] + 1) % 6
    return [(inputs[i:i + 10], targets[i:i + 10]) for i in range(0, 40, 10)]


def pytest_sessionfinish(session):
    path = os.environ.get("NETZIP_TEST_FORWARDS")
    if path:
        with open(path, "w") as stream:
            json.dump(sorted(FORWARDS.values()), stream)
'''


def write_test(pytester: pytest.Pytester, source: str) -> None:
    """Write ``test_model.py`` from an indented snippet."""
    pytester.makepyfile(test_model="import pytest\n\n" + textwrap.dedent(source))


def second_folder(pytester: pytest.Pytester, name: str, data: str) -> Path:
    """A folder ``name`` of the tiny repo whose conftest.py has a model of its own (``Signed(hidden=256)``) and the
    session fixtures in ``data`` (an indented snippet defining its ``netzip_data`` and what else it overrides)."""
    folder = pytester.mkpydir(name)
    (folder / "conftest.py").write_text(textwrap.dedent("""
        import pytest
        import torch
        from conftest import Signed

        @pytest.fixture(scope="session")
        def netzip_model():
            return Signed(hidden=256).eval()
        """) + textwrap.dedent(data))
    return folder


#: Two test modules of one model, the one gating accuracy, the other size: what one worker or shard measures
#: and another completes (pytest-xdist, merged shards).
ACCURACY_TEST = """
import pytest

@pytest.mark.netzip(compressors=["fp16", "prune_l1"])
@pytest.mark.accuracy_drop(max=1)
def test_accuracy():
    pass
"""

SIZE_TEST = """
import pytest

@pytest.mark.netzip(compressors=["fp16", "prune_l1"])
@pytest.mark.size_ratio(min=0.5)
def test_size():
    pass
"""
