"""``python -m pytest_netzip``: draw the report of a saved run, compare two runs, or merge CI shards into one run,
without running the tests.

    python -m pytest_netzip report RUN --out DIR
    python -m pytest_netzip compare A B
    python -m pytest_netzip merge RUN... --out FILE [--save NAME] [--ocs-weights P,S,C,E]

RUN, A and B are run documents (``--netzip-json`` files) or runs saved with ``--netzip-save`` (``latest``, a
counter, a name), looked up in ``--storage`` (default ``.netzip``). ``merge`` writes one run document holding every
shard's results (see ``pytest_netzip.output.merge``). No command imports torch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pytest_netzip.errors import ReportError, StorageError
from pytest_netzip.metrics import MetricRegistry, is_number
from pytest_netzip.metrics.combined import DEFAULT_OCS_WEIGHTS, parse_ocs_weights, ratio_letters
from pytest_netzip.output.columns import metric_of
from pytest_netzip.output.html_report import REFERENCE, ordered_metrics
from pytest_netzip.output.merge import Shard, merge_runs
from pytest_netzip.output.storage import Storage, check_run_name, read_document, write_document
from pytest_netzip.output.tables import format_change, format_value, wrap_blocks
from pytest_netzip.output.visualise import document_variants, write_report

_VARIANT_KEYS = ("model", "device", "compressor")


_DESCRIPTION = (
    "Draw the report of a saved run, compare two runs, or merge CI shards into one run, without running the tests "
    "(and without importing torch). RUN, A and B are --netzip-json files or the names of saved runs."
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pytest_netzip", description=_DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True)
    report = commands.add_parser("report", help="write the plots and index.html of a run into a folder")
    report.add_argument("run", metavar="RUN", help="a run document (JSON file) or the name of a saved run")
    report.add_argument("--out", metavar="DIR", type=Path, required=True, help="folder for the report")
    compare = commands.add_parser("compare", help="print two runs' metrics side by side, with the change")
    compare.add_argument("a", metavar="A", help="the run compared with (a JSON file or a saved run's name)")
    compare.add_argument("b", metavar="B", help="the run compared (a JSON file or a saved run's name)")
    merge = commands.add_parser("merge", help="merge the runs of CI shards into one run document")
    merge.add_argument("runs", metavar="RUN", nargs="*", help="the shards' run documents (JSON files) or saved runs' names")
    merge.add_argument("--out", metavar="FILE", type=Path, help="write the merged run document to FILE")
    merge.add_argument("--save", metavar="NAME", help="save the merged run as NAME in --storage, as --netzip-save does")
    merge.add_argument("--ocs-weights", metavar="P,S,C,E", type=_weights, default=DEFAULT_OCS_WEIGHTS,
                       help="the shards' --netzip-ocs-weights, to recompute OCS with (default: 1,1,1,1)")
    for command in (report, compare, merge):
        command.add_argument("--storage", metavar="DIR", type=Path, default=Path(".netzip"),
                             help="folder of saved runs, for names (default: .netzip)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command in ``argv`` (default: the command line); returns the exit status (2: a usage error)."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage or --help: say how it ended instead of exiting
        return int(exc.code or 0)
    try:
        if args.command == "report":
            return _report(_load(args.run, args.storage), args.out)
        if args.command == "merge":
            return _merge(args.runs, args.storage, args.out, args.save, args.ocs_weights)
        print(_compare(_load(args.a, args.storage), _load(args.b, args.storage), args.a, args.b))
        return 0
    except (StorageError, ReportError) as exc:
        print(f"netzip: error: {exc}", file=sys.stderr)
        return 2


def _weights(text: str) -> tuple[float, ...]:
    """``1,0.5,1,1`` as the four OCS weights; argparse's error otherwise."""
    try:
        return parse_ocs_weights(text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _locate(run: str, storage: Path) -> Path:
    """The file ``run``, or that of the saved run named ``run``; StorageError saying what is wrong."""
    path = Path(run)
    if path.is_file():
        return path
    if path.suffix == ".json":
        raise StorageError(f"cannot read the run {run}: no such file")
    saved = Storage(storage)
    if not saved.runs():
        raise StorageError(f"{run!r} is neither a file nor a saved run (no saved run in {storage})")
    return saved.find(run)


def _load(run: str, storage: Path) -> dict[str, Any]:
    """The run document in the file ``run``, or of the saved run named ``run``; StorageError saying what is wrong."""
    return read_document(_locate(run, storage))


def _merge(runs: list[str], storage: Path, out: Path | None, save: str | None, weights: tuple[float, ...]) -> int:
    """Merge the shards ``runs`` into ``out`` and/or the saved run ``save``; StorageError where that cannot be done."""
    if save is not None:
        check_run_name(save)
    shards = [Shard(str(path), read_document(path)) for path in (_locate(run, storage) for run in runs)]
    document, notes = merge_runs(shards, weights)
    if out is None and save is None:
        raise StorageError("merge writes the merged run to --out FILE or saves it with --save NAME: give one")
    written = []
    try:
        if out is not None:
            written.append(write_document(out, document))
        if save is not None:
            written.append(Storage(storage).save(save, document))
    except (OSError, ValueError) as exc:  # ValueError: a path holding a NUL
        target = out if out is not None and not written else storage
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise StorageError(f"cannot write the merged run to {target}: {reason}") from None
    for note in notes:
        print(f"netzip: {note}")
    for path in written:
        merged = f"{len(shards)} run{'s' * (len(shards) > 1)}"
        print(f"netzip: merged {merged} ({len(document['results'])} results) into {path}")
    return 0


def _report(document: dict[str, Any], directory: Path) -> int:
    try:
        notes = write_report(document, directory)
    except OSError as exc:
        print(f"netzip: error: cannot write the report to {directory}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    for note in notes:
        print(f"netzip: {note}")
    print(f"netzip: report written to {directory / 'index.html'}")
    return 0


def _variants(document: dict[str, Any]) -> dict[tuple[str, ...], dict[str, Any]]:
    """The variants (their metrics and ``ocs_ratios``) by (model, device, compressor)."""
    return {tuple(str(entry[key]) for key in _VARIANT_KEYS): entry for entry in document_variants(document)}


def _change(registry: MetricRegistry, name: str, before: Any, after: Any) -> str:
    """How ``after`` differs from ``before``: the change (points or a factor) and whether that is better."""
    if not (is_number(before) and is_number(after)) or before == after:
        return ""
    delta = format_change(registry, name, after, before, always=True).strip(" ()") or f"{after - before:+.4g}"
    metric = metric_of(registry, name)
    if metric is None:
        return delta
    better = (after > before) == metric.higher_is_better
    return f"{delta} {'better' if better else 'worse'}"


def _compare(first: dict[str, Any], second: dict[str, Any], first_name: str, second_name: str) -> str:
    """A table per model and device: a row per variant and metric, with A's value, B's and the change."""
    registry = MetricRegistry()
    runs = (_variants(first), _variants(second))
    keys = list(dict.fromkeys([*runs[0], *runs[1]]))
    lines = [f"A: {first_name} ({_when(first)})", f"B: {second_name} ({_when(second)})"]
    for model, device in dict.fromkeys((key[0], key[1]) for key in keys):
        compressors = sorted({key[2] for key in keys if key[:2] == (model, device)}, key=lambda c: (c != REFERENCE, c))
        grid = [[f"{model} on {device}", "A", "B", "change"]]
        for compressor in compressors:
            entries = [run.get((model, device, compressor)) for run in runs]
            a, b = (entry["metrics"] if entry else None for entry in entries)
            only = " (only in B)" if a is None else " (only in A)" if b is None else ""
            grid.append([compressor + only, "", "", ""])
            for name in ordered_metrics(registry, [a or {}, b or {}]):
                before, after = (metrics.get(name) if metrics else None for metrics in (a, b))
                shown = [format_value(registry, name, value) if is_number(value) else "-" for value in (before, after)]
                change = _change(registry, name, before, after)
                first_ratios, second_ratios = (entry.get("ocs_ratios") if entry else None for entry in entries)
                if name == "ocs" and change and first_ratios and second_ratios and first_ratios != second_ratios:
                    change = f"not comparable: A combines {ratio_letters(first_ratios)}, B {ratio_letters(second_ratios)}"
                grid.append([f"  {name}", *shown, change])
        lines += ["", *wrap_blocks(grid, 10_000)]
    if not keys:
        lines += ["", "neither run has variants to compare"]
    return "\n".join(lines)


def _when(document: dict[str, Any]) -> str:
    """``created 2026-11-29T08:35:13+00:00, commit d92c6bb``."""
    return f"created {document.get('created') or 'unknown'}, commit {document.get('commit') or 'none'}"
