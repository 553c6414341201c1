"""TimeBackClient: one attempt per call, each row of the response table, 401 handling, rostering.

The API is an ``httpx.MockTransport`` handler scripted per test; this covers statuses the sandbox
never produces (409, 413, 422, 403 on events, 3xx...). The same client over real HTTP against the
sandbox: tests/integration/test_timeback_sandbox.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import orjson
import pytest
from prometheus_client import generate_latest
from pydantic import SecretStr

from relay import __version__, wiring
from relay.config import Settings
from relay.errors import SystemicError
from relay.metrics import HTTP_REQUESTS, HTTP_REQUESTS_BY, REGISTRY, SYSTEMIC_ERRORS
from relay.pipeline.stages import rejection_of
from relay.timeback.client import SendResult, TimeBackClient
from relay.timeback.client_config import ClientConfig
from relay.timeback.errors import ApiSystemicError, ApiTransientError, RequestRejected
from relay.timeback.responses import Outcome

SECRET = "s3cr3t-Zq9-DO-NOT-LEAK"
BASE = "https://api.example.test"
EVENT = orjson.dumps({"id": "urn:uuid:1", "type": "GradeEvent"})


class FakeApi:
    """Token endpoint plus scripted answers per path; remembers every request."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.tokens = 0
        self.script: dict[str, list[httpx.Response | Exception]] = {}
        self.accepted_token: str | None = None  # None: any token is fine

    def answer(self, path: str, *responses: httpx.Response | Exception) -> None:
        self.script.setdefault(path, []).extend(responses)

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/auth/1.0/token":
            self.tokens += 1
            token = f"eyJ-token-{self.tokens}"
            return httpx.Response(200, json={"access_token": token, "expires_in": 3600})
        if (
            self.accepted_token
            and request.headers["authorization"] != f"Bearer {self.accepted_token}"
        ):
            return httpx.Response(401, json={"error": "invalid_token"})
        queue = self.script.get(request.url.path) or [httpx.Response(202, json={"status": "ok"})]
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def calls(self, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path == path]


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


@pytest.fixture
async def client(api: FakeApi) -> Iterator[TimeBackClient]:
    config = ClientConfig(BASE, "client-1", SecretStr(SECRET), timeout=3, max_in_flight=8)
    async with TimeBackClient(config, transport=httpx.MockTransport(api)) as c:
        yield c  # type: ignore[misc]


# --- configuration -------------------------------------------------------------------------


def test_config_from_settings() -> None:
    settings = Settings(
        api_base_url="http://127.0.0.1:9999",
        allow_insecure_http=True,
        client_id="cid",
        client_secret=SECRET,
        auth_method="body",
        scope="events.write",
        http_timeout=7,
        max_in_flight=16,
        retry_after_cap=20,
    )
    config = wiring.client_config(settings)
    assert config.effective_token_url == "http://127.0.0.1:9999/auth/1.0/token"
    assert (config.client_id, config.auth_method, config.scope) == ("cid", "body", "events.write")
    assert config.client_secret.get_secret_value() == SECRET
    assert config.timeouts() == httpx.Timeout(connect=5, read=7, write=7, pool=7)
    assert config.effective_deadline == 21  # RELAY_HTTP_DEADLINE unset: 3 x RELAY_HTTP_TIMEOUT
    assert wiring.client_config(settings.model_copy(update={"http_deadline": 4})).deadline == 4
    assert config.limits().max_connections == 17
    assert config.limits().max_keepalive_connections == 17
    assert SECRET not in repr(config) and SECRET not in str(config)


def test_config_requires_credentials() -> None:
    from relay.errors import ConfigError

    with pytest.raises(ConfigError, match="RELAY_CLIENT_SECRET"):
        wiring.client_config(Settings(client_id="cid"))


