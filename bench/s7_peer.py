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
  ``in_flight``): S7c/S7d, with the bars the issues state (bench/targets.py); ``S7c JIT``: the
  share of the route's CPU that HotSpot spent compiling in the no-latency drain (issue 21 wants
  S7c from a warmed JVM: under a tenth);
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
from bench.procs import CamelPeer, Child, GoPeer, GoSink, QuixPeer
from bench.report import Result

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
    backlog, topic, events = peer_backlog(lab)
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
    camel = fast["camel"]
    cpu = camel["cpu_us_per_event"]
    jit_share = camel["jit_cpu_us_per_event"] / cpu if cpu else 1.0  # no drain: not warm
    return [
        Result("S7a", "relay / compiled peer, no latency (Go sink)", fast["ratio"], "ratio",
               detail),
        Result("S7b", f"relay / compiled peer, {late} (Go sink)", slow["ratio"], "ratio",
               {"see": "S7a detail"}),
        Result("S7c", f"relay / Camel route, no latency (Go sink) {CAMEL}", camel["ratio"],
               "ratio", {"see": "S7a detail, no_latency.camel"}),
        Result("S7c JIT", "HotSpot compiling / the Camel route's CPU in S7c's drain",
               round(jit_share, 3), "share",
               {"jit_cpu_us_per_event": camel["jit_cpu_us_per_event"],
                "cpu_us_per_event": camel["cpu_us_per_event"],
                "see": "S7a detail, no_latency.camel"}),
        Result("S7d", f"relay / Camel route, {late} (Go sink)", slow["camel"]["ratio"], "ratio",
               {"see": f"S7a detail, {slow_key}.camel"}),
    ]  # fmt: skip


def peer_backlog(lab: Lab) -> tuple[Backlog, str, int]:
    """The backlog the peers and the relay share (S6's when it ran), and its pre-mapped topic
    with its number of events; made once per run, for S7 and S9."""
    shared: tuple[Backlog, str, int] | None = lab.noted("peer_backlog")
    if shared is None:
        backlog: Backlog | None = lab.noted("s6_backlog")
        if backlog is None:
            backlog = lab.backlog("s7", lab.sizes.s6_records, seed=61)
        shared = (backlog, *lab.mapped_topic("s7-mapped", backlog))
        lab.note("peer_backlog", shared)
    return shared


def relay_side(lab: Lab, backlog: Backlog, latency: float, round_: int = 0) -> tuple[Drain, int]:
    """The relay's drain of ``backlog`` (or, with latency, a prefix of it) into a fresh Go sink
    with ``latency``, and its number of records; one per run and latency, for S7 and S9 (S6's
    drain is the no-latency one when S6 ran). ``round_`` > 0: drain again (S9's rounds)."""
    sizes = lab.sizes
    records = len(backlog.plan.records)
    if latency:  # the latency rows take longer: a prefix, the same share of it for both sides
        records = min(records, sizes.s7_latency_records)
    relay: Drain | None = None
    if not round_:
        relay = lab.noted(f"peer_relay_{latency:g}") or (None if latency else lab.noted("s6_relay"))
    if relay is None:
        name = f"peers-{latency:g}" + (f"-r{round_}" if round_ else "")
        say(f"relay drain beside the peers, {latency:g} ms, {records:,} records")
        sink = lab.go_sink(f"{name}-relay", latency)
        relay = lab.drain(name, backlog, sink.url, records=records)
        sink.stop()
    if not round_:
        lab.note(f"peer_relay_{latency:g}", relay)
    return relay, records


def _side_by_side(
    lab: Lab, backlog: Backlog, topic: str, events: int, latency: float
) -> dict[str, Any]:
    """The relay (S6's drain when it ran and this is the no-latency row) and the peers, each on
    a fresh Go sink with ``latency``."""
    relay, records = relay_side(lab, backlog, latency)
    events = round(events * records / len(backlog.plan.records))
    relay_rate = relay.events_per_s if relay.finished else 0.0
    sink = lab.go_sink(f"s7-peer-{latency:g}", latency)
    go = peer_drain(f"peer-{latency:g}", GoPeer, lab, topic, sink, events, relay_rate)
    sink = lab.go_sink(f"s7-camel-{latency:g}", latency)
    camel = peer_drain(f"camel-{latency:g}", CamelPeer, lab, topic, sink, events, relay_rate)
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


def peer_drain(
    name: str,
    kind: type[GoPeer] | type[CamelPeer] | type[QuixPeer],
    lab: Lab,
    topic: str,
    sink: GoSink,
    events: int,
    relay_rate: float,
    **options: Any,
) -> dict[str, Any]:
    """One peer draining ``events`` pre-mapped events into ``sink``: its rate, the relay's ratio
    to it, its CPU per event and share of a core in the steady window. ``options``: the peer's
    own (the Quix app's ``client``)."""
    say(f"{kind.__name__} {name}, {sink.latency_ms:g} ms, {events:,} pre-mapped events")

    def start() -> Child:
        return kind(name, lab.bootstrap, topic, sink.url, lab.sizes.in_flight, **options)

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
