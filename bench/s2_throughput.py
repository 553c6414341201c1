"""S2: end-to-end throughput of ``relay run`` against the sandbox (processing on), versus the
sink's capacity measured in the same run by a bare httpx loop at the same concurrency.

Order: sink loop, relay drain, sink loop again; the relay is compared with the mean of the two
sink figures (both are in the detail: their spread is the machine's noise). Throughput is in
Caliper events per second (what the sink counts); the relay's records/s is in the detail.
Its bar (relay / sink >= 0.8) is in bench/targets.py.

``S2 (N=20)`` (issue 15): the same backlog drained again by the relay with
RELAY_EVENTS_PER_REQUEST=20 into a fresh sandbox that takes envelopes of 20, over the same sink
figure (a loop of one event per POST): batching may take the relay past 1.
"""

from __future__ import annotations

from bench.common import batched, say
from bench.lab import Lab
from bench.naive import naive_relay
from bench.report import Result
from bench.sink import sink_rate


def run(lab: Lab) -> list[Result]:
    result = one_event_per_post(lab)
    events = lab.envelope_events
    if events is None:
        return [result]
    return [result, envelopes(lab, events, result.detail["sink_events_per_s"])]


def envelopes(lab: Lab, events: int, sink: float) -> Result:
    """The S2 backlog again (a fresh consumer group), with envelopes of ``events``."""
    backlog = lab.noted("s2_backlog")
    say(f"{batched('S2', events)}: the same backlog, RELAY_EVENTS_PER_REQUEST={events}")
    sandbox = lab.sandbox(f"s2-n{events}", backlog.plan, max_events=events)
    relay = lab.drain(f"s2-n{events}", backlog, sandbox.url, events_per_request=events)
    rate = relay.events_per_s if relay.finished else 0.0
    return Result(
        batched("S2", events),
        f"relay / sink throughput (processing on), {events} events per POST",
        round(rate / sink, 3),
        "ratio",
        {
            "relay_events_per_s": round(rate, 1) if relay.finished else None,
            "sink_events_per_s": round(sink, 1),
            "sink": "S2's loops, one event per POST",
            "events_per_request": events,
            "in_flight": lab.sizes.in_flight,
            "relay": relay.summary(),
        },
    )


def one_event_per_post(lab: Lab) -> Result:
    sizes = lab.sizes
    say(f"S2: backlog of {sizes.s2_records:,} records, in flight {sizes.in_flight}")
    backlog = lab.backlog("s2", sizes.s2_records, seed=21, spare=sizes.sink_records)
    lab.note("s2_backlog", backlog)
    sandbox = lab.sandbox("s2", backlog.plan)
    events = backlog.spare_events()
    say(f"  sink loop: {len(events):,} pre-built events, {sizes.in_flight} concurrent POSTs")
    before = sink_rate(sandbox.url, events, sizes.in_flight, sizes.s2_sink_seconds)
    naive = None
    if lab.wants("S4"):  # the naive relay reads a prefix of the same records first (S4 detail)
        naive = naive_relay(lab.bootstrap, backlog.topic, sandbox.url, sizes.s4_naive_fast)
        lab.note("naive_no_latency", naive)
    say("  relay drain")
    sandbox_cpu = sandbox.cpu_seconds()
    relay = lab.drain("s2", backlog, sandbox.url)
    sandbox_cpu = sandbox.cpu_seconds() - sandbox_cpu
    lab.note("relay_no_latency", relay)
    after = sink_rate(sandbox.url, events[::-1], sizes.in_flight, sizes.s2_sink_seconds)
    # A second opinion on the sink's capacity: the same loop over aiohttp. It repeats ids the
    # httpx loops sent; the sandbox's duplicate path costs it more, so this understates.
    other = sink_rate(sandbox.url, events, sizes.in_flight, sizes.s2_sink_seconds / 2, "aiohttp")
    ratio_other = round(relay.events_per_s / other.rate, 3) if relay.finished else None
    sink = (before.rate + after.rate) / 2
    value = relay.events_per_s / sink if relay.finished else 0.0
    return Result(
        "S2",
        "relay / sink throughput (processing on)",
        round(value, 3),
        "ratio",
        {
            "relay_events_per_s": round(relay.events_per_s, 1) if relay.finished else None,
            "sink_events_per_s": round(sink, 1),
            "sink_before": before.summary(),
            "sink_after": after.summary(),
            "sink_aiohttp_loop": other.summary() | {"relay_ratio": ratio_other},
            "in_flight": sizes.in_flight,
            "relay": relay.summary(),
            # how busy the sink was while the relay drained (1.0 = one core all the time)
            "sandbox_cpu_seconds_during_drain": round(sandbox_cpu, 1),
            "naive_ran_first": naive is not None,
        },
    )
