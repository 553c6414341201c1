"""Render the dashboard's time-series panels to one SVG picture, from a running Prometheus.

    python deploy/grafana/render_panels.py --prometheus http://127.0.0.1:9090 \
        --minutes 15 --out docs/dashboard.svg

Each panel's queries run over the last ``--minutes`` through /api/v1/query_range, with Grafana's
variables substituted as Grafana would ($__rate_interval, $job, $instance). No Grafana and no
plotting library needed: the picture is plain SVG (GitHub shows it in a README).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

DASHBOARD = Path(__file__).resolve().parent / "timeback-relay.json"
COLORS = ("#3274d9", "#56a64b", "#e02f44", "#ff9830", "#a352cc", "#37872d", "#8ab8ff", "#fade2a")
WIDTH, HEIGHT, COLUMNS, PAD = 560, 250, 2, 16
PLOT_LEFT, PLOT_TOP, PLOT_BOTTOM = 64, 34, 64


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


def _panel_svg(panel: Panel, x0: float, y0: float) -> str:
    plot_w, plot_h = WIDTH - PLOT_LEFT - PAD, HEIGHT - PLOT_TOP - PLOT_BOTTOM
    parts = [
        f'<g class="panel" transform="translate({x0},{y0})">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" rx="4" fill="#181b1f" stroke="#2c3235"/>',
        f'<text x="{PAD}" y="22" class="title">{escape(panel.title)}</text>',
    ]
    points = [p for s in panel.series for p in s.points]
    if not points:
        parts.append(f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" class="empty">No data</text></g>')
        return "".join(parts)
    t_min, t_max = min(t for t, _ in points), max(t for t, _ in points)
    v_min, v_max = min(0.0, *(v for _, v in points)), max(v for _, v in points)
    if v_max == v_min:
        v_max = v_min + 1
    t_span = (t_max - t_min) or 1.0

    def xy(t: float, v: float) -> str:
        x = PLOT_LEFT + (t - t_min) / t_span * plot_w
        y = PLOT_TOP + (1 - (v - v_min) / (v_max - v_min)) * plot_h
        return f"{x:.1f},{y:.1f}"

    for fraction in (0, 0.5, 1):
        y = PLOT_TOP + (1 - fraction) * plot_h
        value = v_min + fraction * (v_max - v_min)
        parts.append(
            f'<line x1="{PLOT_LEFT}" x2="{PLOT_LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
            f'class="grid"/><text x="{PLOT_LEFT - 6}" y="{y + 4:.1f}" class="axis">'
            f"{escape(_fmt(value, panel.unit))}</text>"
        )
    span_text = f"last {t_span / 60:.0f} min" if t_span >= 120 else f"last {t_span:.0f} s"
    parts.append(
        f'<text x="{PLOT_LEFT + plot_w}" y="{PLOT_TOP + plot_h + 14}" class="axis">'
        f"{span_text}</text>"
    )
    for n, series in enumerate(panel.series[: len(COLORS)]):
        color = COLORS[n % len(COLORS)]
        path = " ".join(xy(t, v) for t, v in series.points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="1.5"/>')
        lx, ly = PAD + (n % 3) * 180, HEIGHT - 34 + (n // 3) * 14
        parts.append(
            f'<rect x="{lx}" y="{ly - 8}" width="10" height="3" fill="{color}"/>'
            f'<text x="{lx + 14}" y="{ly}" class="legend">{escape(series.label[:28])}</text>'
        )
    parts.append("</g>")
    return "".join(parts)


def render_svg(panels: list[Panel], title: str) -> str:
    rows = math.ceil(len(panels) / COLUMNS)
    width, height = COLUMNS * (WIDTH + PAD) + PAD, rows * (HEIGHT + PAD) + PAD + 30
    body = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif">',
        "<style>.title{fill:#d8d9da;font-size:13px;font-weight:bold}"
        ".axis{fill:#8e8e8e;font-size:10px;text-anchor:end}.legend{fill:#c7d0d9;font-size:10px}"
        ".grid{stroke:#2c3235;stroke-width:1}.empty{fill:#8e8e8e;font-size:12px;"
        "text-anchor:middle}.head{fill:#d8d9da;font-size:15px}</style>",
        f'<rect width="{width}" height="{height}" fill="#111217"/>',
        f'<text x="{PAD}" y="24" class="head">{escape(title)}</text>',
    ]
    for n, panel in enumerate(panels):
        x0 = PAD + (n % COLUMNS) * (WIDTH + PAD)
        y0 = 30 + PAD + (n // COLUMNS) * (HEIGHT + PAD)
        body.append(_panel_svg(panel, x0, y0))
    body.append("</svg>")
    return "\n".join(body)


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
