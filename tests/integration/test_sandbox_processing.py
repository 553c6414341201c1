"""Processing after the 202, over HTTP: rejections, ownership, attribution, facts, XP."""

from __future__ import annotations

import httpx
import pytest

from relay.sandbox import seed
from tests.integration.conftest import T0, T1, SandboxFactory, SandboxHandle, entries, xp

pytestmark = pytest.mark.integration


# --- processing rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_kwargs", "reason"),
    [
        ({"course": "no-such-course"}, "course_unknown"),
        ({"student": "no-such-student"}, "student_unknown"),
        ({"app_id": "other-app"}, "edapp_mismatch"),
    ],
)
def test_processing_rejections(
    sandbox: SandboxHandle, http: httpx.Client, event_kwargs: dict[str, str], reason: str
) -> None:
    sandbox.setup_roster()
    event = xp(**event_kwargs)
    assert http.post("/events/1.0", json=event).status_code == 202
    sandbox.process()
    record = sandbox.event(event["id"])
    assert (record["fate"], record["reason"]) == ("rejected", reason)
    assert entries(http) == []
    [rejection] = sandbox.rejections()
    assert (rejection["kind"], rejection["reason"]) == ("processing", reason)
    assert rejection["message"]
    assert sandbox.stats()["rejected_at_processing"] == 1


def test_client_b_cannot_use_client_a_course(sandbox: SandboxHandle) -> None:
    sandbox.setup_roster("student-1", "course-a", "sandbox-client")
    with sandbox.api("other-client") as b:
        assert b.get("/rostering/1.0/courses/course-a").status_code == 404
        event = xp(course="course-a", app_id="other-app")
        assert b.post("/events/1.0", json=event).status_code == 202
        sandbox.process()
        record = sandbox.event(event["id"])
        assert (record["fate"], record["reason"]) == ("rejected", "course_not_owned")
        assert record["client_id"] == "other-client"
        assert entries(b) == []
    with sandbox.api() as a:
        assert entries(a) == []


def test_the_roster_is_read_at_processing_time(sandbox_factory: SandboxFactory) -> None:
    box = sandbox_factory(processing_delay=60)
    event = xp()
    with box.api() as http:
        assert http.post("/events/1.0", json=event).status_code == 202
        assert box.event(event["id"])["fate"] == "pending"
        assert box.stats()["pending"] == 1
        box.setup_roster()  # the student and course appear before processing
        assert box.process() == 1
        assert box.event(event["id"])["fate"] == "processed"
        assert len(entries(http)) == 1


def test_assessment_items_other_than_completed_are_ignored(
    sandbox: SandboxHandle, http: httpx.Client
) -> None:
    sandbox.setup_roster()
    started, completed = (
        seed.item_event(
            app_id="sandbox-app", student_id="student-1", course_id="course-1", action=a
        )
        for a in ("Started", "Completed")
    )
    for event in (started, completed):
        assert http.post("/events/1.0", json=event).status_code == 202
    sandbox.process()
    assert sandbox.event(started["id"])["fate"] == "ignored"
    assert sandbox.event(completed["id"])["fate"] == "processed"
    assert entries(http) == []  # facts, but no XP


def test_question_results_and_views_make_no_xp(sandbox: SandboxHandle, http: httpx.Client) -> None:
    sandbox.setup_roster()
    result = xp()
    result["generated"]["extensions"]["scoreType"] = "QUESTION_RESULT"
    view = seed.viewed_event(app_id="sandbox-app", student_id="nobody-at-all")
    for event in (result, view):
        assert http.post("/events/1.0", json=event).status_code == 202
    sandbox.process()
    assert sandbox.event(result["id"])["fate"] == "processed"
    assert sandbox.event(view["id"])["fate"] == "processed"  # no course or student rules
    assert entries(http) == []


@pytest.mark.parametrize(
    ("enrollment", "event_time", "attributed"),
    [
        ({"begin": "2026-03-01", "end": "2026-03-10"}, T0, True),  # the end date is inclusive
        ({"begin": "2026-03-11", "end": "2026-06-30"}, T0, False),  # not yet begun
        ({"begin": "2026-01-01", "end": "2026-03-09"}, T0, False),  # over
        ({"begin": "2026-03-10T12:00:00.000Z"}, T0, True),
        ({"begin": "2026-03-10T12:00:00.001Z"}, T0, False),
        ({}, T0, True),
        (None, T0, False),  # no enrollment: counted, enrollment_id null
    ],
)
def test_enrollment_attribution(
    sandbox: SandboxHandle,
    http: httpx.Client,
    enrollment: dict[str, str] | None,
    event_time: str,
    attributed: bool,
) -> None:
    ids = sandbox.setup_roster(enrol=enrollment is not None, **(enrollment or {}))
    event = xp(event_time=event_time)
    http.post("/events/1.0", json=event).raise_for_status()
    sandbox.process()
    record = sandbox.event(event["id"])
    assert record["fate"] == "processed"
    assert record["enrollment_id"] == (ids["enrollment"] if attributed else None)
    assert len(entries(http)) == 1


def test_inactive_enrollments_are_not_attributed(
    sandbox: SandboxHandle, http: httpx.Client
) -> None:
    ids = sandbox.setup_roster()
    record = http.get(f"/rostering/1.0/enrollments/{ids['enrollment']}").json()["enrollment"]
    sandbox.put("enrollments", record | {"status": "tobedeleted"}).raise_for_status()
    event = xp()
    http.post("/events/1.0", json=event).raise_for_status()
    sandbox.process()
    assert sandbox.event(event["id"])["enrollment_id"] is None


def test_a_moved_enrollment_follows_its_new_student(
    sandbox: SandboxHandle, http: httpx.Client
) -> None:
    ids = sandbox.setup_roster()
    sandbox.put("users", seed.student("student-2")).raise_for_status()
    moved = seed.enrollment(ids["enrollment"], "student-2", ids["class"])
    sandbox.put("enrollments", moved).raise_for_status()
    first, second = xp(), xp(student="student-2")
    for event in (first, second):
        http.post("/events/1.0", json=event).raise_for_status()
    sandbox.process()
    assert sandbox.event(first["id"])["enrollment_id"] is None
    assert sandbox.event(second["id"])["enrollment_id"] == ids["enrollment"]


def test_one_fact_per_object_later_event_time_wins(
    sandbox: SandboxHandle, http: httpx.Client
) -> None:
    sandbox.setup_roster()
    first = xp(attempt="a1", xp=5.0, event_time=T0)
    later = xp(attempt="a1", xp=8.0, event_time=T1)
    earlier = xp(attempt="a1", xp=1.0, event_time="2026-03-01T00:00:00.000Z")
    http.post("/events/1.0", json=first).raise_for_status()
    sandbox.process()
    assert [e["value"] for e in entries(http)] == [5.0]
    http.post("/events/1.0", json=later).raise_for_status()
    sandbox.process()
    assert [(e["value"], e["sourceEventId"]) for e in entries(http)] == [(8.0, later["id"])]
    replaced = sandbox.event(first["id"])
    assert replaced["fate"] == "replaced"
    assert replaced["replaced_by"] == sandbox.event(later["id"])["seq"]
    http.post("/events/1.0", json=earlier).raise_for_status()
    sandbox.process()
    assert sandbox.event(earlier["id"])["fate"] == "superseded"
    assert [e["value"] for e in entries(http)] == [8.0]
    other_object = xp(attempt="a2", xp=3.0, event_time=T0)
    http.post("/events/1.0", json=other_object).raise_for_status()
    sandbox.process()
    assert sorted(e["value"] for e in entries(http)) == [3.0, 8.0]
