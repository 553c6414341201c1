"""Shared pieces of the scenarios: settings, traffic, sizes, progress output.

Every scenario takes a ``Sizes`` and returns a ``bench.report.Result``; ``bench.__main__`` runs the
ones asked for. Figures that depend on this machine's speed are reported as ratios of two things
measured side by side in one run, because the machine is shared and noisy.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, fields, replace
from typing import Any, Final

from relay.config import Settings, load_settings
from relay.tools.traffic import TrafficGenerator, TrafficPlan

CLIENT_ID: Final = "sandbox-client"
CLIENT_SECRET: Final = "sandbox-secret"  # the sandbox's public built-in test credentials
APP_ID: Final = "sandbox-app"
ACTIVITY_BASE: Final = "https://bench-app.example"
# Many students: per-student ordering must not be what limits concurrency.
STUDENTS: Final = 2000


@dataclass(frozen=True)
class Sizes:
    """How much work each scenario does. ``default``: under 15 minutes on 2 quiet cores (one
    run with five neighbours busy, load 25-50, took 37 minutes: S5 12, S8 8, S3/S4 3.7, S6 3.2,
    S7 3.3, S9 3.1, S2 2.1, S1 0.7)."""

    s1_records: int = 20_000  # records in the S1 mix (per-type rows use the same records)
    s1_passes: int = 3  # best of N passes (least disturbed by the neighbours)
    s2_records: int = 15_000  # backlog the relay drains in S2 (processing on)
    s2_sink_seconds: float = 8.0  # each bare-httpx sink measurement
    sink_records: int = 10_000  # spare records (same students) the sink loops POST as events
    s3_records: int = 10_000  # backlog the relay drains with 50 ms latency
    in_flight: int = 64  # RELAY_MAX_IN_FLIGHT in S2/S3/S4 (and the sink loop's concurrency)
    latency_ms: float = 50.0  # S3/S4 injected latency
    s4_naive_records: int = 300  # the naive relay is slow: a prefix of the same records
    s4_naive_fast: int = 2_000  # ... and against the sink without injected latency
    # S5 backlog. Issue 9 asks for 200,000 (``--size full``); at the relay's present ~400
    # records/s that drain alone takes ~9 minutes, so the default (15-minute budget) is smaller:
    # 40,000 since S6b/S7c's rounds (issue 21); the resident set levels off within the first
    # quarter of a 60,000 backlog (81, 120, 122, 118, 118 MB at its quarters)
    s5_records: int = 40_000
    partitions: int = 4
    s6_records: int = 10_000  # backlog the relay drains into the Go sink (S6, S7's relay side)
    s7_latency_records: int = 5_000  # S7 with latency: a prefix of that backlog, both sides
    s8_records: int = 5_000  # S8 backlog; each in-flight point drains a prefix of it
    s8_seconds: float = 4.0  # S8 in-flight points: about this long at the ideal rate
    s8_partition_records: int = 2_000  # S8 backlog per partition count
    # S2, S3 and S6 again with RELAY_EVENTS_PER_REQUEST = this (rows "S2 (N=20)"...; the
    # sandbox then takes envelopes that size); 1 or 0: no batched rows
    envelope_events: int = 20
    # S6b and S7c, the headline ratios: interleaved rounds (relay drain, then the aiohttp loop /
    # the Camel route), the figure the median of the rounds' ratios (one drain varies +-15 %)
    rounds: int = 3
    # S7: the Camel route's JVM drains the pre-mapped backlog this many times over in one drain
    # (warm-up drains and S7c's): ~52,000 events, ~5 s, so that what every drain's start
    # compiles (a new route and consumer: their set-up code, some of it queued for C2 until the
    # drain runs) and a late burst of C2 compiles weigh less in its CPU, as in a route that
    # keeps running
    camel_drain_repeats: int = 4
    # S7: events the Camel route's JVM drains to warm up before S7c and S7d measure it, in the
    # same JVM (bench/s7_peer.py camel_jvm): at least ``camel_warmup_events``, then on until two
    # drains in a row compile under half S7c JIT's bar, at most ``camel_warmup_max_events``.
    # The route's per-batch code (a call per 64 events) reaches HotSpot's C2 at 5,000 calls or
    # more (the thresholds scale with C2's queue): measured here (loaded), bursts of C2 compiles
    # (drains at 0.10-0.22) came up to ~700,000 events, rarely after
    camel_warmup_events: int = 800_000
    camel_warmup_max_events: int = 1_200_000
    # S9: interleaved rounds (relay drain, Quix drain) per latency; the ratio is their median
    # (the first reuses S7's relay drains). Three, as S6b and S7c: one Quix drain's CPU per
    # event varied 107-194 us between two runs of the same day (~2 min of `make bench`)
    s9_rounds: int = 3

    @classmethod
    def named(cls, name: str) -> Sizes:
        if name == "default":
            return cls()
        if name == "full":  # issue 9's S5 backlog
            return cls(s5_records=200_000)
        if name == "small":
            return cls(
                s1_records=3_000,
                s1_passes=2,
                s2_records=4_000,
                s2_sink_seconds=3.0,
                s3_records=3_000,
                s4_naive_records=60,
                s4_naive_fast=500,
                sink_records=3_000,
                s5_records=20_000,
                s6_records=4_000,
                s7_latency_records=2_000,
                s8_records=1_500,
                s8_seconds=2.0,
                s8_partition_records=1_000,
                camel_warmup_events=120_000,
                camel_warmup_max_events=240_000,
            )
        if name == "tiny":  # the smoke test
            return cls(s1_records=300, s1_passes=1, s2_records=500, s2_sink_seconds=1.0,
                       s3_records=500, s4_naive_records=20, s4_naive_fast=50, s5_records=1_000,
                       sink_records=300, s6_records=500, s7_latency_records=500,
                       s8_records=300, s8_seconds=1.0, s8_partition_records=200,
                       camel_drain_repeats=1, camel_warmup_events=1_000,
                       camel_warmup_max_events=2_000, rounds=1, s9_rounds=1)  # fmt: skip
        raise ValueError(f"unknown size {name!r}: tiny, small, default or full")

    def override(self, assignments: list[str]) -> Sizes:
        """``["s5_records=50000", ...]`` on top of these sizes."""
        types = {f.name: f.type for f in fields(self)}
        changes: dict[str, Any] = {}
        for text in assignments:
            key, _, raw = text.partition("=")
            if key not in types:
                raise ValueError(f"unknown size {key!r}; one of {sorted(types)}")
            changes[key] = float(raw) if types[key] in (float, "float") else int(raw)
        return replace(self, **changes)


def bench_settings(**overrides: Any) -> Settings:
    """Settings as the relay under test gets them (no network is touched by building them)."""
    values: dict[str, Any] = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "app_id": APP_ID,
        "activity_base_url": ACTIVITY_BASE,
        "allow_insecure_http": True,
    }
    return load_settings(**(values | overrides))


def traffic(count: int, *, seed: int = 11, students: int = STUDENTS) -> TrafficPlan:
    """Realistic valid records (sessions, lessons, questions, quizzes, views) with course_id and
    subject in the records, so enrichment needs no network."""
    return TrafficGenerator(students=students, invalid_ratio=0.0, seed=seed).plan(count)


def batched(name: str, events: int) -> str:
    """The name of a scenario's row with envelopes of ``events``: ``S2 (N=20)``."""
    return f"{name} (N={events})"


def say(message: str) -> None:
    """Progress on stderr (the table goes to stdout)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
