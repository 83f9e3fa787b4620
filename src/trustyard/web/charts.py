"""Bar charts as inline SVG, drawn on the server: the geometry here, the markup in ``templates/chart.html``.

No chart library and no script: the dashboard is an SVG the browser draws as it arrives, readable without
JavaScript, printable, and labelled for screen readers (each bar carries its label and value as text).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

__all__ = ["Bar", "Chart", "bar_chart"]

ROW: Final = 28
LABEL_WIDTH: Final = 230
VALUE_WIDTH: Final = 60


@dataclass(frozen=True, slots=True)
class Bar:
    """One horizontal bar: its label, value, colour class and where it is drawn."""

    label: str
    value: int
    css: str
    y: int
    width: float


@dataclass(frozen=True, slots=True)
class Chart:
    """A horizontal bar chart: bars and the drawing's size."""

    title: str
    bars: tuple[Bar, ...]
    width: int
    height: int
    label_width: int = LABEL_WIDTH

    @property
    def total(self) -> int:
        """The sum of the values (for the caption)."""
        return sum(b.value for b in self.bars)


def bar_chart(title: str, items: Sequence[tuple[str, int, str]], *, width: int = 640) -> Chart:
    """Bars for ``(label, value, css class)`` items, scaled so the largest fills the plot area."""
    plot = width - LABEL_WIDTH - VALUE_WIDTH
    top = max((value for _, value, _ in items), default=0)
    bars = tuple(
        Bar(label, value, css, i * ROW, (value / top * plot) if top else 0.0)
        for i, (label, value, css) in enumerate(items)
    )
    return Chart(title, bars, width, max(len(bars), 1) * ROW)
