"""S9: the relay beside the peer a Python user would pick instead of faust: a Quix Streams 3.28
application (bench/quix/peer.py, its own virtualenv) on the same pre-mapped backlog as S7's peers
and the same Go sink, without latency and with the S3 latency.

The app is at-least-once the Quix way: a ``BatchingSink`` collects each partition's records for
a checkpoint (``commit_every=1000`` or 5 s, the Quix docs' example), POSTs them ``in_flight`` at a
time, reports ``SinkBackpressureError`` on a 429, a 5xx or a transport error (after 4 tries) so
that Quix seeks back and the checkpoint is sent again, and the offsets are committed only after
every batch was accepted. It runs twice per round: with its sink POSTing as aiohttp coroutines
(the headline: the cheaper of the two) and on a pool of httpx threads (the way Quix's own
uploading sinks write in parallel), reported beside it.

Each side's rate is Caliper events per second over the steady 10..90% window, as in S7, and its
CPU per event over the same window. ``s9_rounds`` interleaved rounds (relay, Quix asyncio, Quix
threads) per latency; a row's ratio is the median of the rounds' ratios. The first round's relay
drain is S7's when S7 ran in the same process. Bars (bench/targets.py): relay / Quix >= 1 at both.
"""

from __future__ import annotations

import statistics
from typing import Any, Final

from bench.drain import Drain
from bench.lab import Backlog, Lab
from bench.procs import QuixPeer
from bench.report import Result
from bench.s7_peer import peer_backlog, peer_drain, relay_side

QUIX: Final = (
    "Quix Streams 3.28 app (bench/quix/peer.py): BatchingSink POSTing in_flight at a time as "
    "aiohttp coroutines (headline) or on httpx threads (beside it), SinkBackpressureError on "
    "429/5xx after 4 tries, commit after the checkpoint's batches are accepted "
    "(commit_every=1000, commit_interval=5 s); one process"
)
CLIENTS: Final = ("asyncio", "threads")  # the first is the headline


def run(lab: Lab) -> list[Result]:
    sizes = lab.sizes
    backlog, topic, events = peer_backlog(lab)
    rows = {
        "no_latency" if not latency else f"latency_{latency:g}ms": _rounds(
            lab, backlog, topic, events, latency
        )
        for latency in (0.0, sizes.latency_ms)
    }
    slow_key = f"latency_{sizes.latency_ms:g}ms"
    detail: dict[str, Any] = {"peer": QUIX, "in_flight": sizes.in_flight,
                              "pre_mapped_events": events, "rounds": sizes.s9_rounds,
                              **rows}  # fmt: skip
    return [
        Result("S9a", "relay / Quix Streams app (aiohttp sink), no latency (Go sink)",
               rows["no_latency"]["ratio"] or 0.0, "ratio", detail),
        Result("S9b", f"relay / Quix Streams app (aiohttp sink), {sizes.latency_ms:g} ms "
               "(Go sink)", rows[slow_key]["ratio"] or 0.0, "ratio",
               {"see": f"S9a detail, {slow_key}"}),
    ]  # fmt: skip


def _rounds(lab: Lab, backlog: Backlog, topic: str, events: int, latency: float) -> dict[str, Any]:
    """Interleaved rounds at one latency: the relay drains, then the Quix app with each client."""
    rounds: list[dict[str, Any]] = []
    for round_ in range(max(1, lab.sizes.s9_rounds)):
        relay, records = relay_side(lab, backlog, latency, round_)
        share = round(events * records / len(backlog.plan.records))
        rate = relay.events_per_s if relay.finished else 0.0
        relay_cpu = _cpu_us_per_event(relay)
        row: dict[str, Any] = {"relay_records": records, "quix_events": share,
                               "relay_events_per_s": round(rate, 1),
                               "relay_cpu_us_per_event": relay_cpu,
                               "relay": relay.summary()}  # fmt: skip
        for client in CLIENTS:
            name = f"quix-{client}-{latency:g}-{round_}"
            sink = lab.go_sink(name, latency)
            quix = peer_drain(name, QuixPeer, lab, topic, sink, share, rate, client=client)
            sink.stop()
            cpu = quix["cpu_us_per_event"]
            # CPU per event over the relay's: less sensitive than the rates to how much of the
            # shared cores each process got (the scheduler shares per thread)
            quix["cpu_over_relay_cpu"] = round(cpu / relay_cpu, 2) if cpu and relay_cpu else None
            row[client] = quix
        rounds.append(row)
    return {
        "ratio": _median([r[CLIENTS[0]]["ratio"] for r in rounds]),
        "ratios": [r[CLIENTS[0]]["ratio"] for r in rounds],
        "cpu_over_relay_cpu": _median([r[CLIENTS[0]]["cpu_over_relay_cpu"] for r in rounds]),
        "threads": {
            "ratio": _median([r["threads"]["ratio"] for r in rounds]),
            "cpu_over_relay_cpu": _median([r["threads"]["cpu_over_relay_cpu"] for r in rounds]),
        },
        "rounds": rounds,
    }


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(statistics.median(known), 3) if known else None


def _cpu_us_per_event(relay: Drain) -> float | None:
    """The relay's CPU per Caliper event over its steady window (it reports it per record)."""
    if not relay.finished or not relay.events_per_s:
        return None
    per_record = float(relay.steady_cpu()["relay_cpu_us_per_record"])
    return round(per_record * relay.records_per_s / relay.events_per_s, 1)
