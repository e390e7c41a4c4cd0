"""How much the installed plugin adds to ``pytest --co`` when --netzip is off.

Two repos, each collected with and without ``-p no:netzip`` (interleaved; median and fastest of N runs,
the fastest being the steadier figure on a shared machine):
``example_project`` (whose conftest imports torch itself) and a generated repo of 1,000 plain and
100 netzip-marked tests whose conftest imports torch only inside its fixtures, the case where the
plugin must not pay for a torch import. Goal: within 10%.

    python benchmarks/collect_overhead.py [--rounds 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "example_project"

CONFTEST = '''
import pytest

@pytest.fixture(scope="session")
def netzip_model():
    import torch
    return torch.nn.Linear(4, 4)
'''

MODULE = '''
import pytest

@pytest.mark.parametrize("case", range(20))
def test_plain(case):
    pass

@pytest.mark.netzip(compressors=["fp16", "int8_dynamic"])
@pytest.mark.accuracy_drop(max=0.01)
@pytest.mark.size_ratio(min=2)
def test_deployable():
    pass
'''


def generated_repo(root: Path) -> Path:
    """A repo of 50 modules, each with 20 plain tests and one netzip test over two compressors."""
    (root / "conftest.py").write_text(textwrap.dedent(CONFTEST))
    (root / "pytest.ini").write_text("[pytest]\n")
    for index in range(50):
        (root / f"test_module_{index}.py").write_text(textwrap.dedent(MODULE))
    return root


def wall_time(project: Path, *extra: str) -> float:
    """Seconds one ``pytest --co`` of ``project`` takes."""
    start = time.perf_counter()
    subprocess.run(
        # addopts cleared: under -p no:netzip, the example's --strict-markers would reject its markers
        [sys.executable, "-m", "pytest", "--co", "-q", "-p", "no:cacheprovider", "-o", "addopts=", *extra, str(project)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def compare(name: str, project: Path, rounds: int) -> None:
    """Print the median collection time with and without the plugin, and their ratio."""
    wall_time(project)  # warm the file system cache
    with_plugin, without_plugin = [], []
    for _ in range(rounds):
        with_plugin.append(wall_time(project))
        without_plugin.append(wall_time(project, "-p", "no:netzip"))
    on, off = statistics.median(with_plugin), statistics.median(without_plugin)
    fastest_on, fastest_off = min(with_plugin), min(without_plugin)
    print(
        f"{name}: median plugin on {on * 1000:.0f} ms, -p no:netzip {off * 1000:.0f} ms, ratio {on / off:.3f}; "
        f"fastest {fastest_on * 1000:.0f} vs {fastest_off * 1000:.0f} ms, ratio {fastest_on / fastest_off:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    rounds = parser.parse_args().rounds
    print(f"pytest --co, {rounds} interleaved runs each (goal: ratio <= 1.10)")
    with tempfile.TemporaryDirectory() as directory:
        compare("1,100 tests, no torch in conftest", generated_repo(Path(directory)), rounds)
    compare("example_project", EXAMPLE, rounds)


if __name__ == "__main__":
    main()
