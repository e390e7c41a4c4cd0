"""What an enabled run compresses and measures: each model, compressor and device once per session."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from pytest_netzip.compressors import CompressionContext, Compressor
from pytest_netzip.data.batches import BatchFormat, EvalData
from pytest_netzip.data.inputs import call
from pytest_netzip.data.space import InputSpace
from pytest_netzip.data.workload import DEFAULT_WORKLOAD, Workload
from pytest_netzip.devices import device_of, on_device, to_device
from pytest_netzip.errors import CompressionError, DataError
from pytest_netzip.evaluation import Subject
from pytest_netzip.metrics import Metric, MetricRegistry
from pytest_netzip.model_cache import ModelCache
from pytest_netzip.output.disk_cache import CACHE_KEY, DiskCache
from pytest_netzip.results import Result
from pytest_netzip.settings import Settings

if TYPE_CHECKING:

    import torch
    from torch import nn


def _same(first: Any, second: Any) -> bool:
    """Whether two example inputs hold the same values, NaN equal to NaN (the same sample of data holding NaN)."""
    import math

    import torch
    from torch.utils._pytree import tree_flatten

    def equal(a: Any, b: Any) -> bool:
        if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
            return a.dtype == b.dtype and a.shape == b.shape and (
                torch.equal(a, b) or (a.is_floating_point() and bool(torch.isclose(a, b, 0, 0, equal_nan=True).all()))
            )
        if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor) or hasattr(a, "__array__"):
            return a is b  # a tensor against another kind, or arrays whose == is elementwise: the same object only
        return bool(a == b) or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))

    (left, left_spec), (right, right_spec) = tree_flatten(first), tree_flatten(second)
    return left_spec == right_spec and all(equal(a, b) for a, b in zip(left, right))


def _sample(model: nn.Module, example_input: Any) -> Any:
    """The first sample of ``example_input`` on the device of ``model``'s parameters (None stays None)."""
    if example_input is None:
        return None
    return to_device(DEFAULT_WORKLOAD.batch(example_input), device_of(model))


def _unrunnable_example(model: nn.Module, example: Any) -> CompressionError | None:
    """Why the reference ``model`` itself fails on the ``example`` a compressor failed on, if it does: the fault is
    then the input's, not the compressor's (a skip saying it "cannot quantise" would blame it)."""
    if example is None:
        return None
    import torch

    from pytest_netzip.compressors.base import describe_failure

    try:
        with torch.no_grad():
            call(on_device(model, device_of(model)), example)  # in eval mode, never the user's model in training
    except Exception as exc:
        return CompressionError(
            f"{type(model).__name__} itself fails on the first sample of netzip_example_input (by default, of "
            f"netzip_data's first batch), so no compressor can be checked on it: {describe_failure(exc)}"
        )
    return None


#: Libraries whose debug records (torch.export's traces, torchao's extension loading) say nothing to a user.
_LIBRARY_LOGGERS = ("torch", "torchao", "torch_pruning")


@contextlib.contextmanager
def _quiet_libraries() -> Iterator[None]:
    """Keep the libraries' records below INFO out of the captured logs of an item while it compresses."""
    children = tuple(f"{name}." for name in _LIBRARY_LOGGERS)  # torch.__trace has a level (DEBUG) of its own
    names = [*_LIBRARY_LOGGERS, *(name for name in logging.root.manager.loggerDict if name.startswith(children))]
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        if logger.getEffectiveLevel() < logging.INFO:
            logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


