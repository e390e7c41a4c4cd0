"""End-of-run tables: a table per model and device (text or Markdown), and each variant's merged metrics."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from typing import Any

from pytest_netzip.budgets.regression import COMPARE_FAIL
from pytest_netzip.metrics import MetricRegistry, is_number
from pytest_netzip.metrics.combined import (
    DEFAULT_OCS_WEIGHTS,
    OCS_RATIOS,
    overall_success,
    ratio_letters,
)
from pytest_netzip.metrics.contention import MAX_PRESSURE
from pytest_netzip.output.columns import column_namer, metric_of, ordered_columns
from pytest_netzip.output.records import PRESSURE_METRICS

_NOT_MEASURED = object()


def format_value(registry: MetricRegistry, name: str, value: Any) -> str:
    """The value as tables show it: formatted by its metric where the registry knows it."""
    metric = metric_of(registry, name)
    if metric is not None:
        return metric.format(value)
    return f"{value:.4g}" if isinstance(value, float) else str(value)


#: Ratios at least this large are shown in scientific notation (1e+200x, not 200 digits).
_HUGE_RATIO = 1e6


def _escaped(text: str) -> str:
    """``text`` as Markdown shows it literally: no table cell break, emphasis or math (an ``_`` inside a word is
    literal already)."""
    return text.replace("|", "\\|").replace("*", "\\*").replace("$", "\\$")


def format_change(registry: MetricRegistry, name: str, value: float, reference: float | None, always: bool = False) -> str:
    """The change against ``reference``: points for shares and scores, a factor for the rest (relative metrics: only if ``always``)."""
    metric = metric_of(registry, name)
    if reference is None or value == reference or metric is None or (metric.relative and not always):
        return ""
    if not (math.isfinite(value) and math.isfinite(reference)):
        return ""  # no change to tell: the value itself says inf or nan
    if metric.unit in ("share", "points"):
        return f" ({value - reference:+.4f})"
    if not reference:
        return ""
    ratio = value / reference
    return f" ({ratio:.3g}x)" if abs(ratio) >= _HUGE_RATIO else f" ({ratio:.2f}x)"


def _groups(records: Iterable[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Records that measured something by (model, device), each group in test order (xdist delivers them in any
    order); an item that ended before measuring (``unmeasured_record``) is in none."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for record in sorted(records, key=lambda record: record["test"]):
        if not (record["metrics"] or record["reference"]["metrics"]):
            continue
        groups.setdefault((record["model"], record["device"]), []).append(record)
    return groups


def variant_summaries(records: Iterable[dict[str, Any]], weights: tuple[float, ...] = DEFAULT_OCS_WEIGHTS) -> list[dict[str, Any]]:
    """Per model, device and compressor (the reference included), every metric its items measured, and OCS.

    A metric that the model's items measured under several settings has a value per setting (see
    ``pytest_netzip.output.columns``). OCS combines the ratios measured by any item of the variant, so it does not
    depend on test order; ``ocs_ratios`` names them.
    """
    merged: dict[tuple[str, str, str], dict[str, Any]] = {}
    for (model, device), group in _groups(records).items():
        reference = merged.setdefault((model, device, "reference"), {})
        column = column_namer(group)
        for record in group:
            _merge(reference, {column(record, name): value for name, value in record["reference"]["metrics"].items()})
            compressed = {column(record, name): value for name, value in record["metrics"].items()}
            _merge(merged.setdefault((model, device, record["compressor"]), {}), compressed)
    summaries = []
    for (model, device, compressor), metrics in merged.items():
        entry: dict[str, Any] = {"model": model, "device": device, "compressor": compressor, "metrics": metrics}
        _add_performance_ratio(metrics, merged[model, device, "reference"])
        ratios = {name: metrics[name] for name in OCS_RATIOS if is_number(metrics.get(name))}
        metrics.pop("ocs", None)  # whatever an item read mid-session: recomputed from the whole session
        if compressor != "reference" and "performance_ratio" in ratios and len(ratios) > 1:
            metrics["ocs"] = overall_success(ratios, weights)
            entry["ocs_ratios"] = list(ratios)
            merged[model, device, "reference"]["ocs"] = 0.0
        summaries.append(entry)
    return summaries


def _merge(into: dict[str, Any], metrics: dict[str, Any]) -> None:
    """``metrics`` added to ``into``, later items' values over earlier ones', but never unavailable (None) over a
    value another item measured: an item that skipped does not hide what one that ran found."""
    for name, value in metrics.items():
        if value is not None or name not in into:
            into[name] = value


def _add_performance_ratio(metrics: dict[str, Any], reference: dict[str, Any]) -> None:
    """NetZIP's P beside another ratio, from top-1s that any items measured (under xdist, maybe on other workers)."""
    top1, reference_top1 = metrics.get("top1"), reference.get("top1")
    has_ratio = any(is_number(metrics.get(name)) for name in OCS_RATIOS[1:])
    if has_ratio and is_number(top1) and is_number(reference_top1) and reference_top1 and metrics is not reference:
        metrics.setdefault("performance_ratio", top1 / reference_top1)
        reference.setdefault("performance_ratio", 1.0)


