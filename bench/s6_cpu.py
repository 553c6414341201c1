"""S6: the relay's end-to-end CPU per record without API latency, and relay / bare aiohttp loop,
both against the compiled accept-everything sink (bench/go), so the sink is not the limit.

In one run, on the same Go sink: its own capacity (the Go load client, ``sink_capacity``), a bare
aiohttp loop POSTing pre-built events at the relay's concurrency, the relay draining the backlog
(CPU of the relay process over the steady window / records acknowledged in it), the aiohttp loop
again. Targets (issue 15): CPU <= 200 us/record (goal 150); relay / aiohttp loop >= 0.6 (goal
0.8). S6c: the sink's capacity must be at least 2x the relay's figure.
"""

from __future__ import annotations

import time
from typing import Any, Final

from bench.common import say
from bench.lab import Lab
from bench.report import Result
from bench.s1_pipeline import Chain
from bench.sink import go_load_rate, sink_rate
from relay.tools.traffic import PlannedRecord

CPU_TARGET_US: Final = 200.0
CPU_GOAL_US: Final = 150.0
RATIO_TARGET: Final = 0.6
RATIO_GOAL: Final = 0.8
HEADROOM_TARGET: Final = 2.0  # the sink must not be the limit


def run(lab: Lab) -> list[Result]:
    sizes = lab.sizes
    say(f"S6: backlog of {sizes.s6_records:,} records, Go sink without latency")
    backlog = lab.backlog("s6", sizes.s6_records, seed=61, spare=sizes.sink_records)
    lab.note("s6_backlog", backlog)
    sink = lab.go_sink("s6")
    events = backlog.spare_events()
    seconds = sizes.s2_sink_seconds / 2
    capacity = go_load_rate(sink.url, events[0], sizes.in_flight, seconds)
    chain_us = chain_cpu_us(backlog.plan.records[:2000])
    before = sink_rate(sink.url, events, sizes.in_flight, seconds, "aiohttp")
    say("  relay drain")
    relay = lab.drain("s6", backlog, sink.url)
    lab.note("s6_relay", relay)
    after = sink_rate(sink.url, events[::-1], sizes.in_flight, seconds, "aiohttp")
    if not relay.finished:
        raise RuntimeError(f"the relay did not drain {sizes.s6_records:,} records in time")
    loop = (before.rate + after.rate) / 2
    cpu = float(relay.steady_cpu()["relay_cpu_us_per_record"])
    rate = relay.events_per_s
    detail: dict[str, Any] = {
        "sink": "benchgo sink (Go net/http, accepts everything, 202)",
        "sink_capacity": capacity.summary() | {"client": "benchgo load (Go)"},
        "sink_headroom": round(capacity.rate / rate, 2),
        "sink_headroom_target": HEADROOM_TARGET,
        "aiohttp_loop_before": before.summary(),
        "aiohttp_loop_after": after.summary(),
        "in_flight": sizes.in_flight,
        # the S1 chain's CPU per record measured just before the drain: how fast this machine
        # is right now (S1's quiet-machine figure was 40 us), to read the relay's figure by
        "s1_chain_cpu_us_now": round(chain_us, 1),
        "relay_cpu_over_s1_chain": round(cpu / chain_us, 1),
        "relay": relay.summary(),
    }
    return [
        Result(
            "S6a",
            "relay CPU per record, no latency (Go sink)",
            cpu,
            "us/record",
            CPU_TARGET_US,
            "lower",
            detail,
            goal=CPU_GOAL_US,
        ),
        Result(
            "S6b",
            "relay / bare aiohttp loop (Go sink)",
            round(rate / loop, 3),
            "ratio",
            RATIO_TARGET,
            "higher",
            {"relay_events_per_s": round(rate, 1), "aiohttp_loop_events_per_s": round(loop, 1)},
            goal=RATIO_GOAL,
        ),
        Result(
            "S6c",
            "Go sink capacity (Go load client) / relay",
            round(capacity.rate / rate, 2),
            "x",
            HEADROOM_TARGET,
            "higher",
            {"sink_events_per_s": round(capacity.rate, 1), "relay_events_per_s": round(rate, 1)},
        ),
    ]


def chain_cpu_us(records: list[PlannedRecord]) -> float:
    """CPU (this thread's) per record of the S1 chain over ``records``, best of three."""
    chain = Chain()
    values = [r.value for r in records]
    for value in values[:200]:
        chain.full(value)
    best = float("inf")
    for _ in range(3):
        start = time.thread_time()
        for value in values:
            chain.full(value)
        best = min(best, time.thread_time() - start)
    return best / max(1, len(values)) * 1e6
