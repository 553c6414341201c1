"""S8: how the relay's throughput scales, drawn as bench/results/scaling.svg (and .png).

Three curves, each point a fresh consumer group draining (a prefix of) a backlog into the Go
sink, throughput in Caliper events per second over the steady 10..90% window:

- against ``RELAY_MAX_IN_FLIGHT`` (1 .. 256) with the S3 latency, beside the ideal
  ``in_flight / latency``: while the API's latency is the limit, throughput follows the ideal;
  where it levels off, the relay's CPU is the limit;
- against the topic's number of partitions (same latency, the default in-flight limit);
- 1 and 2 relay processes in one consumer group, without latency (CPU-bound: a second process
  is a second core, on a machine that has two and shares them with the broker and the sink).

Bar (bench/targets.py, issue 21): throughput / ideal >= 0.85 at every in-flight limit up to the
default (64).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Final

from bench.chart import Panel, Series, png, svg
from bench.common import say
from bench.lab import Lab
from bench.report import RESULTS, Result

IN_FLIGHT: Final = (1, 4, 16, 64, 256)
PARTITIONS: Final = (1, 2, 4, 8)
PROCESSES: Final = (1, 2)
PICTURE: Final = RESULTS / "scaling.svg"
PICTURE_PNG: Final = RESULTS / "scaling.png"  # the same picture, for viewers without SVG


def run(lab: Lab) -> Result:
    sizes = lab.sizes
    latency = sizes.latency_ms
    sink = lab.go_sink("s8", latency)
    backlog = lab.backlog("s8", sizes.s8_records, seed=81)
    by_in_flight: dict[int, float] = {}
    for limit in IN_FLIGHT:
        # about s8_seconds of steady draining at the ideal rate, within the backlog
        records = int(min(sizes.s8_records, max(200, limit / latency * 1000 * sizes.s8_seconds)))
        say(f"S8: in flight {limit}, {latency:g} ms, {records:,} records")
        drained = lab.drain(f"s8-if{limit}", backlog, sink.url, records=records, in_flight=limit)
        by_in_flight[limit] = round(drained.events_per_s, 1) if drained.finished else 0.0
    by_partitions: dict[int, float] = {}
    for count in PARTITIONS:
        say(f"S8: {count} partition(s), {latency:g} ms, in flight {sizes.in_flight}")
        topic = lab.backlog(f"s8-p{count}", sizes.s8_partition_records, 82, partitions=count)
        drained = lab.drain(f"s8-p{count}", topic, sink.url)
        by_partitions[count] = round(drained.events_per_s, 1) if drained.finished else 0.0
    fast = lab.go_sink("s8-fast")
    by_processes: dict[int, float] = {}
    busy = lab.backlog("s8-procs", sizes.s8_records, seed=83)
    for count in PROCESSES:
        say(f"S8: {count} relay process(es), no latency")
        drained = lab.drain(f"s8-n{count}", busy, fast.url, processes=count)
        by_processes[count] = round(drained.events_per_s, 1) if drained.finished else 0.0
    ideal = {n: n / latency * 1000 for n in IN_FLIGHT}
    ratios = {n: round(by_in_flight[n] / ideal[n], 3) for n in IN_FLIGHT}
    panels, caption = _panels(by_in_flight, ideal, by_partitions, by_processes, latency,
                              sizes.in_flight)  # fmt: skip
    PICTURE.write_text(svg(panels, caption))
    PICTURE_PNG.write_bytes(png(panels, caption))
    say(f"S8: curves in {PICTURE} and {PICTURE_PNG.name}")
    value = min(ratios[n] for n in IN_FLIGHT if n <= sizes.in_flight)
    detail: dict[str, Any] = {
        "picture": str(PICTURE.relative_to(RESULTS.parent.parent)),
        "picture_png": str(PICTURE_PNG.relative_to(RESULTS.parent.parent)),
        "latency_ms": latency,
        "events_per_s_by_in_flight": by_in_flight,
        "ratio_to_ideal_by_in_flight": ratios,
        "events_per_s_by_partitions": by_partitions,
        "partitions_in_flight": sizes.in_flight,
        "events_per_s_by_processes_no_latency": by_processes,
        "two_processes_over_one": round(by_processes[2] / by_processes[1], 2)
        if by_processes[1]
        else None,
    }
    return Result("S8", f"throughput / ideal, in flight 1..{sizes.in_flight} at "
                  f"{latency:g} ms (scaling.svg)", value, "ratio", detail)  # fmt: skip


def _panels(
    by_in_flight: dict[int, float],
    ideal: dict[int, float],
    by_partitions: dict[int, float],
    by_processes: dict[int, float],
    latency: float,
    in_flight: int,
) -> tuple[list[Panel], str]:
    flat = in_flight / latency * 1000  # the partitions' ideal: any count, same limit
    panels = [
        Panel(f"RELAY_MAX_IN_FLIGHT, {latency:g} ms API", "max in flight", "events/s (log)",
              [Series("relay", list(by_in_flight.items())),
               Series("ideal: in flight / latency", list(ideal.items()), dashed=True)],
              log_x=True, log_y=True),
        Panel(f"partitions, {latency:g} ms, {in_flight} in flight", "partitions",
              "events/s", [Series("relay", list(by_partitions.items())),
                           Series("ideal: in flight / latency",
                                  [(n, flat) for n in by_partitions], dashed=True)]),
        Panel("relay processes in one group, no latency", "processes", "events/s",
              [Series("relay (summed)", list(by_processes.items()))]),
    ]  # fmt: skip
    return panels, "timeback-relay, make bench S8, Go sink; machine shared (2 cores)"


def redraw(report: Path, into: Path = RESULTS) -> None:
    """Draw the pictures again, into ``into``, from a report's S8 figures (``python -m
    bench.s8_scaling bench/results/latest.json``), without draining anything."""
    detail = json.loads(report.read_text())["scenarios"]["S8"]["detail"]

    def points(key: str) -> dict[int, float]:
        return {int(n): float(v) for n, v in detail[key].items()}

    latency = float(detail["latency_ms"])
    by_in_flight = points("events_per_s_by_in_flight")
    ideal = {n: n / latency * 1000 for n in by_in_flight}
    panels, caption = _panels(by_in_flight, ideal, points("events_per_s_by_partitions"),
                              points("events_per_s_by_processes_no_latency"), latency,
                              int(detail["partitions_in_flight"]))  # fmt: skip
    (into / PICTURE.name).write_text(svg(panels, caption))
    (into / PICTURE_PNG.name).write_bytes(png(panels, caption))


if __name__ == "__main__":
    redraw(Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS / "latest.json")
