"""What the end-to-end scenarios share in one run: the broker, topics, sandboxes, and the runs of
the relay that more than one scenario reads (S3 and S4 compare against the same latency run).

Everything started here is stopped by ``close`` (by pid, never by name).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from bench.common import Sizes, bench_settings, say, traffic
from bench.drain import Drain, drain, produce_backlog, produce_values
from bench.procs import Child, GoSink, Sandbox, Topics, kafka_broker
from bench.s1_pipeline import Chain
from relay import wiring
from relay.sandbox.testing import SandboxControl
from relay.timeback.client import TimeBackClient
from relay.tools.demo import roster
from relay.tools.traffic import PlannedRecord, TrafficPlan

PROCESSING_DELAY = 0.5  # seconds from the 202 to processing (the demo's; "processing on")


@dataclass
class Backlog:
    topic: str
    plan: TrafficPlan  # what was produced to the topic
    spare: list[PlannedRecord]  # more records of the same students, never produced (sink loops)

    def spare_events(self) -> list[bytes]:
        """The spare records as serialized events: the sink loops POST these, so they name the
        same (seeded) students and courses as the relay's, with ids the relay never sends."""
        chain = Chain()
        return [e.payload for r in self.spare for e in chain.full(r.value)]

    def mapped(self) -> list[tuple[bytes, bytes]]:
        """(key, serialized Caliper event) for every event of the produced records, in order:
        the same backlog, pre-mapped, as a peer without a mapping stage reads it."""
        chain = Chain()
        return [(r.key, e.payload) for r in self.plan.records for e in chain.full(r.value)]


class Lab:
    def __init__(self, sizes: Sizes, bootstrap: str, only: set[str], profile: bool = False) -> None:
        self.sizes = sizes
        self.only = only
        self.bootstrap = bootstrap
        self.profile = profile
        self.topics = Topics(bootstrap)
        self._sandboxes: list[Child] = []
        self._cache: dict[str, Any] = {}

    # -- pieces --------------------------------------------------------------------------------

    def sandbox(
        self, name: str, plan: TrafficPlan, latency_ms: float = 0.0, max_events: int = 1
    ) -> Sandbox:
        """A fresh sandbox process (its journal starts empty), roster seeded for ``plan``;
        ``max_events``: the envelope size it accepts (for the relay's batched rows)."""
        sandbox = Sandbox(f"sandbox-{name}", PROCESSING_DELAY, max_events)
        self._sandboxes.append(sandbox)
        asyncio.run(_seed(sandbox.url, plan))
        if latency_ms:
            with SandboxControl(sandbox.url) as control:
                control.faults(latency_ms={"fixed": latency_ms, "jitter": 0}, paths=["/events/1.0"])
        return sandbox

    def go_sink(self, name: str, latency_ms: float = 0.0) -> GoSink:
        """The compiled accept-everything sink (stopped at the end of the run)."""
        sink = GoSink(f"gosink-{name}", latency_ms)
        self._sandboxes.append(sink)
        return sink

    def own(self, child: Child) -> Child:
        """A process that lives across scenarios (S7's warmed JVM): stopped at the end too."""
        self._sandboxes.append(child)
        return child

    def backlog(
        self, name: str, count: int, seed: int, spare: int = 0, partitions: int = 0
    ) -> Backlog:
        full = traffic(count + spare, seed=seed)
        plan = replace(full, records=full.records[:count])
        topic = self.topics.create(name, partitions or self.sizes.partitions)
        produce_backlog(self.bootstrap, topic, plan)
        return Backlog(topic, plan, full.records[count:])

    def mapped_topic(self, name: str, backlog: Backlog) -> tuple[str, int]:
        """A topic with ``backlog``'s events pre-mapped (same keys, same partition count);
        returns it and its number of events."""
        events = backlog.mapped()
        topic = self.topics.create(name, self.sizes.partitions)
        produce_values(self.bootstrap, topic, events)
        return topic, len(events)

    def drain(
        self, name: str, backlog: Backlog, api: str, records: int = 0, **kwargs: Any
    ) -> Drain:
        """``records``: stop once that many are acknowledged (default: the whole backlog);
        ``events_per_request``: the relay's RELAY_EVENTS_PER_REQUEST (default 1)."""
        records = records or len(backlog.plan.records)
        kwargs.setdefault("in_flight", self.sizes.in_flight)
        kwargs.setdefault("timeout", max(180.0, records / 20))
        return drain(name, self.bootstrap, self.topics, backlog.topic, records, api, **kwargs)

    @property
    def envelope_events(self) -> int | None:
        """RELAY_EVENTS_PER_REQUEST of the batched rows (S2, S3, S6), or None: no such rows."""
        n = self.sizes.envelope_events
        return n if n > 1 else None

    def wants(self, scenario: str) -> bool:
        return scenario in self.only

    def note(self, key: str, value: Any) -> None:
        """Keep a measurement for another scenario of this run (S4 reads S2's and S3's)."""
        self._cache[key] = value

    def noted(self, key: str) -> Any:
        return self._cache.get(key)

    def close(self) -> None:
        for sandbox in self._sandboxes:
            sandbox.stop()
        self.topics.delete_all()


async def _seed(url: str, plan: TrafficPlan) -> None:
    """Courses, classes, test students and enrollments, so processing finds what events name."""
    settings = bench_settings(api_base_url=url)
    async with TimeBackClient(wiring.client_config(settings)) as api:
        records = roster(plan)
        ordered = [r for r in records if r[0] in ("courses", "classes")]
        rest = [r for r in records if r[0] not in ("courses", "classes")]
        for collection, record in ordered:  # classes name courses: in order
            await api.put(collection, record["sourcedId"], record)
        users = [r for r in rest if r[0] == "users"]
        enrollments = [r for r in rest if r[0] == "enrollments"]
        for batch in (users, enrollments):  # enrollments name users: users first
            for start in range(0, len(batch), 8):
                await asyncio.gather(
                    *(api.put(c, r["sourcedId"], r) for c, r in batch[start : start + 8])
                )


@contextlib.contextmanager
def lab(sizes: Sizes, only: set[str], profile: bool = False) -> Iterator[Lab]:
    with kafka_broker() as bootstrap:
        instance = Lab(sizes, bootstrap, only, profile)
        try:
            yield instance
        finally:
            say("stopping what the benchmark started")
            instance.close()
