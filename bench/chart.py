"""Line charts as SVG (and PNG), drawn with matplotlib: the S8 scaling curves.

One ``Panel`` per curve, side by side in one picture; each has its measured points, optionally
an "ideal" line (dashed), a log2 x axis where the x values span powers of two, a log10 y axis
where the values span decades. Each measured series is an SVG group with an id ``series-...``
(its line and one marker per point), so the picture can be checked as well as looked at.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

PANEL_INCHES = (3.4, 2.6)  # one panel
COLORS = ("#1f77b4", "#d62728", "#2ca02c")
IDEAL_COLOR = "#888888"
# text stays text, in one short font name (the default list of fallbacks is repeated in every
# label); ids are salted, not random: the same data gives the same file
SVG_SETTINGS: dict[RcKeyType, Any] = {
    "svg.fonttype": "none",
    "svg.hashsalt": "timeback-relay",
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
}


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
    log_y: bool = False  # the dashed lines count for the y range too, on either scale


def svg(panels: list[Panel], caption: str = "") -> str:
    out = io.StringIO()
    with rc_context(SVG_SETTINGS):
        _figure(panels, caption).savefig(out, format="svg", metadata={"Date": None})
    return out.getvalue()


def png(panels: list[Panel], caption: str = "", dpi: int = 120) -> bytes:
    """The same picture as ``svg``, as a PNG (for viewers that do not render SVG)."""
    out = io.BytesIO()
    with rc_context(SVG_SETTINGS):
        _figure(panels, caption).savefig(out, format="png", dpi=dpi, metadata={"Software": None})
    return out.getvalue()


def _figure(panels: list[Panel], caption: str) -> Figure:
    """Drawn inside ``rc_context(SVG_SETTINGS)``: text takes its font when it is created."""
    width, height = PANEL_INCHES
    figure = Figure(figsize=(width * len(panels), height + (0.3 if caption else 0)))
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for index, (ax, panel) in enumerate(zip(axes, panels, strict=True)):
        _draw(ax, panel, index)
    if caption:
        figure.text(0.01, 0.02, caption, color="#555555", fontsize=8)
    figure.tight_layout(rect=(0, 0.08 if caption else 0, 1, 1))
    return figure


def _draw(ax: Axes, panel: Panel, index: int) -> None:
    ax.set_title(panel.title, fontsize=9, fontweight="bold")
    ax.set_xlabel(panel.x_label, fontsize=8)
    ax.set_ylabel(panel.y_label, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(True, axis="y", color="#eeeeee")
    for number, series in enumerate(panel.series):
        xs, ys = zip(*series.points, strict=True) if series.points else ((), ())
        if series.dashed:
            ax.plot(xs, ys, color=IDEAL_COLOR, linestyle=(0, (5, 4)), linewidth=1.5,
                    label=series.label, gid=f"ideal-{index}-{number}")  # fmt: skip
        else:
            ax.plot(xs, ys, color=COLORS[number % len(COLORS)], marker="o", markersize=4,
                    linewidth=2, label=series.label, gid=f"series-{index}-{number}")  # fmt: skip
    measured_x = sorted({x for s in panel.series for x, _ in s.points})
    if panel.log_x:
        ax.set_xscale("log", base=2)
    if measured_x:  # ticks at the measured values
        ax.xaxis.set_major_locator(FixedLocator(measured_x))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    if panel.log_y:
        ax.set_yscale("log")
    else:  # from 0, up to the highest point, an ideal line's too (it is the yardstick)
        values = [y for s in panel.series for _, y in s.points] or [1.0]
        ax.set_ylim(0, max(values) * 1.1)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    if panel.series:
        ax.legend(fontsize=7, frameon=False, loc="best")
