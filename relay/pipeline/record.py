"""``SourceRecord``: one Kafka record as the pipeline sees it, from the agent to its dead letter;
``Prepared``: the same record once the dispatcher has decoded and keyed it.

Its own module because both the stages and the dead-letter writer speak of it (and neither
should import the other for it). Both are immutable (named tuples): what the record went
through travels in ``Prepared``, never written back onto the transport record.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any, NamedTuple

from relay.contract.activity import Activity
from relay.errors import Rejection
from relay.resilience import Attempts


class SourceRecord(NamedTuple):
    """One Kafka record as the pipeline sees it (faust's event stays with the agent).

    A named tuple, not a frozen dataclass: as immutable, and made for every record read at a
    quarter of the cost (a frozen dataclass sets each field through ``object.__setattr__``).
    Records are never compared (``handle`` would take part)."""

    topic: str
    partition: int
    offset: int
    timestamp: float | None  # Kafka timestamp, seconds
    key: bytes | None
    value: bytes
    headers: Sequence[tuple[str, bytes | None]] = ()  # None: a header without a value
    handle: Any = None  # the transport's own handle (faust's event)

    def size(self) -> int:
        """Bytes this record holds (key, value, headers): what RELAY_MAX_PENDING_BYTES counts."""
        size = len(self.key or b"") + len(self.value)
        if self.headers:
            size += sum(len(k) + len(v or b"") for k, v in self.headers)
        return size


class Prepared(NamedTuple):
    """A record decoded once, in the window (or rejected while decoding), ready to process."""

    record: SourceRecord
    decoded: Activity | Rejection
    attempts: Attempts | None = None  # the registry lookups decoding took (None: it took none)

    @property
    def order_key(self) -> Hashable:
        """Records of one student run in order; undecodable ones by their Kafka key (or
        partition)."""
        decoded = self.decoded
        if not isinstance(decoded, Rejection):
            return ("student", decoded.student_id)
        record = self.record
        return ("key", record.key) if record.key else ("partition", record.topic, record.partition)