class NetzipSession:
    """The plugin registered under ``--netzip`` that compresses and measures: caches models and measurements.

    Each (model, data, compressor, device) is compressed and measured at most once per session,
    and the user's model is never moved or modified. Under ``--netzip-cache``, compressed models and outputs
    come from the cache folder where an earlier run made them from the same content.
    """

    def __init__(self, settings: Settings, config: pytest.Config) -> None:
        self.settings = settings
        self.config = config
        self._cache = ModelCache()
        self._disk = DiskCache(settings.cache) if settings.cache is not None else None
        if self._disk is not None:
            config.stash[CACHE_KEY] = self._disk

    def _eval_data_of(
        self, data: Any, example_input: Any = None, space: InputSpace | None = None, format: BatchFormat | None = None,
    ) -> EvalData:
        """``data`` bounded by ``--netzip-max-samples``, with the example input, input space and batch format all its
        tests share."""
        eval_data = self._cache.once("data", (data,), (), lambda: EvalData(
            data, self.settings.max_samples, example_input, space or InputSpace(), format or BatchFormat()
        ))
        if space is not None and space != eval_data.space:
            raise DataError(
                "netzip_input_range / netzip_input_normalization differ between tests that share one netzip_data: "
                "give them one input space"
            )
        if format is not None and (format != eval_data.format or format.output is not eval_data.format.output):
            raise DataError(
                "netzip_target_key / netzip_output differ between tests that share one netzip_data: give them one"
            )
        if example_input is not None and not _same(example_input, eval_data.example_input):
            raise DataError(
                "netzip_example_input differs between tests that share one netzip_data: compute is "
                "measured once per model and data, so give every such test the same example input"
            )
        return eval_data

    def label(self, model: nn.Module, data: Any, origin: str = "") -> str:
        """The table title of a model and its data: the class name and ``origin`` (``pytest_netzip.origins``),
        numbered where other objects had that name (a function-scoped fixture's, one per test)."""
        def number() -> str:
            name = " ".join(filter(None, [type(model).__name__, origin]))
            taken = sum(label.split(" #")[0] == name for label in self._cache.values("label"))
            return f"{name} #{taken + 1}" if taken else name

        return self._cache.once("label", (model, data), (origin,), number)

    def _set_threads(self) -> None:
        """Apply ``--netzip-threads`` before the session's first compression or measurement."""
        if self.settings.threads is not None:
            import torch

            torch.set_num_threads(self.settings.threads)

    def _report(self, message: str) -> None:
        """Show a compressor's progress on the terminal, past pytest's output capture (xdist workers have none)."""
        terminal = self.config.pluginmanager.get_plugin("terminalreporter")
        if terminal is None:
            return
        capture = self.config.pluginmanager.get_plugin("capturemanager")
        with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
            terminal.write_line(f"netzip: {message}")

    def reference(self, model: nn.Module, data: Any, device: torch.device) -> Subject:
        """The reference model measured on ``device``: one per model, data and device."""
        def measured() -> Subject:
            self._set_threads()
            return Subject("reference", on_device(model, device), self._eval_data_of(data), device, store=self._disk)

        return self._cache.once("reference", (model, data), (str(device),), measured)

    def compressed(
        self,
        model: nn.Module,
        compressor: Compressor,
        device: torch.device,
        example_input: Any = None,
        train_data: Any = None,
        calibration_data: Any = None,
        format: BatchFormat | None = None,
    ) -> nn.Module:
        """``compressor`` applied to ``model`` for ``device``, tried once per session.

        The compressor sees the first sample of ``example_input``, on the device of ``model``, the
        training and calibration batches, and a way to show its progress on the terminal.
        """
        compressed, _, _ = self._compression(model, compressor, device, example_input, train_data, calibration_data,
                                             format)
        if isinstance(compressed, CompressionError):
            raise compressed
        return compressed

    def _compression(
        self, model: nn.Module, compressor: Compressor, device: torch.device, example_input: Any = None,
        train_data: Any = None, calibration_data: Any = None, format: BatchFormat | None = None,
    ) -> tuple[nn.Module | CompressionError, float | None, str | None]:
        """The compressed model (or why it failed), the seconds compressing took (None: it came from the cache) and
        where it came from under ``--netzip-cache`` (``reused``, ``made``, ``uncached``; None without it), made
        once per session."""

        def compress() -> tuple[nn.Module | CompressionError, float | None, str | None]:
            self._set_threads()
            context = CompressionContext(
                device=device, seed=self.settings.seed, example_input=_sample(model, example_input),
                train_data=train_data, calibration_data=calibration_data, format=format or BatchFormat(),
                report=self._report,
            )
            seconds: list[float] = []  # of compressing alone: not of hashing, loading or saving for the cache

            def apply() -> nn.Module:
                start = time.perf_counter()
                with _quiet_libraries():
                    compressed = compressor.apply(model, context).to(device).eval()
                seconds.append(time.perf_counter() - start)
                return compressed

            origin = None
            try:
                if self._disk is None:
                    outcome: nn.Module | CompressionError = apply()
                else:
                    outcome, origin = self._disk.compressed(model, compressor, context, apply)
            except CompressionError as error:
                outcome = _unrunnable_example(model, context.example_input) or error
            return outcome, seconds[0] if seconds else None, origin

        return self._cache.once("compressed", (model,), (compressor, str(device)), compress)

    def result(
        self,
        model: nn.Module,
        data: Any,
        example_input: Any,
        compressor: Compressor,
        device: torch.device,
        registry: MetricRegistry,
        workload: Workload,
        space: InputSpace | None = None,
        task: str | None = None,
        format: BatchFormat | None = None,
        origin: str = "",
    ) -> Result:
        """The lazily measured result of ``compressor`` on ``device`` against the reference.

        ``task``, where the test declares it, is checked against the model's outputs for this test alone;
        ``origin`` tells the model's name from others' of its class (``label``).
        """
        self._eval_data_of(data, example_input, space, format)
        reference = self.reference(model, data, device)
        def measured() -> Subject:
            compressed = self.compressed(model, compressor, device)
            _, seconds, origin = self._compression(model, compressor, device)
            return Subject(compressor.id, compressed, self._eval_data_of(data), device, reference, seconds,
                           store=self._disk, cache={"model": origin} if origin is not None else None)

        subject = self._cache.once("subject", (model, data), (compressor, str(device)), measured)
        return Result(
            model=self.label(model, data, origin),
            compressor=compressor.id,
            device=str(device),
            compressed=subject,
            reference=reference,
            registry=registry,
            workload=workload,
            task=task,
        )

    # Hook: contribute OCS with the configured weights.

    def pytest_netzip_metrics(self) -> list[Metric[float]]:
        """Contribute OCS with the weights of ``--netzip-ocs-weights``."""
        if self.settings.ocs_weights is None:
            return []
        from pytest_netzip.metrics.combined import ocs_metric

        return [ocs_metric(self.settings.ocs_weights)]
