"""Labels beside scatter points that cover neither each other nor the points: for each, the first of a few
offsets that overlaps least with what is already placed and with the outside of the axes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Where a label may go, in points from its point, most wanted first.
_OFFSETS = ((6, 6), (6, -6), (-6, 6), (-6, -6), (6, 20), (6, -20), (-6, 20), (-6, -20), (0, 32), (0, -32))

_Box = tuple[float, float, float, float]


def _overlap(first: _Box, second: _Box) -> float:
    width = min(first[2], second[2]) - max(first[0], second[0])
    height = min(first[3], second[3]) - max(first[1], second[1])
    return max(width, 0.0) * max(height, 0.0)


def place_labels(
    ax: Axes, items: list[tuple[float, float, str]], lines: Sequence[tuple[float, float, float, float]] = (),
    fontsize: float = 8,
) -> None:
    """Annotate ``ax`` with each ``(x, y, text)`` of ``items`` (data coordinates), the texts apart and off the
    horizontal or vertical ``lines`` ``(x0, y0, x1, y1)``.

    Text sizes are estimated from the font size and the axes' current size: lay the figure out first.
    """
    ax.get_xlim()  # settles autoscaling, which the data-to-axes transform reads
    to_axes = ax.transScale + ax.transLimits
    width_pt, height_pt = ax.get_position().size * cast("Figure", ax.get_figure()).get_size_inches() * 72
    anchors = [tuple(to_axes.transform((x, y))) for x, y, _ in items]
    pad = (4 / width_pt, 4 / height_pt)
    taken: list[_Box] = [(x - pad[0], y - pad[1], x + pad[0], y + pad[1]) for x, y in anchors]
    for x0, y0, x1, y1 in lines:
        (left, bottom), (right, top) = to_axes.transform([(x0, y0), (x1, y1)])
        taken.append((min(left, right) - pad[0] / 2, min(bottom, top) - pad[1] / 2,
                      max(left, right) + pad[0] / 2, max(bottom, top) + pad[1] / 2))
    for (x, y), (data_x, data_y, text) in sorted(zip(anchors, items), key=lambda pair: -pair[0][1]):
        rows = text.split("\n")
        width = max(map(len, rows)) * fontsize * 0.6 / width_pt
        height = len(rows) * fontsize * 1.25 / height_pt
        choices = []
        for dx, dy in _OFFSETS:
            left = x + dx / width_pt - (width if dx < 0 else width / 2 if dx == 0 else 0)
            bottom = y + dy / height_pt - (height if dy < 0 else 0)
            box = (left, bottom, left + width, bottom + height)
            outside = width * height - _overlap(box, (0.0, 0.0, 1.0, 1.0))
            score = sum(_overlap(box, other) for other in taken) + 2 * outside
            choices.append((round(score, 6), box, dx, dy))  # rounded: float noise must not outrank the order
        _, box, dx, dy = min(choices, key=lambda choice: choice[0])  # min keeps the most wanted of equals
        taken.append(box)
        ax.annotate(text, (data_x, data_y), xytext=(dx, dy), textcoords="offset points", fontsize=fontsize,
                    ha="left" if dx > 0 else "right" if dx < 0 else "center", va="bottom" if dy > 0 else "top")
