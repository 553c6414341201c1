"""Run the relay over a backlog and watch it drain through its own /metrics.

The backlog is produced first (a fresh topic, a fresh consumer group), then ``relay run`` starts
and reads it from the beginning. Its throughput is taken over the steady middle of the drain (from
10% to 90% of the records acknowledged), so start-up (group join, first fetch, token) and the
tail are left out. Each sample also reads the relay's resident set from /proc (S5).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.common import bench_settings, say
from bench.ports import free_port
from bench.procs import WORK, CamelPeer, Child, GoSink, Relay, Topics, relay_env
from relay.tools.demo_panel import RelayStats
from relay.tools.produce import make_producer, produce_records
from relay.tools.traffic import TrafficPlan

MIN_CPU_SECONDS = 0.05  # five clock ticks: less than that in the window is not a measurement
STEADY = (0.10, 0.90)  # the share of the backlog between which throughput is measured
# Seconds between two samples of a drain. A relay's scrape costs it ~2.6 ms of CPU (its
# /metrics, 2026-12-07): 1.3 % of a core at this pace. The steady part of a 10,000-record drain
# (~1.5 s at one event per POST, ~0.7 s with envelopes of 20) holds several samples.
SAMPLE_EVERY = 0.2


@dataclass
class Sample:
    at: float
    acked: float
    delivered: float
    rejected: float
    rss_kb: int
    cpu: float  # the relay's CPU seconds so far
    peak_kb: int = 0  # VmHWM so far (the largest process's, for a group)
    jit_cpu: float = 0.0  # of ``cpu``, what a JVM's JIT compiler threads used (0: no JIT)


@dataclass
class Drain:
    records: int
    samples: list[Sample] = field(default_factory=list)
    peak_rss_kb: int = 0  # VmHWM of the relay process at the end of the drain
    cpu_seconds: float = 0.0  # CPU the relay process used, start-up included
    finished: bool = False

    def window(self) -> tuple[Sample, Sample]:
        """The first and the last sample taken inside the steady part (10..90 % of the backlog
        acknowledged). Never the sample that saw the drain end: it comes up to an interval after
        the last record, time the process spent idle, which lowered the rate (the relay's by up
        to a quarter in a 2 s drain, a JVM's long drain less, so S7c leaned against the relay).
        A drain that outran the sampling (fewer than two samples inside; ``steady_samples``)
        falls back to the samples around its steady part."""
        inside = self.steady_samples()
        if len(inside) >= 2:
            return inside[0], inside[-1]
        low = next(i for i, s in enumerate(self.samples) if s.acked >= STEADY[0] * self.records)
        high = next(i for i, s in enumerate(self.samples) if s.acked >= STEADY[1] * self.records)
        if low == high and low > 0:  # drained within one sampling interval: widen by one
            low -= 1
        return self.samples[low], self.samples[high]

    def steady_samples(self) -> list[Sample]:
        """The samples taken while 10..90 % of the backlog was acknowledged."""
        low, high = (share * self.records for share in STEADY)
        return [s for s in self.samples if low <= s.acked <= high]

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
        the relay is CPU-bound, so its own code and libraries are what limit it). CPU time
        counts in clock ticks (10 ms): a window too short to hold a few (a tiny drain) is widened
        to the whole drain, or its figure would be 0 by rounding, not by measurement."""
        low, high = self.window()
        cpu = high.cpu - low.cpu
        if cpu < MIN_CPU_SECONDS:
            low, high = self.samples[0], self.samples[-1]
            cpu = high.cpu - low.cpu
        records = max(1.0, high.acked - low.acked)
        steady = {
            "relay_cpu_us_per_record": round(cpu / records * 1e6),
            "relay_cpu_share_of_a_core": round(cpu / (high.at - low.at), 2),
        }
        if high.jit_cpu:  # a cold JVM compiles while it drains: its share of that CPU
            steady["jit_cpu_us_per_record"] = round((high.jit_cpu - low.jit_cpu) / records * 1e6)
        return steady

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
            "steady_samples": len(self.steady_samples()),  # < 2: the window is a fallback
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


def produce_values(bootstrap: str, topic: str, pairs: list[tuple[bytes, bytes]]) -> None:
    """(key, value) pairs as they are (pre-mapped events for a peer)."""
    started = time.monotonic()
    producer = make_producer(bench_settings(kafka_bootstrap=bootstrap))
    for key, value in pairs:
        while True:
            try:
                producer.produce(topic, value, key)
                break
            except BufferError:  # local queue full: let the broker catch up
                producer.poll(0.1)
    if producer.flush(60) != 0:
        raise RuntimeError(f"could not produce every pre-mapped event to {topic}")
    took = time.monotonic() - started
    say(f"  produced {len(pairs):,} pre-mapped events to {topic} in {took:.1f}s")


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
    interval: float = SAMPLE_EVERY,
    processes: int = 1,
    events_per_request: int = 1,
) -> Drain:
    """Start ``relay run`` on ``topic`` against ``api``; watch until ``records`` are acknowledged
    (the whole backlog, or a prefix of it) or ``timeout``; stop it. Its DLQ is a topic of its
    own. ``processes`` > 1: that many relays in one consumer group, their figures summed.
    ``events_per_request`` > 1: the relay batches events into envelopes of that many."""
    dlq = topics.create(f"{name}-dlq", 1)
    group = f"bench-{uuid.uuid4().hex[:8]}"
    relays = []
    for index in range(processes):
        env = relay_env(bootstrap, topic, dlq, api, free_port(), max_in_flight=in_flight,
                        group_id=group, **batching(events_per_request))  # fmt: skip
        suffix = f"-{index + 1}" if processes > 1 else ""
        relays.append(Relay(f"relay-{name}{suffix}", env, profile_to, variant))
    try:
        return _watch(name, records, timeout, interval, lambda http: _scrape(http, relays))
    finally:
        for relay in relays:
            relay.stop()


