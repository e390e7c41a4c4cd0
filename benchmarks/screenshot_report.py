"""Draw a run's report and screenshot its ``index.html`` in headless Chromium: the page as a browser shows it,
with no network and no script.

    python benchmarks/screenshot_report.py [--run tests/data/example_run.json] [--out netzip-report]

Writes ``OUT/report/`` (the report) and ``OUT/screenshot.png`` (1280 x 2400 unless --window-size says otherwise).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from pytest_netzip.output.storage import read_document
from pytest_netzip.output.visualise import write_report

SAMPLE = Path(__file__).resolve().parent.parent / "tests" / "data" / "example_run.json"

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """The path of a Chromium or Chrome on PATH, or None."""
    return next((found for found in map(shutil.which, CHROMIUM_NAMES) if found), None)


def screenshot(run: Path, out: Path, chromium: str, window_size: str = "1280,2400") -> Path:
    """Draw the report of the run document ``run`` into ``out/report`` and screenshot it; returns the PNG's path."""
    report = out / "report"
    for note in write_report(read_document(run), report):
        print(f"note: {note}")
    picture = out / "screenshot.png"
    picture.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as profile:  # a fresh profile: no first-run state, no lock held by another
        # --no-sandbox: Chromium's sandbox needs user namespaces, which containers (and root) often lack
        command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                   "--hide-scrollbars", f"--user-data-dir={profile}", f"--window-size={window_size}",
                   f"--screenshot={picture}", (report / "index.html").resolve().as_uri()]
        done = subprocess.run(command, capture_output=True, text=True, timeout=180)
    if not picture.is_file():
        raise RuntimeError(f"{chromium} wrote no screenshot (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
    return picture


def main() -> int:
    """Parse the command line, take the screenshot, print where it is."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, default=SAMPLE, help="run document (default: the test suite's sample)")
    parser.add_argument("--out", type=Path, default=Path("netzip-report"), help="output folder (git ignores it)")
    parser.add_argument("--window-size", default="1280,2400", help="WIDTH,HEIGHT of the page in pixels")
    args = parser.parse_args()
    chromium = find_chromium()
    if chromium is None:
        print(f"no Chromium on PATH (looked for {', '.join(CHROMIUM_NAMES)})", file=sys.stderr)
        return 2
    print(f"screenshot written to {screenshot(args.run, args.out, chromium, args.window_size)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
