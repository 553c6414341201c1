"""S3: throughput with 50 ms latency injected in the sandbox, versus the ideal
``RELAY_MAX_IN_FLIGHT / 0.050`` POSTs per second (each POST takes at least 50 ms, and at most
``RELAY_MAX_IN_FLIGHT`` are outstanding).

A bare httpx loop at the same concurrency against the same sink is measured too (detail): it shows
what the HTTP client alone reaches under that latency, i.e. how much of any shortfall is the
client's and how much the relay's. Bar (bench/targets.py): relay / ideal >= 0.8.

``S3 (N=20)`` (issue 15): the same backlog drained again with RELAY_EVENTS_PER_REQUEST=20 into a
fresh sandbox with the same latency that takes envelopes of 20, over the same ideal (one event
per POST): a ratio above 1 is what batching buys when the API is slow.
"""

from __future__ import annotations

from bench.common import batched, say
from bench.lab import Lab
from bench.naive import naive_relay
from bench.report import Result
from bench.sink import sink_rate


def latency_run(lab: Lab) -> None:
    """One backlog, one 50 ms sandbox: the naive relay (if S4 is asked for) reads a prefix first,
    then the relay drains it all, then the bare loop. S3 and S4 both read these figures."""
    if lab.noted("relay_latency") is not None:
        return
    sizes = lab.sizes
    say(f"S3/S4: backlog of {sizes.s3_records:,} records, {sizes.latency_ms:g} ms latency")
    backlog = lab.backlog("s3", sizes.s3_records, seed=31, spare=sizes.sink_records // 2)
    lab.note("s3_backlog", backlog)
    sandbox = lab.sandbox("s3", backlog.plan, latency_ms=sizes.latency_ms)
    if lab.wants("S4"):
        lab.note(
            "naive_latency",
            naive_relay(lab.bootstrap, backlog.topic, sandbox.url, sizes.s4_naive_records),
        )
    say("  relay drain")
    lab.note("relay_latency", lab.drain("s3", backlog, sandbox.url))
    say("  bare httpx loop under the same latency")
    seconds = max(2.0, sizes.s2_sink_seconds / 2)
    loop = sink_rate(sandbox.url, backlog.spare_events(), sizes.in_flight, seconds)
    lab.note("sink_latency", loop)


def run(lab: Lab) -> list[Result]:
    result = one_event_per_post(lab)
    events = lab.envelope_events
    return [result] if events is None else [result, envelopes(lab, events)]


def envelopes(lab: Lab, events: int) -> Result:
    """The S3 backlog again (a fresh consumer group), with envelopes of ``events``."""
    sizes, backlog = lab.sizes, lab.noted("s3_backlog")
    say(f"{batched('S3', events)}: the same backlog, RELAY_EVENTS_PER_REQUEST={events}")
    sandbox = lab.sandbox(
        f"s3-n{events}", backlog.plan, latency_ms=sizes.latency_ms, max_events=events
    )
    relay = lab.drain(f"s3-n{events}", backlog, sandbox.url, events_per_request=events)
    ideal = sizes.in_flight / (sizes.latency_ms / 1000)
    rate = relay.events_per_s if relay.finished else 0.0
    one = lab.noted("relay_latency")
    return Result(
        batched("S3", events),
        f"throughput / (in-flight / {sizes.latency_ms:g} ms), {events} events per POST",
        round(rate / ideal, 3),
        "ratio",
        {
            "relay_events_per_s": round(rate, 1) if relay.finished else None,
            "ideal_events_per_s": ideal,
            "ideal": "one event per POST",
            "over_one_event_per_post": round(rate / one.events_per_s, 2)
            if relay.finished and one.finished
            else None,
            "events_per_request": events,
            "in_flight": sizes.in_flight,
            "latency_ms": sizes.latency_ms,
            "relay": relay.summary(),
        },
    )


def one_event_per_post(lab: Lab) -> Result:
    latency_run(lab)
    sizes = lab.sizes
    relay, sink = lab.noted("relay_latency"), lab.noted("sink_latency")
    ideal = sizes.in_flight / (sizes.latency_ms / 1000)
    value = relay.events_per_s / ideal if relay.finished else 0.0
    return Result(
        "S3",
        f"throughput / (in-flight / {sizes.latency_ms:g} ms)",
        round(value, 3),
        "ratio",
        {
            "relay_events_per_s": round(relay.events_per_s, 1) if relay.finished else None,
            "ideal_events_per_s": ideal,
            "in_flight": sizes.in_flight,
            "latency_ms": sizes.latency_ms,
            "bare_httpx_loop": sink.summary() | {"ratio_to_ideal": round(sink.rate / ideal, 3)},
            "relay": relay.summary(),
        },
    )
