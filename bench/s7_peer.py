"""S7: the relay beside peers on the same backlog and the same sink, one process each, without
latency and with the S3 latency.

A peer reads the same records pre-mapped (serialized Caliper events, one per message, same keys
and partitions: a peer has no mapping stage) and POSTs them to the Go sink. Issue 15's first
choice of peer is Kafka Connect 4.4.0 in standalone mode with an open-source HTTP sink connector
from Maven Central; none of the coordinates in ``CONNECT_TRIED`` resolved here (``mvn
dependency:get``: the jar is not in Central). Two peers run instead:

- what a user would run: an Apache Camel 4.14 route ``kafka -> http`` (bench/camel), the engine
  Camel's HTTP sink connector runs inside Connect, configured for at-least-once (manual commit
  after the 2xx) with the relay's in-flight budget (a batching consumer, a parallel split of
  ``in_flight``): S7c/S7d, with the targets the issue states against Connect;
- the compiled limit line of the same shape (``benchgo peer``: franz-go consumer, net/http, the
  relay's in-flight limit, commit after 2xx, no mapping): S7a/S7b, read as the fraction of it
  the relay reaches.

Every figure is Caliper events per second over the steady 10..90% window; each peer's CPU per
event is its process's CPU (/proc) over the same window, as S6 measures the relay's.
"""

from __future__ import annotations

from typing import Any, Final

from bench.common import say
from bench.drain import Drain, watch_sink
from bench.lab import Backlog, Lab
from bench.procs import CamelPeer, Child, GoPeer, GoSink
from bench.report import Result

TARGET_NO_LATENCY: Final = 1.0
TARGET_LATENCY: Final = 10.0
PEER: Final = "compiled Go peer (benchgo peer: franz-go, net/http, commit after 2xx, no mapping)"
CAMEL: Final = (
    "vs Apache Camel 4.14 route (kafka -> http), the engine of Camel's HTTP sink connector; "
    "Connect's own connector jars do not resolve here"
)
CAMEL_SETUP: Final = (
    "bench/camel CamelPeer.java: camel-kafka batching consumer (maxPollRecords = in flight), "
    "split().parallelProcessing() on an in-flight-sized pool to camel-http POST /events/1.0, "
    "autoCommitEnable=false + allowManualCommit: each partition's last offset committed after "
    "every POST of the batch got its 2xx (sync commit); redelivery with back-off until "
    "accepted; one JVM"
)
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
        "camel_peer": {"name": CAMEL, "setup": CAMEL_SETUP},
        "kafka_connect": {"ran": False, "http_sink_connectors_tried": list(CONNECT_TRIED),
                          "why": "no coordinate resolved from Maven Central (jar missing)"},
        "targets_stated_against": "Kafka Connect (not run); S7c/S7d: the Camel route, its "
                                  "engine; S7a/S7b: the compiled limit",
        "pre_mapped_events": events,
        "in_flight": sizes.in_flight,
        **rows,
    }  # fmt: skip
    late = f"{sizes.latency_ms:g} ms"
    slow_key = f"latency_{sizes.latency_ms:g}ms"
    return [
        Result("S7a", "relay / compiled peer, no latency (Go sink)", fast["ratio"], "ratio",
               TARGET_NO_LATENCY, "higher", detail),
        Result("S7b", f"relay / compiled peer, {late} (Go sink)", slow["ratio"], "ratio",
               TARGET_LATENCY, "higher", {"see": "S7a detail"}),
        Result("S7c", f"relay / Camel route, no latency (Go sink) {CAMEL}",
               fast["camel"]["ratio"], "ratio", TARGET_NO_LATENCY, "higher",
               {"see": "S7a detail, no_latency.camel"}),
        Result("S7d", f"relay / Camel route, {late} (Go sink)", slow["camel"]["ratio"], "ratio",
               TARGET_LATENCY, "higher", {"see": f"S7a detail, {slow_key}.camel"}),
    ]  # fmt: skip


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
    relay_rate = relay.events_per_s if relay.finished else 0.0
    sink = lab.go_sink(f"s7-peer-{latency:g}", latency)
    go = _peer(f"peer-{latency:g}", GoPeer, lab, topic, sink, events, relay_rate)
    sink = lab.go_sink(f"s7-camel-{latency:g}", latency)
    camel = _peer(f"camel-{latency:g}", CamelPeer, lab, topic, sink, events, relay_rate)
    return {
        "relay_records": records,
        "peer_events": events,
        "relay_events_per_s": round(relay_rate, 1),
        "peer_events_per_s": go["events_per_s"],
        "ratio": go["ratio"],
        "relay": relay.summary(),
        "peer_cpu_us_per_event": go["cpu_us_per_event"],
        "camel": camel,
    }


def _peer(
    name: str,
    kind: type[GoPeer] | type[CamelPeer],
    lab: Lab,
    topic: str,
    sink: GoSink,
    events: int,
    relay_rate: float,
) -> dict[str, Any]:
    """One peer draining ``events`` pre-mapped events into ``sink``: its rate, the relay's ratio
    to it, its CPU per event and share of a core in the steady window."""
    say(f"S7: {kind.__name__}, {sink.latency_ms:g} ms, {events:,} pre-mapped events")

    def start() -> Child:
        return kind(name, lab.bootstrap, topic, sink.url, lab.sizes.in_flight)

    drained = watch_sink(name, start, sink, events, timeout=max(120.0, events / 20))
    rate = drained.events_per_s if drained.finished else 0.0
    steady = drained.steady_cpu() if drained.finished else {}
    return {
        "events_per_s": round(rate, 1),
        "ratio": round(relay_rate / rate, 3) if rate else 0.0,
        "cpu_us_per_event": steady.get("relay_cpu_us_per_record"),
        # of which JIT compilation (a cold JVM: 0 for the Go peer), in the same window
        "jit_cpu_us_per_event": steady.get("jit_cpu_us_per_record", 0),
        "cpu_share_of_a_core": steady.get("relay_cpu_share_of_a_core"),
        "peak_rss_mb": round(drained.peak_rss_kb / 1024, 1),
        "finished": drained.finished,
    }
