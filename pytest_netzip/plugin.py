"""pytest wiring: options, markers, parametrisation, fixtures, budget checks and the summary.

Nothing here imports torch at module level: without ``--netzip`` a run pays nothing for the plugin.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_netzip.budgets.decision import Judgement
from pytest_netzip.budgets.signatures import THRESHOLD_MARKERS
from pytest_netzip.budgets.thresholds import Verdict
from pytest_netzip.devices import claim_gpu
from pytest_netzip.errors import (
    MetricUnavailable,
)
from pytest_netzip.fixtures import PLAN_KEY, REPORT_KEY, RESULT_KEY, SESSION_KEY, fail_with
from pytest_netzip.markers import NETZIP_MARKER, is_netzip, marker_names, stray_thresholds
from pytest_netzip.metrics import is_number
from pytest_netzip.origins import function_scoped, model_origin
from pytest_netzip.plan import ItemPlan, MarkerReading, evaluate
from pytest_netzip.selection import select_compressors, unknown_compressors
from pytest_netzip.settings import SETTINGS_KEY, add_options, resolve
from pytest_netzip.variant import Variant
from pytest_netzip.xdist_groups import model_group, test_id

if TYPE_CHECKING:
    from pytest_netzip.results import Result

#: The verdicts of each netzip item's thresholds, for its record.
VERDICTS_KEY = pytest.StashKey[list[Verdict]]()
#: The usage errors of each netzip test with badly written markers, by (parent node id, test name).
USAGE_ERRORS_KEY = pytest.StashKey[dict[tuple[str, str], list[str]]]()
#: The reading of each netzip test's markers, made at collection, by (parent node id, test name).
READINGS_KEY = pytest.StashKey[dict[tuple[str, str], MarkerReading]]()

#: The ``pytest --markers`` lines the plugin registers, to tell them from a project's own.
_OWN_MARKER_LINES = frozenset({NETZIP_MARKER, *(description for _, description in THRESHOLD_MARKERS.values())})


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the ``netzip`` options and ini keys."""
    add_options(parser)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Add netzip's hook specifications."""
    from pytest_netzip import builtins, fixtures, hookspecs

    pluginmanager.add_hookspecs(hookspecs)
    pluginmanager.register(builtins, builtins.PLUGIN_NAME)
    pluginmanager.register(fixtures, "netzip-fixtures")


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers, resolve the settings and, under ``--netzip``, start the session."""
    config.addinivalue_line("markers", NETZIP_MARKER)
    for _, description in THRESHOLD_MARKERS.values():
        config.addinivalue_line("markers", description)
    config.stash[USAGE_ERRORS_KEY] = {}
    config.stash[READINGS_KEY] = {}
    settings = resolve(config)
    config.stash[SETTINGS_KEY] = settings
    if settings.enabled and settings.report_dir is not None:
        from pytest_netzip.errors import ReportError
        from pytest_netzip.output.visualise import require_matplotlib

        try:
            require_matplotlib()
        except ReportError as exc:
            raise pytest.UsageError(f"--netzip-report: {exc}") from None
    if settings.enabled:
        from pytest_netzip.reporting import NetzipReport
        from pytest_netzip.session import NetzipSession

        report = NetzipReport(settings, config)
        config.stash[REPORT_KEY] = report
        config.pluginmanager.register(report, "netzip-report")
        session = NetzipSession(settings, config)
        config.stash[SESSION_KEY] = session
        config.pluginmanager.register(session, "netzip-session")


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Module | pytest.Class, name: str, obj: object) -> None:
    """Give every netzip test ``netzip_result``, so its budgets are checked even when its body is empty."""
    if inspect.isfunction(obj) and is_netzip(collector, obj):
        pytest.mark.usefixtures("netzip_result")(obj)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise a netzip test by its variants; keep the reading of its markers, or its usage errors, for its
    items' setup."""
    definition = metafunc.definition
    if not is_netzip(definition):
        return
    found, reading, errors = evaluate(definition, metafunc.config.stash[SETTINGS_KEY].devices)
    if reading is not None:
        metafunc.config.stash[READINGS_KEY][_test_key(definition)] = reading
    if errors:  # reported by the test's items at setup, as pytest reports a bad skipif: the session goes on
        metafunc.config.stash[USAGE_ERRORS_KEY][_test_key(definition)] = errors
    if found:
        metafunc.parametrize("_netzip_variant", found, ids=[variant.id for variant in found], indirect=True)


def _test_key(node: pytest.Item) -> tuple[str, str]:
    """What the items of one test function share: their parent's node id and the function's name."""
    return node.parent.nodeid if node.parent else "", getattr(node, "originalname", node.name)


