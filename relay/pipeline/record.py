"""``SourceRecord``: one Kafka record as the pipeline sees it, from the agent to its dead letter;
``Prepared``: the same record once the dispatcher has decoded and keyed it.

Its own module because both the stages and the dead-letter writer speak of it (and neither
should import the other for it). Both are immutable: what the record went through travels in
``Prepared``, never written back onto the transport record.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from relay.contract.activity import Activity
from relay.errors import Rejection
from relay.resilience import Attempts


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """One Kafka record as the pipeline sees it (faust's event stays with the agent)."""

    topic: str
    partition: int
    offset: int
    timestamp: float | None  # Kafka timestamp, seconds
    key: bytes | None
    value: bytes
    headers: Sequence[tuple[str, bytes | None]] = ()  # None: a header without a value
    handle: Any = field(default=None, compare=False)  # the transport's own handle (faust's event)

    def size(self) -> int:
        """Bytes this record holds (key, value, headers): what RELAY_MAX_PENDING_BYTES counts."""
        headers = sum(len(k) + len(v or b"") for k, v in self.headers)
        return len(self.key or b"") + len(self.value) + headers


@dataclass(frozen=True, slots=True)
class Prepared:
    """A record decoded once, in the window (or rejected while decoding), ready to process."""

    record: SourceRecord
    decoded: Activity | Rejection
    attempts: Attempts = field(default_factory=Attempts)  # the registry lookups decoding took

    @property
    def order_key(self) -> Hashable:
        """Records of one student run in order; undecodable ones by their Kafka key (or
        partition)."""
        if not isinstance(self.decoded, Rejection):
            return ("student", self.decoded.student_id)
        record = self.record
        return ("key", record.key) if record.key else ("partition", record.topic, record.partition)