# --- events: one row of the table per test ---------------------------------------------------


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.DELIVERED),
        (201, Outcome.DELIVERED),
        (202, Outcome.DELIVERED),
        (204, Outcome.DELIVERED),
        (409, Outcome.DUPLICATE),
    ],
)
async def test_taken(api: FakeApi, client: TimeBackClient, status: int, outcome: Outcome) -> None:
    api.answer("/events/1.0", httpx.Response(status))
    assert await client.send_event(EVENT, event_type="GradeEvent") == SendResult(status, outcome)
    sent = api.calls("/events/1.0")[0]
    assert sent.method == "POST"
    assert sent.content == EVENT  # the payload bytes, untouched
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["authorization"] == "Bearer eyJ-token-1"


@pytest.mark.parametrize("status", [400, 410, 413, 422])
async def test_rejected(api: FakeApi, client: TimeBackClient, status: int) -> None:
    body = {"error": "invalid_event", "issues": [{"path": "extensions.lesson", "message": "x"}]}
    api.answer("/events/1.0", httpx.Response(status, json=body))
    with pytest.raises(RequestRejected) as caught:
        await client.send_event(EVENT, event_type="GradeEvent")
    rejection = rejection_of(caught.value)  # ...and the pipeline names the stage
    assert (rejection.stage, rejection.reason, rejection.status) == (
        "deliver",
        "api-rejected",
        status,
    )
    assert orjson.loads(rejection.body or "") == body
    assert "GradeEvent" in rejection.detail and "invalid_event" in rejection.detail


async def test_rejection_body_is_capped_to_2_kb(api: FakeApi, client: TimeBackClient) -> None:
    api.answer("/events/1.0", httpx.Response(400, content="é".encode() * 5000))
    with pytest.raises(RequestRejected) as caught:
        await client.send_event(EVENT, event_type="GradeEvent")
    assert caught.value.body is not None
    assert len(caught.value.body.encode()) <= 2048 + 3  # a cut character becomes U+FFFD


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504])
async def test_transient(api: FakeApi, client: TimeBackClient, status: int) -> None:
    api.answer("/events/1.0", httpx.Response(status, headers={"Retry-After": "2"}))
    with pytest.raises(ApiTransientError) as caught:
        await client.send_event(EVENT, event_type="GradeEvent")
    assert caught.value.retry_after == 2
    assert (caught.value.endpoint, caught.value.cause, caught.value.status) == (
        "events",
        str(status),
        status,
    )


async def test_retry_after_is_capped(api: FakeApi, client: TimeBackClient) -> None:
    api.answer("/events/1.0", httpx.Response(429, headers={"Retry-After": "100000"}))
    with pytest.raises(ApiTransientError) as caught:
        await client.send_event(EVENT, event_type="GradeEvent")
    assert caught.value.retry_after == client.config.retry_after_cap


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        (httpx.ConnectError("refused"), "connect"),
        (httpx.ReadTimeout("slow"), "timeout"),
        (httpx.PoolTimeout("busy"), "timeout"),
        (httpx.ReadError("connection reset by peer"), "network"),
        (httpx.RemoteProtocolError("server disconnected"), "network"),
    ],
)
async def test_no_response_is_transient(
    api: FakeApi, client: TimeBackClient, error: Exception, cause: str
) -> None:
    before = _requests("events", "error")
    api.answer("/events/1.0", error)
    with pytest.raises(ApiTransientError) as caught:
        await client.send_event(EVENT, event_type="GradeEvent")
    assert caught.value.cause == cause
    assert _requests("events", "error") == before + 1


