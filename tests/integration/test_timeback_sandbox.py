"""The Partner API client against the real sandbox over HTTP: events, faults, tokens, rostering.

Statuses the sandbox never produces (409, 413, 422, 3xx) are covered with a scripted transport
in tests/unit/test_timeback_client.py. Two cases below reach into the running sandbox's state
(``thread.run_in_loop``): counting issued tokens, and refusing every token (a second 401).
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from prometheus_client import generate_latest
from pydantic import SecretStr

from relay.caliper.events import event_extensions, grade_event, view_event
from relay.caliper.ids import app_iri, course_iri, format_time, user_iri
from relay.metrics import CIRCUIT_TRANSITIONS, REGISTRY
from relay.pipeline.stages import rejection_of
from relay.resilience import Backoff, CircuitBreaker, CircuitState
from relay.sandbox.state import Sandbox
from relay.timeback import (
    ApiSystemicError,
    ApiTransientError,
    ClientConfig,
    Deliverer,
    Outcome,
    RequestRejected,
    SendResult,
    TimeBackClient,
)
from tests.integration.conftest import SandboxHandle

pytestmark = pytest.mark.integration

IRI = "https://api.alpha-1edtech.ai"  # the sandbox's default iri_base, as in production
APP = app_iri(IRI, "sandbox-app")
STUDENT = "7d2c8f4e-1b7a-4c55-9a6e-3f1f0c2d9b11"
DISTINCTIVE_SECRET = "zz-DISTINCTIVE-secret-7731-do-not-leak"
_ids = itertools.count()


def config(sandbox: SandboxHandle, **overrides: Any) -> ClientConfig:
    values: dict[str, Any] = {
        "base_url": sandbox.url,
        "client_id": "sandbox-client",
        "client_secret": SecretStr("sandbox-secret"),
        "timeout": 5.0,
        "max_in_flight": 16,
        **overrides,
    }
    return ClientConfig(**values)


@pytest.fixture
async def client(sandbox: SandboxHandle) -> AsyncIterator[TimeBackClient]:
    async with TimeBackClient(config(sandbox)) as c:
        yield c


def view(**extensions: Any) -> tuple[str, bytes]:
    """A valid ViewEvent (plus any extra event extensions) and its id."""
    event_id = f"urn:uuid:{uuid.uuid4()}"
    event = view_event(
        id=event_id,
        event_time=format_time(datetime.now(UTC)),
        app=APP,
        student=user_iri(IRI, STUDENT),
        resource_id=f"https://app.example.test/lessons/l{next(_ids)}",
        resource_name="Fractions 3",
        extensions=event_extensions("Math", None),
    )
    event.setdefault("extensions", {}).update(extensions)
    return event_id, orjson.dumps(event)


def deliverer(
    client: TimeBackClient,
    *,
    threshold: int = 3,
    open_for: float = 0.2,
    budget: float = 30,
    sleep: Callable[[float], Any] = asyncio.sleep,
    on_change: Callable[[CircuitState, CircuitState], None] | None = None,
) -> Deliverer:
    breaker = CircuitBreaker(threshold, open_for, max_open_for=0.5, on_change=on_change)
    return Deliverer(client, breaker, Backoff(0.02, 0.2), budget, 10, sleep=sleep)


def count_tokens(sandbox: SandboxHandle) -> Callable[[], int]:
    """Count the tokens the sandbox issues from now on (server side)."""
    issued = [0]

    def install(state: Sandbox) -> None:
        original = state.signer.issue

        def issue(*args: Any, **kwargs: Any) -> str:
            issued[0] += 1
            return original(*args, **kwargs)

        state.signer.issue = issue  # type: ignore[method-assign]

    sandbox.thread.run_in_loop(install)
    return lambda: issued[0]


# --- events --------------------------------------------------------------------------------


async def test_a_real_event_is_accepted(sandbox: SandboxHandle, client: TimeBackClient) -> None:
    event_id, payload = view()
    result = await client.send_event(payload, event_type="ViewEvent")
    assert result == SendResult(202, Outcome.DELIVERED)
    assert sandbox.event(event_id)["status"] == 202
    # Sent again (a retry after a lost ack): still taken; the sandbox keeps one fact.
    assert (await client.send_event(payload, event_type="ViewEvent")).outcome is Outcome.DELIVERED
    assert sandbox.stats()["received"] == 2


async def test_a_400_is_a_rejection_with_status_and_body(
    sandbox: SandboxHandle, client: TimeBackClient
) -> None:
    _, payload = view(lesson="l1")  # an unrecognized event extension
    with pytest.raises(RequestRejected) as caught:
        await deliverer(client).deliver(payload, event_type="ViewEvent")
    rejection = rejection_of(caught.value)  # the pipeline names the stage
    assert (rejection.stage, rejection.reason, rejection.status) == ("deliver", "api-rejected", 400)
    body = orjson.loads(rejection.body or "")
    assert body["error"] == "invalid_event"
    assert any(issue["path"] == "extensions.lesson" for issue in body["issues"])
    assert sandbox.stats()["received"] == 1  # refused once, never retried


async def test_a_429_retry_after_is_waited(sandbox: SandboxHandle, client: TimeBackClient) -> None:
    sandbox.faults(rate_limit={"rate": 1.0, "retry_after_s": 2}, paths=["/events/1.0"], seed=1)
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        sandbox.clear_faults()  # the limit lifts while we wait (no real 2 s in the test)

    event_id, payload = view()
    result = await deliverer(client, sleep=sleep).deliver(payload, event_type="ViewEvent")
    assert result == SendResult(202, Outcome.DELIVERED, attempts=2)
    assert waits[0] >= 2  # Retry-After honoured over the 0.02 s backoff
    assert sandbox.event(event_id)["status"] == 202


@pytest.mark.parametrize("mode", ["503", "reset"])
async def test_a_short_outage_ends_delivered_with_the_circuit_opened_then_closed(
    sandbox: SandboxHandle, client: TimeBackClient, mode: str
) -> None:
    opened = CIRCUIT_TRANSITIONS.labels(to="open")._value.get()
    changes: list[CircuitState] = []
    d = deliverer(client, on_change=lambda old, new: changes.append(new))
    sandbox.faults(
        outages=[{"start_in_s": 0, "duration_s": 1, "mode": mode}], paths=["/events/1.0"]
    )
    events = [view() for _ in range(20)]
    results = await asyncio.gather(
        *(d.deliver(payload, event_type="ViewEvent") for _, payload in events)
    )
    assert {r.outcome for r in results} == {Outcome.DELIVERED}
    assert max(r.attempts for r in results) > 1
    assert CircuitState.OPEN in changes and changes[-1] is CircuitState.CLOSED
    assert d.breaker.state is CircuitState.CLOSED
    assert CIRCUIT_TRANSITIONS.labels(to="open")._value.get() > opened
    stats = sandbox.stats()
    assert stats["faulted"] > 0
    assert {e["id"] for e in sandbox.events()} == {event_id for event_id, _ in events}


# --- tokens --------------------------------------------------------------------------------


async def test_concurrent_sends_share_one_token(
    sandbox: SandboxHandle, client: TimeBackClient
) -> None:
    issued = count_tokens(sandbox)
    results = await asyncio.gather(
        *(client.send_event(view()[1], event_type="ViewEvent") for _ in range(30))
    )
    assert len(results) == 30
    assert issued() == 1


async def test_short_lived_tokens_refresh_without_failed_deliveries(
    sandbox: SandboxHandle, client: TimeBackClient
) -> None:
    sandbox.faults(token_ttl_s=1)
    issued = count_tokens(sandbox)
    refused = _requests("events", "4xx")
    for _ in range(25):  # ~2.5 s: two and a half token lifetimes
        result = await client.send_event(view()[1], event_type="ViewEvent")
        assert result.outcome is Outcome.DELIVERED
        await asyncio.sleep(0.1)
    assert issued() >= 3  # refreshed proactively...
    # ...before expiry: no request was refused with a 401 along the way.
    assert _requests("events", "4xx") == refused


async def test_a_revoked_token_is_replaced_once(
    sandbox: SandboxHandle, client: TimeBackClient
) -> None:
    await client.send_event(view()[1], event_type="ViewEvent")
    issued = count_tokens(sandbox)
    sandbox.revoke_tokens()
    results = await asyncio.gather(
        *(client.send_event(view()[1], event_type="ViewEvent") for _ in range(10))
    )
    assert {r.status for r in results} == {202}
    assert issued() == 1  # ten 401s on the same token, one refresh


async def test_a_second_401_is_systemic(sandbox: SandboxHandle, client: TimeBackClient) -> None:
    sandbox.thread.run_in_loop(
        lambda state: setattr(state.signer, "verify", lambda token: None)  # refuse every token
    )
    with pytest.raises(ApiSystemicError) as caught:
        await client.send_event(view()[1], event_type="ViewEvent")
    assert caught.value.status == 401


@pytest.mark.parametrize("mode", ["503", "reset"])
async def test_token_endpoint_down_is_transient_then_recovers(
    sandbox: SandboxHandle, client: TimeBackClient, mode: str
) -> None:
    sandbox.faults(token_endpoint_down=mode)
    with pytest.raises(ApiTransientError) as caught:
        await client.send_event(view()[1], event_type="ViewEvent")
    assert caught.value.endpoint == "token"
    assert caught.value.cause == ("503" if mode == "503" else "network")
    failures: list[str] = []

    async def sleep(seconds: float) -> None:
        failures.append("slept")
        if len(failures) == 2:
            sandbox.clear_faults()  # the token endpoint comes back
        await asyncio.sleep(0)

    result = await deliverer(client, sleep=sleep).deliver(view()[1], event_type="ViewEvent")
    assert result.status == 202
    assert result.attempts == 3


async def test_bad_credentials_are_systemic(sandbox: SandboxHandle) -> None:
    cfg = config(sandbox, client_secret=SecretStr(DISTINCTIVE_SECRET))
    async with TimeBackClient(cfg) as c:
        with pytest.raises(ApiSystemicError) as caught:
            await c.send_event(view()[1], event_type="ViewEvent")
    assert caught.value.endpoint == "token"
    assert caught.value.status == 401
    assert "invalid_client" in str(caught.value)


@pytest.mark.parametrize("method", ["basic", "body"])
async def test_both_auth_methods(sandbox: SandboxHandle, method: str) -> None:
    async with TimeBackClient(config(sandbox, auth_method=method)) as c:
        assert (await c.send_event(view()[1], event_type="ViewEvent")).status == 202


async def test_missing_scope_is_systemic(sandbox: SandboxHandle) -> None:
    sandbox.add_client("reader", DISTINCTIVE_SECRET, "sandbox-app", scopes=["roster.readonly"])
    reader = config(sandbox, client_id="reader", client_secret=SecretStr(DISTINCTIVE_SECRET))
    async with TimeBackClient(reader) as c:
        with pytest.raises(ApiSystemicError) as caught:
            await c.send_event(view()[1], event_type="ViewEvent")
        assert (caught.value.endpoint, caught.value.status) == ("events", 403)
    # Asking the token endpoint for a scope the client lacks: refused there (400), systemic too.
    async with TimeBackClient(
        config(
            sandbox,
            client_id="reader",
            scope="events.write",
            client_secret=SecretStr(DISTINCTIVE_SECRET),
        )
    ) as c:
        with pytest.raises(ApiSystemicError) as caught:
            await c.send_event(view()[1], event_type="ViewEvent")
        assert (caught.value.endpoint, caught.value.status) == ("token", 400)
        assert "invalid_scope" in str(caught.value)


async def test_wrong_base_url_is_systemic(sandbox: SandboxHandle) -> None:
    cfg = config(sandbox, base_url=f"{sandbox.url}/v2", token_url=f"{sandbox.url}/auth/1.0/token")
    async with TimeBackClient(cfg) as c:
        with pytest.raises(ApiSystemicError) as caught:
            await c.send_event(view()[1], event_type="ViewEvent")
    assert caught.value.status == 404
    assert "RELAY_API_BASE_URL" in str(caught.value)


# --- rostering and xp ----------------------------------------------------------------------


def user(sourced_id: str) -> dict[str, Any]:
    return {
        "sourcedId": sourced_id,
        "enabledUser": True,
        "givenName": "Test",
        "familyName": "Student",
        "email": f"{sourced_id}@example.test",
        "roles": [
            {"role": "student", "roleType": "primary", "org": {"sourcedId": "partner-sandbox"}}
        ],
        "metadata": {"isTestUser": True},
    }


def course(sourced_id: str) -> dict[str, Any]:
    return {
        "sourcedId": sourced_id,
        "status": "active",
        "title": "Math 5",
        "courseCode": "M5",
        "subjects": ["Math"],
        "org": {"sourcedId": "partner-sandbox"},
    }


async def test_rostering_and_xp_round_trip(sandbox: SandboxHandle, client: TimeBackClient) -> None:
    student, course_id = str(uuid.uuid4()), f"course-{uuid.uuid4()}"
    assert await client.get_user(student) is None
    assert await client.get_course(course_id) is None
    assert await client.put("users", student, user(student)) == 201
    assert await client.put("courses", course_id, course(course_id)) == 201
    assert await client.put("courses", course_id, course(course_id)) == 200  # replaced
    assert (await client.get_user(student) or {})["sourcedId"] == student
    assert (await client.get_course(course_id) or {})["title"] == "Math 5"

    event_id = f"urn:uuid:{uuid.uuid4()}"
    event = grade_event(
        id=event_id,
        event_time=format_time(datetime.now(UTC)),
        app=APP,
        student=user_iri(IRI, student),
        attempt_id=f"https://app.example.test/attempts/{uuid.uuid4()}",
        count=1,
        assignable_id="https://app.example.test/lessons/l1",
        assignable_type="DigitalResource",
        activity_name="Fractions 3",
        score_id=f"https://app.example.test/scores/{uuid.uuid4()}",
        score_given=12.0,
        max_score=12.0,
        score_type="XP",
        extensions=event_extensions("Math", course_iri(IRI, course_id)),
    )
    result = await client.send_event(orjson.dumps(event), event_type="GradeEvent")
    assert result.status == 202
    sandbox.process()
    page = await client.xp_entries(student, application_id="sandbox-app", limit=10)
    assert [e["sourceEventId"] for e in page["entries"]] == [event_id]
    assert page["entries"][0]["value"] == 12.0


# --- secrets -------------------------------------------------------------------------------


async def test_secrets_never_show(sandbox: SandboxHandle) -> None:
    sandbox.add_client("leaky", DISTINCTIVE_SECRET, "sandbox-app")
    cfg = config(sandbox, client_id="leaky", client_secret=SecretStr(DISTINCTIVE_SECRET))
    texts: list[str] = []
    async with TimeBackClient(cfg) as c:
        d = deliverer(c)
        await c.send_event(view()[1], event_type="ViewEvent")
        token = c.auth._token or ""
        assert token
        failures: list[BaseException] = []
        for faults in (
            {"token_endpoint_down": "503"},
            {"token_endpoint_down": "reset"},
            {"error_rates": {"503": 1.0}, "paths": ["/events/1.0"]},
        ):
            sandbox.clear_faults()
            sandbox.faults(faults)
            c.auth.invalidate(c.auth._token or "")
            with pytest.raises(ApiTransientError) as caught:
                await c.send_event(view()[1], event_type="ViewEvent")
            failures.append(caught.value)
        sandbox.clear_faults()
        with pytest.raises(RequestRejected) as rejected:
            await c.send_event(view(lesson="x")[1], event_type="ViewEvent")
        failures.append(rejected.value)
        texts += [repr(c), str(c), repr(c.config), str(c.config), repr(c.auth), repr(d)]
        texts += [repr(d.breaker), repr(d.backoff)]
    async with TimeBackClient(config(sandbox, client_secret=SecretStr(DISTINCTIVE_SECRET))) as c:
        with pytest.raises(ApiSystemicError) as refused:
            await c.send_event(view()[1], event_type="ViewEvent")
        failures.append(refused.value)
    for failure in failures:
        texts += [
            str(failure),
            repr(failure),
            repr(failure.args),
            str(getattr(failure, "body", "")),
        ]
    texts.append(generate_latest(REGISTRY).decode())
    for text in texts:
        assert DISTINCTIVE_SECRET not in text
        assert token not in text


def _requests(endpoint: str, status_class: str) -> float:
    """The requests counted, as a scrape reads them (a collection adds the tallies first)."""
    labels = {"endpoint": endpoint, "status_class": status_class}
    return REGISTRY.get_sample_value("timeback_relay_http_requests_total", labels) or 0.0
