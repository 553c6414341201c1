"""Draw one trial of bench/limits_trials.py: events accepted per second by the API, the relay's
in-flight limit and its rate limit over time, the fault window shaded.

    python -m bench.limits_plot outage-adaptive docs/img/rate-limits-outage-adaptive.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

from bench.limits_trials import SERIES

SMOOTH = 1.0  # seconds each throughput point is taken over


def rates(points: list[dict[str, Any]]) -> tuple[list[float], list[float]]:
    """Events accepted per second over the last ``SMOOTH`` seconds, at each sample."""
    times, values = [], []
    j = 0
    for p in points:
        while points[j]["t"] < p["t"] - SMOOTH:
            j += 1
        span = p["t"] - points[j]["t"]
        if span > 0:
            times.append(p["t"])
            values.append((p["accepted"] - points[j]["accepted"]) / span)
    return times, values


def faults_window(trial: dict[str, Any], origin: float) -> list[tuple[float, float]]:
    """(start, end) of the schedule's fault spells, on the plot's time axis."""
    steps = trial["schedule"]
    spans = []
    for (start, spec), nxt in zip(steps, [*steps[1:], None], strict=True):
        outages = spec.get("outages") or []
        if outages:
            spans.append((origin + start, origin + start + outages[0]["duration_s"]))
        elif spec and nxt is not None and any(v is not None for v in spec.values()):
            spans.append((origin + start, origin + nxt[0]))
    return spans


def plot(name: str, out: Path) -> None:
    data = json.loads((SERIES / f"{name}.json").read_text())
    points, trial = data["points"], data["trial"]
    origin = next((p["t"] for p in points if p["accepted"] > 0), 0.0)
    t, events = rates(points)
    fig, left = plt.subplots(figsize=(9, 4.6), dpi=110)
    left.plot(t, events, color="tab:blue", label="events accepted by the API / s")
    if any(p["rate"] for p in points):
        limit = [p["rate"] * trial["events_per_request"] for p in points]
        left.plot([p["t"] for p in points], limit, "--", color="tab:green", label="rate limit")
    left.set_xlabel("seconds since the relay started")
    left.set_ylabel("events / s")
    right = left.twinx()
    right.step(
        [p["t"] for p in points],
        [p["limit"] for p in points],
        where="post",
        color="tab:orange",
        label="in-flight limit",
    )
    right.set_ylabel("requests in flight allowed")
    for start, end in faults_window(trial, origin):
        left.axvspan(start, end, color="tab:red", alpha=0.12, label="API fault")
    handles = [h for ax in (left, right) for h in ax.get_legend_handles_labels()[0]]
    labels = [lab for ax in (left, right) for lab in ax.get_legend_handles_labels()[1]]
    left.legend(
        handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=4, fontsize=8
    )
    left.set_title(f"timeback-relay trial {name}: {trial['env']}", fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trial")
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    plot(args.trial, args.out)


if __name__ == "__main__":
    main()
