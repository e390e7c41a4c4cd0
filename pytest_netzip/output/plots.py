"""The drawings of a report, after NetZIP's ``netzip.visualise``: every metric as bars, accuracy against size and
against latency with the Pareto front, and the radar of NetZIP's ratios; each a matplotlib ``Figure`` of one
model on one device, or PlotUnavailable saying which metric it lacks.

matplotlib is imported inside the functions: ``pytest_netzip.output.visualise`` checks it is installed first.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeGuard, cast

from pytest_netzip.metrics import MetricRegistry, is_number
from pytest_netzip.metrics.combined import OCS_RATIOS
from pytest_netzip.output.columns import metric_of
from pytest_netzip.output.html_report import REFERENCE, Section
from pytest_netzip.output.labels import place_labels
from pytest_netzip.output.tables import format_value

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure
    from matplotlib.projections.polar import PolarAxes

#: Accuracy on the trade-off plots: the first of these measured by the most variants that have the other axis.
ACCURACY_METRICS = ("top1", "f1", "map", "agreement")

#: Values of a larger magnitude, or a smaller one (0 aside), are left out of the plots (the report notes them): no
#: measurement comes near, and the margins and log axes drawn around such a value would overflow a float, or underflow.
LARGEST = 1e100

_DPI = 100
_REFERENCE_COLOUR = "#7f7f7f"


class PlotUnavailable(Exception):
    """A plot lacks the metrics it needs; the message says which, for the report's notes."""


def drawable(value: object) -> TypeGuard[float]:
    """Whether ``value`` can be placed on an axis: 0, or a number of magnitude within 1 / ``LARGEST`` .. ``LARGEST``."""
    return is_number(value) and (value == 0 or 1 / LARGEST <= abs(value) <= LARGEST)


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the ``(cost, value)`` points that no other point beats, by rising cost.

    Lower cost and higher value are better: a point is beaten by one at most as costly and at least as
    valuable that is better in one of the two. Equal points are all on the front.
    """
    front: list[int] = []
    for index in sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1])):
        if not front or points[index][1] > points[front[-1]][1] or points[index] == points[front[-1]]:
            front.append(index)
    return front


def compressor_colours(section: Section) -> dict[str, Any]:
    """One colour per compressor, the same in every plot of ``section``; grey for the reference alone."""
    from matplotlib import colormaps

    compressors = [variant["compressor"] for variant in section.variants if variant["compressor"] != REFERENCE]
    colormap = cast("ListedColormap", colormaps["tab10" if len(compressors) < 10 else "tab20"])
    palette = cast("Sequence[tuple[float, float, float]]", colormap.colors)  # tab10 and tab20 list RGB tuples
    shades = [colour for colour in palette if len(set(colour)) > 1]
    chosen: dict[str, Any] = {name: shades[index % len(shades)] for index, name in enumerate(compressors)}
    chosen[REFERENCE] = _REFERENCE_COLOUR
    return chosen


def _label(name: str, width: int = 28) -> str:
    """A compressor's name wrapped at its spaces (``distill(student=..., epochs=30, lr=0.01)`` is long)."""
    return textwrap.fill(name, width, break_long_words=False)


def _new_figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=_DPI, layout="constrained")


def _footnote(figure: Figure, text: str) -> None:
    """Small grey lines under the plot, for which layout makes room."""
    lines = [_label(line, 130) for line in text.split("\n")]
    figure.supxlabel("\n".join(lines), x=0.01, ha="left", fontsize=8, color="#59636e")


def _direction(registry: MetricRegistry, name: str) -> str:
    metric = metric_of(registry, name)
    if metric is None:
        return name
    return f"{name} ({'higher' if metric.higher_is_better else 'lower'} is better)"


def bar_chart(section: Section, colours: dict[str, Any], registry: MetricRegistry) -> Figure:
    """A panel per numeric metric, a bar per variant; the speedup bar spans its confidence interval."""
    names = [name for name in section.scalar_metrics(registry)
             if any(drawable(variant["metrics"].get(name)) for variant in section.variants)]
    if not names:
        raise PlotUnavailable("no variant measured a numeric metric")
    columns = min(3, len(names))
    rows = math.ceil(len(names) / columns)
    labels = [_label(variant["compressor"]) for variant in section.variants]
    line_count = sum(label.count("\n") + 1 for label in labels)
    figure = _new_figure(15, rows * (0.75 + 0.2 * line_count) + 0.5)
    axes = figure.subplots(rows, columns, sharey=True, squeeze=False)
    for ax, name in zip(axes.flat, names):
        _bar_panel(ax, section, name, colours, registry)
    for ax in axes.flat[len(names):]:
        ax.set_visible(False)
    for row in axes:
        row[0].set_yticks(range(len(labels)), labels, fontsize=9)
    axes[0][0].invert_yaxis()  # shared by every panel: the reference on top, as in the table
    figure.suptitle(f"{section.title}: every metric per variant", fontsize=14)
    return figure


