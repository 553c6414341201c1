"""Synthetic activity traffic: a seeded, realistic plan of records and what each should become.

Several students work in several courses: each opens a session, views resources, answers
questions, progresses through assessments, earns XP, and logs out. ``--invalid-ratio`` plants
deliberately bad records of several kinds, each with the dead-letter reason the relay must give.

The plan is pure data (no Kafka): ``relay produce``, ``relay demo``, the benchmark and the
reliability suite all reconcile against it by producer ``event_id``.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from relay.contract import encode
from relay.contract.activity import ACTIVITY_TYPES, require_every_type
from relay.contract.build import Checks

Framing = Literal["single-object", "confluent"]
RECORD_TYPES = tuple(cls.__name__ for cls in ACTIVITY_TYPES)  # short names, the contract's order
# What a typical learning session emits, per activity step (sessions are added around them).
WEIGHTS = {"XpEarned": 4, "QuestionAnswered": 6, "AssessmentProgress": 2, "ResourceViewed": 3}

# Lets planted records through the producer-side checks that encode applies.
_PERMISSIVE = Checks(allow_negative_xp=True)
# Planted invalid records: kind -> (stage, reason) the relay must dead-letter them with.
INVALID_KINDS: dict[str, tuple[str, str]] = {
    "bad-framing": ("decode", "unknown-framing"),
    "unknown-fingerprint": ("decode", "unknown-fingerprint"),
    "truncated-avro": ("decode", "avro-decode-error"),
    "negative-xp": ("validate", "invalid-field"),
    "unknown-subject": ("enrich", "subject-invalid"),
}


@dataclass(frozen=True)
class Course:
    id: str
    title: str
    subject: str


DEMO_COURSES = (
    Course("demo-math-5", "Math 5", "Math"),
    Course("demo-reading-5", "Reading 5", "Reading"),
    Course("demo-science-5", "Science 5", "Science"),
)


@dataclass(frozen=True)
class PlannedRecord:
    """One Kafka record to produce, and the fate the relay must give it."""

    key: bytes  # the student id: Kafka keeps one student's records in one partition
    value: bytes
    event_id: str
    record_type: str
    student_id: str
    invalid_kind: str | None = None  # None: valid, must be delivered
    xp: float = 0.0  # XP this record adds to the student's ledger when delivered

    @property
    def expected_reason(self) -> tuple[str, str] | None:
        return INVALID_KINDS[self.invalid_kind] if self.invalid_kind else None


@dataclass
class TrafficPlan:
    records: list[PlannedRecord] = field(default_factory=list)
    students: list[str] = field(default_factory=list)
    courses: tuple[Course, ...] = DEMO_COURSES
    enrollments: dict[str, str] = field(default_factory=dict)  # student -> course id

    def expected_xp(self) -> dict[str, float]:
        totals = dict.fromkeys(self.students, 0.0)
        for record in self.records:
            if record.invalid_kind is None:
                totals[record.student_id] += record.xp
        return totals

    def invalid(self) -> list[PlannedRecord]:
        return [r for r in self.records if r.invalid_kind]

    def counts(self) -> Counter[str]:
        return Counter(r.invalid_kind or r.record_type for r in self.records)


class TrafficGenerator:
    """Builds a TrafficPlan. Deterministic for a given seed (apart from encoding framing ids)."""

    def __init__(
        self,
        *,
        students: int = 20,
        types: tuple[str, ...] = RECORD_TYPES,
        invalid_ratio: float = 0.0,
        framing: Framing = "single-object",
        registry: Any = None,
        seed: int = 7,
        start: datetime | None = None,
        courses: tuple[Course, ...] = DEMO_COURSES,
    ) -> None:
        if not 0 <= invalid_ratio <= 1:
            raise ValueError(f"invalid_ratio: must be within [0, 1], got {invalid_ratio}")
        unknown = set(types) - set(RECORD_TYPES)
        if unknown:
            raise ValueError(f"types: unknown record types {sorted(unknown)}")
        self.rng = random.Random(seed)
        self.types = types
        self.invalid_ratio = invalid_ratio
        self.framing: Framing = framing
        self.registry = registry
        self.courses = courses
        self.start = start
        self.clock = start or datetime.now(UTC)
        self.step = 1.0  # mean seconds between records; plan() spreads them over an hour
        self.students = [
            str(uuid.UUID(int=self.rng.getrandbits(128), version=4)) for _ in range(students)
        ]
        self.enrollment = {s: self.rng.choice(courses) for s in self.students}

    def plan(self, count: int) -> TrafficPlan:
        """``count`` records whose activity times spread over the hour before ``start`` (default
        now), so none lies in the future however large the plan."""
        self.step = 3600.0 / max(count, 1)
        self.clock = (self.start or datetime.now(UTC)) - timedelta(hours=1)
        plan = TrafficPlan(
            students=list(self.students),
            courses=self.courses,
            enrollments={s: c.id for s, c in self.enrollment.items()},
        )
        plan.records.extend(self.records(count))
        return plan

    def records(self, count: int) -> Iterator[PlannedRecord]:
        open_sessions: dict[str, str] = {}
        for _ in range(count):
            student = self.rng.choice(self.students)
            if self.rng.random() < self.invalid_ratio:
                yield self._invalid(student)
            elif "SessionChanged" in self.types and student not in open_sessions:
                open_sessions[student] = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
                yield self._session(student, open_sessions[student], "LOGGED_IN")
            elif "SessionChanged" in self.types and self.rng.random() < 0.04:
                yield self._session(student, open_sessions.pop(student), "LOGGED_OUT")
            else:
                yield self._activity(student)

    # -- valid records -------------------------------------------------------------------------

    def _activity(self, student: str) -> PlannedRecord:
        kinds = [t for t in WEIGHTS if t in self.types] or ["SessionChanged"]
        kind = self.rng.choices(kinds, weights=[WEIGHTS.get(k, 1) for k in kinds])[0]
        if kind == "SessionChanged":
            return self._session(student, str(uuid.uuid4()), "LOGGED_IN")
        course = self.enrollment[student]
        fields = _STEP_FIELDS[kind](self, course)
        return self._record(
            kind, student, {**fields, "course_id": course.id, "subject": course.subject}
        )

    def _xp_fields(self, course: Course) -> dict[str, Any]:
        return {
            "activity": self._ref(course, "lessons"),
            "xp": float(self.rng.randint(1, 30)),
            "attempt": self.rng.choice([1, 1, 1, 2]),
        }

    def _answer_fields(self, course: Course) -> dict[str, Any]:
        started = self._tick(0)
        return {
            "item": self._ref(course, "items"),
            "assessment": self._ref(course, "quizzes"),
            "response": self.rng.choice("ABCD"),
            "correct": self.rng.random() < 0.7,
            "started_at": started,
            "ended_at": started + timedelta(seconds=20),
        }

    def _assessment_fields(self, course: Course) -> dict[str, Any]:
        action = self.rng.choice(["STARTED", "SUBMITTED"])
        started = self._tick(0) - timedelta(minutes=10)  # the quiz began before this record
        fields: dict[str, Any] = {
            "assessment": self._ref(course, "quizzes"),
            "action": action,
            "started_at": started,
        }
        if action == "SUBMITTED":
            total = self.rng.randint(5, 10)
            fields |= {
                "ended_at": started + timedelta(minutes=9),
                "total_questions": total,
                "correct_questions": self.rng.randint(0, total),
            }
        return fields

    def _view_fields(self, course: Course) -> dict[str, Any]:
        return {"resource": self._ref(course, "videos")}

    def _session(self, student: str, session_id: str, action: str) -> PlannedRecord:
        return self._record("SessionChanged", student, {"session_id": session_id, "action": action})

    def _record(
        self, kind: str, student: str, fields: dict[str, Any], checks: Checks | None = None
    ) -> PlannedRecord:
        event_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        value = {"event_id": event_id, "occurred_at": self._tick(), "student_id": student, **fields}
        payload = encode(kind, value, framing=self.framing, registry=self.registry, checks=checks)
        xp = float(fields["xp"]) if kind == "XpEarned" else 0.0
        return PlannedRecord(student.encode(), payload, event_id, kind, student, xp=xp)

    def _ref(self, course: Course, kind: str) -> dict[str, str]:
        n = self.rng.randint(1, 12)
        return {"id": f"{course.id}/{kind}/{n}", "name": f"{course.title} {kind[:-1]} {n}"}

    def _tick(self, seconds: float | None = None) -> datetime:
        step = self.rng.uniform(0.5, 1.5) * self.step if seconds is None else seconds
        self.clock += timedelta(seconds=step)
        return self.clock

    # -- planted invalid records ---------------------------------------------------------------

    def _invalid(self, student: str) -> PlannedRecord:
        """A planted bad record. The DLQ keeps original bytes, so these reconcile by value."""
        kind = self.rng.choice(list(INVALID_KINDS))
        course = self.enrollment[student]
        fields = {**self._xp_fields(course), "course_id": course.id, "subject": course.subject}
        if kind == "negative-xp":
            fields["xp"] = -fields["xp"]
        elif kind == "unknown-subject":
            fields["subject"] = "Astrology"
        record = self._record("XpEarned", student, fields, _PERMISSIVE)
        value = record.value
        if kind == "bad-framing":
            value = b"\x7f" + self.rng.randbytes(24)
        elif kind == "unknown-fingerprint":
            value = b"\xc3\x01" + self.rng.randbytes(8) + value[10:]
        elif kind == "truncated-avro":
            value = value[: len(value) // 2]
        return PlannedRecord(
            record.key, value, record.event_id, "XpEarned", student, invalid_kind=kind
        )


# The fields of each activity step, by record type; sessions are opened and closed around the
# steps (``records``), so SessionChanged has none and no weight.
_STEP_FIELDS: dict[str, Callable[[TrafficGenerator, Course], dict[str, Any]]] = {
    "XpEarned": TrafficGenerator._xp_fields,
    "QuestionAnswered": TrafficGenerator._answer_fields,
    "AssessmentProgress": TrafficGenerator._assessment_fields,
    "ResourceViewed": TrafficGenerator._view_fields,
}
require_every_type("relay.tools.traffic: _STEP_FIELDS", [*_STEP_FIELDS, "SessionChanged"])
require_every_type("relay.tools.traffic: WEIGHTS", [*WEIGHTS, "SessionChanged"])
