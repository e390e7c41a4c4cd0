"""pytest wiring: options, markers, parametrisation, fixtures, budget checks and the summary.

Nothing here imports torch at module level: without ``--netzip`` a run pays nothing for the plugin.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import pytest

from pytest_netzip.budgets import THRESHOLD_MARKERS, BudgetError, Threshold, Verdict, explain, parse_marker
from pytest_netzip.compressors import CompressorRegistry
from pytest_netzip.devices import check_device_name, missing_reason
from pytest_netzip.metrics import MetricRegistry, MetricUnavailable
from pytest_netzip.naming import unknown_name_message
from pytest_netzip.settings import Settings, add_options, resolve
from pytest_netzip.variant import Variant

if TYPE_CHECKING:
    import torch
    from torch import nn

    from pytest_netzip.compressors import Compressor
    from pytest_netzip.evaluation import Result
    from pytest_netzip.session import NetzipSession

SETTINGS_KEY = pytest.StashKey[Settings]()
SESSION_KEY = pytest.StashKey["NetzipSession"]()
THRESHOLDS_KEY = pytest.StashKey[list[Threshold]]()
RESULT_KEY = pytest.StashKey["Result"]()
VERDICTS_KEY = pytest.StashKey[list[Verdict]]()

NETZIP_MARKER = "netzip(compressors=[...], devices=None): measure this test per compressor and device"
NETZIP_MARKERS = {"netzip", *THRESHOLD_MARKERS}


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from pytest_netzip import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", NETZIP_MARKER)
    for _, description in THRESHOLD_MARKERS.values():
        config.addinivalue_line("markers", description)
    settings = resolve(config)
    config.stash[SETTINGS_KEY] = settings
    if settings.enabled:
        from pytest_netzip.session import NetzipSession

        session = NetzipSession(settings, config)
        config.stash[SESSION_KEY] = session
        config.pluginmanager.register(session, "netzip-session")


def compressor_registry(node: pytest.Item | pytest.Collector) -> CompressorRegistry:
    """Built-in compressors plus those the plugins and conftests above ``node`` contribute."""
    return CompressorRegistry(entry for entries in node.ihook.pytest_netzip_compressors() for entry in entries)


def metric_registry(node: pytest.Item | pytest.Collector) -> MetricRegistry:
    """Built-in metrics plus those the plugins and conftests above ``node`` contribute."""
    return MetricRegistry(entry for entries in node.ihook.pytest_netzip_metrics() for entry in entries)


def _variants(mark: pytest.Mark, node: pytest.Item | pytest.Collector, settings: Settings) -> list[Variant]:
    def netzip(*, compressors: Any, devices: Any = None) -> tuple[list[Any], list[Any]]:
        as_list = lambda value: list(value) if isinstance(value, (list, tuple)) else [value]  # noqa: E731
        return as_list(compressors), as_list(devices) if devices is not None else list(settings.devices)

    usage = "@pytest.mark.netzip takes the keywords compressors=[...] and devices=[...]"
    if mark.args:
        raise BudgetError(f"{usage}, got positional {mark.args!r}")
    unknown = sorted(set(mark.kwargs) - {"compressors", "devices"})
    if unknown:
        raise BudgetError(f"@pytest.mark.netzip: {unknown_name_message('keyword', unknown[0], ['compressors', 'devices'])}")
    if "compressors" not in mark.kwargs:
        raise BudgetError(f"{usage}; compressors is missing")
    specs, devices = netzip(**mark.kwargs)
    if not specs:
        raise BudgetError("@pytest.mark.netzip(compressors=[]) names no compressor")
    registry = compressor_registry(node)
    try:
        compressors = [registry.resolve(spec) for spec in specs]
        devices = [check_device_name(device) for device in devices]
    except (LookupError, ValueError) as exc:
        raise BudgetError(str(exc).strip("\"'")) from None
    variants = [Variant(compressor, device) for compressor in compressors for device in devices]
    ids = [variant.id for variant in variants]
    repeated = sorted({variant_id for variant_id in ids if ids.count(variant_id) > 1})
    if repeated:
        raise BudgetError(f"@pytest.mark.netzip lists {', '.join(repeated)} more than once")
    return variants


def _thresholds(node: pytest.Item | pytest.Collector, registry: MetricRegistry) -> list[Threshold]:
    return [
        threshold
        for mark in reversed(list(node.iter_markers()))  # in the order the decorators are written
        if mark.name in THRESHOLD_MARKERS
        for threshold in parse_marker(mark, registry)
    ]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    definition = metafunc.definition
    names = {mark.name for mark in definition.iter_markers()}
    if names.isdisjoint(NETZIP_MARKERS):
        return
    mark = definition.get_closest_marker("netzip")
    try:
        thresholds = _thresholds(definition, metric_registry(definition))
        if mark is None and thresholds:
            raise BudgetError(
                f"@pytest.mark.{thresholds[0].marker} needs @pytest.mark.netzip(compressors=[...]) on the test"
            )
        variants = [] if mark is None else _variants(mark, definition, metafunc.config.stash[SETTINGS_KEY])
    except BudgetError as exc:
        error = f"{definition.nodeid}: {exc}"
    else:
        error = None
    if error is not None:  # raised outside the except block, so no chained traceback is shown
        pytest.fail(error, pytrace=False)
    if variants:
        metafunc.parametrize("_netzip_variant", variants, ids=[variant.id for variant in variants], indirect=True)


def _variant_of(item: pytest.Item) -> Variant | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("_netzip_variant") if callspec is not None else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    settings = config.stash[SETTINGS_KEY]
    netzip_items = [item for item in items if _variant_of(item) is not None]
    if not settings.enabled:
        for item in netzip_items:
            item.add_marker(pytest.mark.skip(reason="needs --netzip"))
        return
    if settings.compressors:
        _filter_compressors(config, items, settings.compressors)


def _filter_compressors(config: pytest.Config, items: list[pytest.Item], wanted: tuple[str, ...]) -> None:
    """Deselect netzip items whose compressor (by name or id) is not in ``--netzip-compressors``."""
    known = {
        name
        for item in items
        if (variant := _variant_of(item)) is not None
        for name in (variant.compressor.name, variant.compressor.id)
    }
    unknown = [name for name in wanted if name not in known]
    if unknown:
        raise pytest.UsageError(
            f"--netzip-compressors: no collected test uses {', '.join(map(repr, unknown))} "
            f"(collected: {', '.join(sorted(known))})"
        )
    selected, deselected = [], []
    for item in items:
        variant = _variant_of(item)
        keep = variant is None or variant.compressor.name in wanted or variant.compressor.id in wanted
        (selected if keep else deselected).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected


# Fixtures the user provides; these defaults explain what to write.


@pytest.fixture(scope="session")
def netzip_model() -> nn.Module:
    """The reference (uncompressed) model: define this fixture in your conftest.py."""
    pytest.fail(
        "netzip: this test needs the reference model. Define a fixture `netzip_model` in the "
        "conftest.py beside your tests, returning the uncompressed nn.Module, e.g.\n\n"
        "    @pytest.fixture(scope='session')\n    def netzip_model():\n        return build_model().eval()",
        pytrace=False,
    )


@pytest.fixture(scope="session")
def netzip_data() -> Any:
    """The evaluation batches, an iterable of ``(inputs, targets)``: define it in your conftest.py."""
    pytest.fail(
        "netzip: this test needs evaluation data. Define a fixture `netzip_data` in the conftest.py "
        "beside your tests, returning a re-iterable of (inputs, targets) batches, e.g.\n\n"
        "    @pytest.fixture(scope='session')\n    def netzip_data():\n"
        "        return DataLoader(val_set, batch_size=64)",
        pytrace=False,
    )


# Fixtures the plugin provides.


@pytest.fixture
def _netzip_variant(request: pytest.FixtureRequest) -> Variant | None:
    """The compressor and device of a netzip item (set by parametrisation), else None."""
    return getattr(request, "param", None)


@pytest.fixture(autouse=True)
def _netzip_gate(request: pytest.FixtureRequest, _netzip_variant: Variant | None) -> None:
    """Prepare the result of every netzip item, so its budgets are checked even if the body is empty."""
    if _netzip_variant is not None:
        request.node.stash[RESULT_KEY] = request.getfixturevalue("netzip_result")


def _session(request: pytest.FixtureRequest) -> NetzipSession:
    session = request.config.stash.get(SESSION_KEY, None)
    if session is None:
        pytest.skip("needs --netzip")
    return session


@pytest.fixture
def netzip_compressor(_netzip_variant: Variant | None) -> Compressor:
    """The ``Compressor`` of this item."""
    if _netzip_variant is None:
        pytest.fail("netzip_compressor is only for tests marked @pytest.mark.netzip(compressors=[...])", pytrace=False)
    return _netzip_variant.compressor


@pytest.fixture
def netzip_device(_netzip_variant: Variant | None) -> torch.device:
    """The ``torch.device`` of this item; the item skips where this machine lacks it."""
    import torch

    if _netzip_variant is None:
        pytest.fail("netzip_device is only for tests marked @pytest.mark.netzip(compressors=[...])", pytrace=False)
    device = torch.device(_netzip_variant.device)
    reason = missing_reason(device)
    if reason:
        pytest.skip(reason)
    return device


@pytest.fixture
def netzip_compressed(
    request: pytest.FixtureRequest, netzip_model: Any, netzip_compressor: Compressor, netzip_device: torch.device
) -> nn.Module:
    """The compressed model on this item's device (compressed once per session)."""
    from torch import nn

    if not isinstance(netzip_model, nn.Module):
        pytest.fail(f"netzip_model must return a torch.nn.Module, got {type(netzip_model).__name__}", pytrace=False)
    return _session(request).compressed(netzip_model, netzip_compressor, netzip_device)