def _bar_panel(ax: Axes, section: Section, name: str, colours: dict[str, Any], registry: MetricRegistry) -> None:
    from matplotlib.ticker import EngFormatter

    values = [variant["metrics"].get(name) for variant in section.variants]
    measured = [(position, value) for position, value in enumerate(values) if drawable(value)]
    positions, heights = zip(*measured)
    names = [section.variants[position]["compressor"] for position in positions]
    ax.barh(positions, heights, color=[colours[n] for n in names], height=0.7)
    ends = list(heights)
    for index, (position, value) in enumerate(measured):
        interval = section.variants[position]["metrics"].get(f"{name}_interval")
        if isinstance(interval, dict) and drawable(interval.get("low")) and drawable(interval.get("high")):
            ax.errorbar(value, position, xerr=[[max(value - interval["low"], 0)], [max(interval["high"] - value, 0)]],
                        fmt="none", ecolor="black", capsize=3, linewidth=1)
            ends[index] = max(value, interval["high"])
    for (position, value), end in zip(measured, ends):
        ax.annotate(format_value(registry, name, value), (end, position), xytext=(3 if value >= 0 else -3, 0),
                    textcoords="offset points", va="center", ha="left" if value >= 0 else "right", fontsize=8)
    for position, value in enumerate(values):
        if not drawable(value):
            measured_here = name in section.variants[position]["metrics"]
            text = "not drawn" if is_number(value) else "n/a" if measured_here else "not measured"
            ax.text(0.01, position, text,
                    transform=ax.get_yaxis_transform(), va="center", fontsize=8, color="#8c959f", style="italic")
    reference = section.reference.get(name)
    if drawable(reference):
        ax.axvline(reference, color=_REFERENCE_COLOUR, linestyle="--", linewidth=0.8)
    low, high = min(heights), max(ends)
    if low > 0 and high / low >= 100:  # spans orders of magnitude (MACs, OCS): only a log axis shows them all
        ax.set_xscale("log")
        ax.set_xlim(low / 2, high * 12)
    else:
        ax.set_xlim(min(0.0, low * 1.4), max(high * 1.4, 0.0) or 1.0)
    metric = metric_of(registry, name)
    if metric is not None and metric.unit in ("bytes", "ops", "count"):
        ax.xaxis.set_major_formatter(EngFormatter(unit="B" if metric.unit == "bytes" else ""))
    ax.set_title(_direction(registry, name), fontsize=10)
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(axis="x", alpha=0.3)


def _sizes(section: Section) -> dict[str, float]:
    """Each variant's ``size_bytes``, or the reference's over its ``size_ratio`` (the ratio's definition)."""
    reference = section.reference.get("size_bytes")
    sizes = {}
    for variant in section.variants:
        metrics = variant["metrics"]
        if drawable(metrics.get("size_bytes")):
            sizes[variant["compressor"]] = metrics["size_bytes"]
        elif drawable(reference) and drawable(metrics.get("size_ratio")) and metrics["size_ratio"] > 0:
            sizes[variant["compressor"]] = reference / metrics["size_ratio"]
    return {name: size for name, size in sizes.items() if drawable(size)}


def _tradeoff_points(section: Section, cost: str) -> tuple[str, dict[str, tuple[float, float]]]:
    """The accuracy metric to plot and each variant's ``(cost, accuracy)``; PlotUnavailable naming what is missing."""
    costs = _sizes(section) if cost == "size_bytes" else {
        variant["compressor"]: variant["metrics"][cost] for variant in section.variants
        if drawable(variant["metrics"].get(cost))
    }
    if not costs:
        raise PlotUnavailable(f"no variant measured {cost}")
    measured = [name for name in ACCURACY_METRICS if any(drawable(v["metrics"].get(name)) for v in section.variants)]
    if not measured:
        raise PlotUnavailable(f"no variant measured {', '.join(ACCURACY_METRICS[:-1])} or {ACCURACY_METRICS[-1]}")
    accuracy = max(measured, key=lambda name: sum(
        drawable(v["metrics"].get(name)) and v["compressor"] in costs for v in section.variants))
    points = {v["compressor"]: (costs[v["compressor"]], v["metrics"][accuracy])
              for v in section.variants if v["compressor"] in costs and drawable(v["metrics"].get(accuracy))}
    if set(points) <= {REFERENCE}:
        raise PlotUnavailable(f"no compressed variant measured both {accuracy} and {cost}")
    return accuracy, points


