"""What an enabled run reports: the items' records and notes, the saved run compared with, and what is written
at the end (JSON, saved runs, the HTML report, the terminal tables, GitHub's step summary)."""

from __future__ import annotations

import datetime
import functools
import os
from typing import TYPE_CHECKING, Any

import pytest

from pytest_netzip.budgets.regression import COMPARE_FAIL, Baseline
from pytest_netzip.errors import StorageError
from pytest_netzip.markers import metric_registry
from pytest_netzip.metrics.combined import DEFAULT_OCS_WEIGHTS
from pytest_netzip.naming import unknown_name_message
from pytest_netzip.output.disk_cache import CACHE_KEY
from pytest_netzip.output.storage import (
    Storage,
    check_run_name,
    commit_id,
    machine_info,
    read_document,
    run_document,
    write_document,
)
from pytest_netzip.output.tables import render_markdown, render_tables, variant_summaries
from pytest_netzip.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from pytest_netzip.budgets.thresholds import Threshold


class NetzipReport:
    """The plugin registered under ``--netzip`` that reports: it gathers the record each item attaches to its
    report (from any xdist worker) and the session's notes, and writes what the options ask for at the end.

    ``--netzip-compare`` and ``--netzip-compare-fail`` read their saved run here, once.
    """

    def __init__(self, settings: Settings, config: pytest.Config) -> None:
        self.settings = settings
        self.config = config
        self.records: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self.usage_errors: list[str] = []  # found by xdist workers at collection, where raising would crash xdist
        self.baseline: Baseline | None = None
        registry = metric_registry(config)
        for rule in settings.compare_fail:  # metrics of plugins and of the conftests loaded by now
            if rule.metric not in registry:
                message = unknown_name_message("metric", rule.metric, registry.names)
                raise pytest.UsageError(f"--netzip-compare-fail {rule.text}: {message}")
        try:
            storage = Storage(settings.storage)
            if settings.save:
                check_run_name(settings.save)
        except StorageError as exc:
            raise pytest.UsageError(f"--netzip-storage/--netzip-save: {exc}") from None
        if settings.compare_fail and settings.compare is None and not storage.runs():
            self.notes.append(f"no saved run in {storage.root} to compare with: --netzip-compare-fail checked nothing")
        elif settings.compare is not None or settings.compare_fail:
            try:
                saved = storage.find(settings.compare or "latest")
                self.baseline = Baseline(saved, read_document(saved))
            except StorageError as exc:
                raise pytest.UsageError(f"--netzip-compare: {exc}") from None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Gather the record an item attached to its report (from any xdist worker)."""
        record = getattr(report, "netzip", None)
        if record is not None:
            self.records.append(record)

    @property
    def _ocs_weights(self) -> tuple[float, ...]:
        return self.settings.ocs_weights or DEFAULT_OCS_WEIGHTS

    def regression_thresholds(self, test: str) -> list[Threshold]:
        """The ``--netzip-compare-fail`` thresholds of ``test`` against the compared run."""
        if self.baseline is None:
            return []
        return self.baseline.thresholds(test, self.settings.compare_fail)

    def _uncompared(self) -> list[str]:
        """A note for each ``--netzip-compare-fail`` rule that some items could not be compared by."""
        notes: list[str] = []
        if self.baseline is None:
            return notes
        for rule in self.settings.compare_fail:
            missed = [
                record["test"] for record in self.records
                if not any(b["marker"] == COMPARE_FAIL and b["keyword"] == rule.text for b in record["budgets"])
            ]
            if missed:
                shown = ", ".join(missed[:3]) + (f" and {len(missed) - 3} more" if len(missed) > 3 else "")
                notes.append(
                    f"--netzip-compare-fail {rule.text} compared {len(self.records) - len(missed)} of "
                    f"{len(self.records)} items: the saved run {self.baseline.name} has no {rule.metric} for {shown}"
                )
        return notes

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        """Under xdist, take the notes a worker made (at collection, say), once each, and what it took from
        ``--netzip-cache`` and put there."""
        output = getattr(node, "workeroutput", {})
        for note in output.get("netzip_notes", []):
            if note not in self.notes:
                self.notes.append(note)
        self.usage_errors.extend(error for error in output.get("netzip_usage_errors", []) if error not in self.usage_errors)
        cache = self.config.stash.get(CACHE_KEY, None)
        if cache is not None and "netzip_cache" in output:
            cache.counts.add(output["netzip_cache"]["counts"])
            cache.notes.extend(note for note in output["netzip_cache"]["notes"] if note not in cache.notes)

    def pytest_report_header(self) -> list[str]:
        """Name the saved run compared with, and how its machine differed."""
        if self.baseline is None:
            return []
        lines = [f"netzip: comparing with {self.baseline.path}"]
        differences = self.baseline.machine_differences(machine_info(self.settings.threads))
        if differences:
            lines.append(f"netzip: WARNING: this machine differs from the saved run's: {'; '.join(differences)}")
        return lines

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Write the JSON, saved runs and report the options ask for."""
        from pytest_netzip.errors import ReportError

        settings = self.settings
        if hasattr(self.config, "workerinput"):  # the controller writes, holding every worker's records and notes
            self.config.workeroutput["netzip_notes"] = self.notes  # type: ignore[attr-defined]  # set by xdist
            self.config.workeroutput["netzip_usage_errors"] = self.usage_errors  # type: ignore[attr-defined]
            cache = self.config.stash.get(CACHE_KEY, None)
            if cache is not None:
                self.config.workeroutput["netzip_cache"] = {  # type: ignore[attr-defined]  # set by xdist
                    "counts": cache.counts.state(), "notes": cache.notes,
                }
            return
        if self.usage_errors:
            session.exitstatus = pytest.ExitCode.USAGE_ERROR
        if not (
            settings.json_path or settings.save or settings.autosave or settings.report_dir
        ):
            return
        summary = variant_summaries(self.records, self._ocs_weights)
        document = run_document(self.records, summary, machine_info(self.settings.threads), commit_id(self.config.rootpath))
        storage = Storage(settings.storage)
        autosave = f"{document['commit'] or 'nocommit'}_{datetime.datetime.now(datetime.timezone.utc):%Y%m%d_%H%M%S}"

        def attempt(done: str, what: str, write: Callable[[], Path]) -> None:
            """Each output is tried, whichever failed before it; a failure fails the run: the tests ran, but what
            the user asked for is lost."""
            try:
                self.notes.append(f"{done} {write()}")
            except (ReportError, OSError, ValueError) as exc:  # ValueError: a path holding a NUL
                self.notes.append(f"ERROR: could not write the {what}: {exc}")
                session.exitstatus = pytest.ExitCode.TESTS_FAILED

        if settings.json_path is not None:
            attempt("results written to", "results", functools.partial(write_document, settings.json_path, document))
        for name in ([settings.save] if settings.save else []) + [autosave] * settings.autosave:
            attempt("run saved to", "run", functools.partial(storage.save, name, document))
        if settings.report_dir is not None:
            attempt("report written to", "report", functools.partial(self._write_report, document))

    def _write_report(self, document: dict[str, Any]) -> Path:
        """Plots and index.html for ``--netzip-report``, noting the plots that could not be drawn; the page's path."""
        from pytest_netzip.output.visualise import write_report

        report_dir = self.settings.report_dir
        assert report_dir is not None  # called only when --netzip-report is given
        self.notes.extend(write_report(document, report_dir, metric_registry(self.config)))
        return report_dir / "index.html"

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        """Print the notes, what came from ``--netzip-cache``, and a table per model and device; append them to
        GITHUB_STEP_SUMMARY."""
        cache = self.config.stash.get(CACHE_KEY, None)
        if not (self.records or self.notes or self.usage_errors or cache is not None):
            return
        registry = metric_registry(self.config)
        terminalreporter.ensure_newline()
        terminalreporter.section("netzip")
        cached = [*cache.notes, cache.summary()] if cache is not None and not hasattr(self.config, "workerinput") else []
        for error in self.usage_errors:
            terminalreporter.write_line(f"netzip: ERROR: {error}", red=True)
        for note in [*self.notes, *self._uncompared(), *cached]:
            terminalreporter.write_line(f"netzip: {note}", yellow=True)
        width = self.config.get_terminal_writer().fullwidth
        for table in render_tables(self.records, registry, width, self._ocs_weights):
            terminalreporter.write_line(table)
            terminalreporter.write_line("")
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary and self.records and not hasattr(self.config, "workerinput"):
            try:
                with open(summary, "a", encoding="utf-8") as stream:
                    stream.write(render_markdown(self.records, registry, self._ocs_weights) + "\n")
            except OSError as exc:  # the summary is a courtesy: the tests' outcome stands
                message = f"could not append the summary to GITHUB_STEP_SUMMARY {summary}: {exc.strerror or exc}"
                terminalreporter.write_line(f"netzip: WARNING: {message}", yellow=True)
