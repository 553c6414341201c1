"""``SourceRecord``: one Kafka record as the pipeline sees it, from the agent to its dead letter.

Its own module because both the stages and the dead-letter writer speak of it (and neither
should import the other for it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from relay.contract.activity import Activity
from relay.errors import Rejection
from relay.resilience import Attempts


@dataclass(slots=True)
class SourceRecord:
    """One Kafka record as the pipeline sees it (faust's event stays with the agent)."""

    topic: str
    partition: int
    offset: int
    timestamp: float | None  # Kafka timestamp, seconds
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)  # None: no value
    handle: Any = None  # the transport's own handle (faust's event), acknowledged when done
    # Decoded when the dispatcher keys the record (its student is its order key), in the window.
    predecoded: Activity | Rejection | None = None
    decode_attempts: Attempts = field(default_factory=Attempts)  # registry lookups when keyed

    def size(self) -> int:
        """Bytes this record holds (key, value, headers): what RELAY_MAX_PENDING_BYTES counts."""
        headers = sum(len(k) + len(v or b"") for k, v in self.headers)
        return len(self.key or b"") + len(self.value) + headers

    @property
    def order_key(self) -> object:
        """Records of one student run in order; undecodable ones by their Kafka key (or
        partition). Only meaningful once decoded: the dispatcher keys records in offset order."""
        decoded = self.predecoded
        if decoded is not None and not isinstance(decoded, Rejection):
            return ("student", decoded.student_id)
        return ("key", self.key) if self.key else ("partition", self.topic, self.partition)