def tradeoff(section: Section, colours: dict[str, Any], registry: MetricRegistry, cost: str) -> Figure:
    """Accuracy against ``cost`` (size_bytes or latency_p50_ms), a point per variant, the Pareto front dashed."""
    from matplotlib.ticker import EngFormatter

    accuracy, points = _tradeoff_points(section, cost)
    figure = _new_figure(7, 5)
    ax = figure.add_subplot()
    names = list(points)
    front = [points[names[index]] for index in pareto_front(list(points.values()))]
    ax.plot(*zip(*front), drawstyle="steps-post", linestyle="--", color="#444444", linewidth=1, zorder=2)
    for name in names:
        ax.scatter(*points[name], s=70, color=colours[name], zorder=3,
                   edgecolors="black" if points[name] in front else "none", linewidths=1.2)
    spread = [x for x, _ in points.values()]
    if min(spread) > 0 and max(spread) / min(spread) >= 10:
        ax.set_xscale("log")
    if cost == "size_bytes":
        ax.xaxis.set_major_formatter(EngFormatter(unit="B"))
    ax.margins(x=0.15, y=0.12)
    ax.set_xlabel(_direction(registry, cost) + (" (log scale)" if ax.get_xscale() == "log" else ""))
    ax.set_ylabel(_direction(registry, accuracy))
    ax.grid(alpha=0.3)
    ax.set_title(f"{section.title}: {accuracy} against {cost}", fontsize=12)
    derived = [name for name in names if not drawable(section.variants_by_name[name].get(cost))]
    missing = [v["compressor"] for v in section.variants if v["compressor"] not in points]
    footnotes = [f"dashed, black-edged: the Pareto front (no other variant has a lower {cost} and a higher {accuracy})"]
    footnotes += [f"size of {', '.join(derived)}: the reference's size_bytes / size_ratio"] if derived else []
    footnotes += [f"not shown (no {accuracy} or {cost}): {', '.join(missing)}"] if missing else []
    _footnote(figure, "\n".join(footnotes))
    figure.draw_without_rendering()  # lays the axes out: the labels are placed for their final size
    together: dict[tuple[float, float], list[str]] = {}  # variants on one point share a label
    for name in names:
        together.setdefault(points[name], []).append(name)
    steps = [(x0, y0, x1, y0) for (x0, y0), (x1, _) in zip(front, front[1:])]
    steps += [(x1, y0, x1, y1) for (_, y0), (x1, y1) in zip(front, front[1:])]
    place_labels(ax, [(x, y, _label(", ".join(group))) for (x, y), group in together.items()], steps)
    return figure


def radar(section: Section, colours: dict[str, Any], registry: MetricRegistry) -> Figure:
    """NetZIP's radar: performance, speedup, compression and efficiency ratios, a polygon per variant, OCS in the
    legend. Each axis runs from 0 to its largest value; a gap in a polygon is a ratio that was not measured."""
    ratios = [name for name in OCS_RATIOS if any(
        drawable(v["metrics"].get(name)) and v["metrics"][name] > 0 for v in section.variants)]
    if len(ratios) < 3:
        raise PlotUnavailable(f"it needs three of {', '.join(OCS_RATIOS)}; the variants measured "
                              f"{', '.join(ratios) or 'none of them'}")
    drawn = [v for v in section.variants if any(drawable(v["metrics"].get(name)) for name in ratios)]
    if not any(variant["compressor"] != REFERENCE for variant in drawn):
        raise PlotUnavailable(f"no compressed variant measured {', '.join(ratios)}")
    scale = {name: max(v["metrics"][name] for v in drawn if drawable(v["metrics"].get(name))) for name in ratios}
    angles = [2 * math.pi * index / len(ratios) for index in range(len(ratios))]
    figure = _new_figure(10, 6.5)
    ax = cast("PolarAxes", figure.add_subplot(projection="polar"))
    ax.set_theta_offset(math.pi / 2)
    ax.set_theta_direction(-1)
    for variant in drawn:
        name, metrics = variant["compressor"], variant["metrics"]
        radii = [metrics[r] / scale[r] if drawable(metrics.get(r)) else math.nan for r in ratios]
        ocs = metrics.get("ocs")
        label = _label(f"{name} (OCS {format_value(registry, 'ocs', ocs) if drawable(ocs) else 'n/a'})", 32)
        style = {"linestyle": "--", "linewidth": 1.5} if name == REFERENCE else {"linewidth": 2}
        ax.plot([*angles, angles[0]], [*radii, radii[0]], marker="o", color=colours[name], label=label, **style)
        if not any(math.isnan(radius) for radius in radii):
            ax.fill([*angles, angles[0]], [*radii, radii[0]], color=colours[name], alpha=0.08)
    ax.set_xticks(angles, [])
    for angle, name in zip(angles, ratios):  # aligned away from the circle, which centred tick labels overlap
        across, up = math.sin(angle), math.cos(angle)
        ax.text(angle, 1.1, f"{name}\n(outer ring {format_value(registry, name, scale[name])})", fontsize=9,
                ha="left" if across > 0.1 else "right" if across < -0.1 else "center",
                va="bottom" if up > 0.1 else "top" if up < -0.1 else "center")
    ax.set_ylim(0, 1.05)
    ax.set_yticks([0.25, 0.5, 0.75, 1.0], [])
    figure.legend(loc="outside right upper", fontsize=9, title="variant (OCS)", frameon=False)
    figure.suptitle(f"{section.title}: NetZIP's ratios (higher is better)", fontsize=12)
    _footnote(figure, "Each axis runs from 0 to its largest value; a gap in a line: not measured.")
    return figure