def render_tables(
    records: Iterable[dict[str, Any]], registry: MetricRegistry, width: int = 10_000,
    weights: tuple[float, ...] = DEFAULT_OCS_WEIGHTS,
) -> list[str]:
    """One text table per (model, device): the reference first, then a row per compressor.

    Columns that do not fit in ``width`` characters continue in another block below; a model of which
    nothing was measured (every item failed before measuring) has no table.
    """
    grids = _grids(records, registry, weights)
    return ["\n".join([title, *wrap_blocks(grid, width), legend]) for title, grid, legend in grids]


def render_markdown(
    records: Iterable[dict[str, Any]], registry: MetricRegistry, weights: tuple[float, ...] = DEFAULT_OCS_WEIGHTS
) -> str:
    """The items' outcomes, each that failed or errored with why, then the tables, as GitHub-flavoured Markdown for
    a CI job's summary page."""
    records = list(records)
    sections = [_outcomes(records, registry)] if any(record.get("outcome") for record in records) else []
    for title, grid, legend in _grids(records, registry, weights):
        escaped = [[_escaped(cell) for cell in row] for row in grid]
        lines = [f"| {' | '.join(escaped[0])} |", "|" + "|".join([" --- "] + [" ---: "] * (len(grid[0]) - 1)) + "|"]
        lines += [f"| {' | '.join(row)} |" for row in escaped[1:]]
        heading = _escaped(title).replace("_", "\\_")
        sections.append("\n".join([f"### netzip: {heading}", "", *lines, "", _escaped(legend), ""]))
    return "\n".join(sections)


def _outcomes(records: list[dict[str, Any]], registry: MetricRegistry) -> str:
    """``**netzip**: 5 passed, 1 failed, 2 skipped``, then a line per item that failed or errored, saying why."""
    counts = Counter(str(record["outcome"]) for record in records if record.get("outcome"))
    lines = ["**netzip**: " + ", ".join(f"{counts[outcome]} {outcome}" for outcome in sorted(counts)), ""]
    for record in sorted(records, key=lambda record: record["test"]):
        if record.get("outcome") in ("failed", "error"):
            lines.append(f"- {record['outcome']}: `{record['test']}`: {_escaped(_why(record, registry))}")
    return "\n".join([*lines, ""] if len(lines) > 2 else lines)


def _why(record: dict[str, Any], registry: MetricRegistry) -> str:
    """What made an item fail: the budgets it was over, else the first line of its reason."""
    over = [
        f"{budget['marker']}({budget['keyword']}={budget['threshold']}): {budget['metric']} "
        + (format_value(registry, budget["metric"], budget["value"]) if is_number(budget["value"]) else "n/a")
        for budget in record["budgets"] if budget["passed"] is False
    ]
    return "; ".join(over) or (str(record.get("reason") or "").strip().splitlines() or ["see the job's log"])[0]


def _grids(
    records: Iterable[dict[str, Any]], registry: MetricRegistry, weights: tuple[float, ...]
) -> list[tuple[str, list[list[str]], str]]:
    """The title, cells and legend of each (model, device)'s table; none for a model of which nothing was
    measured (every item failed before measuring)."""
    grids = [_grid(model, device, group, registry, weights) for (model, device), group in _groups(records).items()]
    return [(title, grid, legend) for title, grid, legend in grids if len(grid[0]) > 1]


#: What a table's letters after an OCS mean, where its variants' OCS combine different ratios.
OCS_LETTERS_LEGEND = (
    "ocs (P,S,C,E): which of the performance, speedup, compression and efficiency ratios it combines, as the "
    "variants differ"
)


def ocs_letters(summaries: list[dict[str, Any]]) -> dict[str, str]:
    """Per compressor, NetZIP's letters of the ratios its OCS combines (``P,C``), where the variants' differ; none
    where every OCS of the table combines the same ratios."""
    letters = {entry["compressor"]: ratio_letters(entry["ocs_ratios"]) for entry in summaries if "ocs_ratios" in entry}
    return letters if len(set(letters.values())) > 1 else {}


