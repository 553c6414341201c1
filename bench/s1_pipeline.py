"""S1: the pipeline's CPU cost in-process, per record, on one core (no Kafka, no network).

decode (framing + fastavro + semantic checks) -> validate (inside decode: the typed Activity) ->
enrich (``CourseResolver``: course and subject from the record) -> map (Caliper builders, ids) ->
validate (``relay.caliper.validate.check`` on every event) -> serialize (orjson, inside
``CaliperEvent``). The same objects the relay builds from its settings (``Decoder.from_settings``,
``wiring.course_resolver``, ``wiring.mapper``) over realistic encoded records from
``TrafficGenerator`` (2000 students, every record type in its natural mix).

Figures are best-of-N passes; the bars (<= 50 us per record overall; the Caliper rule checker at
most a third of it, row ``S1 checker``) are in bench/targets.py.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Coroutine
from typing import Any

from bench.common import Sizes, bench_settings, say, traffic
from bench.report import Result
from relay import wiring
from relay.caliper.validate import check
from relay.contract.activity import Activity
from relay.contract.decode import Decoder
from relay.courses import CourseContext
from relay.mapping import CaliperEvent


def _await(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never suspends (the resolver without a rostering lookup) without an
    event loop: the loop's scheduling is not a stage cost, and the relay awaits it inline too."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    raise RuntimeError("the coroutine suspended: enrichment is doing I/O")


class Chain:
    """The stages of one process, built as ``relay run`` builds them."""

    def __init__(self) -> None:
        settings = bench_settings()
        self.decoder = Decoder.from_settings(settings)
        self.resolver = wiring.course_resolver(settings)  # no lookup: records carry it
        self.mapper = wiring.mapper(settings, self.resolver)

    def decode(self, value: bytes) -> Activity:
        return self.decoder.decode_sync(value)

    def enrich(self, activity: Activity) -> CourseContext:
        context: CourseContext = _await(self.mapper.resolve(activity))
        return context

    def map(self, pair: tuple[Activity, CourseContext]) -> list[CaliperEvent]:
        return self.mapper.map_resolved(*pair)

    def check(self, events: list[CaliperEvent]) -> None:
        """The Caliper rule checker alone, as ``Mapper.map_resolved`` runs it on every event."""
        for event in events:
            check(event.body, self.mapper.rules)

    def full(self, value: bytes) -> list[CaliperEvent]:
        activity = self.decoder.decode_sync(value)
        return self.mapper.map_resolved(activity, _await(self.mapper.resolve(activity)))


def _best_us(fn: Callable[[Any], Any], items: list[Any], passes: int) -> float:
    """Microseconds per item, best of ``passes`` (the pass least disturbed by the neighbours)."""
    best = float("inf")
    for _ in range(passes):
        start = time.perf_counter()
        for item in items:
            fn(item)
        best = min(best, time.perf_counter() - start)
    return best / len(items) * 1e6


def run(sizes: Sizes) -> list[Result]:
    plan = traffic(sizes.s1_records, seed=1)
    chain = Chain()
    by_type: dict[str, list[bytes]] = defaultdict(list)
    for record in plan.records:
        by_type[record.record_type].append(record.value)
    mixed = [r.value for r in plan.records]
    for value in mixed[:2000]:  # warm-up: caches, first-call imports
        chain.full(value)
    say(f"S1: {len(mixed):,} records, {sizes.s1_passes} passes per row")
    rows: dict[str, dict[str, Any]] = {}
    for name, values in [*sorted(by_type.items()), ("overall", mixed)]:
        rows[name] = _row(chain, values, sizes.s1_passes)
    overall = rows["overall"]["total_us"]
    checker = rows["overall"]["check_us"]
    return [
        Result(
            "S1",
            "pipeline cost in-process (decode..serialize)",
            round(overall, 2),
            "us/record",
            {
                "records_per_s_one_core": round(1e6 / overall),
                "records": len(mixed),
                "passes": sizes.s1_passes,
                "per_type": rows,
                "note": "best of N passes; stage rows are measured separately, total is the chain",
            },
        ),
        Result(
            "S1 checker",
            "Caliper rule checker / the S1 chain (mixed records)",
            round(checker / overall, 3),
            "share",
            {
                "check_us": checker,
                "total_us": overall,
                "per_type": {name: row["check_share"] for name, row in rows.items()},
            },
        ),
    ]


def _row(chain: Chain, values: list[bytes], passes: int) -> dict[str, Any]:
    activities = [chain.decode(v) for v in values]
    pairs = [(a, chain.enrich(a)) for a in activities]
    mapped = [chain.map(p) for p in pairs]
    events = sum(len(m) for m in mapped)
    total = _best_us(chain.full, values, passes)
    check = _best_us(chain.check, mapped, passes)
    return {
        "records": len(values),
        "events_per_record": round(events / len(values), 3),
        "decode_validate_us": round(_best_us(chain.decode, values, passes), 2),
        "enrich_us": round(_best_us(chain.enrich, activities, passes), 2),
        "map_check_serialize_us": round(_best_us(chain.map, pairs, passes), 2),
        "check_us": round(check, 2),  # of map_check_serialize_us: the rule checker alone
        "check_share": round(check / total, 3),
        "total_us": round(total, 2),
        "records_per_s": round(1e6 / total),
    }


def profile_session(sizes: Sizes) -> Any:
    """A pyinstrument session of the chain over the mixed records (``bench.profiles`` renders)."""
    from pyinstrument import Profiler

    chain = Chain()
    mixed = [r.value for r in traffic(sizes.s1_records, seed=1).records]
    for value in mixed[:2000]:
        chain.full(value)
    profiler = Profiler(interval=0.0002)
    with profiler:
        for _ in range(max(1, sizes.s1_passes)):
            for value in mixed:
                chain.full(value)
    return profiler.last_session
