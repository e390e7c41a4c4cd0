"""Do latency gates stay honest on a contended CPU, and still catch a slower variant on a quiet one?

A generated repo gates a stack of 256-wide linear layers (batch 16, so torch runs them on its
intra-op threads) under ``latency_budget(max_slowdown=1.1)``:

1. With ``--hogs`` busy-looping processes running (default 3: more runnable tasks than a 2-core
   runner has cores), an unchanged variant (a copy) ``--runs`` times: goal, no FAIL; a contended
   run skips, saying why.
2. With the hogs stopped, a variant doing 1.5x the work (12 layers instead of 8), ``--runs`` / 4
   times: goal, every run FAILs (caught).

Each series is one ``pytest --netzip`` process with torch's default threads, a variant per run
(each timed anew); every line prints the outcome, the CPU pressure (``speedup_cpu_pressure``) and
the speedup where it was judged. The hogs
end by themselves after ``--hog-seconds`` and are killed at the end in any case.

    python benchmarks/contention_check.py [--runs 20] [--hogs 3] [--max-time 0.2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from collections import Counter
from pathlib import Path

CONFTEST = """
import pytest
import torch
from torch import nn


@pytest.fixture(scope="session")
def netzip_model():
    torch.manual_seed(0)
    return nn.Sequential(*[module for _ in range(8) for module in (nn.Linear(256, 256), nn.ReLU())]).eval()


@pytest.fixture(scope="session")
def netzip_data():
    return [(torch.rand(16, 256), torch.zeros(16, dtype=torch.long))]
"""

GATES = """
import os
from dataclasses import dataclass
from typing import ClassVar

import pytest
from torch import nn

from pytest_netzip import Compressor

RUNS = range(int(os.environ["RUNS"]))


@dataclass(frozen=True)
class Same(Compressor):  # a copy; one instance per run, so that each run is timed anew
    name: ClassVar[str] = "same"
    run: int = 0

    def transform(self, model, ctx):
        return model


@dataclass(frozen=True)
class Slower(Compressor):  # 12 layers instead of 8: 1.5x the work
    name: ClassVar[str] = "slower"
    run: int = 0

    def transform(self, model, ctx):
        return nn.Sequential(*model, *model[:8]).eval()


@pytest.mark.netzip(compressors=[Same(run=run) for run in RUNS])
@pytest.mark.latency_budget(max_slowdown=1.1, batch_size=16)
def test_unchanged():
    pass


@pytest.mark.netzip(compressors=[Slower(run=run) for run in RUNS])
@pytest.mark.latency_budget(max_slowdown=1.1, batch_size=16)
def test_slower():
    pass
"""

HOG = "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end:\n    pass\n"


def series(title: str, repo: Path, test: str, runs: int, max_time: float) -> Counter[str]:
    """Run ``test`` for ``runs`` variants in one ``pytest --netzip``; print each item and count the outcomes."""
    print(title)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--netzip", f"--benchmark-max-time={max_time}",
               "--netzip-json=out.json", f"test_gates.py::{test}"]
    subprocess.run(command, cwd=repo, capture_output=True, env={**os.environ, "RUNS": str(runs)}, check=False)  # FAIL: exit 1
    outcomes: Counter[str] = Counter()
    for record in json.loads((repo / "out.json").read_text())["results"]:
        metrics, verdicts = record["metrics"], [budget["passed"] for budget in record["budgets"]]
        outcome = "FAIL" if False in verdicts else "SKIP" if metrics.get("speedup") is None else "PASS"
        outcomes[outcome] += 1
        pressure = metrics.get("speedup_cpu_pressure")
        shown = "n/a" if pressure is None else f"{pressure:.0%}"
        judged = "not judged" if metrics.get("speedup") is None else f"speedup {metrics['speedup']:.3f}"
        print(f"  {record['test']}: {outcome} CPU pressure {shown}, {judged}")
    print(f"  {dict(sorted(outcomes.items()))}")
    return outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--hogs", type=int, default=3)
    parser.add_argument("--max-time", type=float, default=0.2, help="seconds per timing loop (--benchmark-max-time)")
    parser.add_argument("--hog-seconds", type=float, default=240.0, help="the longest a hog runs")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory() as directory:
        repo = Path(directory)
        (repo / "conftest.py").write_text(textwrap.dedent(CONFTEST))
        (repo / "test_gates.py").write_text(textwrap.dedent(GATES))
        (repo / "pytest.ini").write_text("[pytest]\n")
        hogs = [subprocess.Popen([sys.executable, "-c", HOG.format(seconds=options.hog_seconds)])
                for _ in range(options.hogs)]
        try:
            loaded = series(f"1. unchanged variant, max_slowdown=1.1, {options.hogs} CPU hogs running, {options.runs} runs "
                            "(goal: no FAIL)", repo, "test_unchanged", options.runs, options.max_time)
        finally:
            for hog in hogs:
                hog.kill()
                hog.wait()
        quiet = series(f"2. 1.5x slower variant, max_slowdown=1.1, hogs stopped, {max(options.runs // 4, 1)} runs "
                       "(goal: every run FAIL)", repo, "test_slower", max(options.runs // 4, 1), options.max_time)
    print(f"contended: {loaded['FAIL']} FAIL of {sum(loaded.values())}; quiet: {quiet['FAIL']} of {sum(quiet.values())} caught")


if __name__ == "__main__":
    main()
