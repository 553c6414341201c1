"""Event intake and processing over HTTP: validation, envelopes, duplicates, processing rules."""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from relay.caliper import events as E
from relay.caliper.ids import app_iri, course_iri, user_iri
from relay.config import PRODUCTION_BASE_URL as B
from relay.sandbox.seed import xp_event
from tests.integration.conftest import SandboxFactory, SandboxHandle

T0 = "2026-03-10T12:00:00.000Z"
T1 = "2026-03-11T12:00:00.000Z"
CONTEXT = "http://purl.imsglobal.org/ctx/caliper/v1p2"


@pytest.fixture
def http(sandbox: SandboxHandle) -> Iterator[httpx.Client]:
    with sandbox.api() as client:
        yield client


def xp(student: str = "student-1", course: str = "course-1", **kw: Any) -> dict[str, Any]:
    kw.setdefault("app_id", "sandbox-app")
    return xp_event(student_id=student, course_id=course, **kw)


def item_event(action: str = "Completed", student: str = "student-1") -> dict[str, Any]:
    event = E.assessment_item_event(
        id=uuid.uuid4().urn,
        event_time=T0,
        app=app_iri(B, "sandbox-app"),
        student=user_iri(B, student),
        item_id="https://app.test/q/1",
        item_name=None,
        assessment_id=None,
        assessment_name=None,
        attempt_id="https://app.test/q/1/att/1",
        count=1,
        started_at=None,
        ended_at=None,
        response_id="https://app.test/r/1",
        response=None,
        extensions=E.event_extensions("Math", course_iri(B, "course-1")),
    )
    if action != "Completed":
        event["action"] = action
        event["generated"] = event["generated"]["attempt"]
    return event


def session_event() -> dict[str, Any]:
    return E.session_event(
        id=uuid.uuid4().urn,
        event_time=T0,
        action="LoggedIn",
        app=app_iri(B, "sandbox-app"),
        student=user_iri(B, "student-1"),
        session_id=uuid.uuid4().urn,
    )


def envelope(*events: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "sensor": "https://app.test/sensor",
        "sendTime": T0,
        "dataVersion": CONTEXT,
        "data": list(events),
        **extra,
    }


def entries(http: httpx.Client, student: str = "student-1") -> list[dict[str, Any]]:
    return list(http.get(f"/xp/1.0/users/{student}/entries").json()["entries"])


# --- intake -------------------------------------------------------------------------------------


def test_xp_grade_event_is_accepted_processed_and_counted(
    sandbox: SandboxHandle, http: httpx.Client
) -> None:
    ids = sandbox.setup_roster()
    event = xp(xp=12.0, event_time=T0)
    response = http.post("/events/1.0", json=event)
    assert response.status_code == 202
    assert response.json() == {"status": "accepted", "id": event["id"]}
    assert sandbox.event(event["id"])["fate"] in ("pending", "processed")
    sandbox.process()
    record = sandbox.event(event["id"])
    assert record["fate"] == "processed"
    assert record["enrollment_id"] == ids["enrollment"]
    assert record["body"] == event and record["client_id"] == "sandbox-client"
    [entry] = entries(http)
    assert entry == {
        "id": entry["id"],
        "value": 12.0,
        "userId": "student-1",
        "applicationId": "sandbox-app",
        "sourceEventId": event["id"],
        "dateGenerated": T0,
        "subject": "Math",
        "courseName": "Smoke Math",
    }
    assert isinstance(entry["id"], str)
    assert record["xp_entry"] == entry


def test_processing_runs_by_itself_after_the_delay(
    sandbox: SandboxHandle, http: httpx.Client
) -> None:
    sandbox.setup_roster()
    event = xp()
    assert http.post("/events/1.0", json=event).status_code == 202
    deadline = time.monotonic() + 10
    while sandbox.event(event["id"])["fate"] == "pending" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sandbox.event(event["id"])["fate"] == "processed"
    assert sandbox.stats()["pending"] == 0


def test_trailing_slash_is_accepted(sandbox: SandboxHandle, http: httpx.Client) -> None:
    assert http.post("/events/1.0/", json=xp()).status_code == 202


