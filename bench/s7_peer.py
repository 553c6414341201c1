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
  every Camel drain of the run: it is warmed first by drains of the pre-mapped backlog four
  times over (``camel_topic``; each with a consumer group of its own) until HotSpot has
  compiled the route (``camel_jvm``: 800,000 events or more) and keeps running, so S7c and S7d
  measure the route as a long-running service runs it (issue 21). ``S7c JIT``: the share of
  the route's CPU that HotSpot spent compiling in S7c's drains (the largest of its rounds;
  issue 21: under a tenth). S7c is the median of ``rounds`` interleaved rounds (relay drain,
  Camel drain), the first reusing S6's relay drain;
- the compiled limit line of the same shape (``benchgo peer``: franz-go consumer, net/http, the
  relay's in-flight limit, commit after 2xx, no mapping): S7a/S7b, read as the fraction of it
  the relay reaches.

Every figure is Caliper events per second over the steady 10..90% window; each peer's CPU per
event is its process's CPU (/proc) over the same window, as S6 measures the relay's.
"""

from __future__ import annotations

import statistics
from typing import Any, Final

from bench.common import say
from bench.drain import Drain, produce_values, watch_camel, watch_sink
from bench.lab import Backlog, Lab
from bench.procs import CamelPeer, Child, GoPeer, GoSink, QuixPeer
from bench.report import Result
from bench.targets import TARGETS

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
    warmup = camel_jvm(lab)[1]
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
        "camel_events_per_drain_no_latency": camel_topic(lab)[1],
    }  # fmt: skip
    late = f"{sizes.latency_ms:g} ms"
    slow_key = f"latency_{sizes.latency_ms:g}ms"
    ratio = statistics.median(r["ratio"] for r in rounds)
    jit = max(rounds, key=lambda r: r["jit_share"])  # the least warm of the measured drains
    warmed_events = sum(w["events"] for w in warmup)
    warmed = f"JVM warmed by {len(warmup)} drains, {warmed_events:,} events"
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
                "warm_up_rule": WARM_UP_RULE.format(low=sizes.camel_warmup_events,
                                                    high=sizes.camel_warmup_max_events),
                "see": "S7a detail, camel_rounds_no_latency"}),
        Result("S7d", f"relay / Camel route, {late} (Go sink), {warmed}", slow["camel"]["ratio"],
               "ratio", {"see": f"S7a detail, {slow_key}.camel"}),
    ]  # fmt: skip


def camel_jvm(lab: Lab) -> tuple[CamelPeer, list[dict[str, Any]]]:
    """The one JVM of S7's Camel drains, started once per run and warmed first (``_warm_up``),
    so that S7c measures the route as a long-running service runs it, compiled by HotSpot
    (issue 21); it keeps running between drains. Also the warm-up drains' figures.

    What HotSpot compiles in the drains of a warming JVM (``BENCH_CAMEL_JAVA_OPTS`` with
    ``-Xlog:jit+compilation=debug:file=...``, 2026-12-07, loaded machine, drains of 39,108
    events): after the first drain, a few dozen C2 (tier 4) compiles per drain, and C2's
    thread is nearly all of the JIT CPU (C1: 0.01-0.15 s a drain). Two kinds:

    - the route's per-batch and per-poll code: Camel's split (MulticastProcessor.doDone,
      .doProcess, MulticastTask.<init>, Splitter.process), DefaultAsyncProcessorAwaitManager.
      await, the manual commit (KafkaRecordBatchingProcessor, ClassicKafkaConsumer.commitSync,
      OffsetCommitRequestData.write, OffsetCommitResponseHandler.handle), the consumer's
      poll (pollForFetches, prepareFetchRequests, FetchCollector.fetchRecords,
      Selector.pollSelectionKeys). It runs once per batch of 64 events (or per poll), so it
      reaches C2's thresholds (5,000 calls without a loop, scaled up while C2's queue is long)
      only after hundreds of thousands of events: in four trials and two runs, bursts of it
      (drain shares 0.10-0.22) came up to ~700,000 events (one of 0.10 after); most drains
      after 600,000 compiled 0.00-0.07. The former 60,000-event warm-up (5 drains of 13,036)
      left it to S7c's drains: shares 0.22, 0.25, 0.10 in the run of 2026-12-07, 0.11, 0.19,
      0.14 in a run here, 0.08-0.23 in a trial.
    - set-up code of the route and Kafka consumer that every drain starts anew (a fresh
      consumer group reads from the start): URI and config parsing (java.util.regex),
      java.util.Formatter, JMX registration of the consumer's metrics. It gets hotter drain
      by drain and is compiled in later ones, partly inside their steady window while C2's
      queue drains. A route that keeps running does this once; here it weighs less over a
      drain four backlogs long (``camel_drain_repeats``).

    No code-cache flushing: no codecache warning, and every nmethod the sweeper "made zombie"
    had been made not entrant first (replaced by a higher tier or deoptimised). C2 code made
    not entrant (deoptimised): 0-4 methods a drain, spread over many, none recurring drain
    after drain (ThreadPoolExecutor.getTask, which the posting pool's shutdown after every
    drain could have sent down a new path, 1-2 times in a JVM's life). No JVM flag changes
    how Camel's code is compiled (CAMEL_JAVA_OPTS: G1, tiered, a bounded heap)."""
    noted: tuple[CamelPeer, list[dict[str, Any]]] | None = lab.noted("camel_jvm")
    if noted is not None:
        return noted
    # its log carries the answers to its commands: a name of this run's own, so that another
    # run in the same checkout (a test) cannot overwrite it
    jvm = CamelPeer(f"camel-{lab.topics.run}", lab.bootstrap, None, None, lab.sizes.in_flight)
    lab.own(jvm)
    warmup = _warm_up(lab, jvm)
    lab.note("camel_jvm", (jvm, warmup))
    return jvm, warmup


WARM_UP_RULE: Final = (
    "drains of the Camel topic until {low:,} events or more, then on until two drains in a "
    "row compile under half S7c JIT's bar, {high:,} events at most"
)


def _warm_up(lab: Lab, jvm: CamelPeer) -> list[dict[str, Any]]:
    """Warm-up drains of the Camel topic, the measured drains' shape (same topic, same sink,
    a new consumer group each), by ``WARM_UP_RULE``: by events first, as the route's
    per-batch code needs them; then, since HotSpot compiles in bursts (drains at 0.02, 0.02
    were followed by one at 0.10 while code still tiered up), until two drains in a row are
    under half the bar, a margin for the measured ones; bounded so that ``make bench`` keeps
    its time. Each drain's figures, JIT share falling drain by drain."""
    sizes, bar = lab.sizes, TARGETS["S7c JIT"].bar / 2
    topic, events = camel_topic(lab)
    sink = camel_sink(lab)
    warmup: list[dict[str, Any]] = []
    done = 0
    while done < sizes.camel_warmup_max_events:
        say(f"Camel JVM warm-up drain {len(warmup) + 1}, {events:,} events ({done:,} so far)")
        drained = watch_camel(f"camel-warmup-{len(warmup) + 1}", jvm, topic, sink, events,
                              timeout=max(120.0, events / 20))  # fmt: skip
        figures = _figures(drained, 0.0)
        warmup.append({"events": events} | {k: v for k, v in figures.items() if k != "ratio"}
                      | _jit(figures))  # fmt: skip
        done += events
        last = [w["jit_share"] for w in warmup[-2:]]
        if done >= sizes.camel_warmup_events and len(last) == 2 and max(last) <= bar:
            break
    return warmup


def camel_topic(lab: Lab) -> tuple[str, int]:
    """The topic of the Camel route's drains without latency (warm-up and S7c's): the
    pre-mapped backlog ``camel_drain_repeats`` times over (same keys, so the same partitions
    and order per key), and its number of events; made once per run. S7c's ratio compares
    steady rates (events/s over 10..90% of a drain), so the longer drain changes what
    compiling weighs in Camel's, not what an event costs."""
    made: tuple[str, int] | None = lab.noted("camel_topic")
    if made is None:
        backlog, topic, events = peer_backlog(lab)
        repeats = max(1, lab.sizes.camel_drain_repeats)
        if repeats > 1:
            topic = lab.topics.create("s7-mapped-camel", lab.sizes.partitions)
            produce_values(lab.bootstrap, topic, backlog.mapped() * repeats)
        made = (topic, events * repeats)
        lab.note("camel_topic", made)
    return made


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
    camel = camel_drain(f"camel-0-r{index + 1}", lab, *camel_topic(lab), camel_sink(lab), rate)
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
    if latency:  # the prefix of the backlog the relay drained
        sink, camel_at = lab.go_sink(f"s7-camel-{latency:g}", latency), (topic, events)
    else:  # the warm-up's topic and sink
        sink, camel_at = camel_sink(lab), camel_topic(lab)
    camel = camel_drain(f"camel-{latency:g}", lab, *camel_at, sink, relay_rate)
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
    name: str, lab: Lab, topic: str, events: int, sink: GoSink, relay_rate: float
) -> dict[str, Any]:
    """The Camel route in the run's warmed JVM (``camel_jvm``) draining ``events`` pre-mapped
    events of ``topic`` into ``sink``, with a consumer group of its own: its figures
    (``_figures``)."""
    jvm, _ = camel_jvm(lab)
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