async def test_a_reply_that_drips_is_cut_off_at_the_deadline(api: FakeApi) -> None:
    # Each byte comes well within the read timeout; only the total deadline ends the request.
    async def drip() -> AsyncIterator[bytes]:
        for byte in b'{"status": "ok"}':
            await asyncio.sleep(0.05)
            yield bytes([byte])

    dripping = httpx.Response(202, content=drip())
    api.answer("/events/1.0", dripping, httpx.Response(202, json={"status": "ok"}))
    before = _requests("events", "error")
    config = ClientConfig(BASE, "client-1", SecretStr(SECRET), timeout=3, deadline=0.2)
    async with TimeBackClient(config, transport=httpx.MockTransport(api)) as client:
        with pytest.raises(ApiTransientError, match=r"0\.2 s deadline") as caught:
            await client.send_event(EVENT, event_type="GradeEvent")
        assert caught.value.cause == "timeout"
        assert (await client.send_event(EVENT, event_type="GradeEvent")).status == 202
    assert _requests("events", "error") == before + 1


async def test_a_token_reply_that_drips_is_cut_off_at_the_deadline() -> None:
    # The single-flight token refresh holds every caller: it gets the same total deadline.
    async def drip() -> AsyncIterator[bytes]:
        for byte in b'{"access_token": "eyJ-slow", "expires_in": 3600}':
            await asyncio.sleep(0.05)
            yield bytes([byte])

    async def token_endpoint(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=drip())

    before = _requests("token", "error")
    config = ClientConfig(BASE, "client-1", SecretStr(SECRET), timeout=3, deadline=0.2)
    async with TimeBackClient(config, transport=httpx.MockTransport(token_endpoint)) as client:
        with pytest.raises(ApiTransientError, match=r"0\.2 s deadline") as caught:
            await client.auth.token()
    assert caught.value.cause == "timeout"
    assert _requests("token", "error") == before + 1


@pytest.mark.parametrize(
    ("status", "hint"),
    [(403, "RELAY_SCOPE"), (404, "RELAY_API_BASE_URL"), (302, "RELAY_API_BASE_URL")],
)
async def test_systemic(api: FakeApi, client: TimeBackClient, status: int, hint: str) -> None:
    before = SYSTEMIC_ERRORS.labels(endpoint="events", status=str(status))._value.get()
    api.answer("/events/1.0", httpx.Response(status, headers={"Location": "https://elsewhere"}))
    with pytest.raises(ApiSystemicError) as caught:
        await client.send_event(EVENT, event_type="GradeEvent")
    assert isinstance(caught.value, SystemicError)
    assert caught.value.status == status
    assert hint in str(caught.value) and "/events/1.0" in str(caught.value)
    assert SYSTEMIC_ERRORS.labels(endpoint="events", status=str(status))._value.get() == before + 1


async def test_401_refreshes_once_and_resends(api: FakeApi, client: TimeBackClient) -> None:
    api.answer("/events/1.0", httpx.Response(401), httpx.Response(202))
    result = await client.send_event(EVENT, event_type="GradeEvent")
    assert result == SendResult(202, Outcome.DELIVERED)
    posts = api.calls("/events/1.0")
    assert [p.headers["authorization"] for p in posts] == [
        "Bearer eyJ-token-1",
        "Bearer eyJ-token-2",
    ]
    assert api.tokens == 2


async def test_second_401_is_systemic(api: FakeApi, client: TimeBackClient) -> None:
    api.answer("/events/1.0", httpx.Response(401))
    with pytest.raises(ApiSystemicError) as caught:
        await client.send_event(EVENT, event_type="GradeEvent")
    assert caught.value.status == 401
    assert len(api.calls("/events/1.0")) == 2
    assert api.tokens == 2


async def test_expired_token_is_replaced_once_for_a_burst(
    api: FakeApi, client: TimeBackClient
) -> None:
    import asyncio

    await client.send_event(EVENT, event_type="GradeEvent")  # caches eyJ-token-1
    api.accepted_token = "eyJ-token-2"  # the server now refuses token 1
    results = await asyncio.gather(
        *(client.send_event(EVENT, event_type="GradeEvent") for _ in range(20))
    )
    assert {r.outcome for r in results} == {Outcome.DELIVERED}
    assert api.tokens == 2  # twenty 401s on the same token: one refresh


