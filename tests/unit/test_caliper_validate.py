"""relay.caliper.validate: hand-made invalid events, one per rule, each found at the right path.

Every case starts from a valid event the relay itself makes (``BASES``), changes one thing and
expects an issue at one JSON path. CALIPER_CASES cover the rules of docs/caliper-rules.md for Grade,
Assessment, AssessmentItem, View and Session events; TIMEBACK_CASES docs/partner-api.md#event-rules.
"""

from __future__ import annotations

import copy
import math
import uuid
from collections import OrderedDict
from typing import Any

import orjson
import pytest

from relay.caliper.validate import (
    Issue,
    TimeBackRules,
    caliper_issues,
    check,
    timeback_issues,
)
from relay.config import DEFAULT_SUBJECTS
from relay.contract.activity import (
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
from tests.shared import WHEN

BASE = "https://api.alpha-1edtech.ai"
APP = f"{BASE}/applications/1.0/app-1"
STU = f"{BASE}/rostering/1.0/users/stu-1"
CRS = f"{BASE}/rostering/1.0/courses/math-5"
RULES = TimeBackRules(BASE, DEFAULT_SUBJECTS)
CTX = MappingContext(BASE, APP, "https://app.example.com", uuid.UUID(int=7))
COURSE = CourseContext("math-5", "Math")


def _bases() -> dict[str, dict[str, Any]]:
    common = {"occurred_at": WHEN, "student_id": "stu-1"}
    ref = ActivityRef("lesson-1", "Lesson 1")
    question = QuestionAnswered(
        "e3", **common, item=ActivityRef("q/1", "Q1"), assessment=ref, response="4", correct=True
    )
    item_event, question_grade = (e.body for e in map_activity(question, COURSE, CTX))
    one = {
        "grade": XpEarned("e1", **common, activity=ref, xp=12.0),
        "assessment": AssessmentProgress(
            "e2", **common, assessment=ref, action=AssessmentAction.SUBMITTED
        ),
        "view": ResourceViewed("e4", **common, resource=ref),
        "login": SessionChanged("e5", **common, session_id="s", action=SessionAction.LOGGED_IN),
        "timeout": SessionChanged("e6", **common, session_id="s", action=SessionAction.TIMED_OUT),
    }
    bases = {name: map_activity(a, COURSE, CTX)[0].body for name, a in one.items()}
    return {**bases, "item": item_event, "question_grade": question_grade}


BASES = _bases()
DELETE = object()


def mutate(event: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``event`` with ``path`` (dotted) set to ``value`` or deleted (DELETE)."""
    result = copy.deepcopy(event)
    *parents, last = path.split(".")
    node = result
    for key in parents:
        node = node[key]
    if value is DELETE:
        node.pop(last, None)
    else:
        node[last] = value
    return result


def paths(issues: list[Issue]) -> list[str]:
    return [i.path for i in issues]


@pytest.mark.parametrize("name", sorted(BASES))
def test_every_base_event_passes_both_rule_sets(name: str) -> None:
    assert check(BASES[name], RULES) == []


def ent(id_: str, type_: str) -> dict[str, str]:
    return {"id": id_, "type": type_}


PERSON = ent(STU, "Person")
SOFTWARE = ent(APP, "SoftwareApplication")
CTX_IRI = "http://purl.imsglobal.org/ctx/caliper/v1p2"

# (base, dotted path to change, new value or DELETE, expected issue path)
CALIPER_CASES: list[tuple[str, str, Any, str]] = [
    # §1 @context
    ("grade", "@context", DELETE, "@context"),
    ("grade", "@context", "https://purl.imsglobal.org/ctx/caliper/v1p2", "@context"),
    ("grade", "@context", CTX_IRI + "/", "@context"),
    ("grade", "@context", [CTX_IRI, {"query": "http://schema.org/query"}], "@context"),
    ("grade", "@context", [{"actor": "http://x.org/actor"}, CTX_IRI], "@context[0]"),
    ("grade", "@context", {"@vocab": CTX_IRI}, "@context"),
    # §2 required event properties: missing or null
    *[("grade", key, DELETE, key) for key in ("id", "type", "actor", "action", "object")],
    ("grade", "eventTime", DELETE, "eventTime"),
    *[("view", key, None, key) for key in ("id", "type", "actor", "action", "object")],
    ("view", "eventTime", None, "eventTime"),
    # §2 event id: a urn:uuid URN, nothing else
    ("grade", "id", "6f1d2c3a-8b4e-4f60-9a7b-c8d9e0f1a2b3", "id"),
    ("grade", "id", "https://example.org/events/1", "id"),
    ("grade", "id", "urn:uuid:not-a-uuid", "id"),
    ("grade", "id", 42, "id"),
    # §2 type and action terms
    ("grade", "type", "gradeEvent", "type"),
    ("grade", "type", "ScoreEvent", "type"),
    ("grade", "action", "graded", "action"),
    ("grade", "action", "Navigated To", "action"),
    # §2 eventTime: UTC, exactly 3 fractional digits, literal Z, a real date
    ("grade", "eventTime", "2026-01-15T14:30:00.000+00:00", "eventTime"),
    ("grade", "eventTime", "2026-01-15T14:30:00.000000Z", "eventTime"),
    ("grade", "eventTime", "2026-01-15T14:30:00Z", "eventTime"),
    ("grade", "eventTime", "2026-01-15", "eventTime"),
    ("grade", "eventTime", "2026-02-30T14:30:00.000Z", "eventTime"),
    ("grade", "eventTime", "2026-01-15T24:30:00.000Z", "eventTime"),
    ("grade", "eventTime", 1768487400000, "eventTime"),
    # §2 / §4 profile: a known term that governs the event type
    ("grade", "profile", "GradeProfile", "profile"),
    ("grade", "profile", "AssessmentProfile", "profile"),
    ("assessment", "profile", "GradingProfile", "profile"),
    ("login", "profile", "GeneralProfile", "profile"),
    # §2 optional properties: right entity type, an IRI if a string, extensions an object
    ("grade", "edApp", PERSON, "edApp.type"),
    ("grade", "edApp", "This is not an object or an IRI", "edApp"),
    ("grade", "group", PERSON, "group.type"),
    ("grade", "membership", PERSON, "membership.type"),
    ("grade", "session", SOFTWARE, "session.type"),
    ("grade", "federatedSession", ent("urn:uuid:1", "Session"), "federatedSession.type"),
    ("view", "referrer", "not an IRI", "referrer"),
    ("view", "target", "not an IRI", "target"),
    ("grade", "actor", "not an IRI", "actor"),
    ("grade", "extensions", "subject=Math", "extensions"),
    ("grade", "extensions", f"{BASE}/ext", "extensions"),
    ("grade", "lesson", "l-1", "lesson"),  # custom properties belong in extensions
    ("grade", "session", None, "session"),  # null optional properties are left out
    # §3 entities: object or IRI; id (absolute IRI) and known type required
    ("grade", "object.id", DELETE, "object.id"),
    ("grade", "object.id", None, "object.id"),
    ("grade", "object.id", "IRIs should not have spaces", "object.id"),
    ("grade", "object.id", "lesson-1/attempts/1", "object.id"),
    ("grade", "object.type", DELETE, "object.type"),
    ("grade", "object.type", "Attempts", "object.type"),
    ("grade", "object", 12, "object"),
    ("grade", "object.startedAtTime", "2016-08-01", "object.startedAtTime"),
    ("grade", "object.endedAtTime", "2026-01-15T14:30:00.000+01:00", "object.endedAtTime"),
    ("grade", "object.duration", "2026-01-15T14:30:00.000Z", "object.duration"),
    ("grade", "object.duration", "PT", "object.duration"),
    ("grade", "object.extensions", "x", "object.extensions"),
    ("grade", "object.colour", "blue", "object.colour"),  # not an Attempt property
    ("grade", "object.extensions", None, "object.extensions"),
    ("view", "object.name", 7, "object.name"),
    ("view", "object.otherIdentifiers", [{"id": "x:1", "type": "SystemIdentifier",
     "identifier": "1", "identifierType": "LisSourcedId"}], "object.otherIdentifiers[0].id"),
    ("view", "object.otherIdentifiers", [{"type": "SystemIdentifier", "identifier": "1",
     "identifierType": "Sourced"}], "object.otherIdentifiers[0].identifierType"),
    ("view", "object.otherIdentifiers", [{"type": "SystemIdentifier"}],
     "object.otherIdentifiers[0].identifier"),
    # §5.1 GradeEvent
    ("grade", "action", "Deleted", "action"),
    ("grade", "object", ent("https://app.example.com/lesson-1", "Assessment"), "object.type"),
    ("grade", "generated", PERSON, "generated.type"),
    ("grade", "actor", ent("https://app.example.com/lesson-1", "DigitalResource"), "actor.type"),
    # §5.2 AssessmentEvent
    ("assessment", "action", "Deleted", "action"),
    ("assessment", "action", "Completed", "action"),
    ("assessment", "actor", SOFTWARE, "actor.type"),
    ("assessment", "object", PERSON, "object.type"),
    ("assessment", "generated", PERSON, "generated.type"),
    # §5.3 AssessmentItemEvent
    ("item", "action", "Submitted", "action"),
    ("item", "object", ent("https://app.example.com/lesson-1", "Assessment"), "object.type"),
    ("item", "generated.type", "Attempt", "generated.type"),  # Completed generates a Response
    ("item", "referrer", PERSON, "referrer.type"),
    ("item", "actor", SOFTWARE, "actor.type"),
    ("item", "generated.attempt", PERSON, "generated.attempt.type"),
    # §5.4 SessionEvent
    ("login", "action", "Viewed", "action"),
    ("login", "actor", SOFTWARE, "actor.type"),
    ("login", "object", PERSON, "object.type"),
    ("login", "target", PERSON, "target.type"),
    ("login", "referrer", PERSON, "referrer.type"),
    ("login", "session.user", SOFTWARE, "session.user.type"),
    ("login", "session.client", PERSON, "session.client.type"),
    ("login", "session.duration", "50 minutes", "session.duration"),
    ("timeout", "actor", PERSON, "actor.type"),
    ("timeout", "object", SOFTWARE, "object.type"),
    # §5.5 ViewEvent: Viewed only; the object type follows the profile
    ("view", "action", "NavigatedTo", "action"),
    ("view", "object", PERSON, "object.type"),
    ("view", "actor", SOFTWARE, "actor.type"),
    ("view", "profile", "GradingProfile", "object.type"),  # must then be a Result
    ("view", "profile", "AssessmentProfile", "object.type"),  # an Assessment or item
    ("view", "profile", "MediaProfile", "object.type"),
    # §6.1 Score
    ("grade", "generated.scoreGiven", "10.0", "generated.scoreGiven"),
    ("grade", "generated.scoreGiven", 10, "generated.scoreGiven"),
    ("grade", "generated.maxScore", 15, "generated.maxScore"),
    ("grade", "generated.maxScore", math.nan, "generated.maxScore"),
    ("grade", "generated.scoreGiven", math.inf, "generated.scoreGiven"),
    ("grade", "generated.scoreGiven", True, "generated.scoreGiven"),
    ("grade", "generated.scoredBy", ent("https://app.example.com/x", "Assessment"),
     "generated.scoredBy.type"),
    ("grade", "generated.comment", 5, "generated.comment"),
    ("grade", "generated.attempt", PERSON, "generated.attempt.type"),
    ("grade", "generated.score", 1.0, "generated.score"),  # not a Score property
    # §6.3 Attempt
    ("grade", "object.assignee", ent("https://app.example.com/q", "Assessment"),
     "object.assignee.type"),
    ("grade", "object.assignable", PERSON, "object.assignable.type"),
    ("grade", "object.count", "1", "object.count"),
    ("grade", "object.count", 1.0, "object.count"),
    ("grade", "object.isPartOf", PERSON, "object.isPartOf.type"),
    # §6.2 Result (a learner viewing their grade under the Grading Profile)
    ("view", "object", {"id": "https://app.example.com/r/1", "type": "Result",
     "resultScore": "9.0"}, "object.resultScore"),
    ("view", "object", {"id": "https://app.example.com/r/1", "type": "Result",
     "maxResultScore": 10}, "object.maxResultScore"),
    # §6.4 other entities
    ("view", "object", {"id": "https://app.example.com/a/1", "type": "Assessment",
     "maxAttempts": 2.0}, "object.maxAttempts"),
    ("view", "object", {"id": "https://app.example.com/a/1", "type": "AssessmentItem",
     "isTimeDependent": "no"}, "object.isTimeDependent"),
    ("grade", "group", {"id": "https://app.example.com/c/1", "type": "CourseSection",
     "courseNumber": 435}, "group.courseNumber"),
]  # fmt: skip


@pytest.mark.parametrize(("base", "where", "value", "expected"), CALIPER_CASES)
def test_caliper_rule_breaks_are_found_at_their_path(
    base: str, where: str, value: Any, expected: str
) -> None:
    event = mutate(BASES[base], where, value)
    found = caliper_issues(event)
    assert expected in paths(found), found
    assert expected in paths(check(event, RULES))


@pytest.mark.parametrize(
    ("base", "where", "value"),
    [
        ("assessment", "action", "Reset"),  # Appendix A and CG allow it (docs/caliper-rules.md)
        ("grade", "actor", PERSON),  # any Agent may grade (a teacher)
        ("grade", "object", "https://app.example.com/attempts/1"),  # entities as IRIs
        ("grade", "@context", [{"query": "http://schema.org/query"}, CTX_IRI]),
        ("grade", "object.id", "urn:uuid:6f1d2c3a-8b4e-4f60-9a7b-c8d9e0f1a2b3"),
        ("grade", "object.id", "_:b0"),  # a blank node
        ("grade", "object.duration", "PT50M12S"),
        ("grade", "profile", DELETE),  # SHOULD, not MUST
        ("view", "profile", DELETE),  # no profile: any DigitalResource
        ("view", "object.type", "WebPage"),  # a DigitalResource subtype
        ("item", "generated.type", "MultipleChoiceResponse"),
        ("timeout", "object.duration", "PT3600S"),
        ("grade", "eventTime", "2024-02-29T23:59:59.999Z"),  # a leap day
    ],
)
def test_valid_variants_pass(base: str, where: str, value: Any) -> None:
    assert caliper_issues(mutate(BASES[base], where, value)) == []


def test_every_issue_is_collected_not_just_the_first() -> None:
    event = mutate(mutate(BASES["grade"], "eventTime", "yesterday"), "generated.maxScore", 15)
    assert {"eventTime", "generated.maxScore"} <= set(paths(caliper_issues(event)))


def test_non_object_events_are_one_issue() -> None:
    assert paths(caliper_issues([])) == [""]  # type: ignore[arg-type]
    assert paths(check("x", RULES)) == [""]  # type: ignore[arg-type]


def test_any_mapping_type_is_accepted() -> None:
    assert check(OrderedDict(BASES["view"]), RULES) == []


# --- TimeBack rules ---------------------------------------------------------------------------

OTHER = "https://other.example.com"

TIMEBACK_CASES: list[tuple[str, str, Any, str]] = [
    ("view", "type", "NavigationEvent", "type"),
    ("grade", "action", "Viewed", "action"),
    # event extensions: only subject and course, course only id
    ("grade", "extensions.lesson", "l-1", "extensions.lesson"),
    ("grade", "extensions.course.title", "Math 5", "extensions.course.title"),
    ("view", "extensions", {"activityName": "x"}, "extensions.activityName"),
    # subject and course required on Grade/Assessment/AssessmentItem
    ("grade", "extensions.subject", DELETE, "extensions.subject"),
    ("assessment", "extensions.course", DELETE, "extensions.course"),
    ("item", "extensions", DELETE, "extensions.subject"),
    ("question_grade", "extensions", DELETE, "extensions.course"),
    # subject in the enum (case-sensitive)
    ("grade", "extensions.subject", "Maths", "extensions.subject"),
    ("view", "extensions.subject", "math", "extensions.subject"),
    # CRS
    ("grade", "extensions.course", CRS, "extensions.course"),
    ("grade", "extensions.course.id", f"{OTHER}/rostering/1.0/courses/math-5",
     "extensions.course.id"),
    ("grade", "extensions.course.id", f"{BASE}/courses/math-5", "extensions.course.id"),
    ("grade", "extensions.course", {}, "extensions.course.id"),
    # STU: a Person actor, every assignee
    ("view", "actor.id", f"{OTHER}/rostering/1.0/users/stu-1", "actor.id"),
    ("view", "actor", f"{BASE}/users/stu-1", "actor"),
    ("login", "actor.id", f"{BASE}/rostering/1.0/users/a/b", "actor.id"),
    ("grade", "object.assignee.id", "https://app.example.com/users/1", "object.assignee.id"),
    ("assessment", "generated.assignee", f"{OTHER}/rostering/1.0/users/stu-1",
     "generated.assignee"),
    ("item", "generated.attempt.assignee", "urn:x:1", "generated.attempt.assignee"),
    # APP: the GradeEvent actor and every edApp
    ("grade", "actor", PERSON, "actor"),
    ("question_grade", "actor.id", f"{OTHER}/applications/1.0/app-1", "actor.id"),
    ("view", "edApp.id", "https://app.example.com", "edApp.id"),
    ("timeout", "edApp", f"{BASE}/apps/app-1", "edApp"),
    # GradeEvent Score typed XP or QUESTION_RESULT
    ("grade", "generated.extensions.scoreType", "POINTS", "generated.extensions.scoreType"),
    ("grade", "generated.extensions", DELETE, "generated.extensions.scoreType"),
    ("grade", "generated", DELETE, "generated"),
    ("grade", "generated", f"{BASE}/scores/1", "generated"),
    # Submitted needs generated.endedAtTime
    ("assessment", "generated.endedAtTime", DELETE, "generated.endedAtTime"),
    ("assessment", "generated", DELETE, "generated.endedAtTime"),
]  # fmt: skip


@pytest.mark.parametrize(("base", "where", "value", "expected"), TIMEBACK_CASES)
def test_timeback_rule_breaks_are_found_at_their_path(
    base: str, where: str, value: Any, expected: str
) -> None:
    event = mutate(BASES[base], where, value)
    found = timeback_issues(event, RULES)
    assert expected in paths(found), found
    assert expected in paths(check(event, RULES))


def test_the_relay_events_satisfy_timeback_without_optional_extensions() -> None:
    # View and Session events need no subject or course
    for name in ("view", "login", "timeout"):
        assert timeback_issues(mutate(BASES[name], "extensions", DELETE), RULES) == []


def test_strict_extensions_can_be_relaxed() -> None:
    event = mutate(BASES["grade"], "extensions.lesson", "l-1")
    assert timeback_issues(event, TimeBackRules(BASE, DEFAULT_SUBJECTS, False)) == []


def test_subjects_and_iri_base_come_from_the_rules() -> None:
    rules = TimeBackRules("http://127.0.0.1:8080/", ("Math", "Other"))
    # the same event on the sandbox's base
    event = orjson.loads(
        orjson.dumps(BASES["grade"]).replace(BASE.encode(), b"http://127.0.0.1:8080")
    )
    assert timeback_issues(event, rules) == []
    assert timeback_issues(mutate(event, "extensions.subject", "Other"), rules) == []
    assert paths(timeback_issues(mutate(event, "extensions.subject", "Reading"), rules)) == [
        "extensions.subject"
    ]
    assert "actor.id" in paths(timeback_issues(BASES["grade"], rules))  # production IRIs
