"""Small httpx helpers shared by the token manager and the client: one timed exchange (a
missing answer becomes ``ApiTransientError``; the answer read and capped as ``transport``
says), metrics, labels, bodies."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiohttp
import httpx
import orjson

from relay.metrics import HTTP_LATENCY_BY, HTTP_REQUESTS_BY, status_class
from relay.timeback.errors import ApiTransientError
from relay.timeback.transport import BODY_LIMIT, Answer, read_capped

# One exchange: a request to its response (a transport's ``handle_async_request``, or an
# ``httpx.AsyncClient.send`` with ``stream=True``); ``transport.read_capped`` brings whatever it
# answers under ``ApiTransport``'s contract: read, capped.
Exchange = Callable[[httpx.Request], Awaitable[httpx.Response]]
A = TypeVar("A", httpx.Response, Answer)  # an answer as httpx reads it, or as the lane does


async def send(
    exchange: Exchange,
    request: httpx.Request,
    *,
    endpoint: str,
    what: str,
    deadline: float | None = None,
) -> httpx.Response:
    """Send one request, counted and timed (``timed``), its answer read and capped."""
    return await timed(_read(exchange, request), endpoint=endpoint, what=what, deadline=deadline)


async def timed(
    exchange: Awaitable[A], *, endpoint: str, what: str, deadline: float | None = None
) -> A:
    """Await one exchange, counted and timed; no answer (timeout, refused, reset) raises
    ``ApiTransientError`` naming the cause, ``what`` saying which call it was.

    ``deadline`` bounds the whole exchange, body included: the read timeout bounds each read
    only, so a reply that drips bytes would otherwise hold its slot (an event's, the half-open
    probe's, the single-flight token refresh's) forever."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(deadline):
            answer = await exchange
    except httpx.TransportError as exc:
        observe(endpoint, None, started)
        cause = network_cause(exc)
        message = f"{what} ({cause}: {type(exc).__name__})"
        raise ApiTransientError(message, endpoint=endpoint, cause=cause) from None
    except TimeoutError:
        observe(endpoint, None, started)
        message = f"{what} (no complete response within the {deadline:g} s deadline)"
        raise ApiTransientError(message, endpoint=endpoint, cause="timeout") from None
    observe(endpoint, answer.status_code, started)
    return answer


async def _read(exchange: Exchange, request: httpx.Request) -> httpx.Response:
    answer = await exchange(request)
    answer.request = request  # a transport need not set it (httpx.MockTransport does not)
    return await read_capped(answer)


def observe(endpoint: str, status: int | None, started: float) -> None:
    """Count one request (``status`` None: no response) and its latency since ``started``."""
    HTTP_REQUESTS_BY(endpoint, status_class(status)).inc()
    HTTP_LATENCY_BY(endpoint).observe(time.perf_counter() - started)


def network_cause(exc: httpx.TransportError) -> str:
    """A bounded label for a request that got no response."""
    origin = exc.__cause__
    if isinstance(origin, aiohttp.ClientError):
        # the transport raises httpx's error caused by aiohttp's, which tells what happened
        if isinstance(origin, aiohttp.ServerTimeoutError):
            return "timeout"
        if isinstance(origin, aiohttp.ClientConnectorError):
            return "connect"
        return "network"
    # httpx's own types: httpx transports, and the events lane on its own connections (wire.py)
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.ConnectError):
        return "connect"
    return "network"  # reset, protocol error, closed connection


def error_code(response: httpx.Response) -> str | None:
    """The ``error`` code of a JSON error body (``invalid_client``...), short and safe to log."""
    try:
        body: Any = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None
    code = body.get("error") if isinstance(body, dict) else None
    return code[:64] if isinstance(code, str) else None


def capped_body(response: httpx.Response, limit: int = BODY_LIMIT) -> str:
    """The response body as text, at most ``limit`` bytes (a cut character becomes U+FFFD)."""
    return response.content[:limit].decode("utf-8", errors="replace")