# --- rostering and xp ----------------------------------------------------------------------

COURSE = {"sourcedId": "c 1", "title": "Math 5", "subjects": ["Math"]}


@pytest.mark.parametrize("reply", [{"course": COURSE}, COURSE])
async def test_get_course_wrapped_or_bare(
    api: FakeApi, client: TimeBackClient, reply: dict[str, object]
) -> None:
    api.answer("/rostering/1.0/courses/c 1/x", httpx.Response(200, json=reply))
    assert await client.get_course("c 1/x") == COURSE
    sent = api.calls("/rostering/1.0/courses/c 1/x")[0]
    assert sent.method == "GET"
    assert sent.url.raw_path == b"/rostering/1.0/courses/c%201%2Fx"  # one path segment


async def test_get_user_and_not_found(api: FakeApi, client: TimeBackClient) -> None:
    api.answer("/rostering/1.0/users/u1", httpx.Response(200, json={"user": {"sourcedId": "u1"}}))
    api.answer("/rostering/1.0/users/u2", httpx.Response(404, json={"error": "not_found"}))
    api.answer("/rostering/1.0/courses/c2", httpx.Response(404))
    assert await client.get_user("u1") == {"sourcedId": "u1"}
    assert await client.get_user("u2") is None
    assert await client.get_course("c2") is None


async def test_rostering_failures(api: FakeApi, client: TimeBackClient) -> None:
    api.answer("/rostering/1.0/courses/bad", httpx.Response(400, json={"error": "invalid"}))
    api.answer("/rostering/1.0/courses/busy", httpx.Response(503))
    api.answer("/rostering/1.0/courses/nope", httpx.Response(403))
    api.answer("/rostering/1.0/courses/html", httpx.Response(200, text="<html>"))
    with pytest.raises(RequestRejected) as caught:
        await client.get_course("bad")
    rejection = rejection_of(caught.value)
    assert (rejection.stage, rejection.reason, rejection.status) == (
        "enrich",
        "rostering-rejected",
        400,
    )
    with pytest.raises(ApiTransientError):
        await client.get_course("busy")
    with pytest.raises(ApiSystemicError):
        await client.get_course("nope")
    with pytest.raises(ApiTransientError, match="JSON"):
        await client.get_course("html")


async def test_put_wraps_the_body(api: FakeApi, client: TimeBackClient) -> None:
    api.answer("/rostering/1.0/classes/k1", httpx.Response(201, json={}))
    assert await client.put("classes", "k1", {"sourcedId": "k1"}) == 201
    sent = api.calls("/rostering/1.0/classes/k1")[0]
    assert sent.method == "PUT"
    assert orjson.loads(sent.content) == {"class": {"sourcedId": "k1"}}
    with pytest.raises(ValueError):
        await client.put("teachers", "t1", {})


async def test_put_refused(api: FakeApi, client: TimeBackClient) -> None:
    api.answer("/rostering/1.0/users/u1", httpx.Response(400, json={"error": "invalid_request"}))
    with pytest.raises(RequestRejected) as caught:
        await client.put("users", "u1", {"sourcedId": "u1"})
    assert caught.value.status == 400
    assert "invalid_request" in caught.value.body


async def test_xp_entries(api: FakeApi, client: TimeBackClient) -> None:
    page = {"entries": [{"id": "1", "value": 12.0}], "offset": 0, "limit": 10, "total": 1}
    api.answer("/xp/1.0/users/u1/entries", httpx.Response(200, json=page))
    assert await client.xp_entries("u1", application_id="app", limit=10) == page
    sent = api.calls("/xp/1.0/users/u1/entries")[0]
    assert dict(sent.url.params) == {"applicationId": "app", "limit": "10", "offset": "0"}
    api.answer("/xp/1.0/users/u9/entries", httpx.Response(404))
    with pytest.raises(RequestRejected):
        await client.xp_entries("u9")


