"""The report of a run: ``write_report`` draws each model and device's plots (see ``pytest_netzip.output.plots``) as PNG
files beside a self-contained ``index.html``.

matplotlib (the ``report`` extra) is imported only while a report is drawn, and used through ``Figure`` and the
Agg canvas under the default style: pyplot, the user's backend and their rcParams are left as they were.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from pytest_netzip.metrics import MetricRegistry, is_number
from pytest_netzip.output.html_report import REFERENCE, Plot, Section, render_page
from pytest_netzip.output.plots import (
    LARGEST,
    PlotUnavailable,
    bar_chart,
    compressor_colours,
    drawable,
    radar,
    tradeoff,
)
from pytest_netzip.output.storage import _slug
from pytest_netzip.output.tables import variant_summaries

if TYPE_CHECKING:
    from matplotlib.figure import Figure
from pytest_netzip.errors import ReportError

INSTALL_HINT = "pip install matplotlib (the plugin's report extra)"


def require_matplotlib() -> None:
    """ReportError saying how to install matplotlib if it cannot be imported (check before a long run)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        message = f"the netzip report draws its plots with matplotlib, which is not installed: {INSTALL_HINT}"
        raise ReportError(message) from None


def write_report(document: dict[str, Any], directory: Path, registry: MetricRegistry | None = None) -> list[str]:
    """Draw the run ``document`` into ``directory`` (created if needed): PNG plots and ``index.html``.

    Returns a note for each plot that could not be drawn (for lack of a metric, or failing) and for values left out of
    the plots (not finite, or too large); the page lists them too.
    ``registry`` names the metrics hooks contributed (default: the built-ins; others are formatted plainly).
    Raises ReportError when matplotlib is not installed or ``document`` is not a run document.
    """
    require_matplotlib()
    import matplotlib.style

    registry = registry or MetricRegistry()
    sections = _sections(document)
    notes = [] if sections else ["the run has no results to draw"]
    directory.mkdir(parents=True, exist_ok=True)
    taken: set[str] = set()
    # text from the run is shown as written: "$" would start matplotlib's mathtext, and "$$" fail to parse
    with matplotlib.style.context("default"), matplotlib.rc_context({"text.parse_math": False}):
        for section in sections:
            slug = _unique(_slug(f"{section.model}_{section.device}"), taken)
            colours = compressor_colours(section)
            notes.extend(_left_out(section))
            for kind in _KINDS:
                try:
                    png = _png(kind.draw(section, colours, registry))
                except PlotUnavailable as exc:
                    notes.append(f"no {kind.what} for {section.title}: {exc}")
                    continue
                except Exception as exc:  # noqa: BLE001 - a plot matplotlib cannot draw: say why, draw the others
                    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "no message"
                    notes.append(f"no {kind.what} for {section.title}: drawing it failed ({type(exc).__name__}: {reason})")
                    continue
                plot = Plot(kind.caption, f"{kind.prefix}_{slug}.png", png, kind.wide)
                (directory / plot.filename).write_bytes(plot.png)
                section.plots.append(plot)
    (directory / "index.html").write_text(render_page(document, sections, notes, registry), encoding="utf-8")
    return notes


def document_variants(document: Any) -> list[dict[str, Any]]:
    """The ``variants`` of a run document: per model, device and compressor, the metrics its items measured.

    Runs saved before documents carried them get them merged from their items' records. ReportError when
    ``document`` has neither.
    """
    entries = document.get("variants") if isinstance(document, dict) else None
    if entries is None and isinstance(document, dict) and isinstance(document.get("results"), list):
        try:
            entries = variant_summaries(document["results"])
        except (KeyError, TypeError, AttributeError):
            entries = None
    if not isinstance(entries, list) or not all(
        isinstance(entry, dict) and {"model", "device", "compressor"} <= entry.keys()
        and isinstance(entry.get("metrics"), dict) for entry in entries
    ):
        raise ReportError("not a pytest-netzip run document: 'variants' must list {model, device, compressor, metrics}")
    return entries


def _sections(document: Any) -> list[Section]:
    """The document's variants by model and device, in the run's order, each the reference first."""
    sections: dict[tuple[str, str], Section] = {}
    for entry in document_variants(document):
        key = (str(entry["model"]), str(entry["device"]))
        sections.setdefault(key, Section(*key, [])).variants.append({**entry, "compressor": str(entry["compressor"])})
    for section in sections.values():
        section.variants.sort(key=lambda variant: (variant["compressor"] != REFERENCE, variant["compressor"]))
    return list(sections.values())


def _left_out(section: Section) -> list[str]:
    """A note naming the values of ``section`` too large, too small or not finite to plot, if any; the table shows them."""
    values = [
        f"{variant['compressor']} {name} {value:.3g}" if isinstance(value, float) else f"{variant['compressor']} {name}"
        for variant in section.variants for name, value in variant["metrics"].items()
        if is_number(value) and not drawable(value)
    ]
    if not values:
        return []
    bounds = f"not finite, or not 0 and of magnitude outside {1 / LARGEST:.0e} .. {LARGEST:.0e}"
    return [f"left out of the plots of {section.title} ({bounds}): {', '.join(values)}"]


def _unique(slug: str, taken: set[str]) -> str:
    """``slug``, or ``slug_2``, ``slug_3``... if taken (``a b`` and ``a-b`` have one slug); marks it taken."""
    candidate, counter = slug, 1
    while candidate in taken:
        counter += 1
        candidate = f"{slug}_{counter}"
    taken.add(candidate)
    return candidate


def _png(figure: Figure) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)  # type: ignore[no-untyped-call]  # matplotlib leaves print_png unannotated
    return buffer.getvalue()


class _Kind(NamedTuple):
    """A plot drawn for each model and device."""

    prefix: str  # of its file name
    what: str  # in a note saying it could not be drawn
    caption: str  # on the page
    wide: bool  # takes a row of the page to itself
    draw: Callable[[Section, dict[str, Any], MetricRegistry], Figure]


_KINDS = (
    _Kind("metrics", "bar chart", "Every metric, a bar per variant; dashed: the reference", True, bar_chart),
    _Kind("accuracy_vs_size", "accuracy-vs-size plot", "Accuracy against size; dashed: the Pareto front", False,
          functools.partial(tradeoff, cost="size_bytes")),
    _Kind("accuracy_vs_latency", "accuracy-vs-latency plot", "Accuracy against p50 latency; dashed: the Pareto front",
          False, functools.partial(tradeoff, cost="latency_p50_ms")),
    _Kind("ratios", "radar plot", "NetZIP's ratios per variant, OCS in the legend", True, radar),
)
