"""The relay a user might write instead: one loop of poll, decode, build dict, synchronous POST,
commit. The comparison for S4.

It reuses the project's decoder and Caliper builders so that it sends exactly the events the relay
sends (valid ones: the sandbox would refuse hand-made approximations, and then the two would not
do the same work). What it lacks is what the relay is for: concurrency (one record at a time, one
blocking POST at a time) and asynchronous commits. No retries, no DLQ, no metrics: it is only
ever faster than it should be.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from confluent_kafka import Consumer

from bench.common import CLIENT_ID, CLIENT_SECRET, bench_settings, say
from relay import wiring
from relay.contract.decode import Decoder
from relay.courses import CourseContext
from relay.mapping import map_activity


@dataclass(frozen=True)
class NaiveRun:
    records: int
    events: int
    seconds: float

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds

    def summary(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "events": self.events,
            "seconds": round(self.seconds, 2),
            "records_per_s": round(self.records_per_s, 1),
            "events_per_s": round(self.events_per_s, 1),
        }


def naive_relay(bootstrap: str, topic: str, api: str, count: int, timeout: float = 300) -> NaiveRun:
    """Relay the first ``count`` records of ``topic`` (a fresh group) to ``api``, one at a time.
    The clock starts at the first record, so the group join is not counted."""
    settings = bench_settings(kafka_bootstrap=bootstrap)
    decoder = Decoder.from_settings(settings)
    ctx = wiring.mapping_context(settings)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-naive-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    say(f"  naive relay: {count:,} records, one blocking POST at a time")
    with httpx.Client(base_url=api, timeout=30) as http:
        token = http.post(
            "/auth/1.0/token",
            data={"grant_type": "client_credentials"},
            auth=(CLIENT_ID, CLIENT_SECRET),
        ).json()["access_token"]
        http.headers["Authorization"] = f"Bearer {token}"
        done = events = 0
        started: float | None = None
        deadline = time.monotonic() + timeout
        try:
            while done < count and time.monotonic() < deadline:
                message = consumer.poll(1.0)
                if message is None or message.error():
                    continue
                if started is None:
                    started = time.perf_counter()
                activity = decoder.decode_sync(message.value() or b"")
                course = CourseContext(
                    getattr(activity, "course_id", None), getattr(activity, "subject", None)
                )
                for event in map_activity(activity, course, ctx):
                    http.post("/events/1.0", json=event.body).raise_for_status()
                    events += 1
                consumer.commit(message=message, asynchronous=False)
                done += 1
        finally:
            consumer.close()
    seconds = time.perf_counter() - started if started is not None else float("nan")
    return NaiveRun(done, events, seconds)
