"""After the 202 (docs/partner-api.md#sandbox-processing), against the roster as it is then.

1. Grade/Assessment/AssessmentItem events need a course that exists and belongs to the caller's
   app, a student that exists (any owner) and the caller's own edApp; otherwise ``rejected`` with
   ``course_unknown``, ``course_not_owned``, ``student_unknown`` or ``edapp_mismatch``.
   AssessmentItemEvents other than Completed are ``ignored`` first.
2. The student's active enrollment in a class of the course (its dates around eventTime) is
   attributed; else ``enrollment_id`` is null and the event still counts for the course.
3. One fact per ``object.id``: a later eventTime replaces the fact (the old receipt becomes
   ``replaced`` and its XP entry goes), an earlier one is ``superseded``.
4. An XP GradeEvent writes a ledger entry.

Duplicates never get here: intake marks them (``events.py``).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final
from urllib.parse import unquote

from relay.caliper.ids import format_time
from relay.sandbox.config import Delay
from relay.sandbox.journal import Receipt
from relay.sandbox.ledger import Ledger
from relay.sandbox.schemas import parse_date
from relay.sandbox.store import Roster

GRADED: Final = frozenset({"GradeEvent", "AssessmentEvent", "AssessmentItemEvent"})


@dataclass(frozen=True, slots=True)
class Fact:
    seq: int  # the receipt whose event made it
    time: datetime


class Rejected(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def entity_id(value: Any) -> str | None:
    """The id of an entity given as an object or as a bare IRI."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) else None


