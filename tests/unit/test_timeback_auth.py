"""TokenManager: caching, single flight, proactive refresh, typed failures, no secret leaks.

The token endpoint is an ``httpx.MockTransport`` handler (it counts the requests it serves);
the same behaviour over real HTTP is covered by tests/integration/test_timeback_sandbox.py.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs

import httpx
import orjson
import pytest
from prometheus_client import generate_latest

from relay.errors import SystemicError, TransientError
from relay.metrics import REGISTRY, TOKEN_REFRESHES
from relay.timeback.auth import TokenManager
from relay.timeback.errors import ApiSystemicError, ApiTransientError

SECRET = "s3cr3t-Zq9-DO-NOT-LEAK"
TOKEN_URL = "https://api.example.test/auth/1.0/token"

Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TokenServer:
    """Issues tok-1, tok-2... and remembers every request it saw."""

    def __init__(self, expires_in: float = 3600) -> None:
        self.requests: list[httpx.Request] = []
        self.expires_in = expires_in
        self.gate: asyncio.Event | None = None
        self.fail_with: httpx.Response | Exception | None = None
        self.prefix = "tok-"

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.gate is not None:
            await self.gate.wait()
        if isinstance(self.fail_with, Exception):
            raise self.fail_with
        if self.fail_with is not None:
            return self.fail_with
        body = {
            "access_token": f"{self.prefix}{len(self.requests)}",
            "token_type": "Bearer",
            "expires_in": self.expires_in,
        }
        return httpx.Response(200, json=body)


def manager(
    server: Handler, clock: Clock | None = None, method: str = "basic", **kw: object
) -> TokenManager:
    http = httpx.AsyncClient(transport=httpx.MockTransport(server))
    return TokenManager(
        http,
        TOKEN_URL,
        "client-1",
        SECRET,
        method,  # type: ignore[arg-type]
        kw.pop("scope", None),  # type: ignore[arg-type]
        clock=clock or Clock(),
        **kw,  # type: ignore[arg-type]
    )


async def test_basic_method_sends_credentials_in_the_header() -> None:
    server = TokenServer()
    tm = manager(server, scope="events.write roster.readonly")
    assert await tm.token() == "tok-1"
    request = server.requests[0]
    expected = base64.b64encode(f"client-1:{SECRET}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {expected}"
    form = parse_qs(request.content.decode())
    assert form == {"grant_type": ["client_credentials"], "scope": ["events.write roster.readonly"]}


async def test_body_method_sends_credentials_in_the_form() -> None:
    server = TokenServer()
    tm = manager(server, method="body")
    await tm.token()
    request = server.requests[0]
    assert "authorization" not in request.headers
    form = parse_qs(request.content.decode())
    assert form["client_id"] == ["client-1"]
    assert form["client_secret"] == [SECRET]
    assert form["grant_type"] == ["client_credentials"]


async def test_token_is_cached() -> None:
    server = TokenServer()
    tm = manager(server)
    assert [await tm.token() for _ in range(5)] == ["tok-1"] * 5
    assert len(server.requests) == 1
    assert tm.health.token_valid is True


async def test_concurrent_callers_share_one_refresh() -> None:
    server = TokenServer()
    server.gate = asyncio.Event()
    tm = manager(server)
    callers = [asyncio.create_task(tm.token()) for _ in range(50)]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    server.gate.set()
    tokens = await asyncio.gather(*callers)
    assert set(tokens) == {"tok-1"}
    assert len(server.requests) == 1


async def test_concurrent_callers_share_one_failure() -> None:
    server = TokenServer()
    server.gate = asyncio.Event()
    server.fail_with = httpx.Response(503)
    tm = manager(server)
    callers = [asyncio.create_task(tm.token()) for _ in range(10)]
    await asyncio.sleep(0)
    server.gate.set()
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert all(isinstance(r, ApiTransientError) for r in results)
    assert len(server.requests) == 1
    # The next call tries again (the failure is not cached).
    server.fail_with = None
    server.gate = None
    assert await tm.token() == "tok-2"


async def test_cancelled_caller_does_not_cancel_the_shared_refresh() -> None:
    server = TokenServer()
    server.gate = asyncio.Event()
    tm = manager(server)
    first = asyncio.create_task(tm.token())
    second = asyncio.create_task(tm.token())
    await asyncio.sleep(0)
    first.cancel()
    server.gate.set()
    assert await second == "tok-1"
    assert len(server.requests) == 1


async def test_proactive_refresh_before_expiry() -> None:
    clock = Clock()
    server = TokenServer(expires_in=3600)
    tm = manager(server, clock=clock, refresh_margin=60)
    assert await tm.token() == "tok-1"
    clock.now += 3539
    assert await tm.token() == "tok-1"
    clock.now += 2  # inside the 60 s margin: refreshed although still valid
    assert await tm.token() == "tok-2"
    assert len(server.requests) == 2


async def test_short_lived_tokens_are_used_for_half_their_life() -> None:
    clock = Clock()
    server = TokenServer(expires_in=3)
    tm = manager(server, clock=clock, refresh_margin=60)
    assert await tm.token() == "tok-1"
    clock.now += 1.4
    assert await tm.token() == "tok-1"
    clock.now += 0.2
    assert await tm.token() == "tok-2"


async def test_refresh_failure_inside_the_margin_keeps_the_valid_token() -> None:
    clock = Clock()
    server = TokenServer(expires_in=100)
    tm = manager(server, clock=clock, refresh_margin=60)
    await tm.token()
    clock.now += 60  # refresh due, token valid for 40 s more
    server.fail_with = httpx.Response(503, headers={"Retry-After": "5"})
    assert await tm.token() == "tok-1"
    assert await tm.token() == "tok-1"  # no new attempt before Retry-After
    assert len(server.requests) == 2
    clock.now += 5
    server.fail_with = None
    assert await tm.token() == "tok-3"


async def test_refresh_failure_after_expiry_raises() -> None:
    clock = Clock()
    server = TokenServer(expires_in=100)
    tm = manager(server, clock=clock)
    await tm.token()
    clock.now += 101
    server.fail_with = httpx.Response(503)
    with pytest.raises(ApiTransientError):
        await tm.token()
    assert tm.health.token_valid is False


async def test_invalidate_drops_only_the_current_token() -> None:
    server = TokenServer()
    tm = manager(server)
    old = await tm.token()
    tm.invalidate(old)
    new = await tm.token()
    assert new == "tok-2"
    tm.invalidate(old)  # a late 401 for the old token: the new one stays
    assert await tm.token() == new
    assert len(server.requests) == 2


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, {"error": "invalid_client"}),
        (400, {"error": "invalid_scope"}),
        (403, {"error": "unauthorized_client"}),
        (404, None),
    ],
)
async def test_refused_credentials_are_systemic(status: int, body: object) -> None:
    server = TokenServer()
    server.fail_with = httpx.Response(status, json=body) if body else httpx.Response(status)
    tm = manager(server)
    with pytest.raises(ApiSystemicError) as caught:
        await tm.token()
    assert isinstance(caught.value, SystemicError)
    assert caught.value.status == status
    assert "RELAY_CLIENT_SECRET" in str(caught.value)  # says what to fix
    if body:
        assert body["error"] in str(caught.value)  # type: ignore[index]
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504])
async def test_busy_or_broken_endpoint_is_transient(status: int) -> None:
    server = TokenServer()
    server.fail_with = httpx.Response(status, headers={"Retry-After": "7"})
    tm = manager(server)
    with pytest.raises(ApiTransientError) as caught:
        await tm.token()
    assert isinstance(caught.value, TransientError)
    assert caught.value.retry_after == 7
    assert caught.value.endpoint == "token"
    assert caught.value.cause == str(status)


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        (httpx.ConnectError("refused"), "connect"),
        (httpx.ReadTimeout("slow"), "timeout"),
        (httpx.ConnectTimeout("slow"), "timeout"),
        (httpx.RemoteProtocolError("reset"), "network"),
    ],
)
async def test_unreachable_endpoint_is_transient(error: Exception, cause: str) -> None:
    server = TokenServer()
    server.fail_with = error
    tm = manager(server)
    with pytest.raises(ApiTransientError) as caught:
        await tm.token()
    assert caught.value.cause == cause
    assert caught.value.retry_after is None


@pytest.mark.parametrize(
    "content",
    [b"<html>proxy</html>", b"{}", b'{"access_token": 5}', b"[]"],
)
async def test_unreadable_token_response(content: bytes) -> None:
    async def server(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=content)

    with pytest.raises((ApiTransientError, ApiSystemicError)):
        await manager(server).token()


async def test_non_bearer_token_is_systemic() -> None:
    async def server(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"access_token": "t", "token_type": "mac"})

    with pytest.raises(ApiSystemicError):
        await manager(server).token()


async def test_refresh_outcomes_are_counted() -> None:
    ok = TOKEN_REFRESHES.labels(outcome="ok")._value.get()
    failed = TOKEN_REFRESHES.labels(outcome="failed")._value.get()
    server = TokenServer()
    tm = manager(server)
    await tm.token()
    server.fail_with = httpx.Response(500)
    tm.invalidate("tok-1")
    with pytest.raises(ApiTransientError):
        await tm.token()
    assert TOKEN_REFRESHES.labels(outcome="ok")._value.get() == ok + 1
    assert TOKEN_REFRESHES.labels(outcome="failed")._value.get() == failed + 1


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(401, json={"error": "invalid_client", "echo": SECRET}),
        httpx.Response(503, text=SECRET),
        httpx.Response(200, content=orjson.dumps({"access_token": SECRET, "token_type": "mac"})),
        httpx.Response(200, content=SECRET.encode()),
        httpx.ConnectError(SECRET),
    ],
)
async def test_no_secret_in_errors(failure: httpx.Response | Exception) -> None:
    server = TokenServer()
    server.fail_with = failure
    tm = manager(server)
    with pytest.raises((TransientError, SystemicError)) as caught:
        await tm.token()
    for text in (str(caught.value), repr(caught.value), repr(tm)):
        assert SECRET not in text


async def test_no_secret_or_token_in_repr_or_metrics() -> None:
    server = TokenServer()
    server.prefix = "eyJ-distinctive-token-"
    tm = manager(server)
    token = await tm.token()
    for text in (repr(tm), str(tm), generate_latest(REGISTRY).decode()):
        assert SECRET not in text
        assert token not in text


async def test_refreshes_after_a_failure_are_paced_however_many_ask() -> None:
    # Issue 24 item 5: with the endpoint down and no token, 50 callers make one request per
    # pace interval (a fake sleep records the pauses; the clock moves with it).
    server = TokenServer()
    server.fail_with = httpx.Response(503)
    clock = Clock()
    pauses: list[float] = []

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)
        clock.now += seconds

    tm = manager(server, clock, sleep=sleep)
    for _ in range(4):
        results = await asyncio.gather(*(tm.token() for _ in range(50)), return_exceptions=True)
        assert all(isinstance(r, ApiTransientError) for r in results)
    assert len(server.requests) == 4  # one per round, not one per caller
    assert pauses and max(pauses) <= 4.0
    server.fail_with = None
    assert await tm.token() == "tok-5"
