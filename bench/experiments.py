"""``--variants``: the relay as it is versus the relay with a candidate hot-path fix, side by side.

Each variant (``bench/variants.py``) drains the same backlog into a fresh sandbox (a fresh one:
the same event ids sent twice would take the sandbox's duplicate path), once without latency and
once with the S3 latency, and into the compiled Go sink without latency (S6's: there the relay's
own CPU per record is all there is to compare). Figures are events per second and their ratio
to the unpatched relay measured in the same run; nothing in relay/ is changed by this.
"""

from __future__ import annotations

from typing import Any

from bench.common import say
from bench.lab import Lab

VARIANTS: tuple[str | None, ...] = (
    None,
    "httpcore",
    "held-window",
    "httpcore+held-window",
    "client-send",
    "no-faust-sensor",
)


def run(lab: Lab, wanted: str | None = None) -> dict[str, Any]:
    """Every variant, or the comma-separated ``wanted`` ones; the relay as it is always runs."""
    sizes = lab.sizes
    names = VARIANTS if wanted is None else (None, *(w for w in wanted.split(",") if w))
    records = max(1_000, sizes.s3_records // 2)
    ideal = sizes.in_flight / (sizes.latency_ms / 1000)
    backlog = lab.backlog("variants", records, seed=71)
    rows: dict[str, Any] = {}
    for variant in names:
        name = variant or "as-is"
        row: dict[str, Any] = {}
        for latency, go in ((0.0, False), (sizes.latency_ms, False), (0.0, True)):
            label = f"variant-{name}-{latency:g}" + ("-go" if go else "")
            say(f"variant {name}, latency {latency:g} ms{', Go sink' if go else ''}: {records:,}")
            sink = lab.go_sink(label) if go else lab.sandbox(label, backlog.plan, latency)
            result = lab.drain(label, backlog, sink.url, variant=variant)
            sink.stop()
            key = "no_latency" if not latency else f"latency_{latency:g}ms"
            key += "_go_sink" if go else ""
            row[key] = {
                "events_per_s": round(result.events_per_s, 1) if result.finished else None,
                **(result.steady_cpu() if result.finished else {}),
            }
            if latency and result.finished:
                row[key]["ratio_to_ideal"] = round(result.events_per_s / ideal, 3)
        rows[name] = row
    base = rows["as-is"]
    for row in rows.values():
        for key, figures in row.items():
            if figures["events_per_s"] and base[key]["events_per_s"]:
                figures["vs_as_is"] = round(figures["events_per_s"] / base[key]["events_per_s"], 2)
    return {"records": records, "in_flight": sizes.in_flight, "ideal_events_per_s": ideal,
            "variants": rows}  # fmt: skip
