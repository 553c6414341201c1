"""Every event the sandbox received, with its fate; the statistics are computed from it.

One ``Receipt`` per event (an envelope of two events makes two). Fates:

- ``rejected_at_validation``: answered 400 (or 415), never processed;
- ``pending``: answered 202, waiting for processing;
- ``processed``: counted (a fact, and an XP entry for XP GradeEvents);
- ``replaced``: was processed, then a later eventTime for the same object replaced its fact;
- ``superseded``: an earlier eventTime than the fact already there: not counted;
- ``ignored``: an AssessmentItemEvent other than Completed;
- ``rejected``: dropped in processing, with a reason (``course_not_owned`` ...);
- ``duplicate`` / ``duplicate_mismatch``: an id seen before (same body / a different body).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Final

ACCEPTED_FATES: Final = frozenset(
    {"pending", "processed", "replaced", "superseded", "ignored", "rejected", "duplicate",
     "duplicate_mismatch"}
)  # fmt: skip
FATES: Final = ACCEPTED_FATES | {"rejected_at_validation"}


@dataclass
class Receipt:
    seq: int
    client_id: str
    app_id: str
    received_at: str
    status: int  # the HTTP status of the reply
    fate: str
    body: Any  # the event as received (or the raw text when it did not parse)
    id: str | None = None  # the event id, when it has a string one
    type: str | None = None
    action: str | None = None
    reason: str | None = None  # processing rejections and duplicates
    issues: list[dict[str, str]] | None = None  # validation rejections
    processed_at: str | None = None
    student_id: str | None = None
    course_id: str | None = None
    enrollment_id: str | None = None
    xp_entry: dict[str, Any] | None = None
    duplicate_of: int | None = None  # seq of the receipt this one repeats
    replaced_by: int | None = None  # seq of the receipt whose fact replaced this one's
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        out = {
            k: v for k, v in asdict(self).items() if k not in ("body", "extra") and v is not None
        }
        return out

    def full(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "extra"}


@dataclass(frozen=True, slots=True)
class Taken:
    """One ``POST /events`` the sandbox accepted: when (``time.monotonic()`` of the sandbox's
    process) and how many events it carried. The rate-limit trials read the request rate the
    API saw from these, not from the relay's own counts."""

    at: float
    events: int


class Journal:
    """Receipts in arrival order, an index by event id, and the accepted requests."""

    def __init__(self) -> None:
        self.receipts: list[Receipt] = []
        self.by_id: dict[str, list[Receipt]] = {}
        self.taken: list[Taken] = []

    def reset(self) -> None:
        self.receipts.clear()
        self.by_id.clear()
        self.taken.clear()

    def took(self, events: int) -> None:
        """An events request was accepted (2xx), carrying ``events`` events."""
        self.taken.append(Taken(time.monotonic(), events))

    def add(self, receipt: Receipt) -> Receipt:
        self.receipts.append(receipt)
        if receipt.id is not None:
            self.by_id.setdefault(receipt.id, []).append(receipt)
        return receipt

    def next_seq(self) -> int:
        return len(self.receipts) + 1

    def first_accepted(self, event_id: str) -> Receipt | None:
        """The receipt that owns this id: the first one accepted (duplicates point at it)."""
        for receipt in self.by_id.get(event_id, ()):
            if receipt.fate != "rejected_at_validation":
                return receipt
        return None

    def primary(self, event_id: str) -> Receipt | None:
        """The receipt ``GET events/{id}`` shows: the first accepted, else the first received."""
        receipts = self.by_id.get(event_id)
        if not receipts:
            return None
        return self.first_accepted(event_id) or receipts[0]

    def stats(self) -> dict[str, Any]:
        fates = Counter(r.fate for r in self.receipts)
        rejected_validation = fates["rejected_at_validation"]
        return {
            "received": len(self.receipts),
            "accepted": len(self.receipts) - rejected_validation,
            "rejected_at_validation": rejected_validation,
            "rejected_at_processing": fates["rejected"],
            "duplicates": fates["duplicate"] + fates["duplicate_mismatch"],
            "pending": fates["pending"],
            "processed": fates["processed"] + fates["replaced"],
            "by_fate": {fate: fates[fate] for fate in sorted(fates)},
        }
