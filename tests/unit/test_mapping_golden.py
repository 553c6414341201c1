"""Golden files: the full Caliper JSON the relay makes for each record type and its variants.

``tests/golden/<case>.json`` holds the list of events one record becomes. The comparison is on
the exact payload bytes (key order, ``12.0`` floats, omitted nulls) as well as on the JSON value.
After a deliberate change, regenerate with
``UPDATE_GOLDEN=1 pytest tests/unit/test_mapping_golden.py`` and review the diff.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest

from relay.caliper.ids import app_iri
from relay.caliper.validate import TimeBackRules, check
from relay.config import DEFAULT_SUBJECTS
from relay.contract.activity import (
    Activity,
    ActivityRef,
    AssessmentAction,
    AssessmentProgress,
    QuestionAnswered,
    ResourceViewed,
    SessionAction,
    SessionChanged,
    XpEarned,
)
from relay.courses import CourseContext
from relay.mapping import MappingContext, map_activity

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
BASE = "https://api.alpha-1edtech.ai"
CTX = MappingContext(
    iri_base=BASE,
    app_iri=app_iri(BASE, "sandbox-app"),
    activity_base_url="https://app.example.com/activities",
    id_namespace=uuid.UUID("6f1d2c3a-8b4e-5f60-9a7b-c8d9e0f1a2b3"),
)
WHEN = datetime(2026, 1, 15, 14, 30, 0, 123_456, tzinfo=UTC)
STUDENT = "9a1f0c4e-2b3d-4e5f-8a9b-0c1d2e3f4a5b"
MATH = CourseContext("math-g5", "Math")
LESSON = ActivityRef("math5/fractions-3", "Fractions 3")
QUIZ = ActivityRef("https://app.example.com/quizzes/q4", "Quiz 4")
ITEM = ActivityRef("https://app.example.com/quizzes/q4/items/3", "Item 3")


def _id(n: int) -> str:
    return f"0f8e7c2a-1234-4567-89ab-{n:012d}"


CASES: dict[str, tuple[Activity, CourseContext]] = {
    "xp_earned": (
        XpEarned(_id(1), WHEN, STUDENT, LESSON, xp=12.0, attempt=2), MATH
    ),
    "xp_earned_no_name": (
        XpEarned(_id(2), WHEN, STUDENT, ActivityRef("https://x.org/l/1", ""), xp=0.5), MATH
    ),
    "assessment_started": (
        AssessmentProgress(
            _id(3), WHEN, STUDENT, QUIZ, AssessmentAction.STARTED, total_questions=10
        ),
        CourseContext("math-g5", "FastMath"),
    ),
    "assessment_submitted": (
        AssessmentProgress(
            _id(4), WHEN, STUDENT, QUIZ, AssessmentAction.SUBMITTED, attempt=2,
            started_at=WHEN - timedelta(minutes=12), total_questions=10, correct_questions=7,
        ),
        MATH,
    ),
    "assessment_paused": (
        AssessmentProgress(_id(5), WHEN, STUDENT, QUIZ, AssessmentAction.PAUSED), MATH
    ),
    "question_answered_correct": (
        QuestionAnswered(
            _id(6), WHEN, STUDENT, ITEM, assessment=QUIZ, response="3/4", correct=True,
            started_at=WHEN - timedelta(seconds=40),
        ),
        MATH,
    ),
    "question_answered_wrong": (
        QuestionAnswered(_id(7), WHEN, STUDENT, ITEM, correct=False, attempt=3), MATH
    ),
    "question_answered_ungraded": (
        QuestionAnswered(_id(8), WHEN, STUDENT, ITEM, assessment=QUIZ, response="x"), MATH
    ),
    "resource_viewed": (ResourceViewed(_id(9), WHEN, STUDENT, LESSON), MATH),
    "resource_viewed_unresolved": (
        ResourceViewed(_id(10), WHEN, STUDENT, LESSON), CourseContext()
    ),
    "session_logged_in": (
        SessionChanged(
            _id(11), WHEN.astimezone(timezone(timedelta(hours=2))), STUDENT,
            "5d2c1b0a-9f8e-4d7c-8b6a-5f4e3d2c1b0a", SessionAction.LOGGED_IN,
        ),
        MATH,  # ignored: sessions never carry subject or course
    ),
    "session_logged_out": (
        SessionChanged(_id(12), WHEN, STUDENT, "sess-42", SessionAction.LOGGED_OUT),
        CourseContext(),
    ),
    "session_timed_out": (
        SessionChanged(_id(13), WHEN, STUDENT, "sess-42", SessionAction.TIMED_OUT),
        CourseContext(),
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case: str) -> None:
    activity, course = CASES[case]
    events = map_activity(activity, course, CTX)
    path = GOLDEN / f"{case}.json"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_bytes(orjson.dumps([e.body for e in events], option=orjson.OPT_INDENT_2))
    golden = orjson.loads(path.read_bytes())
    assert [e.body for e in events] == golden
    # byte for byte: key order and number formatting are part of the contract
    assert [e.payload for e in events] == [orjson.dumps(body) for body in golden]
    assert [e.id for e in events] == [body["id"] for body in golden]
    assert [e.type for e in events] == [body["type"] for body in golden]


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_events_pass_the_checker(case: str) -> None:
    rules = TimeBackRules(BASE, DEFAULT_SUBJECTS)
    for body in orjson.loads((GOLDEN / f"{case}.json").read_bytes()):
        assert check(body, rules) == [], body["type"]


def test_every_golden_file_has_a_case() -> None:
    assert {p.stem for p in GOLDEN.glob("*.json")} == set(CASES)
