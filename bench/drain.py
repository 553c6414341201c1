"""Run the relay over a backlog and watch it drain through its own /metrics.

The backlog is produced first (a fresh topic, a fresh consumer group), then ``relay run`` starts
and reads it from the beginning. Its throughput is taken over the steady middle of the drain (from
10% to 90% of the records acknowledged), so start-up (group join, first fetch, token) and the
tail are left out. Each sample also reads the relay's resident set from /proc (S5).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.common import bench_settings, say
from bench.procs import Relay, Topics, free_port, relay_env
from relay.tools.demo_panel import RelayStats
from relay.tools.produce import make_producer, produce_records
from relay.tools.traffic import TrafficPlan

STEADY = (0.10, 0.90)  # the share of the backlog between which throughput is measured


@dataclass
class Sample:
    at: float
    acked: float
    delivered: float
    rejected: float
    rss_kb: int
    cpu: float  # the relay's CPU seconds so far


@dataclass
class Drain:
    records: int
    samples: list[Sample] = field(default_factory=list)
    peak_rss_kb: int = 0  # VmHWM of the relay process at the end of the drain
    cpu_seconds: float = 0.0  # CPU the relay process used, start-up included
    finished: bool = False

    def window(self) -> tuple[Sample, Sample]:
        low = next(s for s in self.samples if s.acked >= STEADY[0] * self.records)
        high = next(s for s in self.samples if s.acked >= STEADY[1] * self.records)
        return low, high

    @property
    def records_per_s(self) -> float:
        low, high = self.window()
        return (high.acked - low.acked) / (high.at - low.at)

    @property
    def events_per_s(self) -> float:
        low, high = self.window()
        return (high.delivered - low.delivered) / (high.at - low.at)

    def steady_cpu(self) -> dict[str, float]:
        """The relay's CPU in the steady window: per record, and its share of one core (near 1.0:
        the relay is CPU-bound, so its own code and libraries are what limit it)."""
        low, high = self.window()
        cpu = high.cpu - low.cpu
        return {
            "relay_cpu_us_per_record": round(cpu / max(1.0, high.acked - low.acked) * 1e6),
            "relay_cpu_share_of_a_core": round(cpu / (high.at - low.at), 2),
        }

    def summary(self) -> dict[str, Any]:
        last = self.samples[-1] if self.samples else None
        steady = self.steady_cpu() if self.finished else {}
        return {
            "records": self.records,
            "acked": last.acked if last else 0,
            "events_delivered": last.delivered if last else 0,
            "rejected": last.rejected if last else 0,
            "finished": self.finished,
            "records_per_s": round(self.records_per_s, 1) if self.finished else None,
            "events_per_s": round(self.events_per_s, 1) if self.finished else None,
            "window": f"{STEADY[0]:.0%}..{STEADY[1]:.0%} of the backlog acknowledged",
            "seconds": round(last.at - self.samples[0].at, 1) if last else None,
            "relay_cpu_seconds_total": round(self.cpu_seconds, 1),  # start-up included
            **steady,
            "relay_peak_rss_mb": round(self.peak_rss_kb / 1024, 1),
        }


def produce_backlog(bootstrap: str, topic: str, plan: TrafficPlan) -> None:
    started = time.monotonic()
    producer = make_producer(bench_settings(kafka_bootstrap=bootstrap))
    produce_records(producer, topic, plan.records)
    took = time.monotonic() - started
    say(f"  produced {len(plan.records):,} records to {topic} in {took:.1f}s")


def drain(
    name: str,
    bootstrap: str,
    topics: Topics,
    topic: str,
    records: int,
    api: str,
    *,
    in_flight: int,
    timeout: float,
    profile_to: Path | None = None,
    variant: str | None = None,
    interval: float = 0.5,
) -> Drain:
    """Start ``relay run`` on ``topic`` (a backlog of ``records``) against ``api``; watch until
    every record is acknowledged (or ``timeout``); stop it. Its DLQ is a topic of its own."""
    dlq = topics.create(f"{name}-dlq", 1)
    env = relay_env(bootstrap, topic, dlq, api, free_port(), max_in_flight=in_flight)
    relay = Relay(f"relay-{name}", env, profile_to, variant)
    result = Drain(records)
    deadline = time.monotonic() + timeout
    last_note = 0.0
    try:
        with httpx.Client() as http:
            while time.monotonic() < deadline:
                relay.check_alive()
                stats = RelayStats.scrape(http, relay.metrics_url)
                if stats is not None:
                    result.samples.append(_sample(stats, relay))
                    if stats.acked >= records:
                        result.finished = True
                        break
                    if time.monotonic() - last_note > 10:
                        last_note = time.monotonic()
                        say(f"  {name}: {stats.acked:,.0f}/{records:,} acknowledged")
                time.sleep(interval)
        result.peak_rss_kb = relay.status("VmHWM")
        result.cpu_seconds = relay.cpu_seconds()
    finally:
        relay.stop()
    if not result.finished:
        say(f"  {name}: timed out after {timeout:.0f}s (log: {relay.log_path})")
    return result


def _sample(stats: RelayStats, relay: Relay) -> Sample:
    return Sample(
        at=stats.at,
        acked=stats.acked,
        delivered=stats.delivered,
        rejected=sum(stats.rejected.values()),
        rss_kb=relay.status("VmRSS"),
        cpu=relay.cpu_seconds(),
    )