async def test_requests_are_counted_per_endpoint(api: FakeApi, client: TimeBackClient) -> None:
    def count(endpoint: str, cls: str) -> float:
        return _requests(endpoint, cls)

    before = (count("events", "2xx"), count("token", "2xx"), count("rostering", "4xx"))
    api.answer("/rostering/1.0/users/x", httpx.Response(404))
    await client.send_event(EVENT, event_type="ViewEvent")
    await client.get_user("x")
    assert count("events", "2xx") == before[0] + 1
    assert count("token", "2xx") == before[1] + 1
    assert count("rostering", "4xx") == before[2] + 1


async def test_no_secret_or_token_anywhere(api: FakeApi, client: TimeBackClient) -> None:
    api.answer(
        "/events/1.0",
        httpx.Response(403),
        httpx.Response(401),
        httpx.Response(401),
        httpx.ConnectError(SECRET),
        httpx.Response(400, json={"error": "x"}),
    )
    texts = [repr(client), str(client), repr(client.config), repr(client.auth)]
    for _ in range(4):
        with pytest.raises(Exception) as caught:  # any of the typed errors
            await client.send_event(EVENT, event_type="GradeEvent")
        texts += [str(caught.value), repr(caught.value)]
    texts.append(generate_latest(REGISTRY).decode())
    for text in texts:
        assert SECRET not in text
        assert "eyJ-token" not in text


# --- the prepared events request ----------------------------------------------------------


async def test_the_events_post_is_the_request_httpx_would_build(
    api: FakeApi, client: TimeBackClient
) -> None:
    """Prepared headers and a body stream read at once: the same headers, values and body
    ``httpx.Request(content=...)`` gives, the Authorization of the token in use."""
    await client.send_event(EVENT, event_type="GradeEvent")
    sent = api.calls("/events/1.0")[0]
    token = sent.headers["authorization"].removeprefix("Bearer ")
    built = httpx.Request(
        "POST",
        f"{BASE}/events/1.0",
        content=EVENT,
        headers={
            "User-Agent": f"timeback-relay/{__version__}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Authorization": f"Bearer {token}",
        },
    )
    assert token == "eyJ-token-1"
    assert sorted(sent.headers.multi_items()) == sorted(built.headers.multi_items())
    assert sent.content == built.content == EVENT
    assert sent.url == built.url


async def test_a_new_token_gets_a_new_authorization_header(
    api: FakeApi, client: TimeBackClient
) -> None:
    await client.send_event(EVENT, event_type="GradeEvent")
    api.accepted_token = "eyJ-token-2"  # the first token is refused: refresh once, resend
    await client.send_event(EVENT, event_type="GradeEvent")
    assert [r.headers["authorization"] for r in api.calls("/events/1.0")] == [
        "Bearer eyJ-token-1",
        "Bearer eyJ-token-1",
        "Bearer eyJ-token-2",
    ]


def test_the_tallied_requests_are_the_metric_s_own_series() -> None:
    """A tally (made once per label values) adds up in the very series ``labels()`` names, as
    soon as the registry is collected."""
    assert HTTP_REQUESTS_BY("events", "2xx") is HTTP_REQUESTS_BY("events", "2xx")
    before = _requests("events", "2xx")  # collected: what earlier tests tallied is in
    HTTP_REQUESTS_BY("events", "2xx").inc()
    child = HTTP_REQUESTS.labels(endpoint="events", status_class="2xx")
    assert child._value.get() == before  # not in the series until the next collection
    assert _requests("events", "2xx") == before + 1
    assert child._value.get() == before + 1


def _requests(endpoint: str, status_class: str) -> float:
    """The requests counted, as a scrape reads them (a collection adds the tallies first)."""
    labels = {"endpoint": endpoint, "status_class": status_class}
    return REGISTRY.get_sample_value("timeback_relay_http_requests_total", labels) or 0.0
