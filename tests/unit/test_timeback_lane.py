"""The events lane against a real HTTP server (aiohttp's, on a free loopback port), each case run
three ways: on the lane's own connections (``wire.WireLane``, the client's default), on
aiohttp's lane (``transport.Lane``, RELAY_EVENTS_WIRE=aiohttp) and through the httpx request and
response (the lane turned off, the path any other transport takes). All
must send the same request and give the same result: a 2xx, a 4xx with its body into
``EventRejected``, a 401 then a refreshed token, a 429 with ``Retry-After`` pausing the gate, a
dropped connection, a body over the cap, a reply that drips past the deadline."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pydantic import SecretStr

from relay.timeback.answer import ANSWER_LIMIT, BODY_LIMIT
from relay.timeback.client import SendResult, TimeBackClient
from relay.timeback.client_config import ClientConfig
from relay.timeback.errors import ApiSystemicError, ApiTransientError, EventRejected
from relay.timeback.responses import Outcome
from relay.timeback.transport import Lane
from relay.timeback.wire import WireLane

EVENT = b'{"id":"urn:uuid:1","type":"ViewEvent"}'
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Api:
    """A token endpoint issuing t1, t2...; the events endpoint answers with ``events``."""

    events: Handler
    seen: list[dict[str, str]] = field(default_factory=list)  # each events POST's headers
    bodies: list[bytes] = field(default_factory=list)
    tokens: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def token(self, request: web.Request) -> web.Response:
        return web.json_response({"access_token": f"t{next(self.tokens)}", "expires_in": 3600})

    async def post(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(dict(request.headers))
        self.bodies.append(await request.read())
        return await self.events(request)


ServeApi = Callable[[Handler], Awaitable[tuple[Api, TimeBackClient]]]


@pytest.fixture(params=["wire", "aiohttp-lane", "httpx"])
async def serve(request: pytest.FixtureRequest) -> AsyncIterator[ServeApi]:
    """Start an API answering events with a handler; a client for it, its events POST on its
    own connections (``wire.WireLane``, the default), on aiohttp's lane or through httpx."""
    stack: list[tuple[TestServer, TimeBackClient]] = []

    async def start(events: Handler) -> tuple[Api, TimeBackClient]:
        api = Api(events)
        app = web.Application()
        app.router.add_post("/auth/1.0/token", api.token)
        app.router.add_post("/events/1.0", api.post)
        server = TestServer(app)
        await server.start_server()
        config = ClientConfig(
            f"http://127.0.0.1:{server.port}",
            "id",
            SecretStr("secret"),
            timeout=5.0,
            deadline=1.0,
            events_wire="aiohttp" if request.param == "aiohttp-lane" else "lean",
        )
        client = TimeBackClient(config)
        assert client._lane is not None  # the client's own transport: the lane is there
        lane = Lane if request.param == "aiohttp-lane" else WireLane
        assert isinstance(client._lane, lane)
        if request.param == "httpx":
            client._lane = None
        stack.append((server, client))
        return api, client

    yield start
    for server, client in stack:
        await client.aclose()
        await server.close()


async def test_a_2xx_is_taken_with_its_body_and_the_request_is_the_same_both_ways(
    serve: ServeApi,
) -> None:
    async def accept(request: web.Request) -> web.Response:
        return web.json_response({"status": "accepted"}, status=202)

    api, client = await serve(accept)
    first = await client.send_event(EVENT, event_type="ViewEvent")
    again = await client.send_event(EVENT, event_type="ViewEvent")
    assert first == again == SendResult(202, Outcome.DELIVERED)
    assert orjson.loads(first.body) == {"status": "accepted"}
    assert api.bodies == [EVENT, EVENT]
    headers = api.seen[0]
    assert headers["Authorization"] == "Bearer t1"  # one token for both
    assert api.seen[1]["Authorization"] == "Bearer t1"
    assert headers["Content-Type"] == headers["Accept"] == "application/json"
    assert headers["Content-Length"] == str(len(EVENT))
    assert headers["User-Agent"].startswith("timeback-relay/")
    assert headers["Host"] == f"127.0.0.1:{client._events_url.port}"


