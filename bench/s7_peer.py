"""S7: the relay beside a peer on the same backlog and the same sink, one process each, without
latency and with the S3 latency.

The peer reads the same records pre-mapped (serialized Caliper events, one per message, same keys
and partitions: a peer has no mapping stage) and POSTs them to the Go sink. Issue 15's first
choice of peer is Kafka Connect 4.4.0 in standalone mode with an open-source HTTP sink connector
from Maven Central; none of the coordinates in ``CONNECT_TRIED`` resolved here (``mvn
dependency:get``: the jar is not in Central), so the peer is the compiled limit line of the same
shape (``benchgo peer``: franz-go consumer, net/http, the relay's in-flight limit, commit after
2xx, no mapping). Both figures are Caliper events per second over the steady 10..90% window.

Targets (issue 15, stated against Kafka Connect): relay / peer >= 1 without latency, >= 10 at
50 ms. Against the compiled limit the same figures read as the fraction of it the relay reaches.
"""

from __future__ import annotations

from typing import Any, Final

from bench.common import say
from bench.drain import Drain, watch_sink
from bench.lab import Backlog, Lab
from bench.procs import GoPeer
from bench.report import Result

TARGET_NO_LATENCY: Final = 1.0
TARGET_LATENCY: Final = 10.0
PEER: Final = "compiled Go peer (benchgo peer: franz-go, net/http, commit after 2xx, no mapping)"
# Every HTTP sink connector coordinate tried (mvn dependency:get, once each); none resolved.
CONNECT_TRIED: Final = (
    "org.apache.camel.kafkaconnector:camel-http-sink-kafka-connector:4.10.3",
    "org.apache.camel.kafkaconnector:camel-http-sink-kafka-connector:4.8.0",
    "org.apache.camel.kafkaconnector:camel-http-sink-kafka-connector:4.4.2",
    "org.apache.camel.kafkaconnector:camel-http-sink-kafka-connector:4.0.0",
    "org.apache.camel.kafkaconnector:camel-http-sink-kafka-connector:4.14.0",
    "io.github.clescot:kafka-connect-http-connectors:0.8.175",
    "io.github.clescot:kafka-connect-http-connectors:0.8.77",
    "io.github.clescot:kafka-connect-http-connectors:0.8.10",
    "io.github.clescot:kafka-connect-http-sink:0.2.35",
    "io.aiven:http-connector-for-apache-kafka:0.9.0",
)


def run(lab: Lab) -> list[Result]:
    sizes = lab.sizes
    backlog: Backlog | None = lab.noted("s6_backlog")
    if backlog is None:
        backlog = lab.backlog("s7", sizes.s6_records, seed=61)
    topic, events = lab.mapped_topic("s7-mapped", backlog)
    rows: dict[str, dict[str, Any]] = {}
    for latency in (0.0, sizes.latency_ms):
        key = "no_latency" if not latency else f"latency_{latency:g}ms"
        rows[key] = _side_by_side(lab, backlog, topic, events, latency)
    fast, slow = rows["no_latency"], rows[f"latency_{sizes.latency_ms:g}ms"]
    detail: dict[str, Any] = {
        "peer": PEER,
        "kafka_connect": {"ran": False, "http_sink_connectors_tried": list(CONNECT_TRIED),
                          "why": "no coordinate resolved from Maven Central (jar missing)"},
        "targets_stated_against": "Kafka Connect (not run); here: the compiled limit",
        "pre_mapped_events": events,
        "in_flight": sizes.in_flight,
        **rows,
    }  # fmt: skip
    return [
        Result(
            "S7a",
            "relay / compiled peer, no latency (Go sink)",
            fast["ratio"],
            "ratio",
            TARGET_NO_LATENCY,
            "higher",
            detail,
        ),
        Result(
            "S7b",
            f"relay / compiled peer, {sizes.latency_ms:g} ms (Go sink)",
            slow["ratio"],
            "ratio",
            TARGET_LATENCY,
            "higher",
            {"see": "S7a detail"},
        ),
    ]


def _side_by_side(
    lab: Lab, backlog: Backlog, topic: str, events: int, latency: float
) -> dict[str, Any]:
    """The relay (S6's drain when it ran and this is the no-latency row) and the peer, each on
    a fresh Go sink with ``latency``."""
    sizes = lab.sizes
    relay: Drain | None = None if latency else lab.noted("s6_relay")
    records = len(backlog.plan.records)
    if latency:  # the latency rows take longer: a prefix, the same share of it for both
        records = min(records, sizes.s7_latency_records)
        events = round(events * records / len(backlog.plan.records))
    if relay is None:
        say(f"S7: relay drain, {latency:g} ms, {records:,} records")
        sink = lab.go_sink(f"s7-relay-{latency:g}", latency)
        relay = lab.drain(f"s7-{latency:g}", backlog, sink.url, records=records)
    say(f"S7: peer, {latency:g} ms, {events:,} pre-mapped events")
    sink = lab.go_sink(f"s7-peer-{latency:g}", latency)
    name = f"peer-{latency:g}"

    def start() -> GoPeer:
        return GoPeer(name, lab.bootstrap, topic, sink.url, sizes.in_flight)

    limit = watch_sink(name, start, sink, events, timeout=max(120.0, events / 20))
    relay_rate = relay.events_per_s if relay.finished else 0.0
    peer_rate = limit.events_per_s if limit.finished else 0.0
    return {
        "relay_records": records,
        "peer_events": events,
        "relay_events_per_s": round(relay_rate, 1),
        "peer_events_per_s": round(peer_rate, 1),
        "ratio": round(relay_rate / peer_rate, 3) if peer_rate else 0.0,
        "relay": relay.summary(),
        "peer_cpu_us_per_event": limit.steady_cpu()["relay_cpu_us_per_record"]
        if limit.finished
        else None,
    }
