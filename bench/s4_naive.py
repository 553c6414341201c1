"""S4: the relay versus a naive relay (poll, decode, build dict, synchronous POST, commit) on the
same records and the same sink.

The headline uses the S3 sink (50 ms of latency, as a remote API has): there the naive loop pays
the round trip once per event while the relay overlaps RELAY_MAX_IN_FLIGHT of them. The same
comparison against the sink without injected latency (S2's) is in the detail, where both are
CPU-bound on this machine. Records per second on both sides (they send the same events).
Bar (bench/targets.py): relay / naive >= 10.
"""

from __future__ import annotations

from typing import Any

from bench.lab import Lab
from bench.report import Result
from bench.s3_latency import latency_run


def run(lab: Lab) -> Result:
    latency_run(lab)
    relay, naive = lab.noted("relay_latency"), lab.noted("naive_latency")
    value = relay.records_per_s / naive.records_per_s if relay.finished else 0.0
    detail: dict[str, Any] = {
        "sink": f"sandbox with {lab.sizes.latency_ms:g} ms latency (S3's)",
        "relay_records_per_s": round(relay.records_per_s, 1) if relay.finished else None,
        "naive": naive.summary(),
        "in_flight": lab.sizes.in_flight,
    }
    fast_relay, fast_naive = lab.noted("relay_no_latency"), lab.noted("naive_no_latency")
    if fast_relay is not None and fast_naive is not None and fast_relay.finished:
        detail["without_latency"] = {
            "sink": "sandbox without injected latency (S2's)",
            "relay_records_per_s": round(fast_relay.records_per_s, 1),
            "naive": fast_naive.summary(),
            "ratio": round(fast_relay.records_per_s / fast_naive.records_per_s, 2),
        }
    return Result("S4", "relay / naive relay (50 ms sink)", round(value, 2), "x", detail)