def _usage_errors(item: pytest.Item) -> list[str]:
    return item.config.stash[USAGE_ERRORS_KEY].get(_test_key(item), [])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip netzip items without ``--netzip``; note stray threshold markers; apply ``--netzip-compressors``."""
    settings = config.stash[SETTINGS_KEY]
    if not settings.enabled:
        for item in items:
            if Variant.of(item) is not None and not _usage_errors(item):
                item.add_marker(pytest.mark.skip(reason="needs --netzip"))
        return
    _note_stray_thresholds(config, items)
    _note_function_scoped(config, items)
    if settings.compressors:
        _filter_compressors(config, items, settings.compressors)
    _claim_gpu(config, items)


def _claim_gpu(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On an xdist worker with netzip items on a bare ``cuda``, make the worker's own GPU the current device."""
    worker = getattr(config, "workerinput", None)
    if worker is not None and any(getattr(Variant.of(item), "device", None) == "cuda" for item in items):
        claim_gpu(worker["workerid"])


def pytest_itemcollected(item: pytest.Item) -> None:
    """Under ``--dist loadgroup``, put a netzip item without an ``xdist_group`` of its own in its model's and
    device's group, so that one worker evaluates that model's reference once for all its variants."""
    variant = Variant.of(item)
    if variant is None or not item.config.getoption("loadgroup", False) or item.get_closest_marker("xdist_group"):
        return
    if item.config.stash[SETTINGS_KEY].enabled:
        item.add_marker(pytest.mark.xdist_group(name=model_group(item, variant.device)))


