"""``/sandbox/1.0``: stats, received events, rejections, process, reset, config, clients."""

from __future__ import annotations

import httpx
import pytest

from relay.sandbox.seed import xp_event
from tests.integration.conftest import SandboxFactory, SandboxHandle

pytestmark = pytest.mark.integration


def xp(**kw: str) -> dict[str, object]:
    return xp_event(
        app_id=kw.get("app", "sandbox-app"),
        student_id=kw.get("student", "student-1"),
        course_id=kw.get("course", "course-1"),
    )


def test_stats_events_and_rejections(sandbox_factory: SandboxFactory) -> None:
    box = sandbox_factory(processing_delay=60)
    box.setup_roster()
    good, unknown, bad = xp(), xp(course="nope"), xp()
    bad["eventTime"] = "now"
    with box.api() as http:
        for event in (good, good, unknown, bad):
            http.post("/events/1.0", json=event)
    stats = box.stats()
    assert stats["received"] == stats["accepted"] + stats["rejected_at_validation"] == 4
    assert (stats["accepted"], stats["pending"], stats["duplicates"]) == (3, 2, 1)
    assert box.process() == 2
    stats = box.stats()
    assert (stats["pending"], stats["rejected_at_processing"], stats["processed"]) == (0, 1, 1)
    assert stats["by_fate"] == {
        "duplicate": 1,
        "processed": 1,
        "rejected": 1,
        "rejected_at_validation": 1,
    }
    assert [e["fate"] for e in box.events()] == [
        "processed",
        "duplicate",
        "rejected",
        "rejected_at_validation",
    ]
    assert [e["id"] for e in box.events(fate="rejected")] == [unknown["id"]]
    assert len(box.events(type="GradeEvent", client_id="sandbox-client")) == 4
    assert box.events(type="ViewEvent") == []
    assert all("body" not in e for e in box.events())
    kinds = [(r["kind"], r["reason"]) for r in box.rejections()]
    assert kinds == [("processing", "course_unknown"), ("validation", "invalid_event")]


def test_event_detail_and_404(sandbox: SandboxHandle) -> None:
    response = httpx.get(f"{sandbox.url}/sandbox/1.0/events/urn:uuid:nothing")
    assert response.status_code == 404
    bad = httpx.get(f"{sandbox.url}/sandbox/1.0/events", params={"fate": "lost"})
    assert bad.status_code == 400
    assert httpx.get(f"{sandbox.url}/sandbox/1.0/events", params={"x": 1}).status_code == 400


def test_reset_forgets_state_but_keeps_faults(sandbox: SandboxHandle) -> None:
    sandbox.setup_roster()
    with sandbox.api() as http:
        http.post("/events/1.0", json=xp()).raise_for_status()
    sandbox.faults(paths=["/xp/1.0"], error_rates={"500": 1.0})
    sandbox.reset()
    assert sandbox.stats()["received"] == 0
    with sandbox.api() as http:
        assert http.get("/rostering/1.0/users/student-1").status_code == 404
        assert http.get("/rostering/1.0/orgs/partner-sandbox").status_code == 200  # reseeded
        assert http.get("/xp/1.0/users/student-1/entries").status_code == 500
    assert sandbox.process() == 0  # the pending event went with the reset


def test_config_and_runtime_clients(sandbox: SandboxHandle) -> None:
    config = httpx.get(f"{sandbox.url}/sandbox/1.0/config").json()
    assert config["iri_base"] == "https://api.alpha-1edtech.ai"
    assert config["processing_delay"] == 0.05
    assert [c["client_id"] for c in config["clients"]] == ["sandbox-client", "other-client"]
    assert all("client_secret" not in c for c in config["clients"])
    url = f"{sandbox.url}/sandbox/1.0/clients"
    created = httpx.post(url, json={"client_id": "n", "client_secret": "s", "app_id": "a"})
    assert created.status_code == 201
    assert (
        httpx.post(url, json={"client_id": "n", "client_secret": "s", "app_id": "a"}).status_code
        == 409
    )
    assert httpx.post(url, json={"client_id": "m", "app_id": "a"}).status_code == 400
    assert (
        httpx.post(
            url, json={**created.json(), "client_secret": "s", "scopes": ["root"]}
        ).status_code
        == 400
    )


def test_iri_base_is_configurable(sandbox_factory: SandboxFactory) -> None:
    box = sandbox_factory(iri_base="http://iri.test")
    event = xp_event(
        app_id="sandbox-app", student_id="s", course_id="c", iri_base="http://iri.test"
    )
    with box.api() as http:
        assert http.post("/events/1.0", json=event).status_code == 202
        production_iris = xp()
        response = http.post("/events/1.0", json=production_iris)
        assert response.status_code == 400
        assert "edApp.id" in {i["path"] for i in response.json()["issues"]}