def wrap_blocks(table: list[list[str]], width: int) -> list[str]:
    """``table`` as aligned text, its columns after the first cut into blocks at most ``width`` wide."""
    widths = [max(len(row[column]) for row in table) for column in range(len(table[0]))]
    blocks: list[list[int]] = []
    for column in range(1, len(widths)):
        used = sum(widths[index] + 2 for index in [0, *blocks[-1]]) if blocks else width
        if used + widths[column] > width:
            blocks.append([])
        blocks[-1].append(column)
    lines: list[str] = []
    for columns in blocks or [[]]:
        if lines:
            lines.append("")
        for row in table:
            cells = [row[0].ljust(widths[0]), *(row[index].rjust(widths[index]) for index in columns)]
            lines.append("  ".join(cells).rstrip())
    return lines


def _grid(
    model: str, device: str, records: list[dict[str, Any]], registry: MetricRegistry, weights: tuple[float, ...]
) -> tuple[str, list[list[str]], str]:
    """The title, the cells (a header row, the reference, a row per compressor) and the legend of a table."""
    summaries = variant_summaries(records, weights)
    rows = {variant["compressor"]: variant["metrics"] for variant in summaries}
    reference = rows.pop("reference")
    combined = ocs_letters(summaries)
    failing: set[tuple[str, str]] = set()
    compared: dict[tuple[str, str], dict[str, Any]] = {}  # (compressor, metric) -> its --netzip-compare-fail budget
    column = column_namer(records)
    for record in records:
        for budget in record["budgets"]:
            key = (record["compressor"], column(record, budget["metric"]))
            if budget["marker"] == COMPARE_FAIL:  # of several rules on one metric, show the worst verdict
                if key not in compared or budget["passed"] is False:
                    compared[key] = budget
            elif budget["passed"] is False:
                failing.add(key)
    budgeted = {column(record, budget["metric"]) for record in records for budget in record["budgets"]}
    shown = {name for row in rows.values() for name in row}
    found_values = {name: [row[name] for row in (reference, *rows.values()) if name in row] for name in shown}
    columns = {  # scalars and unavailable ones (None); a dict-valued metric (an interval) has no column
        name for name, found in found_values.items()
        if all(value is None or is_number(value) or isinstance(value, str) for value in found)
        and ((metric := metric_of(registry, name)) is None or metric.summary or name in budgeted)
    }
    names = ordered_columns(registry, columns)
    saved_names = ordered_columns(registry, {name for _, name in compared if metric_of(registry, name)})

    def cell(row: str, name: str, value: Any, against: Any) -> str:
        if value is _NOT_MEASURED:
            return "-"
        if value is None:
            return "n/a"
        text = format_value(registry, name, value)
        if row != "reference" and is_number(against):
            text += format_change(registry, name, value, against)
        if name == "ocs" and row in combined:
            text += f" ({combined[row]})"
        return text + (" *" if (row, name) in failing else "")

    def saved(row: str, name: str) -> str:  # the saved run's value, and the change since
        budget = compared.get((row, name))
        if budget is None or not is_number(budget["reference"]):
            return "-"
        text = format_value(registry, name, budget["reference"])
        if not is_number(budget["value"]):
            text += " (now n/a)"
        else:
            text += format_change(registry, name, budget["value"], budget["reference"], always=True)
        return text + (" *" if budget["passed"] is False else "")

    def variant(row: str) -> str:  # a failing metric with no column of its own marks the row
        return row + (" *" if any(r == row and n not in names for r, n in failing) else "")

    grid = [["variant", *names, *(f"{name} saved" for name in saved_names)]]
    grid.append([
        "reference", *(cell("reference", n, reference.get(n, _NOT_MEASURED), None) for n in names),
        *("-" for _ in saved_names),
    ])
    for compressor, metrics in sorted(rows.items()):
        values = [cell(compressor, n, metrics.get(n, _NOT_MEASURED), reference.get(n)) for n in names]
        grid.append([variant(compressor), *values, *(saved(compressor, n) for n in saved_names)])
    legend = "(+x): change in points, (x): times the reference, n/a: unavailable, -: not measured"
    if saved_names:
        legend += "; saved: the compared run's value, (change since)"
    if failing or any(budget["passed"] is False for budget in compared.values()):
        legend = "*: over budget, " + legend
    if combined:
        legend += f"; {OCS_LETTERS_LEGEND}"
    threads: set[Any] = {record.get("threads") for record in records} - {None}
    notes = []
    if device == "cpu" and len(threads) == 1:
        count = threads.pop()
        notes.append(f"{count} CPU thread{'s' if count > 1 else ''}")
    pressures = [
        value for record in records for metrics in (record["metrics"], record["reference"]["metrics"])
        for name in PRESSURE_METRICS if is_number(value := metrics.get(name))
    ]
    if pressures:  # that of the table's most contended timing, and whether it was over the limit
        worst = max(pressures)
        notes.append(f"CPU pressure {worst:.0%}" + (f" > {MAX_PRESSURE:.0%}" if worst > MAX_PRESSURE else ""))
    title = f"{model} on {device}" + (f" ({', '.join(notes)})" if notes else "")
    return title, grid, legend
