"""Reconciliation by event id: what was produced, what the sandbox received, what the DLQ holds.

- ``Expected``: one produced record and its fate. A valid record must reach the sandbox: every
  Caliper event id it maps to (deterministic: record name, producer ``event_id``, index; the
  event count comes from mapping the record offline, exactly as the relay maps it). A planted
  record must reach the dead-letter topic with its (stage, reason); it is matched by its value
  bytes, which the DLQ keeps unchanged.
- ``SandboxWatch``: the sandbox journal (every receipt: event id and fate), read incrementally
  from the sandbox's own loop.
- ``DlqWatch``: the dead-letter topic, consumed incrementally from the beginning.
- ``reconcile`` turns the three into ``Figures``: records, lost, duplicates, DLQ'd by reason.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from relay import wiring
from relay.caliper.ids import event_id
from relay.config import DEFAULT_ID_NAMESPACE, DEFAULT_SUBJECTS, PRODUCTION_BASE_URL, Settings
from relay.contract.activity import NAMESPACE
from relay.contract.build import Checks
from relay.contract.catalogue import default_catalogue
from relay.contract.decode import Decoder
from relay.tools.traffic import TrafficPlan
from tests.reliability.harness import ACTIVITY_BASE, APP_ID, CLIENT_ID

STAGE, REASON = "relay.stage", "relay.reason"
# Fates of a receipt the API accepted (202): anything but a validation refusal.
REFUSED = "rejected_at_validation"


@dataclass(frozen=True)
class Expected:
    """A produced record: valid (``reason`` None, ``event_ids`` to see at the sandbox) or
    planted (``reason`` the (stage, reason) of its dead letter)."""

    key: bytes | None
    value: bytes
    event_id: str  # the producer's
    record_type: str  # short name
    kind: str  # record type for a valid record, the planted kind otherwise
    reason: tuple[str, str] | None = None
    event_ids: tuple[str, ...] = ()  # Caliper ids a valid record maps to

    @property
    def valid(self) -> bool:
        return self.reason is None

    def first_event_id(self) -> str:
        """The id its first event would have: a planted record must never reach the API."""
        return event_id(
            DEFAULT_ID_NAMESPACE,
            f"{NAMESPACE}.{self.record_type}",
            self.event_id,
            0,
        )


def mapping_settings() -> Settings:
    """The mapping settings of the relays under test, whatever RELAY_* this process has."""
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        app_id=APP_ID,
        client_id=CLIENT_ID,
        activity_base_url=ACTIVITY_BASE,
        api_base_url="https://unused.example",
        iri_base=PRODUCTION_BASE_URL,
        id_namespace=DEFAULT_ID_NAMESPACE,
        subjects=DEFAULT_SUBJECTS,
        course_map=None,
        preflight="off",
    )


def caliper_ids(values: list[bytes]) -> list[tuple[str, ...]]:
    """The Caliper event ids each valid value maps to (decoded and mapped offline)."""
    settings = mapping_settings()
    decoder = Decoder(default_catalogue(), Checks(max_clock_skew=86400.0))
    mapper = wiring.mapper(settings, wiring.course_resolver(settings, None))

    async def run() -> list[tuple[str, ...]]:
        out = []
        for value in values:
            events = await mapper.map(decoder.decode_sync(value))
            out.append(tuple(e.id for e in events))
        return out

    return asyncio.run(run())


def expectations(plan: TrafficPlan, extra: Iterable[Expected] = ()) -> list[Expected]:
    """The plan's records (valid ones with their Caliper ids) followed by ``extra``."""
    valid = [r for r in plan.records if r.invalid_kind is None]
    ids = dict(zip((r.event_id for r in valid), caliper_ids([r.value for r in valid]), strict=True))
    out = [
        Expected(
            r.key,
            r.value,
            r.event_id,
            r.record_type,
            r.invalid_kind or r.record_type,
            r.expected_reason,
            ids.get(r.event_id, ()),
        )
        for r in plan.records
    ]
    return out + list(extra)


def with_ids(records: Iterable[Expected]) -> list[Expected]:
    """Fill in the Caliper ids of valid records built by hand."""
    records = list(records)
    valid = [r for r in records if r.valid and not r.event_ids]
    ids = dict(zip((id(r) for r in valid), caliper_ids([r.value for r in valid]), strict=True))
    return [
        Expected(r.key, r.value, r.event_id, r.record_type, r.kind, r.reason, ids[id(r)])
        if id(r) in ids
        else r
        for r in records
    ]


