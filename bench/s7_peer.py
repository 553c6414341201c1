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
  ``in_flight``): S7c/S7d, with the bars the issues state (bench/targets.py). One JVM serves
  every Camel drain of the run: it is warmed first by drains of the whole pre-mapped backlog
  (each with a consumer group of its own; ``camel_warmup_events`` in all) and keeps running,
  so S7c and S7d measure the route as a long-running service runs it (issue 21). ``S7c
  JIT``: the share of the route's CPU that HotSpot spent compiling in S7c's drains (the largest
  of its rounds; issue 21: under a tenth). S7c is the median of ``rounds`` interleaved rounds
  (relay drain, Camel drain), the first reusing S6's relay drain;
- the compiled limit line of the same shape (``benchgo peer``: franz-go consumer, net/http, the
  relay's in-flight limit, commit after 2xx, no mapping): S7a/S7b, read as the fraction of it
  the relay reaches.

Every figure is Caliper events per second over the steady 10..90% window; each peer's CPU per
event is its process's CPU (/proc) over the same window, as S6 measures the relay's.
"""

from __future__ import annotations

import math
import statistics
from typing import Any, Final

from bench.common import say
from bench.drain import Drain, watch_camel, watch_sink
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
    warmup = camel_jvm(lab, topic, events)[1]
    rows: dict[str, dict[str, Any]] = {}
    for latency in (0.0, sizes.latency_ms):
        key = "no_latency" if not latency else f"latency_{latency:g}ms"
        rows[key] = _side_by_side(lab, backlog, topic, events, latency)
    fast, slow = rows["no_latency"], rows[f"latency_{sizes.latency_ms:g}ms"]
    rounds = [_camel_round(fast)] + [
        _camel_round(_relay_and_camel(lab, backlog, topic, events, index))
        for index in range(1, max(1, sizes.rounds))
    ]  # interleaved: relay drain, Camel drain, relay drain, ...
    detail: dict[str, Any] = {
        "peer": PEER,
        "camel_peer": {"name": CAMEL, "setup": CAMEL_SETUP, "warm_up": warmup},
        "kafka_connect": {"ran": False, "http_sink_connectors_tried": list(CONNECT_TRIED),
                          "why": "no coordinate resolved from Maven Central (jar missing)"},
        "targets_stated_against": "Kafka Connect (not run); S7c/S7d: the Camel route, its "
                                  "engine; S7a/S7b: the compiled limit",
        "pre_mapped_events": events,
        "in_flight": sizes.in_flight,
        **rows,
        "camel_rounds_no_latency": rounds,
    }  # fmt: skip
    late = f"{sizes.latency_ms:g} ms"
    slow_key = f"latency_{sizes.latency_ms:g}ms"
    ratio = statistics.median(r["ratio"] for r in rounds)
    jit = max(rounds, key=lambda r: r["jit_share"])  # the least warm of the measured drains
    warmed = f"JVM warmed by {len(warmup)} drain(s)" if warmup else "cold JVM"
    return [
        Result("S7a", "relay / compiled peer, no latency (Go sink)", fast["ratio"], "ratio",
               detail),
        Result("S7b", f"relay / compiled peer, {late} (Go sink)", slow["ratio"], "ratio",
               {"see": "S7a detail"}),
        Result("S7c", f"relay / Camel route, no latency (Go sink), {warmed}; {CAMEL}", ratio,
               "ratio", {"rounds": len(rounds), "ratios": [r["ratio"] for r in rounds],
                         "figure": "median of interleaved rounds (relay drain, Camel drain)",
                         "see": "S7a detail, camel_rounds_no_latency and no_latency.camel"}),
        Result("S7c JIT", f"HotSpot compiling / the Camel route's CPU in S7c's drains ({warmed})",
               jit["jit_share"], "share",
               {"jit_cpu_us_per_event": jit["jit_cpu_us_per_event"],
                "cpu_us_per_event": jit["cpu_us_per_event"],
                "figure": "the largest share of S7c's rounds",
                "shares": [r["jit_share"] for r in rounds], "warm_up": warmup,
                "see": "S7a detail, camel_rounds_no_latency"}),
        Result("S7d", f"relay / Camel route, {late} (Go sink), {warmed}", slow["camel"]["ratio"],
               "ratio", {"see": f"S7a detail, {slow_key}.camel"}),
    ]  # fmt: skip


def camel_jvm(lab: Lab, topic: str, events: int) -> tuple[CamelPeer, list[dict[str, Any]]]:
    """The one JVM of S7's Camel drains, started once per run and warmed first by drains of
    the pre-mapped backlog (each with a consumer group of its own, into a Go sink of its own),
    ``camel_warmup_events`` in all, so that S7c measures the route as a long-running service
    runs it, compiled by HotSpot (issue 21); it keeps running between drains. Also the warm-up
    drains' figures (JIT share falling drain by drain). Not "until one drain compiles under the
    bar": compiling comes in bursts, a drain at 0.04 was followed by one at 0.25."""
    noted: tuple[CamelPeer, list[dict[str, Any]]] | None = lab.noted("camel_jvm")
    if noted is not None:
        return noted
    # its log carries the answers to its commands: a name of this run's own, so that another
    # run in the same checkout (a test) cannot overwrite it
    jvm = CamelPeer(f"camel-{lab.topics.run}", lab.bootstrap, None, None, lab.sizes.in_flight)
    lab.own(jvm)
    warmup = []
    sink = camel_sink(lab)
    drains = max(1, math.ceil(lab.sizes.camel_warmup_events / events))
    for index in range(drains):
        say(f"Camel JVM warm-up drain {index + 1} of {drains}, {events:,} events")
        drained = watch_camel(f"camel-warmup-{index + 1}", jvm, topic, sink, events,
                              timeout=max(120.0, events / 20))  # fmt: skip
        figures = _figures(drained, 0.0)
        warmup.append({k: v for k, v in figures.items() if k != "ratio"} | _jit(figures))
    lab.note("camel_jvm", (jvm, warmup))
    return jvm, warmup


def camel_sink(lab: Lab) -> GoSink:
    """The Go sink (no latency) of every Camel drain without latency, warm-up and S7c's rounds:
    the route warmed against the URL it is measured against."""
    sink: GoSink | None = lab.noted("camel_sink")
    if sink is None:
        sink = lab.go_sink("s7-camel-0")
        lab.note("camel_sink", sink)
    return sink


def _jit(figures: dict[str, Any]) -> dict[str, float]:
    cpu = figures["cpu_us_per_event"]
    return {"jit_share": round(figures["jit_cpu_us_per_event"] / cpu, 3) if cpu else 1.0}


def _camel_round(row: dict[str, Any]) -> dict[str, Any]:
    camel = row["camel"]
    return {"relay_events_per_s": row["relay_events_per_s"],
            "camel_events_per_s": camel["events_per_s"], "ratio": camel["ratio"],
            "cpu_us_per_event": camel["cpu_us_per_event"],
            "jit_cpu_us_per_event": camel["jit_cpu_us_per_event"], **_jit(camel)}  # fmt: skip


def _relay_and_camel(
    lab: Lab, backlog: Backlog, topic: str, events: int, index: int
) -> dict[str, Any]:
    """S7c's round ``index`` (from 1) after the first: a relay drain, then the warmed JVM's."""
    relay, _ = relay_side(lab, backlog, 0.0, round_=index, tag="s7c")
    rate = relay.events_per_s if relay.finished else 0.0
    sink = camel_sink(lab)
    camel = camel_drain(f"camel-0-r{index + 1}", lab, topic, sink, events, rate)
    return {"relay_events_per_s": round(rate, 1), "camel": camel}


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


def relay_side(
    lab: Lab, backlog: Backlog, latency: float, round_: int = 0, tag: str = "peers"
) -> tuple[Drain, int]:
    """The relay's drain of ``backlog`` (or, with latency, a prefix of it) into a fresh Go sink
    with ``latency``, and its number of records; one per run and latency, for S7 and S9 (S6's
    drain is the no-latency one when S6 ran). ``round_`` > 0: drain again (S7c's and S9's
    rounds; ``tag`` names their logs)."""
    sizes = lab.sizes
    records = len(backlog.plan.records)
    if latency:  # the latency rows take longer: a prefix, the same share of it for both sides
        records = min(records, sizes.s7_latency_records)
    relay: Drain | None = None
    if not round_:
        relay = lab.noted(f"peer_relay_{latency:g}") or (None if latency else lab.noted("s6_relay"))
    if relay is None:
        name = f"{tag}-{latency:g}" + (f"-r{round_}" if round_ else "")
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
    sink = camel_sink(lab) if not latency else lab.go_sink(f"s7-camel-{latency:g}", latency)
    camel = camel_drain(f"camel-{latency:g}", lab, topic, sink, events, relay_rate)
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
    kind: type[GoPeer] | type[QuixPeer],
    lab: Lab,
    topic: str,
    sink: GoSink,
    events: int,
    relay_rate: float,
    **options: Any,
) -> dict[str, Any]:
    """One peer, started for it, draining ``events`` pre-mapped events into ``sink``: its
    figures (``_figures``). ``options``: the peer's own (the Quix app's ``client``)."""
    say(f"{kind.__name__} {name}, {sink.latency_ms:g} ms, {events:,} pre-mapped events")

    def start() -> Child:
        return kind(name, lab.bootstrap, topic, sink.url, lab.sizes.in_flight, **options)

    drained = watch_sink(name, start, sink, events, timeout=max(120.0, events / 20))
    return _figures(drained, relay_rate)