async def test_a_4xx_is_rejected_with_its_body_capped_and_its_hint(serve: ServeApi) -> None:
    async def refuse(request: web.Request) -> web.Response:
        body = orjson.dumps({"error": "invalid_event", "detail": "x" * (2 * BODY_LIMIT)})
        return web.Response(status=400, body=body, content_type="application/json")

    _, client = await serve(refuse)
    with pytest.raises(EventRejected) as caught:
        await client.send_event(EVENT, event_type="ViewEvent")
    assert caught.value.status == 400
    assert len(caught.value.body) == BODY_LIMIT
    assert caught.value.body.startswith('{"error":"invalid_event"')
    # the hint reads the JSON error code; a body cut at the cap has none to read
    assert "HTTP 400" in str(caught.value)


async def test_a_401_refreshes_the_token_once_and_resends(serve: ServeApi) -> None:
    async def only_t2(request: web.Request) -> web.Response:
        if request.headers["Authorization"] != "Bearer t2":
            return web.json_response({"error": "invalid_token"}, status=401)
        return web.Response(status=202)

    api, client = await serve(only_t2)
    assert await client.send_event(EVENT, event_type="ViewEvent") == SendResult(
        202, Outcome.DELIVERED
    )
    assert [h["Authorization"] for h in api.seen] == ["Bearer t1", "Bearer t2"]
    assert await client.send_event(EVENT, event_type="ViewEvent") == SendResult(
        202, Outcome.DELIVERED
    )
    assert api.seen[-1]["Authorization"] == "Bearer t2"  # the lane's headers follow the token


async def test_a_second_401_is_systemic(serve: ServeApi) -> None:
    async def refuse_all(request: web.Request) -> web.Response:
        return web.json_response({"error": "invalid_token"}, status=401)

    api, client = await serve(refuse_all)
    with pytest.raises(ApiSystemicError) as caught:
        await client.send_event(EVENT, event_type="ViewEvent")
    assert caught.value.status == 401
    assert len(api.seen) == 2


async def test_a_429_with_retry_after_is_transient_and_pauses_the_gate(serve: ServeApi) -> None:
    async def busy(request: web.Request) -> web.Response:
        return web.json_response({"error": "slow_down"}, status=429, headers={"Retry-After": "7"})

    _, client = await serve(busy)
    with pytest.raises(ApiTransientError) as caught:
        await client.send_event(EVENT, event_type="ViewEvent")
    assert (caught.value.status, caught.value.cause, caught.value.retry_after) == (429, "429", 7.0)
    assert client.gate.pause.remaining > 5  # every request waits out the API's 7 s


async def test_a_dropped_connection_is_transient(serve: ServeApi) -> None:
    async def drop(request: web.Request) -> web.Response:
        assert request.transport is not None
        request.transport.close()
        await asyncio.sleep(0.1)
        return web.Response(status=202)  # never written: the connection is gone

    _, client = await serve(drop)
    with pytest.raises(ApiTransientError) as caught:
        await client.send_event(EVENT, event_type="ViewEvent")
    assert caught.value.cause == "network"
    assert caught.value.status is None


async def test_a_2xx_body_over_the_cap_is_cut(serve: ServeApi) -> None:
    async def huge(request: web.Request) -> web.Response:
        return web.Response(status=200, body=b"{" + b" " * ANSWER_LIMIT + b"}")

    _, client = await serve(huge)
    result = await client.send_event(EVENT, event_type="ViewEvent")
    assert result.status == 200
    assert len(result.body) == ANSWER_LIMIT  # cut: its JSON no longer parses (an envelope splits)


async def test_a_reply_that_drips_is_cut_at_the_deadline(serve: ServeApi) -> None:
    async def drip(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=202)
        await response.prepare(request)
        for _ in range(50):  # a byte every 0.1 s: each read well within the 5 s timeout
            await response.write(b" ")
            await asyncio.sleep(0.1)
        return response

    _, client = await serve(drip)
    with pytest.raises(ApiTransientError) as caught:
        await client.send_event(EVENT, event_type="ViewEvent")
    assert caught.value.cause == "timeout"
    assert "1 s deadline" in str(caught.value)