# -- the sandbox ---------------------------------------------------------------------------------


class SandboxWatch:
    """Receipts of a sandbox (``SandboxHandle``), read incrementally from its loop thread."""

    def __init__(self, sandbox: Any) -> None:
        self.sandbox = sandbox
        self.receipts: list[tuple[str | None, str, int]] = []  # (event id, fate, status)
        self.accepted: Counter[str] = Counter()  # event id -> accepted receipts
        self.refused: Counter[str] = Counter()  # event id -> 400 receipts
        self.fates: Counter[str] = Counter()

    def poll(self) -> None:
        start = len(self.receipts)

        def read(box: Any) -> list[tuple[str | None, str, int]]:
            return [(r.id, r.fate, r.status) for r in box.journal.receipts[start:]]

        new = self.sandbox.thread.run_in_loop(read)
        self.receipts.extend(new)
        for ident, fate, _ in new:
            self.fates[fate] += 1
            if ident is None:
                continue
            (self.refused if fate == REFUSED else self.accepted)[ident] += 1

    def delivered(self, wanted: Iterable[str]) -> int:
        return sum(1 for i in wanted if self.accepted[i])


# -- the dead-letter topic -----------------------------------------------------------------------


@dataclass(frozen=True)
class Letter:
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]
    offset: int

    @property
    def reason(self) -> tuple[str, str]:
        return (
            self.headers.get(STAGE, b"").decode(errors="replace"),
            self.headers.get(REASON, b"").decode(errors="replace"),
        )


