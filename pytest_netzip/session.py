"""The per-session state of an enabled run: caches of compressed models and their measurements."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from pytest_netzip.compressors import CompressionContext, Compressor
from pytest_netzip.evaluation import EvalData, Result, Subject
from pytest_netzip.metrics import MetricRegistry
from pytest_netzip.report import render_tables, write_json
from pytest_netzip.settings import Settings

if TYPE_CHECKING:
    import torch
    from torch import nn


class NetzipSession:
    """The plugin registered under ``--netzip``: caches models and measurements, reports results.

    Each (model, compressor, device, data) is compressed and measured at most once per session.
    """

    def __init__(self, settings: Settings, config: pytest.Config) -> None:
        self.settings = settings
        self.config = config
        self._eval_data: dict[int, EvalData] = {}
        self._references: dict[tuple[int, int, str], Subject] = {}
        self._compressed: dict[tuple[int, Compressor, str], nn.Module] = {}
        self._subjects: dict[tuple[int, Compressor, int, str], Subject] = {}
        self._keep_alive: list[Any] = []
        self.records: list[dict[str, Any]] = []

    def eval_data(self, data: Any) -> EvalData:
        """The user's ``netzip_data`` bounded by ``--netzip-max-samples``."""
        if id(data) not in self._eval_data:
            self._keep_alive.append(data)
            self._eval_data[id(data)] = EvalData(data, self.settings.max_samples)
        return self._eval_data[id(data)]

    def reference(self, model: nn.Module, data: Any, device: torch.device) -> Subject:
        """The reference model measured on ``device``: one per model, data and device."""
        key = (id(model), id(data), str(device))
        if key not in self._references:
            self._keep_alive.append(model)
            on_device = model.to(device).eval()
            self._references[key] = Subject("reference", on_device, self.eval_data(data), device)
        return self._references[key]

    def compressed(self, model: nn.Module, compressor: Compressor, device: torch.device) -> nn.Module:
        """``compressor`` applied to ``model`` for ``device``, compressed once per session."""
        key = (id(model), compressor, str(device))
        if key not in self._compressed:
            self._keep_alive.append(model)
            context = CompressionContext(device=device, seed=self.settings.seed)
            self._compressed[key] = compressor.apply(model, context).to(device).eval()
        return self._compressed[key]

    def result(
        self, model: nn.Module, data: Any, compressor: Compressor, device: torch.device, registry: MetricRegistry
    ) -> Result:
        """The lazily measured result of ``compressor`` on ``device`` against the reference."""
        key = (id(model), compressor, id(data), str(device))
        if key not in self._subjects:
            compressed = self.compressed(model, compressor, device)
            self._subjects[key] = Subject(compressor.id, compressed, self.eval_data(data), device)
        return Result(
            model=type(model).__name__,
            compressor=compressor.id,
            device=str(device),
            compressed=self._subjects[key],
            reference=self.reference(model, data, device),
            registry=registry,
        )

    # Hooks: gather the records the items attach to their reports, then show and save them.

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        record = getattr(report, "netzip", None)
        if record is not None:
            self.records.append(record)

    def pytest_sessionfinish(self) -> None:
        if self.settings.json_path is not None and not hasattr(self.config, "workerinput"):
            write_json(self.settings.json_path, self.records)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.records:
            return
        registry = MetricRegistry(entry for entries in self.config.hook.pytest_netzip_metrics() for entry in entries)
        terminalreporter.section("netzip")
        for table in render_tables(self.records, registry):
            terminalreporter.write_line(table)
            terminalreporter.write_line("")
        if self.settings.json_path is not None:
            terminalreporter.write_line(f"netzip results written to {self.settings.json_path}")
