"""Render the dashboard's time-series panels to one SVG picture, from a running Prometheus.

    python deploy/grafana/render_panels.py --prometheus http://127.0.0.1:9090 \
        --minutes 15 --out docs/dashboard.svg

Each panel's queries run over the last ``--minutes`` through /api/v1/query_range, with Grafana's
variables substituted as Grafana would ($__rate_interval, $job, $instance). No Grafana needed;
matplotlib draws the picture (``pip install 'timeback-relay[bench]'``; ``make setup`` has it).
Each panel is an SVG group ``panel-<n>``, each of its lines a group ``series-<n>-<m>``.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import re
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.dates import DateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

DASHBOARD = Path(__file__).resolve().parent / "timeback-relay.json"
COLORS = ("#3274d9", "#56a64b", "#e02f44", "#ff9830", "#a352cc", "#37872d", "#8ab8ff", "#fade2a")
BACKGROUND, PANEL_FACE, GRID = "#111217", "#181b1f", "#2c3235"  # Grafana's dark theme
TEXT, AXIS, LEGEND = "#d8d9da", "#8e8e8e", "#c7d0d9"
PANEL_INCHES, COLUMNS = (5.6, 2.9), 2
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
    points: list[tuple[float, float]]  # (unix time, value), NaN dropped


@dataclass
class Panel:
    title: str
    unit: str
    series: list[Series]


def grafana_expr(expr: str, job: str, instance: str, rate_interval: str) -> str:
    return (
        expr.replace("$__rate_interval", rate_interval)
        .replace("$__interval", rate_interval)
        .replace("$__range", rate_interval)
        .replace("$job", job)
        .replace("$instance", instance)
    )


def legend(template: str, labels: dict[str, str]) -> str:
    text = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template)
    return text.strip() or ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "value"


def query_range(base: str, expr: str, start: float, end: float, step: float) -> list[Any]:
    params = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
    with urllib.request.urlopen(f"{base}/api/v1/query_range?{params}", timeout=30) as response:
        body = json.load(response)
    if body.get("status") != "success":
        raise RuntimeError(f"{expr}: {body.get('error')}")
    result: list[Any] = body["data"]["result"]
    return result


def collect(
    base: str, dashboard: dict[str, Any], minutes: float, job: str, instance: str
) -> list[Panel]:
    end = time.time()
    start, step = end - minutes * 60, max(minutes * 60 / 150, 1.0)
    rate_interval = f"{max(int(step * 4), 60)}s"
    panels = []
    for spec in _timeseries(dashboard["panels"]):
        series = []
        for target in spec.get("targets", []):
            expr = grafana_expr(target["expr"], job, instance, rate_interval)
            for result in query_range(base, expr, start, end, step):
                points = [(float(t), float(v)) for t, v in result["values"]]
                points = [(t, v) for t, v in points if math.isfinite(v)]
                if points:
                    label = legend(target.get("legendFormat", ""), result["metric"])
                    series.append(Series(label, points))
        unit = spec.get("fieldConfig", {}).get("defaults", {}).get("unit", "short")
        panels.append(Panel(spec["title"], unit, series))
    return panels


def _timeseries(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for panel in panels:
        if panel.get("type") == "timeseries":
            found.append(panel)
        found.extend(_timeseries(panel.get("panels", [])))
    return found


def _fmt(value: float, unit: str) -> str:
    if unit == "percentunit":
        return f"{value * 100:.0f}%"
    suffix = {"s": " s", "reqps": "/s"}.get(unit, "")
    if abs(value) >= 1000:
        return f"{value / 1000:.1f}k{suffix}"
    if unit == "s" and 0 < abs(value) < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.3g}{suffix}"


def _draw(ax: Axes, panel: Panel, number: int) -> None:
    """One panel in Grafana's dark style; its SVG group is ``panel-<n>``, each line's
    ``series-<n>-<m>``."""
    ax.set_gid(f"panel-{number}")
    ax.set_facecolor(PANEL_FACE)
    ax.set_title(panel.title, loc="left", color=TEXT, fontsize=9, fontweight="bold")
    for side in ax.spines.values():
        side.set_color(GRID)
    ax.tick_params(colors=AXIS, labelsize=7)
    ax.grid(True, color=GRID, linewidth=0.6)
    if not panel.series:
        ax.text(0.5, 0.5, "No data", color=AXIS, ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
        return
    for n, series in enumerate(panel.series[: len(COLORS)]):
        times = [datetime.fromtimestamp(t, tz=UTC) for t, _ in series.points]
        ax.plot(times, [v for _, v in series.points], color=COLORS[n], linewidth=1.2,
                label=series.label[:28], gid=f"series-{number}-{n}")  # fmt: skip
    values = [v for s in panel.series for _, v in s.points]
    if min(values) >= 0:
        ax.set_ylim(bottom=0)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _fmt(v, panel.unit)))
    span = max(t for s in panel.series for t, _ in s.points) - min(
        t for s in panel.series for t, _ in s.points
    )
    ax.xaxis.set_major_formatter(DateFormatter("%H:%M" if span > 600 else "%H:%M:%S", tz=UTC))
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3, fontsize=7,
              frameon=False, labelcolor=LEGEND)  # fmt: skip


def render_svg(panels: list[Panel], title: str) -> str:
    with rc_context(SVG_SETTINGS):  # around drawing too: text takes its font when created
        rows = max(1, math.ceil(len(panels) / COLUMNS))
        figure = Figure(figsize=(PANEL_INCHES[0] * COLUMNS, PANEL_INCHES[1] * rows + 0.4))
        figure.patch.set_facecolor(BACKGROUND)
        figure.suptitle(title, color=TEXT, x=0.01, ha="left", fontsize=11)
        grid = figure.subplots(rows, COLUMNS, squeeze=False).flatten()
        for number, (ax, panel) in enumerate(zip(grid, panels, strict=False)):
            _draw(ax, panel, number)
        for spare in grid[len(panels) :]:
            spare.set_visible(False)
        figure.tight_layout(rect=(0, 0, 1, 1 - 0.4 / (PANEL_INCHES[1] * rows + 0.4)))
        out = io.StringIO()
        figure.savefig(out, format="svg", facecolor=BACKGROUND, metadata={"Date": None})
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prometheus", default="http://127.0.0.1:9090")
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--job", default="timeback-relay")
    parser.add_argument("--instance", default=".+", help="regex of instances")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--dashboard", type=Path, default=DASHBOARD)
    args = parser.parse_args(argv)
    dashboard = json.loads(args.dashboard.read_text())
    panels = collect(args.prometheus.rstrip("/"), dashboard, args.minutes, args.job, args.instance)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    span = f"{args.minutes:.0f} min" if args.minutes >= 2 else f"{args.minutes * 60:.0f} s"
    args.out.write_text(render_svg(panels, f"{dashboard['title']}: last {span}"))
    with_data = sum(1 for p in panels if p.series)
    print(f"{args.out}: {len(panels)} panels, {with_data} with data")
    return 0


if __name__ == "__main__":
    sys.exit(main())
