"""The token endpoint and bearer checks, over HTTP."""

from __future__ import annotations

import base64
import time

import httpx
import orjson
import pytest

from relay.sandbox.config import ALL_SCOPES, Client
from relay.sandbox.seed import xp_event
from tests.integration.conftest import SandboxFactory, SandboxHandle

pytestmark = pytest.mark.integration

TOKEN = "/auth/1.0/token"
GRANT = {"grant_type": "client_credentials"}


def _payload(token: str) -> dict[str, object]:
    part = token.split(".")[1]
    return dict(orjson.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


@pytest.mark.parametrize(
    "how",
    ["basic+form", "body+form", "body+json", "basic+json"],
)
def test_both_credential_methods_in_form_and_json(sandbox: SandboxHandle, how: str) -> None:
    method, encoding = how.split("+")
    params: dict[str, str] = dict(GRANT)
    auth = None
    if method == "basic":
        auth = ("sandbox-client", "sandbox-secret")
    else:
        params |= {"client_id": "sandbox-client", "client_secret": "sandbox-secret"}
    kwargs = {"data": params} if encoding == "form" else {"json": params}
    response = httpx.post(f"{sandbox.url}{TOKEN}", auth=auth, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"].split() == list(ALL_SCOPES)
    assert response.headers["Cache-Control"] == "no-store"
    token = body["access_token"]
    assert token.count(".") == 2
    payload = _payload(token)
    assert payload["client_id"] == "sandbox-client" and payload["app_id"] == "sandbox-app"
    # the token works
    ok = httpx.get(
        f"{sandbox.url}/rostering/1.0/orgs/partner-sandbox",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert ok.status_code == 200


@pytest.mark.parametrize(
    ("kwargs", "status", "error"),
    [
        ({"data": GRANT, "auth": ("sandbox-client", "wrong")}, 401, "invalid_client"),
        ({"data": GRANT, "auth": ("nobody", "sandbox-secret")}, 401, "invalid_client"),
        ({"data": GRANT}, 401, "invalid_client"),
        ({"data": {**GRANT, "client_id": "sandbox-client"}}, 401, "invalid_client"),
        (
            {"json": {**GRANT, "client_id": "sandbox-client", "client_secret": "other-secret"}},
            401,
            "invalid_client",
        ),
        ({"data": {}, "auth": ("sandbox-client", "sandbox-secret")}, 400, "invalid_request"),
        (
            {"data": {"grant_type": "password"}, "auth": ("sandbox-client", "sandbox-secret")},
            400,
            "unsupported_grant_type",
        ),
        (
            {
                "data": {**GRANT, "scope": "events.write admin"},
                "auth": ("sandbox-client", "sandbox-secret"),
            },
            400,
            "invalid_scope",
        ),
        (
            {
                "data": {**GRANT, "client_id": "sandbox-client", "client_secret": "sandbox-secret"},
                "auth": ("sandbox-client", "sandbox-secret"),
            },
            400,
            "invalid_request",
        ),
        (
            {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
            400,
            "invalid_request",
        ),
        (
            {"content": b"grant", "headers": {"Content-Type": "text/plain"}},
            400,
            "invalid_request",
        ),
    ],
)
def test_token_errors(
    sandbox: SandboxHandle, kwargs: dict[str, object], status: int, error: str
) -> None:
    response = httpx.post(f"{sandbox.url}{TOKEN}", **kwargs)  # type: ignore[arg-type]
    assert response.status_code == status, response.text
    assert response.json()["error"] == error


def test_basic_failure_challenges_with_www_authenticate(sandbox: SandboxHandle) -> None:
    response = httpx.post(f"{sandbox.url}{TOKEN}", data=GRANT, auth=("sandbox-client", "x"))
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_scope_narrowing(sandbox: SandboxHandle) -> None:
    response = httpx.post(
        f"{sandbox.url}{TOKEN}",
        data={**GRANT, "scope": "roster.readonly roster.readonly"},
        auth=("sandbox-client", "sandbox-secret"),
    )
    assert response.json()["scope"] == "roster.readonly"
    headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
    assert httpx.get(f"{sandbox.url}/rostering/1.0/users", headers=headers).status_code == 200
    denied = httpx.put(
        f"{sandbox.url}/rostering/1.0/orgs/o1",
        json={"org": {"sourcedId": "o1", "name": "x"}},
        headers=headers,
    )
    assert denied.status_code == 403
    assert denied.json() == {
        "error": "insufficient_scope",
        "message": "this call needs the roster.createput scope",
        "scope": "roster.createput",
    }


def test_client_without_events_write_gets_403_on_events(sandbox_factory: SandboxFactory) -> None:
    reader = Client("reader", "reader-secret", "reader-app", ("events.readonly", "roster.readonly"))
    box = sandbox_factory(extra_clients=[reader])
    token = httpx.post(f"{box.url}{TOKEN}", data=GRANT, auth=("reader", "reader-secret")).json()
    assert token["scope"] == "events.readonly roster.readonly"
    asking_more = httpx.post(
        f"{box.url}{TOKEN}",
        data={**GRANT, "scope": "events.write"},
        auth=("reader", "reader-secret"),
    )
    assert asking_more.status_code == 400 and asking_more.json()["error"] == "invalid_scope"
    with box.api("reader") as http:
        event = xp_event(app_id="reader-app", student_id="s", course_id="c")
        response = http.post("/events/1.0", json=event)
        assert response.status_code == 403
        assert response.json()["error"] == "insufficient_scope"
        assert response.json()["scope"] == "events.write"
        assert http.put("/rostering/1.0/users/u", json={}).json()["scope"] == "roster.createput"
    assert box.stats()["received"] == 0  # refused before the body was read


def test_runtime_client_and_scope_per_endpoint(sandbox: SandboxHandle) -> None:
    sandbox.add_client("writer", "pw", "writer-app", ["events.write"])
    with sandbox.api("writer") as http:
        assert http.get("/xp/1.0/users/u/entries").json()["scope"] == "events.readonly"
        assert http.get("/rostering/1.0/users").json()["scope"] == "roster.readonly"
        assert http.get("/rostering/1.0/users/u").json()["scope"] == "roster.readonly"


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer not.a.token", "Basic c2FuZGJveC1jbGllbnQ6c2FuZGJveC1zZWNyZXQ="],
)
def test_bad_bearer_tokens_get_invalid_token(sandbox: SandboxHandle, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    for method, path in [
        ("GET", "/rostering/1.0/users"),
        ("POST", "/events/1.0"),
        ("GET", "/xp/1.0/users/u/entries"),
        ("PUT", "/rostering/1.0/users/u"),
    ]:
        response = httpx.request(method, f"{sandbox.url}{path}", headers=headers)
        assert response.status_code == 401, (method, path)
        assert response.json()["error"] == "invalid_token"
        assert "invalid_token" in response.headers["WWW-Authenticate"]


def test_tokens_expire_per_ttl(sandbox_factory: SandboxFactory) -> None:
    """Valid, then refused once the TTL has passed, never before. The TTL is long enough for the
    first request to land inside it on a loaded machine (at 0.5 s a stall could fail it), and
    the expiry is polled for rather than slept past."""
    ttl = 2.0
    box = sandbox_factory(token_ttl_s=ttl)
    asked = time.monotonic()
    body = httpx.post(f"{box.url}{TOKEN}", data=GRANT, auth=("sandbox-client", "sandbox-secret"))
    assert body.json()["expires_in"] == ttl
    headers = {"Authorization": f"Bearer {body.json()['access_token']}"}
    assert httpx.get(f"{box.url}/rostering/1.0/users", headers=headers).status_code == 200
    while (expired := httpx.get(f"{box.url}/rostering/1.0/users", headers=headers)).is_success:
        assert time.monotonic() - asked < ttl + 30, "the token never expired"
        time.sleep(0.1)
    assert time.monotonic() - asked >= ttl, "the token expired before its TTL"
    assert expired.status_code == 401 and expired.json()["error"] == "invalid_token"


def test_revoked_tokens_get_401(sandbox: SandboxHandle) -> None:
    with sandbox.api() as http:
        assert http.get("/rostering/1.0/users").status_code == 200
        sandbox.revoke_tokens()
        assert http.get("/rostering/1.0/users").status_code == 401
    with sandbox.api() as http:
        assert http.get("/rostering/1.0/users").status_code == 200