def _note_stray_thresholds(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Note tests with netzip's threshold markers but no netzip marker, unless the project registered those markers."""
    registered = marker_names(line for line in config.getini("markers") if line not in _OWN_MARKER_LINES)
    for item in items:
        stray = stray_thresholds(item, registered) if not is_netzip(item) else []
        if stray:
            marks = ", ".join(f"@pytest.mark.{name}" for name in stray)
            config.stash[REPORT_KEY].notes.append(
                f"{item.nodeid} has {marks} but no @pytest.mark.netzip(compressors=[...]): netzip does not check it"
            )


def _note_function_scoped(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Note, once each, a function-scoped netzip_model or netzip_data of a netzip item."""
    notes = config.stash[REPORT_KEY].notes
    for item in items:
        if Variant.of(item) is not None:
            notes.extend(note for note in function_scoped(item) if note not in notes)


def _filter_compressors(config: pytest.Config, items: list[pytest.Item], wanted: tuple[str, ...]) -> None:
    """Deselect netzip items whose compressor (by name or id) is not in ``--netzip-compressors``; a usage error
    for a name that is no compressor's, a note for one that no collected test uses."""
    selected, deselected, unmatched = select_compressors(config, items, wanted)
    unknown = unknown_compressors(config, unmatched)
    if unknown and hasattr(config, "workerinput"):  # a UsageError here would crash xdist: the worker runs no test,
        report = config.stash[REPORT_KEY]  # as a serial run would run none, and the controller ends the run with it
        report.usage_errors.extend(error for error in unknown.values() if error not in report.usage_errors)
        config.hook.pytest_deselected(items=list(items))
        items.clear()
        return
    if unknown:
        raise pytest.UsageError(next(iter(unknown.values())))
    unused = [name for name in unmatched if name not in unknown]
    if unused:
        config.stash[REPORT_KEY].notes.append(f"--netzip-compressors: no collected test uses {', '.join(unused)}")
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected


# Running an item: measure what its thresholds need, run the body, then give the verdict.


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Error an item whose test's markers are wrong; make the plan of a netzip item, once."""
    errors = _usage_errors(item)
    if errors:
        pytest.fail("\n".join(errors), pytrace=False)
    if Variant.of(item) is not None:
        report = item.config.stash.get(REPORT_KEY, None)
        regressions = report.regression_thresholds(test_id(item)) if report is not None else []
        item.stash[PLAN_KEY] = ItemPlan.of(item, item.config.stash[READINGS_KEY].get(_test_key(item)), regressions)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    """Judge the item's thresholds around its body, and pass, fail or skip it as its budgets decide."""
    result = item.stash.get(RESULT_KEY, None)
    if result is None:
        return (yield)
    from pytest_netzip.errors import DataError

    try:
        result.check_task()
        judgement = Judgement.of((threshold.judge(result) for threshold in item.stash[PLAN_KEY].thresholds), result)
        _measure_compared_metrics(item, result)
    except DataError as exc:
        fail_with(exc)
    item.stash[VERDICTS_KEY] = list(judgement.verdicts)
    body_unavailable = None
    try:
        outcome = yield
    except MetricUnavailable as exc:
        body_unavailable, outcome = (f"{exc.metric} ({exc.reason})" if exc.metric else exc.reason), None
    except DataError as exc:
        fail_with(exc)
    except BaseException:
        if judgement.verdicts:  # the body failed: show the budgets beside its traceback
            item.add_report_section("call", "netzip budgets", judgement.explanation)
        raise
    if not item.stash[PLAN_KEY].thresholds and not result.metrics.measured():
        _note_unchecked(item)
    decision = judgement.decide(body_unavailable, strict=item.config.stash[SETTINGS_KEY].strict)
    if decision.outcome == "fail":
        pytest.fail(decision.message, pytrace=False)
    if decision.outcome == "skip":
        pytest.skip(decision.message)
    return outcome


def _note_unchecked(item: pytest.Item) -> None:
    """Note, once per test, a netzip test that has no threshold and whose body read no metric: it passes whatever
    its compressors do to the model, as long as they run."""
    parent, name = _test_key(item)
    note = (f"{parent}::{name} has no threshold marker and its body reads no metric: it checks only that each "
            "compressor runs (add one, such as @pytest.mark.accuracy_drop(max=0.01))")
    notes = item.config.stash[REPORT_KEY].notes
    if note not in notes:
        notes.append(note)


def _measure_compared_metrics(item: pytest.Item, result: Result) -> None:
    """Measure every ``--netzip-compare-fail`` metric, so that a saved run holds what later runs compare."""
    for rule in item.config.stash[SETTINGS_KEY].compare_fail:
        with contextlib.suppress(MetricUnavailable):
            result.metrics[rule.metric]  # noqa: B018 - measures it


def _properties(record: dict[str, Any]) -> list[tuple[str, object]]:
    """An item's numbers as JUnit XML properties: ``netzip.top1``, ``netzip.reference.top1``, ..."""
    numbers = [
        (f"netzip.{prefix}{name}", value)
        for prefix, metrics in (("", record["metrics"]), ("reference.", record["reference"]["metrics"]))
        for name, value in metrics.items()
        if is_number(value)
    ]
    return [("netzip.compressor", record["compressor"]), ("netzip.device", record["device"]), *numbers]


def _record_unmeasured(item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport) -> None:
    """Attach the record of a netzip item that ended in setup, before measuring, saying why: the run's JSON lists
    every item, so a CI step reading it sees the errors and skips the terminal showed."""
    variant, session = Variant.of(item), item.config.stash.get(SESSION_KEY, None)
    if variant is None or session is None:
        return
    from pytest_netzip.output.records import unmeasured_record

    reason = _reason(call, report)
    model, data = (getattr(item, "funcargs", {}).get(name) for name in ("netzip_model", "netzip_data"))
    label = session.label(model, data, model_origin(item)) if model is not None and data is not None else None
    report.netzip = unmeasured_record(  # type: ignore[attr-defined]  # read back by pytest_runtest_logreport
        test_id(item), label, variant.compressor.id, variant.device, "error" if report.failed else "skipped", reason,
    )


def _reason(call: pytest.CallInfo[None], report: pytest.TestReport) -> str:
    """Why an item skipped, failed or errored, as the terminal said it."""
    if isinstance(report.longrepr, tuple):  # a skip: (path, line, "Skipped: reason")
        return report.longrepr[2].removeprefix("Skipped: ")
    if call.excinfo is not None and isinstance(call.excinfo.value, pytest.fail.Exception):
        return call.excinfo.value.msg or ""
    return call.excinfo.exconly() if call.excinfo is not None else report.longreprtext


#: The folder of this package: a skip raised in it is reported at the test instead.
_PACKAGE = Path(__file__).resolve().parent


def _point_skip_at_test(item: pytest.Item, report: pytest.TestReport) -> None:
    """Report a skip the plugin raised at the test's line, as pytest's skipping.py does for skip markers."""
    if not (report.skipped and isinstance(report.longrepr, tuple)):
        return
    path, _, reason = report.longrepr
    if Path(path).resolve().is_relative_to(_PACKAGE):
        filename, line = item.reportinfo()[:2]
        report.longrepr = (str(filename), (line or 0) + 1, reason)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    """Attach the item's record to its report and JUnit properties; locate the plugin's skips at the test."""
    report = yield
    errors = _usage_errors(item)
    if call.when == "setup" and errors and not report.failed:  # an xfail marker must not hide a usage error
        report.outcome = "failed"
        report.longrepr = "\n".join(errors)
        vars(report).pop("wasxfail", None)
    _point_skip_at_test(item, report)
    result = item.stash.get(RESULT_KEY, None)
    if call.when == "setup" and not report.passed and result is None:
        _record_unmeasured(item, call, report)
    if call.when == "call" and result is not None:
        from pytest_netzip.output.records import make_record

        result.complete()
        record = make_record(test_id(item), result, item.stash.get(VERDICTS_KEY, []))
        try:
            item.ihook.pytest_netzip_result(item=item, result=result, record=record)
        except Exception as exc:  # a user's hook failed: fail this item, keep the run going
            report.outcome = "failed"
            report.longrepr = f"netzip: a pytest_netzip_result hook raised {type(exc).__name__}: {exc}"
        record["outcome"] = report.outcome
        if not report.passed:
            record["reason"] = _reason(call, report)
        report.netzip = record
        item.user_properties.extend(_properties(record))  # junitxml reads them from the teardown report
    return report
