"""S6: the relay's end-to-end CPU per record without API latency, and relay / bare aiohttp loop,
both against the compiled accept-everything sink (bench/go), so the sink is not the limit.

In one run, on the same Go sink: its own capacity (the Go load client, ``sink_capacity``), a bare
aiohttp loop POSTing pre-built events at the relay's concurrency, the relay draining the backlog
(CPU of the relay process over the steady window / records acknowledged in it), the aiohttp loop
again. Bars (bench/targets.py): CPU <= 200 us/record (goal 150, issue 15); relay / aiohttp loop
>= 0.35 (goal 0.5; with envelopes of 20 >= 0.7, issue 21). S6c: the sink's capacity must be at
least 2x the relay's figure.

``S6a (N=20)``, ``S6b (N=20)`` (issue 15): the same backlog drained again (a fresh consumer
group) into the same sink with RELAY_EVENTS_PER_REQUEST=20, over the same aiohttp loop figure
(one event per POST). The Go sink takes any body; it counts requests, the relay counts events.
"""

from __future__ import annotations

import itertools
import statistics
import time
from typing import Any

from bench.common import batched, say
from bench.drain import Drain
from bench.lab import Backlog, Lab
from bench.report import Result
from bench.s1_pipeline import Chain
from bench.sink import go_load_rate, sink_rate
from relay.tools.traffic import PlannedRecord


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
    loops = [sink_rate(sink.url, events, sizes.in_flight, seconds, "aiohttp")]
    drains = []
    for index in range(max(1, sizes.rounds)):  # relay drain, aiohttp loop, relay drain, ...
        say(f"  relay drain, round {index + 1} of {max(1, sizes.rounds)}")
        relay = lab.drain("s6" + (f"-r{index + 1}" if index else ""), backlog, sink.url)
        if not relay.finished:
            raise RuntimeError(f"the relay did not drain {sizes.s6_records:,} records in time")
        drains.append(relay)
        order = events[::-1] if index % 2 == 0 else events
        loops.append(sink_rate(sink.url, order, sizes.in_flight, seconds, "aiohttp"))
    lab.note("s6_relay", drains[0])
    rounds = [_round(relay, loops[i].rate, loops[i + 1].rate) for i, relay in enumerate(drains)]
    relay, before, after = drains[0], loops[0], loops[-1]
    loop = statistics.median((b.rate + a.rate) / 2 for b, a in itertools.pairwise(loops))
    cpu = float(statistics.median(r["relay_cpu_us_per_record"] for r in rounds))
    rate = statistics.median(r["relay_events_per_s"] for r in rounds)
    ratio = statistics.median(r["ratio"] for r in rounds)
    detail: dict[str, Any] = {
        "sink": "benchgo sink (Go net/http, accepts everything, 202)",
        "sink_capacity": capacity.summary() | {"client": "benchgo load (Go)"},
        "sink_headroom": round(capacity.rate / rate, 2),
        "aiohttp_loop_before": before.summary(),
        "aiohttp_loop_after": after.summary(),
        "in_flight": sizes.in_flight,
        # the S1 chain's CPU per record measured just before the drain: how fast this machine
        # is right now (S1's quiet-machine figure was 40 us), to read the relay's figure by
        "s1_chain_cpu_us_now": round(chain_us, 1),
        "relay_cpu_over_s1_chain": round(cpu / chain_us, 1),
        "relay": relay.summary(),
        "rounds": rounds,
        "figures": "medians of the rounds (relay drain between two aiohttp loop runs)",
    }
    results = [
        Result(
            "S6a",
            "relay CPU per record, no latency (Go sink)",
            cpu,
            "us/record",
            detail,
        ),
        Result(
            "S6b",
            "relay / bare aiohttp loop (Go sink)",
            ratio,
            "ratio",
            {
                "relay_events_per_s": round(rate, 1),
                "aiohttp_loop_events_per_s": round(loop, 1),
                "rounds": len(rounds),
                "ratios": [r["ratio"] for r in rounds],
                "see": "S6a detail, rounds",
            },
        ),
        Result(
            "S6c",
            "Go sink capacity (Go load client) / relay",
            round(capacity.rate / rate, 2),
            "x",
            {"sink_events_per_s": round(capacity.rate, 1), "relay_events_per_s": round(rate, 1)},
        ),
    ]
    events_per_request = lab.envelope_events
    if events_per_request is not None:
        results += envelopes(lab, events_per_request, backlog, sink.url, loop, cpu)
    return results


def _round(relay: Drain, loop_before: float, loop_after: float) -> dict[str, Any]:
    """One round: the relay's drain over the mean of the aiohttp loop runs either side of it."""
    loop = (loop_before + loop_after) / 2
    return {
        "relay_events_per_s": round(relay.events_per_s, 1),
        "relay_cpu_us_per_record": relay.steady_cpu()["relay_cpu_us_per_record"],
        "aiohttp_loop_events_per_s": round(loop, 1),
        "ratio": round(relay.events_per_s / loop, 3),
    }


def envelopes(
    lab: Lab, events: int, backlog: Backlog, sink_url: str, loop: float, cpu_one: float
) -> list[Result]:
    """S6a and S6b again with envelopes of ``events`` (the same backlog, sink and loop)."""
    say(f"{batched('S6', events)}: the same backlog, RELAY_EVENTS_PER_REQUEST={events}")
    relay = lab.drain(f"s6-n{events}", backlog, sink_url, events_per_request=events)
    if not relay.finished:
        raise RuntimeError(f"the relay (N={events}) did not drain the S6 backlog in time")
    cpu = float(relay.steady_cpu()["relay_cpu_us_per_record"])
    rate = relay.events_per_s
    detail = {"events_per_request": events, "in_flight": lab.sizes.in_flight,
              "one_event_per_post_cpu_us": cpu_one, "relay": relay.summary()}  # fmt: skip
    return [
        Result(
            batched("S6a", events),
            f"relay CPU per record, no latency (Go sink), {events} events per POST",
            cpu,
            "us/record",
            detail,
        ),
        Result(
            batched("S6b", events),
            f"relay / bare aiohttp loop (Go sink), {events} events per POST",
            round(rate / loop, 3),
            "ratio",
            {
                "relay_events_per_s": round(rate, 1),
                "aiohttp_loop_events_per_s": round(loop, 1),
                "loop": "one event per POST",
            },
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
