"""The report's page: one self-contained ``index.html`` with the run, a table per model and device, the plots
inline as ``data:`` URIs, and the notes on plots that could not be drawn. No script, no external file."""

from __future__ import annotations

import base64
import html
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pytest_netzip.metrics import MetricRegistry, is_number
from pytest_netzip.output.columns import column_namer, metric_of, ordered_columns
from pytest_netzip.output.tables import OCS_LETTERS_LEGEND, format_change, format_value, ocs_letters

REFERENCE = "reference"

_STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2328; margin: 2rem auto;
       max-width: 1440px; padding: 0 1.5rem; }
h1 { font-size: 1.7rem; margin-bottom: .3rem; } h2 { margin-top: 2.5rem; border-bottom: 1px solid #d0d7de; }
dl.run { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem; margin: 0; }
dl.run dt { color: #59636e; } dl.run dd { margin: 0; }
.scroll { overflow-x: auto; } table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: .3rem .7rem; border-bottom: 1px solid #e6e9ed; text-align: right; vertical-align: top; }
thead th { background: #f6f8fa; max-width: 10rem; vertical-align: bottom; }
thead th:first-child { text-align: left; }
tbody th { text-align: left; font-weight: 600; white-space: nowrap; cursor: help; }
td:nth-child(2), thead th:nth-child(2) { background: #f3f6fa; } td { white-space: nowrap; }
td small { color: #59636e; } td.fail { background: #ffebe9; color: #82071e; } td.missing { color: #8c959f; }
.plots { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 1.5rem;
         margin-top: 1.5rem; }
figure { margin: 0; } figure.wide { grid-column: 1 / -1; }
figure img { max-width: 100%; height: auto; border: 1px solid #e6e9ed; }
figcaption { color: #59636e; font-size: .9rem; }
.notes li { color: #7d4e00; } .legend { color: #59636e; font-size: .9rem; }
"""


@dataclass(frozen=True)
class Plot:
    """A rendered plot: what it shows, the file it was written to, its PNG bytes, and whether it takes a whole row
    of the page (the others pair up)."""

    caption: str
    filename: str
    png: bytes
    wide: bool = False


@dataclass
class Section:
    """The variants of one model on one device (the reference first) and the plots drawn of them."""

    model: str
    device: str
    variants: list[dict[str, Any]]
    plots: list[Plot] = field(default_factory=list)

    @property
    def title(self) -> str:
        """``DigitsCNN on cpu``."""
        return f"{self.model} on {self.device}"

    @property
    def reference(self) -> dict[str, Any]:
        """The reference's metrics (empty when the run has no reference row for this model and device)."""
        return self.variants_by_name.get(REFERENCE, {})

    @property
    def variants_by_name(self) -> dict[str, dict[str, Any]]:
        """Each variant's metrics by compressor name."""
        return {variant["compressor"]: variant["metrics"] for variant in self.variants}

    def scalar_metrics(self, registry: MetricRegistry) -> list[str]:
        """The numeric metrics any variant measured: the registry's order first, then unknown names sorted."""
        return ordered_metrics(registry, [variant["metrics"] for variant in self.variants])


def ordered_metrics(registry: MetricRegistry, measured: list[dict[str, Any]]) -> list[str]:
    """The names with a numeric value in any of ``measured``: the registry's order first, then unknown names sorted."""
    return ordered_columns(registry, (name for metrics in measured for name, value in metrics.items() if is_number(value)))


def render_page(document: dict[str, Any], sections: list[Section], notes: list[str], registry: MetricRegistry) -> str:
    """The HTML page of a run ``document`` drawn as ``sections``, with ``notes`` on what could not be drawn."""
    records = [record for record in document.get("results") or [] if isinstance(record, dict)]
    failing = _failing(records)
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             "<title>pytest-netzip report</title>", f"<style>{_STYLE}</style></head><body>",
             "<h1>pytest-netzip report</h1>", _run_info(document, records)]
    if notes:
        items = "".join(f"<li>{html.escape(note)}</li>" for note in notes)
        parts.append(f'<h2>Notes</h2><ul class="notes">{items}</ul>')
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        parts.append(_table(section, registry, failing))
        parts.append('<div class="plots">' + "".join(_figure(plot) for plot in section.plots) + "</div>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _failing(records: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    """(model, device, compressor, column) of every budget the records failed."""
    groups: dict[tuple[Any, Any], list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault((record.get("model"), record.get("device")), []).append(record)
    failing = set()
    for (model, device), group in groups.items():
        column = column_namer(group)
        failing |= {
            (model, device, record.get("compressor"), column(record, str(budget.get("metric"))))
            for record in group for budget in record.get("budgets") or []
            if isinstance(budget, dict) and budget.get("passed") is False
        }
    return failing


def _run_info(document: dict[str, Any], records: list[dict[str, Any]]) -> str:
    """When, at which commit and on what machine the run was measured, and how its tests ended."""
    rows: list[tuple[str, str]] = [("created", str(document.get("created") or "unknown")),
                                   ("commit", str(document.get("commit") or "none (not a git repository)"))]
    machine = document.get("machine")
    for key, value in (machine.items() if isinstance(machine, dict) else ()):
        shown = (", ".join(map(str, value)) or "none") if isinstance(value, list) else str(value)
        rows.append((str(key), shown))
    outcomes = Counter(str(record["outcome"]) for record in records if record.get("outcome"))
    if outcomes:
        rows.append(("tests", ", ".join(f"{count} {outcome}" for outcome, count in sorted(outcomes.items()))))
    cells = "".join(f"<dt>{html.escape(key)}</dt><dd>{html.escape(value)}</dd>" for key, value in rows)
    return f'<dl class="run">{cells}</dl>'


def _table(section: Section, registry: MetricRegistry, failing: set[tuple[Any, ...]]) -> str:
    """A row per metric, a column per variant (the reference first), each compressed value's change below it.

    Metrics outnumber variants in most runs: this way round the table fits the page.
    """
    reference = section.reference
    header = "".join(f"<th>{_breakable(v['compressor'])}</th>" for v in section.variants)
    rows = [f"<thead><tr><th>metric</th>{header}</tr></thead><tbody>"]
    letters = ocs_letters(section.variants)
    for name in section.scalar_metrics(registry):
        metric = metric_of(registry, name)
        described = f' title="{html.escape(metric.description)}"' if metric is not None else ""
        cells = [f"<th{described}>{html.escape(name)}</th>"]
        for variant in section.variants:
            value, compressor = variant["metrics"].get(name), variant["compressor"]
            if not is_number(value):
                cells.append(f'<td class="missing">{"n/a" if name in variant["metrics"] else "-"}</td>')
                continue
            delta = "" if compressor == REFERENCE or not is_number(reference.get(name)) else (
                format_change(registry, name, value, reference[name]).strip())
            failed = (section.model, section.device, compressor, name) in failing
            text = html.escape(format_value(registry, name, value)) + (" *" if failed else "")
            text += f" ({letters[compressor]})" if name == "ocs" and compressor in letters else ""
            text += f"<br><small>{html.escape(delta)}</small>" if delta else ""
            cells.append(f'<td class="fail" title="over budget">{text}</td>' if failed else f"<td>{text}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    legend = "(+x): change in points, (x): times the reference, n/a: unavailable, -: not measured, *: over budget"
    legend += f"; {OCS_LETTERS_LEGEND}" if letters else ""
    return f'<div class="scroll"><table>{"".join(rows)}</tbody></table></div><p class="legend">{legend}</p>'


def _breakable(name: str) -> str:
    """``name`` escaped, with a line break allowed after ``(``: a compressor's parameters wrap in a header."""
    return html.escape(name).replace("(", "(<wbr>")


def _figure(plot: Plot) -> str:
    """``plot`` as an inline image with its caption."""
    data = base64.b64encode(plot.png).decode("ascii")
    caption = html.escape(plot.caption)
    opening = '<figure class="wide">' if plot.wide else "<figure>"
    return (f'{opening}<img src="data:image/png;base64,{data}" alt="{caption}">'
            f"<figcaption>{caption} ({html.escape(plot.filename)})</figcaption></figure>")