@pytest.fixture
def netzip_result(
    request: pytest.FixtureRequest,
    netzip_model: nn.Module,
    netzip_data: Any,
    netzip_compressor: Compressor,
    netzip_device: torch.device,
    netzip_compressed: nn.Module,
) -> Result:
    """Reference and compressed metrics of this item, each measured on first use and cached."""
    from pytest_netzip.evaluation import DataError

    try:
        return _session(request).result(
            netzip_model, netzip_data, netzip_compressor, netzip_device, metric_registry(request.node)
        )
    except DataError as exc:
        pytest.fail(f"netzip: {exc}", pytrace=False)


# Running an item: measure what its thresholds need, run the body, then give the verdict.


def pytest_runtest_setup(item: pytest.Item) -> None:
    if _variant_of(item) is not None:
        item.stash[THRESHOLDS_KEY] = _thresholds(item, metric_registry(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    result = item.stash.get(RESULT_KEY, None)
    if result is None:
        return (yield)
    from pytest_netzip.evaluation import DataError

    try:
        verdicts = [threshold.judge(result) for threshold in item.stash[THRESHOLDS_KEY]]
    except DataError as exc:
        pytest.fail(f"netzip: {exc}", pytrace=False)
    item.stash[VERDICTS_KEY] = verdicts
    failed = [verdict for verdict in verdicts if verdict.passed is False]
    explanation = explain(
        verdicts, result.registry,
        f"netzip budgets of {result.compressor} on {result.device}: {len(failed)} of {len(verdicts)} failed",
    )
    unavailable = [f"{v.threshold.metric} ({v.note})" for v in verdicts if v.passed is None]
    try:
        outcome = yield
    except MetricUnavailable as exc:
        unavailable.append(exc.reason)
        outcome = None
    except BaseException:
        if verdicts:  # the body failed: show the budgets beside its traceback
            item.add_report_section("call", "netzip budgets", explanation)
        raise
    if failed:
        pytest.fail(explanation, pytrace=False)
    if unavailable:
        reason = f"netzip cannot measure {'; '.join(unavailable)}"
        if item.config.stash[SETTINGS_KEY].strict:
            pytest.fail(f"{reason} (--netzip-strict)", pytrace=False)
        pytest.skip(reason)
    return outcome


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    result = item.stash.get(RESULT_KEY, None)
    if call.when == "call" and result is not None:
        from pytest_netzip.report import make_record

        record = make_record(item.nodeid, result, item.stash.get(VERDICTS_KEY, []))
        item.ihook.pytest_netzip_result(item=item, result=result, record=record)
        report.netzip = record
    return report