class Processor:
    """Runs each accepted event once, ``delay`` after it arrived (or now, on request)."""

    def __init__(
        self,
        roster: Roster,
        ledger: Ledger,
        receipts: Callable[[int], Receipt],
        iri_base: str,
        delay: Delay,
        rng: random.Random,
    ) -> None:
        self.roster = roster
        self.ledger = ledger
        self._receipt = receipts
        self.delay = delay
        self._rng = rng
        self._prefixes = {
            "course": f"{iri_base}/rostering/1.0/courses/",
            "user": f"{iri_base}/rostering/1.0/users/",
            "app": f"{iri_base}/applications/1.0/",
        }
        self.facts: dict[str, Fact] = {}
        self._timers: dict[int, asyncio.TimerHandle] = {}

    # --- scheduling ---------------------------------------------------------------------------

    def schedule(self, receipt: Receipt) -> None:
        delay = self.delay.sample(self._rng)
        loop = asyncio.get_running_loop()
        self._timers[receipt.seq] = loop.call_later(delay, self._fire, receipt)

    def _fire(self, receipt: Receipt) -> None:
        self._timers.pop(receipt.seq, None)
        self.process(receipt)

    def run_pending(self) -> int:
        """Process every pending event now, in arrival order; how many there were."""
        seqs = sorted(self._timers)
        for seq in seqs:
            self._timers.pop(seq).cancel()
            self.process(self._receipt(seq))
        return len(seqs)

    def reset(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self.facts.clear()

    # --- one event ----------------------------------------------------------------------------

    def process(self, receipt: Receipt) -> None:
        if receipt.fate != "pending":
            return
        receipt.processed_at = format_time(datetime.now(UTC))
        event = receipt.body
        if receipt.type not in GRADED:
            receipt.fate = "processed"
            return
        if receipt.type == "AssessmentItemEvent" and receipt.action != "Completed":
            receipt.fate = "ignored"
            receipt.reason = "only Completed AssessmentItemEvents are processed"
            return
        try:
            course = self._course(event, receipt)
            self._student(event, receipt)
            self._edapp(event, receipt)
        except Rejected as exc:
            receipt.fate, receipt.reason = "rejected", exc.reason
            receipt.extra["message"] = str(exc)
            return
        when = parse_time(event.get("eventTime")) or datetime.now(UTC)
        receipt.enrollment_id = self._enrollment(receipt, when)
        self._record_fact(receipt, event, course, when)

    def _course(self, event: Mapping[str, Any], receipt: Receipt) -> dict[str, Any]:
        ext = event.get("extensions") or {}
        iri = entity_id(ext.get("course"))
        course_id = self._local_id(iri, "course")
        receipt.course_id = course_id
        record = self.roster.get("courses", course_id) if course_id else None
        if record is None:
            raise Rejected("course_unknown", f"no course {course_id or iri!r}")
        if record.owner != receipt.app_id:
            raise Rejected(
                "course_not_owned", f"course {course_id!r} belongs to another application"
            )
        return record.data

    def _student(self, event: Mapping[str, Any], receipt: Receipt) -> None:
        if receipt.type == "GradeEvent":
            obj = event.get("object")
            iri = entity_id(obj.get("assignee")) if isinstance(obj, Mapping) else None
        else:
            iri = entity_id(event.get("actor"))
        student_id = self._local_id(iri, "user")
        receipt.student_id = student_id
        if not student_id or self.roster.get("users", student_id) is None:
            raise Rejected("student_unknown", f"no user {student_id or iri!r}")

    def _edapp(self, event: Mapping[str, Any], receipt: Receipt) -> None:
        app = self._local_id(entity_id(event.get("edApp")), "app")
        if app != receipt.app_id:
            raise Rejected(
                "edapp_mismatch", f"edApp {app!r} is not the caller's app {receipt.app_id!r}"
            )

    def _local_id(self, iri: str | None, kind: str) -> str | None:
        prefix = self._prefixes[kind]
        if iri is None or not iri.startswith(prefix):
            return None
        return unquote(iri[len(prefix) :]) or None

    def _enrollment(self, receipt: Receipt, when: datetime) -> str | None:
        classes = {
            c["sourcedId"] for c in self.roster.referencing("classes", "course", receipt.course_id)
        }
        matches = [
            e
            for e in self.roster.referencing("enrollments", "user", receipt.student_id)
            if e["class"]["sourcedId"] in classes
            and e.get("status", "active") == "active"
            and _within(when, e.get("beginDate"), e.get("endDate"))
        ]
        if not matches:
            return None
        matches.sort(key=lambda e: (e.get("primary") not in (True, "true"), e["sourcedId"]))
        return str(matches[0]["sourcedId"])

    def _record_fact(
        self,
        receipt: Receipt,
        event: Mapping[str, Any],
        course: Mapping[str, Any],
        when: datetime,
    ) -> None:
        # With dedupe off a repeated id is a new fact of its own, so it counts twice.
        key = f"{entity_id(event.get('object'))}{receipt.extra.get('fact_key_suffix', '')}"
        existing = self.facts.get(key)
        if existing is not None and existing.time > when:
            receipt.fate = "superseded"
            receipt.reason = f"receipt {existing.seq} has a later eventTime for this object"
            return
        if existing is not None:
            old = self._receipt(existing.seq)
            old.fate, old.replaced_by = "replaced", receipt.seq
            if old.xp_entry is not None:
                self.ledger.remove(old.xp_entry["id"])
        self.facts[key] = Fact(receipt.seq, when)
        receipt.fate = "processed"
        receipt.xp_entry = self._xp_entry(receipt, event, course, when)

    def _xp_entry(
        self, receipt: Receipt, event: Mapping[str, Any], course: Mapping[str, Any], when: datetime
    ) -> dict[str, Any] | None:
        if receipt.type != "GradeEvent":
            return None
        generated = event.get("generated")
        if not isinstance(generated, Mapping):
            return None
        score_type = (generated.get("extensions") or {}).get("scoreType")
        value = generated.get("scoreGiven")
        if score_type != "XP" or isinstance(value, bool) or not isinstance(value, int | float):
            return None
        entry = {
            "value": float(value),
            "userId": receipt.student_id,
            "applicationId": receipt.app_id,
            "sourceEventId": receipt.id,
            "dateGenerated": event.get("eventTime"),
            "subject": (event.get("extensions") or {}).get("subject"),
            "courseName": course.get("title"),
        }
        return self.ledger.add(entry, when)


def _within(when: datetime, begin: Any, end: Any) -> bool:
    """Whether ``when`` lies in [begin, end]; a date bound covers its whole (UTC) day."""
    for bound, after in ((parse_date(begin), True), (parse_date(end), False)):
        if bound is None:
            continue
        if isinstance(bound, datetime):
            moment = bound if bound.tzinfo else bound.replace(tzinfo=UTC)
            if (when < moment) if after else (when > moment):
                return False
        elif isinstance(bound, date):
            day = when.astimezone(UTC).date()
            if (day < bound) if after else (day > bound):
                return False
    return True