def test_non_json_gets_415_and_unparsable_gets_400(
    sandbox: SandboxHandle, http: httpx.Client
) -> None:
    response = http.post("/events/1.0", content=b"id=1", headers={"Content-Type": "text/plain"})
    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"
    response = http.post(
        "/events/1.0", content=b'{"id": ', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_event"
    assert "not valid JSON" in response.json()["issues"][0]["message"]
    response = http.post("/events/1.0", json=[xp()])
    assert response.status_code == 400
    assert response.json()["issues"] == [{"path": "", "message": "the body must be a JSON object"}]
    stats = sandbox.stats()
    assert (stats["received"], stats["accepted"], stats["rejected_at_validation"]) == (3, 0, 3)


def test_invalid_events_get_400_with_every_issue(
    sandbox: SandboxHandle, http: httpx.Client
) -> None:
    event = xp()
    event["extensions"]["lesson"] = "l1"
    event["extensions"]["subject"] = "Maths"
    event["eventTime"] = "2026-03-10T12:00:00Z"
    response = http.post("/events/1.0", json=event)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_event"
    paths = {i["path"]: i["message"] for i in body["issues"]}
    assert paths["extensions.lesson"] == "unrecognized key"
    assert "extensions.subject" in paths and "eventTime" in paths
    [rejection] = sandbox.rejections()
    assert rejection["kind"] == "validation" and rejection["id"] == event["id"]
    assert rejection["issues"] == body["issues"]
    assert sandbox.event(event["id"])["fate"] == "rejected_at_validation"


def test_envelopes(sandbox_factory: SandboxFactory) -> None:
    box = sandbox_factory()
    with box.api() as http:
        one = xp()
        response = http.post("/events/1.0", json=envelope(one))
        assert response.status_code == 202 and response.json()["id"] == one["id"]
        too_many = http.post("/events/1.0", json=envelope(xp(), xp()))
        assert too_many.status_code == 400
        assert too_many.json()["issues"] == [
            {"path": "data", "message": "at most 1 event(s) per request, got 2"}
        ]
        bad = xp()
        del bad["eventTime"]
        bad["extensions"]["lesson"] = 1
        response = http.post("/events/1.0", json=envelope(bad))
        paths = [i["path"] for i in response.json()["issues"]]
        assert "data[0].eventTime" in paths and "data[0].extensions.lesson" in paths
        response = http.post(
            "/events/1.0", json=envelope(xp(), dataVersion="v1", extra=1) | {"sensor": ""}
        )
        assert sorted(i["path"] for i in response.json()["issues"]) == [
            "dataVersion",
            "extra",
            "sensor",
        ]
        assert http.post("/events/1.0", json=envelope()).status_code == 400
    stats = box.stats()
    # received counts events: 1 + 2 + 1 + 1 + the empty envelope
    assert (stats["received"], stats["accepted"], stats["rejected_at_validation"]) == (6, 1, 5)


def test_bigger_envelopes_when_configured(sandbox_factory: SandboxFactory) -> None:
    box = sandbox_factory(max_events_per_request=3)
    with box.api() as http:
        events = [xp(), xp()]
        response = http.post("/events/1.0", json=envelope(*events))
        assert response.status_code == 202
        assert response.json()["ids"] == [e["id"] for e in events]
        bad = xp()
        bad["edApp"] = {"id": "https://elsewhere.test/app", "type": "SoftwareApplication"}
        response = http.post("/events/1.0", json=envelope(xp(), bad))
        assert response.status_code == 400
        assert {i["path"] for i in response.json()["issues"]} == {"data[1].edApp.id"}
    assert box.stats()["accepted"] == 2  # all or nothing


def test_session_events_are_processed_synchronously(
    sandbox: SandboxHandle, http: httpx.Client
) -> None:
    event = session_event()
    response = http.post("/events/1.0", json=event)
    assert response.status_code == 200
    assert response.json() == {"status": "processed", "id": event["id"]}
    assert sandbox.event(event["id"])["fate"] == "processed"


def test_unknown_paths_are_json_404(sandbox: SandboxHandle, http: httpx.Client) -> None:
    response = http.post("/events/2.0", json=xp())
    assert response.status_code == 404 and response.json()["error"] == "not_found"
    assert http.get("/events/1.0").status_code == 405


# --- duplicates ---------------------------------------------------------------------------------


def test_a_repeated_id_is_a_duplicate_and_counts_once(
    sandbox: SandboxHandle, http: httpx.Client
) -> None:
    sandbox.setup_roster()
    event = xp()
    changed = copy.deepcopy(event)
    changed["generated"]["scoreGiven"] = 99.0
    replies = [http.post("/events/1.0", json=e) for e in (event, event, changed)]
    assert [r.status_code for r in replies] == [202, 202, 202]
    assert replies[1].json() == replies[0].json()
    sandbox.process()
    record = sandbox.event(event["id"])
    assert record["fate"] == "processed"
    assert [r["fate"] for r in record["receipts"]] == [
        "processed",
        "duplicate",
        "duplicate_mismatch",
    ]
    assert record["receipts"][1]["duplicate_of"] == record["seq"]
    assert [e["value"] for e in entries(http)] == [10.0]
    stats = sandbox.stats()
    assert (stats["received"], stats["accepted"], stats["duplicates"]) == (3, 3, 2)


def test_without_dedupe_a_repeated_id_counts_twice(sandbox_factory: SandboxFactory) -> None:
    box = sandbox_factory(dedupe=False)
    box.setup_roster()
    event = xp()
    with box.api() as http:
        assert http.post("/events/1.0", json=event).status_code == 202
        assert http.post("/events/1.0", json=event).status_code == 202
        box.process()
        assert [e["sourceEventId"] for e in entries(http)] == [event["id"], event["id"]]
    assert box.stats()["duplicates"] == 0


def test_a_rejected_then_valid_id_is_not_a_duplicate(
    sandbox: SandboxHandle, http: httpx.Client
) -> None:
    sandbox.setup_roster()
    event = xp()
    broken = copy.deepcopy(event)
    broken["extensions"]["subject"] = "Cooking"
    assert http.post("/events/1.0", json=broken).status_code == 400
    assert http.post("/events/1.0", json=event).status_code == 202
    sandbox.process()
    assert sandbox.event(event["id"])["fate"] == "processed"


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
    started, completed = item_event("Started"), item_event("Completed")
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
    view = E.view_event(
        id=uuid.uuid4().urn,
        event_time=T0,
        app=app_iri(B, "sandbox-app"),
        student=user_iri(B, "nobody-at-all"),
        resource_id="https://app.test/l/1",
        resource_name=None,
        extensions=None,
    )
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
