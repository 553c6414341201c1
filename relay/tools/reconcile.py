"""Reconcile a traffic plan with what actually happened: XP in the ledger, records in the DLQ.

Used by ``relay demo`` for its summary and by the reliability suite. Valid records reconcile by
the XP they add to each student's ledger; planted invalid records by their exact bytes, which the
dead-letter topic keeps with the relay's stage and reason.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition

from relay.timeback.client import TimeBackClient
from relay.tools.traffic import PlannedRecord, TrafficPlan

STAGE_HEADER = "relay.stage"
REASON_HEADER = "relay.reason"


@dataclass(frozen=True)
class DeadLetterView:
    """A dead-letter record as an operator sees it."""

    key: bytes | None
    value: bytes
    stage: str
    reason: str
    headers: dict[str, bytes]


def read_topic(config: dict[str, Any], topic: str, timeout: float = 30.0) -> list[Message]:
    """Every record of ``topic`` from the beginning to the end offsets seen at the start."""
    consumer = Consumer(
        config | {"group.id": f"reconcile-{uuid.uuid4().hex}", "enable.auto.commit": False}
    )
    try:
        metadata = consumer.list_topics(topic, timeout=timeout).topics[topic]
        ends: dict[int, int] = {}
        for partition in metadata.partitions:
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout)
            if high > 0:
                ends[partition] = high
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
        messages: list[Message] = []
        remaining = dict(ends)
        while remaining:
            message = consumer.poll(timeout)
            if message is None:
                raise TimeoutError(f"{topic}: no record within {timeout}s, {remaining} left")
            if message.error():
                continue
            messages.append(message)
            partition, offset = message.partition() or 0, message.offset() or 0
            if offset + 1 >= remaining.get(partition, 0):
                remaining.pop(partition, None)
        return messages
    finally:
        consumer.close()


def dead_letters(config: dict[str, Any], topic: str) -> list[DeadLetterView]:
    views = []
    for message in read_topic(config, topic):
        raw = message.headers() or []
        pairs = raw.items() if isinstance(raw, dict) else raw
        headers = {str(k): _bytes(v) for k, v in pairs}
        views.append(
            DeadLetterView(
                key=message.key(),
                value=message.value() or b"",
                stage=headers.get(STAGE_HEADER, b"").decode(),
                reason=headers.get(REASON_HEADER, b"").decode(),
                headers=headers,
            )
        )
    return views


def _bytes(value: str | bytes | None) -> bytes:
    return value.encode() if isinstance(value, str) else value or b""


async def materialized_xp(
    client: TimeBackClient, students: list[str], app_id: str | None = None
) -> dict[str, float]:
    """Each student's XP total from ``GET /xp/1.0/users/{id}/entries`` (all pages)."""
    totals: dict[str, float] = {}
    for student in students:
        total, offset = 0.0, 0
        while True:
            page = await client.xp_entries(student, application_id=app_id, limit=100, offset=offset)
            entries = page.get("entries", [])
            total += sum(float(entry["value"]) for entry in entries)
            offset += len(entries)
            if not entries or offset >= int(page.get("total", 0)):
                break
        totals[student] = total
    return totals


@dataclass
class Reconciliation:
    expected_xp: dict[str, float]
    materialized_xp: dict[str, float]
    planted: Counter[tuple[str, str]] = field(default_factory=Counter)
    dead_lettered: Counter[tuple[str, str]] = field(default_factory=Counter)
    missing: list[PlannedRecord] = field(default_factory=list)  # planted, not in the DLQ
    wrong_reason: list[tuple[PlannedRecord, DeadLetterView]] = field(default_factory=list)
    unexpected: list[DeadLetterView] = field(default_factory=list)  # DLQ'd, not planted

    @property
    def xp_mismatches(self) -> dict[str, tuple[float, float]]:
        return {
            s: (want, self.materialized_xp.get(s, 0.0))
            for s, want in self.expected_xp.items()
            if abs(want - self.materialized_xp.get(s, 0.0)) > 1e-6
        }

    @property
    def ok(self) -> bool:
        return not (self.xp_mismatches or self.missing or self.wrong_reason or self.unexpected)


def reconcile(
    plan: TrafficPlan, xp: dict[str, float], letters: list[DeadLetterView]
) -> Reconciliation:
    result = Reconciliation(expected_xp=plan.expected_xp(), materialized_xp=xp)
    by_value: dict[bytes, list[DeadLetterView]] = {}
    for letter in letters:
        by_value.setdefault(letter.value, []).append(letter)
        result.dead_lettered[(letter.stage, letter.reason)] += 1
    for record in plan.invalid():
        result.planted[record.expected_reason or ("", "")] += 1
        found = by_value.get(record.value)
        if not found:
            result.missing.append(record)
            continue
        letter = found.pop()
        if (letter.stage, letter.reason) != record.expected_reason:
            result.wrong_reason.append((record, letter))
    result.unexpected = [letter for group in by_value.values() for letter in group]
    return result