class DlqWatch:
    """Every record of the dead-letter topic, consumed from the beginning as it grows."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.bootstrap = bootstrap
        self.letters: list[Letter] = []
        self._carried = 0  # letters read from the topic before it was deleted (``reopen``)
        self.consumer = self._open()

    def _open(self) -> Consumer:
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": f"reliability-dlq-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "fetch.max.bytes": 8 * 1024 * 1024,
                "max.partition.fetch.bytes": 8 * 1024 * 1024,
                "log_level": 2,  # quiet while a broker restart is under test
            }
        )
        self.partitions = self._partitions(consumer, self.topic)
        consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in self.partitions])
        return consumer

    def reopen(self) -> None:
        """The topic was deleted and created again: read the new one from its beginning (its
        offsets start over), keeping the letters read from the old one."""
        self.consumer.close()
        self._carried = len(self.letters)
        self.consumer = self._open()

    @staticmethod
    def _partitions(consumer: Consumer, topic: str, timeout: float = 30.0) -> list[int]:
        """The topic's partitions, once its metadata has them: right after the topic is created
        (a loaded broker) the metadata can list it with none, and a watch assigned to no
        partition sees no dead letter at all (nor does ``drain`` notice: it reads up to 0)."""
        stop = time.monotonic() + timeout
        while True:
            metadata = consumer.list_topics(topic, timeout=timeout).topics[topic]
            if metadata.partitions and metadata.error is None:
                return sorted(metadata.partitions)
            if time.monotonic() > stop:
                raise AssertionError(f"{topic}: no partitions in the metadata after {timeout}s")
            time.sleep(0.2)

    def poll(self, timeout: float = 0.1) -> None:
        while True:
            batch = self.consumer.consume(500, timeout)
            for message in batch:
                if message.error():
                    continue
                raw = message.headers() or []
                pairs = raw.items() if isinstance(raw, dict) else raw
                headers = {str(k): _bytes(v) for k, v in pairs}
                self.letters.append(
                    Letter(message.key(), message.value() or b"", headers, message.offset() or 0)
                )
            if len(batch) < 500:
                return

    def drain(self, timeout: float = 30.0) -> None:
        """Read up to the end offsets as they are now."""
        ends = {
            p: self.consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout)[1]
            for p in self.partitions
        }
        total = self._carried + sum(ends.values())
        stop = time.monotonic() + timeout
        while len(self.letters) < total and time.monotonic() < stop:
            self.poll(0.5)
        if len(self.letters) < total:
            raise AssertionError(f"DLQ: read {len(self.letters)} of {total} records")

    def close(self) -> None:
        self.consumer.close()


def _bytes(value: str | bytes | None) -> bytes:
    return value.encode() if isinstance(value, str) else value or b""


# -- the figures ---------------------------------------------------------------------------------


@dataclass
class Figures:
    """What one test measured; ``ok`` when nothing was lost or misfiled."""

    test: str
    trials: int = 1  # kills, broker restarts, faults... of the test
    records: int = 0
    valid: int = 0
    planted: int = 0
    events_expected: int = 0
    events_delivered: int = 0  # distinct expected ids the sandbox accepted
    lost: int = 0  # valid records with an event id the sandbox never accepted
    duplicates: int = 0  # receipts beyond the first of an id (redeliveries)
    duplicate_records: int = 0  # records with at least one duplicated event
    duplicate_mismatch: int = 0  # a repeated id with a different body: ids not deterministic
    sandbox_refused: int = 0  # 400s for valid records' events (mapping bugs)
    planted_leaked: int = 0  # planted records whose first event reached the sandbox
    dlq_total: int = 0
    dlq_by_reason: Counter[str] = field(default_factory=Counter)
    dlq_missing: int = 0  # planted, not dead-lettered
    dlq_wrong_reason: int = 0
    dlq_wrong_key: int = 0  # dead letters whose key is not the original record's
    dlq_unexpected: int = 0  # dead letters of valid records (or of nothing produced)
    dlq_duplicates: int = 0  # dead letters beyond the first of a planted record
    seconds: float = 0.0
    notes: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (
            self.lost
            or self.duplicate_mismatch
            or self.sandbox_refused
            or self.planted_leaked
            or self.dlq_missing
            or self.dlq_wrong_reason
            or self.dlq_wrong_key
            or self.dlq_unexpected
        )

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "dlq_by_reason"}
        out["dlq_by_reason"] = dict(sorted(self.dlq_by_reason.items()))
        out["ok"] = self.ok
        return out

    def line(self) -> str:
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(self.dlq_by_reason.items())) or "-"
        return (
            f"{self.test}: trials={self.trials} records={self.records} (valid {self.valid}, "
            f"planted {self.planted}) events={self.events_delivered}/{self.events_expected} "
            f"lost={self.lost} duplicates={self.duplicates} ({self.duplicate_records} records) "
            f"dlq={self.dlq_total} [{reasons}] dlq_duplicates={self.dlq_duplicates} "
            f"{self.seconds:.1f}s"
        )


def reconcile(
    test: str,
    expected: list[Expected],
    sandbox: SandboxWatch,
    letters: list[Letter],
    *,
    trials: int = 1,
) -> Figures:
    valid = [e for e in expected if e.valid]
    planted = [e for e in expected if not e.valid]
    f = Figures(test, trials=trials, records=len(expected), valid=len(valid))
    f.planted = len(planted)
    for record in valid:
        f.events_expected += len(record.event_ids)
        got = [sandbox.accepted[i] for i in record.event_ids]
        f.events_delivered += sum(1 for n in got if n)
        if not all(got):
            f.lost += 1
            if len(f.problems) < 10:
                f.problems.append(f"lost {record.kind} {record.event_id}")
        extra = sum(max(n - 1, 0) for n in got)
        f.duplicates += extra
        f.duplicate_records += 1 if extra else 0
        f.sandbox_refused += sum(1 for i in record.event_ids if sandbox.refused[i])
    f.duplicate_mismatch = sandbox.fates["duplicate_mismatch"]
    f.planted_leaked = sum(1 for e in planted if sandbox.accepted[e.first_event_id()])

    f.dlq_total = len(letters)
    by_value: dict[bytes, list[Letter]] = {}
    for letter in letters:
        by_value.setdefault(letter.value, []).append(letter)
        f.dlq_by_reason["/".join(letter.reason)] += 1
    for record in planted:
        found = by_value.pop(record.value, [])
        if not found:
            f.dlq_missing += 1
            if len(f.problems) < 20:
                f.problems.append(f"not dead-lettered: {record.kind} (want {record.reason})")
            continue
        f.dlq_duplicates += len(found) - 1
        f.dlq_wrong_key += sum(1 for x in found if x.key != record.key)
        wrong = [x for x in found if x.reason != record.reason]
        if wrong:
            f.dlq_wrong_reason += 1
            if len(f.problems) < 20:
                f.problems.append(
                    f"{record.kind}: dead-lettered as {wrong[0].reason}, want {record.reason}"
                )
    f.dlq_unexpected = sum(len(group) for group in by_value.values())
    for group in list(by_value.values())[:5]:
        f.problems.append(f"unexpected dead letter {group[0].reason}: {group[0].value[:40]!r}")
    return f