def batching(events_per_request: int) -> dict[str, int]:
    """The relay's envelope setting: none for 1 (the relay's default, one event per POST)."""
    return {"events_per_request": events_per_request} if events_per_request > 1 else {}


def watch_sink(
    name: str,
    start: Callable[[], Child],
    sink: GoSink,
    events: int,
    timeout: float,
    interval: float = SAMPLE_EVERY,
) -> Drain:
    """A peer (no /metrics of its own), started by ``start``, draining ``events`` pre-mapped
    events, watched through what the Go sink accepted; stopped at the end. Records are events
    here (one per message)."""
    baseline = sink.events()
    peer = start()
    try:
        return _watch_peer(name, peer, sink, baseline, events, timeout, interval)
    finally:
        peer.stop()


def watch_camel(
    name: str,
    jvm: CamelPeer,
    topic: str,
    sink: GoSink,
    events: int,
    timeout: float,
    interval: float = SAMPLE_EVERY,
) -> Drain:
    """As ``watch_sink``, with a JVM that keeps running: it drains ``topic`` (a fresh consumer
    group) into ``sink``; the drain's route is stopped at the end, the JVM is not. Its peak
    resident set is the JVM's so far (earlier drains included)."""
    baseline = sink.events()
    jvm.drain(topic, sink.url)
    try:
        return _watch_peer(name, jvm, sink, baseline, events, timeout, interval)
    finally:
        jvm.stop_drain()


def _watch_peer(
    name: str,
    peer: Child,
    sink: GoSink,
    baseline: int,
    events: int,
    timeout: float,
    interval: float,
) -> Drain:
    def probe(_http: httpx.Client) -> Sample | None:
        peer.check_alive()
        accepted = float(sink.events() - baseline)
        now = time.monotonic()
        cpu, jit = peer.cpu_seconds(), peer.jit_cpu_seconds()
        return Sample(now, accepted, accepted, 0.0, peer.status("VmRSS"), cpu, jit_cpu=jit)

    # the peer's CPU so far (a running JVM's earlier drains): the start of this drain's count
    start = (peer.cpu_seconds(), peer.jit_cpu_seconds())
    result = _watch(name, events, timeout, interval, probe, start)
    result.peak_rss_kb = peer.status("VmHWM")
    return result


def _watch(
    name: str,
    records: int,
    timeout: float,
    interval: float,
    probe: Callable[[httpx.Client], Sample | None],
    cpu: tuple[float, float] = (0.0, 0.0),
) -> Drain:
    """``cpu``: the process's (CPU, JIT CPU) seconds at the start, when it ran before."""
    # a zero at the start: the window's lower end when the whole drain fits in one interval
    start = Sample(time.monotonic(), 0.0, 0.0, 0.0, 0, cpu[0], jit_cpu=cpu[1])
    result = Drain(records, [start])
    deadline = time.monotonic() + timeout
    last_note = 0.0
    with httpx.Client() as http:
        while time.monotonic() < deadline:
            sample = probe(http)
            if sample is not None:
                result.samples.append(sample)
                result.cpu_seconds = sample.cpu
                result.peak_rss_kb = max(result.peak_rss_kb, sample.peak_kb)
                if sample.acked >= records:
                    result.finished = True
                    break
                if time.monotonic() - last_note > 10:
                    last_note = time.monotonic()
                    say(f"  {name}: {sample.acked:,.0f}/{records:,} done")
            time.sleep(interval)
    if not result.finished:
        say(f"  {name}: timed out after {timeout:.0f}s (logs: {WORK})")
    return result


def _scrape(http: httpx.Client, relays: list[Relay]) -> Sample | None:
    """One sample summed over the relays of a group (None until every one answers)."""
    stats = []
    for relay in relays:
        relay.check_alive()
        one = RelayStats.scrape(http, relay.metrics_url)
        if one is None:
            return None
        stats.append(one)
    return Sample(
        at=time.monotonic(),
        acked=sum(s.acked for s in stats),
        delivered=sum(s.delivered for s in stats),
        rejected=sum(sum(s.rejected.values()) for s in stats),
        rss_kb=sum(r.status("VmRSS") for r in relays),
        cpu=sum(r.cpu_seconds() for r in relays),
        peak_kb=max(r.status("VmHWM") for r in relays),
    )