def camel_drain(
    name: str, lab: Lab, topic: str, sink: GoSink, events: int, relay_rate: float
) -> dict[str, Any]:
    """The Camel route in the run's warmed JVM (``camel_jvm``) draining ``events`` pre-mapped
    events into ``sink``, with a consumer group of its own: its figures (``_figures``)."""
    jvm, _ = camel_jvm(lab, topic, events)
    say(f"Camel route {name}, {sink.latency_ms:g} ms, {events:,} pre-mapped events")
    drained = watch_camel(name, jvm, topic, sink, events, timeout=max(120.0, events / 20))
    return _figures(drained, relay_rate)


def _figures(drained: Drain, relay_rate: float) -> dict[str, Any]:
    """A peer's rate, the relay's ratio to it, its CPU per event and share of a core in the
    steady window."""
    rate = drained.events_per_s if drained.finished else 0.0
    steady = drained.steady_cpu() if drained.finished else {}
    return {
        "events_per_s": round(rate, 1),
        "ratio": round(relay_rate / rate, 3) if rate else 0.0,
        "cpu_us_per_event": steady.get("relay_cpu_us_per_record"),
        # of which JIT compilation (0 for a peer without a JIT), in the same window
        "jit_cpu_us_per_event": steady.get("jit_cpu_us_per_record", 0),
        "cpu_share_of_a_core": steady.get("relay_cpu_share_of_a_core"),
        "peak_rss_mb": round(drained.peak_rss_kb / 1024, 1),
        "finished": drained.finished,
    }
