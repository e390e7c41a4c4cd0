"""Wall time of ``pytest --netzip example_project`` with ``-n 2`` against ``-n 0`` (pytest-xdist).

Each configuration runs as a fresh process, alternately, ``--rounds`` times; the medians, their
ratio and each configuration's outcomes are printed. Under xdist netzip's timing is off (the
latency gates skip, as pytest-benchmark does), so the outcomes line shows what each run checked.

    python benchmarks/xdist_wall_time.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "example_project"


def run(workers: str) -> tuple[float, str]:
    """Seconds of one run with ``-n workers``, and pytest's outcome line."""
    start = time.perf_counter()
    finished = subprocess.run(
        [sys.executable, "-m", "pytest", "--netzip", "-q", "-p", "no:cacheprovider", "-n", workers, str(EXAMPLE)],
        capture_output=True, text=True, check=False,
    )
    seconds = time.perf_counter() - start
    outcome = re.findall(r"^=*\s*(\d+ \w+.*) in [\d.]+s", finished.stdout, re.MULTILINE)
    return seconds, outcome[-1] if outcome else finished.stdout[-200:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    times: dict[str, list[float]] = {"0": [], "2": []}
    outcomes: dict[str, str] = {}
    for _ in range(rounds):
        for workers in times:
            seconds, outcomes[workers] = run(workers)
            times[workers].append(seconds)
    serial, parallel = statistics.median(times["0"]), statistics.median(times["2"])
    print(f"pytest --netzip example_project, {rounds} alternating runs each")
    print(f"-n 0: {serial:.1f} s ({outcomes['0']})")
    print(f"-n 2: {parallel:.1f} s ({outcomes['2']})")
    print(f"-n 2 / -n 0: {parallel / serial:.2f}")


if __name__ == "__main__":
    main()
