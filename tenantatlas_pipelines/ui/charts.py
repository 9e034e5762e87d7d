"""Small inline SVG charts rendered on the server: no script, no library, nothing for the CSP to allow.

Colours come from CSS classes (static/ui.css), so the strict style-src holds too. Every text that ends
up in the SVG (labels, tooltips) is escaped here, because the markup is handed to Jinja as safe.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 150
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 52, 10, 10, 22


@dataclass(frozen=True)
class Point:
    """One run in a series: its value (None when it has none, e.g. still running), a CSS class for its
    colour, a tooltip and where clicking it leads."""

    value: float | None
    css_class: str
    tooltip: str
    href: str | None = None


def nice_ceiling(value: float) -> float:
    """The smallest 1/2/5 x 10^n at or above `value` (the axis maximum); 1 for an empty series."""
    if value <= 0:
        return 1.0
    magnitude = 10.0 ** math.floor(math.log10(value))
    return next(step * magnitude for step in (1, 2, 5, 10) if step * magnitude >= value * (1 - 1e-12))


def _fmt(value: float, unit: str) -> str:
    text = f"{value:g}" if value < 10_000 else f"{value / 1000:g}k"
    return f"{text}{unit}"


def _frame(title: str, top: float, unit: str, first: str, last: str) -> list[str]:
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}"'
        f' xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for fraction in (0.0, 0.5, 1.0):
        y = PAD_TOP + plot_h * (1 - fraction)
        parts.append(
            f'<line class="grid" x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="axis" x="{PAD_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(_fmt(top * fraction, unit))}</text>"
        )
    base = HEIGHT - 6
    parts.append(f'<text class="axis" x="{PAD_LEFT}" y="{base}">{escape(first)}</text>')
    parts.append(
        f'<text class="axis" x="{WIDTH - PAD_RIGHT}" y="{base}" text-anchor="end">{escape(last)}</text>'
    )
    return parts


def bar_chart(points: Sequence[Point], *, title: str, unit: str, first: str, last: str) -> Markup:
    """One bar per point, left (oldest) to right (newest), each a link with a tooltip."""
    top = nice_ceiling(max((p.value or 0.0 for p in points), default=0.0))
    plot_w = WIDTH - PAD_LEFT - PAD_RIGHT
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    parts = _frame(title, top, unit, first, last)
    slot = plot_w / max(len(points), 1)
    bar_w = max(2.0, min(18.0, slot * 0.7))
    for n, p in enumerate(points):
        h = 0.0 if p.value is None else max(1.5, plot_h * p.value / top)
        x = PAD_LEFT + slot * n + (slot - bar_w) / 2
        y = PAD_TOP + plot_h - h
        bar = (
            f'<rect class="bar {escape(p.css_class)}" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}"'
            f' height="{h:.1f}"><title>{escape(p.tooltip)}</title></rect>'
        )
        parts.append(f'<a href="{escape(p.href)}">{bar}</a>' if p.href else bar)
    parts.append("</svg>")
    return Markup("".join(parts))


def line_chart(
    points: Sequence[Point], *, title: str, unit: str, first: str, last: str, top: float | None = None
) -> Markup:
    """A line through the points that have a value, with a dot per point (coloured by its class).
    `top` fixes the axis maximum (a share is read against 100 %, not against its own best value)."""
    if top is None:
        top = nice_ceiling(max((p.value or 0.0 for p in points), default=0.0))
    plot_w = WIDTH - PAD_LEFT - PAD_RIGHT
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    parts = _frame(title, top, unit, first, last)
    step = plot_w / max(len(points) - 1, 1)
    coords = [
        (PAD_LEFT + step * n if len(points) > 1 else PAD_LEFT + plot_w / 2,
         PAD_TOP + plot_h * (1 - (p.value or 0.0) / top), p)
        for n, p in enumerate(points)
        if p.value is not None
    ]  # fmt: skip
    if len(coords) > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in coords)
        parts.append(f'<polyline class="line" points="{path}"/>')
    for x, y, p in coords:
        dot = (
            f'<circle class="dot {escape(p.css_class)}" cx="{x:.1f}" cy="{y:.1f}" r="3.5">'
            f"<title>{escape(p.tooltip)}</title></circle>"
        )
        parts.append(f'<a href="{escape(p.href)}">{dot}</a>' if p.href else dot)
    parts.append("</svg>")
    return Markup("".join(parts))
