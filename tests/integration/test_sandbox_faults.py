"""Each fault kind over HTTP: what the client sees, and that faulted requests change nothing."""

from __future__ import annotations

import time

import httpx
import pytest

from relay.sandbox.seed import student, xp_event
from tests.integration.conftest import SandboxFactory, SandboxHandle

pytestmark = pytest.mark.integration

GRANT = {"grant_type": "client_credentials"}
CREDS = ("sandbox-client", "sandbox-secret")


def event() -> dict[str, object]:
    return xp_event(app_id="sandbox-app", student_id="student-1", course_id="course-1")


def statuses(http: httpx.Client, n: int, path: str = "/rostering/1.0/users") -> list[int]:
    return [http.get(path).status_code for _ in range(n)]


def test_error_rates_follow_the_seed(sandbox_factory: SandboxFactory) -> None:
    spec = {"seed": 11, "error_rates": {"500": 0.3, "503": 0.3}, "paths": ["/rostering/1.0"]}
    runs = []
    for _ in range(2):
        box = sandbox_factory(faults=spec)
        with box.api() as http:
            runs.append(statuses(http, 60))
    assert runs[0] == runs[1]
    assert set(runs[0]) == {200, 500, 503}
    with sandbox_factory(faults={**spec, "seed": 12}).api() as http:
        assert statuses(http, 60) != runs[0]


def test_error_replies_are_json_and_change_nothing(
    sandbox: SandboxHandle, http: httpx.Client
) -> None:
    sandbox.faults(error_rates={"500": 1.0})
    response = http.put("/rostering/1.0/users/u1", json={"user": student("u1")})
    assert response.status_code == 500
    assert response.json() == {"error": "injected_500"}
    response = http.post("/events/1.0", json=event())
    assert response.status_code == 500
    sandbox.clear_faults()
    assert http.get("/rostering/1.0/users/u1").status_code == 404  # the PUT never happened
    stats = sandbox.stats()
    assert (stats["received"], stats["faulted"]) == (0, 2)


def test_paths_limit_faults_to_prefixes(sandbox: SandboxHandle, http: httpx.Client) -> None:
    sandbox.faults(paths=["/events/1.0"], error_rates={"503": 1.0})
    assert http.post("/events/1.0", json=event()).status_code == 503
    assert http.post("/events/1.0/", json=event()).status_code == 503
    assert http.get("/rostering/1.0/users").status_code == 200
    assert httpx.post(f"{sandbox.url}/auth/1.0/token", data=GRANT, auth=CREDS).status_code == 200


def test_rate_limit_gives_429_with_retry_after(sandbox: SandboxHandle, http: httpx.Client) -> None:
    sandbox.faults(rate_limit={"rate": 1.0, "retry_after_s": 2})
    response = http.post("/events/1.0", json=event())
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "2"
    assert response.json()["error"] == "rate_limited"
    sandbox.faults(rate_limit={"rate": 0.5}, seed=5)
    seen = set(statuses(http, 40))
    assert seen == {200, 429}


def test_outage_503_window(sandbox: SandboxHandle, http: httpx.Client) -> None:
    """503 for the window's length, never shorter, then served again. The window is long enough
    for the first request to land inside it on a loaded machine (at 0.4 s a stall could fail
    it), and its end is polled for rather than slept past."""
    duration = 2.0
    asked = time.monotonic()
    sandbox.faults(outages=[{"start_in_s": 0, "duration_s": duration, "mode": "503"}])
    assert sandbox.show_faults()["active_outages"][0]["mode"] == "503"
    response = http.get("/rostering/1.0/users")
    assert response.status_code == 503 and response.json()["error"] == "service_unavailable"
    while (response := http.get("/rostering/1.0/users")).status_code == 503:
        assert time.monotonic() - asked < duration + 30, "the outage never ended"
        time.sleep(0.1)
    assert time.monotonic() - asked >= duration, "the outage ended before its window"
    assert response.status_code == 200
    assert sandbox.show_faults()["active_outages"] == []


def test_outage_reset_closes_the_connection(sandbox: SandboxHandle, http: httpx.Client) -> None:
    sandbox.faults(outages=[{"start_in_s": 0, "duration_s": 60, "mode": "reset"}])
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        http.post("/events/1.0", json=event())
    assert sandbox.stats()["received"] == 0
    assert sandbox.stats()["faulted"] == 1


def test_future_outage_has_not_started(sandbox: SandboxHandle, http: httpx.Client) -> None:
    sandbox.faults(outages=[{"start_in_s": 3600, "duration_s": 60}])
    assert http.get("/rostering/1.0/users").status_code == 200


