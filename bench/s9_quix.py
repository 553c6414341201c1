"""S9: the relay beside the peer a Python user would pick instead of faust: a Quix Streams 3.28
application (bench/quix/peer.py, its own virtualenv) on the same pre-mapped backlog as S7's peers
and the same Go sink, without latency and with the S3 latency.

The app is at-least-once the Quix way: a ``BatchingSink`` collects each partition's records for
a checkpoint (``commit_every=1000`` or 5 s, the Quix docs' example), POSTs them on a pool of
``in_flight`` threads over one httpx client, reports ``SinkBackpressureError`` on a 429, a 5xx or
a transport error (after 4 tries) so that Quix seeks back and the checkpoint is sent again, and
the offsets are committed only after every batch was accepted. Each side's rate is Caliper
events per second over the steady 10..90% window, as in S7; the relay's drains are S7's when S7
ran in the same process (one drain per latency, shared). Bars: relay / Quix >= 1 at both.
"""

from __future__ import annotations

from typing import Any, Final

from bench.lab import Lab
from bench.procs import QuixPeer
from bench.report import Result
from bench.s7_peer import peer_backlog, peer_drain, relay_side

QUIX: Final = (
    "Quix Streams 3.28 app (bench/quix/peer.py): BatchingSink, a pool of in_flight threads "
    "POSTing over httpx, SinkBackpressureError on 429/5xx after 4 tries, commit after the "
    "checkpoint's batches are accepted (commit_every=1000, commit_interval=5 s); one process"
)


def run(lab: Lab) -> list[Result]:
    sizes = lab.sizes
    backlog, topic, events = peer_backlog(lab)
    rows: dict[str, dict[str, Any]] = {}
    for latency in (0.0, sizes.latency_ms):
        relay, records = relay_side(lab, backlog, latency)
        share = round(events * records / len(backlog.plan.records))
        rate = relay.events_per_s if relay.finished else 0.0
        sink = lab.go_sink(f"s9-quix-{latency:g}", latency)
        quix = peer_drain(f"quix-{latency:g}", QuixPeer, lab, topic, sink, share, rate)
        key = "no_latency" if not latency else f"latency_{latency:g}ms"
        rows[key] = {"relay_records": records, "quix_events": share,
                     "relay_events_per_s": round(rate, 1), "relay": relay.summary(),
                     "quix": quix}  # fmt: skip
    fast, slow = rows["no_latency"], rows[f"latency_{sizes.latency_ms:g}ms"]
    detail: dict[str, Any] = {"peer": QUIX, "in_flight": sizes.in_flight,
                              "pre_mapped_events": events, **rows}  # fmt: skip
    late = f"{sizes.latency_ms:g} ms"
    return [
        Result("S9a", "relay / Quix Streams app, no latency (Go sink)", fast["quix"]["ratio"],
               "ratio", detail),
        Result("S9b", f"relay / Quix Streams app, {late} (Go sink)", slow["quix"]["ratio"],
               "ratio", {"see": f"S9a detail, latency_{sizes.latency_ms:g}ms"}),
    ]  # fmt: skip
