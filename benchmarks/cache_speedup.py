"""Wall time of a cold and a warm ``pytest --netzip --netzip-cache DIR`` of the example project.

Both runs share a fresh temporary cache folder: the first compresses and evaluates everything and fills it, the
second reuses the compressed models and the evaluation outputs. What the cache never holds is measured again in
both: timing, memory, robustness (attacks run the models), and int8_static's program, which cannot be pickled.
By default the whole example project runs (42 items, about three minutes for both runs on two cores) with timing
off (``--benchmark-disable``): timing is never cached, so it would add the same seconds to both runs, and on a
loaded machine its gates skip in one run and not the other. Pass pytest arguments to run something else
(``example_project/test_compression.py`` for the digits tests alone, or ``example_project`` to time too).

    python benchmarks/cache_speedup.py [-- PYTEST ARGS...]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

EXAMPLE = Path(__file__).resolve().parent.parent / "example_project"

#: Metrics read off the machine of each run: never cached, so left out when the two runs' figures are compared.
_TIMED = re.compile(r"latency|throughput|speedup|memory|energy|pressure|seconds|efficiency")


def run(arguments: list[str], cache: Path, json_path: Path) -> tuple[float, str, str]:
    """Seconds of one run, pytest's outcome line and netzip's cache line."""
    start = time.perf_counter()
    finished = subprocess.run(
        [sys.executable, "-m", "pytest", "--netzip", "-q", "-p", "no:cacheprovider", f"--netzip-cache={cache}",
         f"--netzip-json={json_path}", *arguments],
        capture_output=True, text=True, check=False,
    )
    seconds = time.perf_counter() - start
    outcome = re.findall(r"^=*\s*(\d+ \w+.*) in [\d.]+s", finished.stdout, re.MULTILINE)
    cached = re.findall(r"^netzip: (cache .*)$", finished.stdout, re.MULTILINE)
    return seconds, outcome[-1] if outcome else finished.stdout[-300:], cached[-1] if cached else "no cache line"


def untimed(path: Path) -> dict[str, dict[str, Any]]:
    """Each record's figures but those timed on this machine, by test."""
    if not path.exists():
        return {}
    return {
        record["test"]: {name: value for name, value in record["metrics"].items() if not _TIMED.search(name)}
        for record in json.loads(path.read_text())["results"]
    }


def differences(cold: dict[str, dict[str, Any]], warm: dict[str, dict[str, Any]]) -> list[str]:
    """``test: metric cold -> warm`` for each figure the two runs disagree on."""
    found = [f"{test}: missing in one run" for test in sorted(set(cold) ^ set(warm))]
    for test in sorted(set(cold) & set(warm)):
        for name in sorted(set(cold[test]) | set(warm[test])):
            if cold[test].get(name) != warm[test].get(name):
                found.append(f"{test}: {name} {cold[test].get(name)} -> {warm[test].get(name)}")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pytest", nargs=argparse.REMAINDER, metavar="-- PYTEST ARGS",
                        help="what to run instead of the whole example project with timing off")
    given = [argument for argument in parser.parse_args().pytest if argument != "--"]
    arguments = given or [str(EXAMPLE), "--benchmark-disable"]
    with tempfile.TemporaryDirectory(prefix="netzip-cache-") as folder:
        cache = Path(folder, "cache")
        cold = run(arguments, cache, Path(folder, "cold.json"))
        warm = run(arguments, cache, Path(folder, "warm.json"))
        changed = differences(untimed(Path(folder, "cold.json")), untimed(Path(folder, "warm.json")))
    print(f"pytest --netzip --netzip-cache DIR {' '.join(arguments)}")
    if not given:
        print("(by default all 42 items with timing off: timing is never cached, and would cost both runs alike)")
    for name, (seconds, outcome, cached) in (("cold", cold), ("warm", warm)):
        print(f"{name}: {seconds:.1f} s ({outcome}); {cached}")
    print(f"warm / cold: {warm[0] / cold[0]:.2f} (cold / warm: {cold[0] / warm[0]:.2f}x)")
    print("figures but timing equal in both runs: " + ("yes" if not changed else "NO\n  " + "\n  ".join(changed)))


if __name__ == "__main__":
    main()
