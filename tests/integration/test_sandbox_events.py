"""Event intake over HTTP: validation, envelopes, status codes, duplicates."""

from __future__ import annotations

import copy
import time
from typing import Any

import httpx
import pytest

from relay.sandbox import seed
from tests.integration.conftest import T0, SandboxFactory, SandboxHandle, entries, xp

pytestmark = pytest.mark.integration

CONTEXT = "http://purl.imsglobal.org/ctx/caliper/v1p2"


def envelope(*events: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "sensor": "https://app.test/sensor",
        "sendTime": T0,
        "dataVersion": CONTEXT,
        "data": list(events),
        **extra,
    }


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
    event = seed.login_event(app_id="sandbox-app", student_id="student-1")
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
