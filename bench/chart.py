"""Line charts as SVG, written by our own code (no plotting library): the S8 scaling curves.

One ``Panel`` per curve, side by side in one picture; each has its measured points, optionally
an "ideal" line (dashed), a log2 x axis where the x values span powers of two, a log10 y axis
where the values span decades.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape

WIDTH, HEIGHT = 340, 260  # one panel
MARGIN = (48, 16, 40, 34)  # left, right, bottom, top
COLORS = ("#1f77b4", "#d62728", "#2ca02c")


@dataclass
class Series:
    label: str
    points: list[tuple[float, float]]
    dashed: bool = False


@dataclass
class Panel:
    title: str
    x_label: str
    y_label: str
    series: list[Series] = field(default_factory=list)
    log_x: bool = False
    log_y: bool = False  # then the dashed lines count for the range too (nothing is clipped)


def svg(panels: list[Panel], caption: str = "") -> str:
    width, height = WIDTH * len(panels), HEIGHT + (22 if caption else 0)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
             f'<rect width="{width}" height="{height}" fill="white"/>']  # fmt: skip
    for index, panel in enumerate(panels):
        parts.append(f'<g transform="translate({index * WIDTH},0)">{_panel(panel)}</g>')
    if caption:
        parts.append(f'<text x="8" y="{height - 7}" fill="#555">{escape(caption)}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _panel(panel: Panel) -> str:
    left, right, bottom, top = MARGIN
    plot_w, plot_h = WIDTH - left - right, HEIGHT - top - bottom
    xs = [x for s in panel.series for x, _ in s.points] or [1.0]
    ys = [y for s in panel.series if panel.log_y or not s.dashed for _, y in s.points] or [1.0]
    fx = (lambda v: math.log2(v)) if panel.log_x else (lambda v: v)
    x0, x1 = fx(min(xs)), fx(max(xs))
    span_x = (x1 - x0) or 1.0
    if panel.log_y:
        low = 10 ** math.floor(math.log10(max(min(y for y in ys if y > 0), 1e-9)))
        high = 10 ** math.ceil(math.log10(max(ys)))
        y_ticks = [low * 10**i for i in range(round(math.log10(high / low)) + 1)]
    else:
        low, high = 0.0, _nice(max(ys) * 1.1)
        y_ticks = [high * i / 4 for i in range(5)]

    def fy(y: float) -> float:  # 0 at the bottom, 1 at the top
        y = min(max(y, low), high)
        if panel.log_y:
            return math.log10(y / low) / math.log10(high / low)
        return y / high

    def at(x: float, y: float) -> tuple[float, float]:
        return left + (fx(x) - x0) / span_x * plot_w, top + plot_h - fy(y) * plot_h

    out = [f'<text x="{WIDTH / 2}" y="16" text-anchor="middle" font-weight="bold">'
           f"{escape(panel.title)}</text>",
           f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" '
           'stroke="#999"/>']  # fmt: skip
    for value in y_ticks:  # y grid and labels
        _, y = at(min(xs), value)
        out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
                   f'stroke="#eee"/><text x="{left - 4}" y="{y + 4:.1f}" '
                   f'text-anchor="end">{value:,.0f}</text>')  # fmt: skip
    for x in sorted(set(xs)):  # x ticks at the measured values
        px, _ = at(x, 0)
        out.append(f'<text x="{px:.1f}" y="{top + plot_h + 14}" text-anchor="middle">'
                   f"{x:g}</text>")  # fmt: skip
    out.append(f'<text x="{left + plot_w / 2}" y="{HEIGHT - 8}" text-anchor="middle">'
               f"{escape(panel.x_label)}</text>")  # fmt: skip
    out.append(f'<text transform="translate(12,{top + plot_h / 2}) rotate(-90)" '
               f'text-anchor="middle">{escape(panel.y_label)}</text>')  # fmt: skip
    for number, series in enumerate(panel.series):
        color = "#888" if series.dashed else COLORS[number % len(COLORS)]
        coords = " ".join(f"{px:.1f},{py:.1f}" for px, py in (at(x, y) for x, y in series.points))
        dash = ' stroke-dasharray="5,4"' if series.dashed else ""
        out.append(f'<polyline points="{coords}" fill="none" stroke="{color}" '
                   f'stroke-width="2"{dash}/>')  # fmt: skip
        if not series.dashed:
            for x, y in series.points:
                px, py = at(x, y)
                out.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{color}"/>')
        out.append(f'<text x="{left + 6}" y="{top + 14 + 13 * number}" fill="{color}">'
                   f"{escape(series.label)}</text>")  # fmt: skip
    return "\n".join(out)


def _nice(value: float) -> float:
    """The next 1, 2 or 5 times a power of ten at or above ``value``."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= value)