def test_ack_lost_accepts_then_fails_the_reply(sandbox: SandboxHandle, http: httpx.Client) -> None:
    sandbox.setup_roster()
    sandbox.faults(ack_lost={"rate": 1.0, "mode": "503"}, paths=["/events/1.0"])
    sent = event()
    assert http.post("/events/1.0", json=sent).status_code == 503
    sandbox.clear_faults()
    assert http.post("/events/1.0", json=sent).status_code == 202  # the client's retry
    sandbox.process()
    record = sandbox.event(str(sent["id"]))
    assert [r["fate"] for r in record["receipts"]] == ["processed", "duplicate"]
    with sandbox.api() as reader:
        assert len(reader.get("/xp/1.0/users/student-1/entries").json()["entries"]) == 1
    assert sandbox.stats()["faulted"] == 1


def test_ack_lost_reset_and_400s_are_not_lost(sandbox: SandboxHandle, http: httpx.Client) -> None:
    sandbox.faults(ack_lost={"rate": 1.0, "mode": "reset"}, paths=["/events/1.0"])
    bad = event()
    bad["eventTime"] = "yesterday"
    assert http.post("/events/1.0", json=bad).status_code == 400  # only successes are lost
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        http.post("/events/1.0", json=event())
    assert sandbox.stats()["accepted"] == 1


def test_latency_delays_replies(sandbox: SandboxHandle) -> None:
    sandbox.faults(latency_ms={"fixed": 3000}, paths=["/rostering/1.0"])
    with sandbox.api() as http:
        assert http.post("/events/1.0", json=event()).status_code == 202  # outside paths
        with pytest.raises(httpx.ReadTimeout):
            http.get("/rostering/1.0/users", timeout=0.3)
    assert sandbox.show_faults()["faults"]["latency_ms"] == {"fixed": 3000.0}


def test_token_ttl_applies_to_new_tokens(sandbox: SandboxHandle) -> None:
    before = httpx.post(f"{sandbox.url}/auth/1.0/token", data=GRANT, auth=CREDS).json()
    sandbox.faults(token_ttl_s=0.3)
    after = httpx.post(f"{sandbox.url}/auth/1.0/token", data=GRANT, auth=CREDS).json()
    assert (before["expires_in"], after["expires_in"]) == (3600, 0.3)
    time.sleep(0.4)
    for token, status in ((before, 200), (after, 401)):
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        assert (
            httpx.get(f"{sandbox.url}/rostering/1.0/users", headers=headers).status_code == status
        )


@pytest.mark.parametrize("mode", ["503", "reset"])
def test_token_endpoint_down(sandbox: SandboxHandle, http: httpx.Client, mode: str) -> None:
    sandbox.faults(token_endpoint_down=mode)
    if mode == "503":
        response = httpx.post(f"{sandbox.url}/auth/1.0/token", data=GRANT, auth=CREDS)
        assert response.status_code == 503
    else:
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
            httpx.post(f"{sandbox.url}/auth/1.0/token", data=GRANT, auth=CREDS)
    assert http.get("/rostering/1.0/users").status_code == 200  # tokens already issued work
    sandbox.faults(token_endpoint_down=False)
    assert httpx.post(f"{sandbox.url}/auth/1.0/token", data=GRANT, auth=CREDS).status_code == 200


def test_inspection_is_never_faulted(sandbox: SandboxHandle) -> None:
    sandbox.faults(
        error_rates={"500": 1.0},
        outages=[{"duration_s": 60, "mode": "reset"}],
        latency_ms={"fixed": 5000},
    )
    assert sandbox.stats()["faulted"] == 0
    assert sandbox.process() == 0
    assert sandbox.show_faults()["faults"]["error_rates"] == {"500": 1.0}


def test_faults_set_at_start(sandbox_factory: SandboxFactory) -> None:
    box = sandbox_factory(faults={"error_rates": {"502": 1.0}, "paths": ["/xp/1.0"]})
    with box.api() as http:
        assert http.get("/xp/1.0/users/u/entries").status_code == 502
        assert http.get("/rostering/1.0/users").status_code == 200


def test_fault_api_merges_shows_clears_and_refuses_bad_specs(sandbox: SandboxHandle) -> None:
    shown = sandbox.faults({"error_rates": {"500": 0.1}}, token_ttl_s=5)
    assert shown["faults"] == {"error_rates": {"500": 0.1}, "token_ttl_s": 5.0}
    shown = sandbox.faults(token_ttl_s=None, seed=3)
    assert shown["faults"] == {"error_rates": {"500": 0.1}, "seed": 3}
    response = httpx.post(f"{sandbox.url}/sandbox/1.0/faults", json={"error_rates": {"500": 2}})
    assert response.status_code == 400
    assert "error_rates.500" in response.json()["message"]
    assert sandbox.show_faults()["faults"]["error_rates"] == {"500": 0.1}
    sandbox.clear_faults()
    assert sandbox.show_faults()["faults"] == {}
