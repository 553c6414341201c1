"""Small httpx helpers shared by the token manager and the client: one timed exchange (a
missing answer becomes ``ApiTransientError``; the answer read and capped as ``transport``
says), metrics, labels, bodies."""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import aiohttp
import httpx
import orjson

from relay.metrics import HTTP_LATENCY_BY, HTTP_REQUESTS_BY, CounterTally, status_class
from relay.timeback.answer import BODY_LIMIT, Answer
from relay.timeback.errors import ApiTransientError
from relay.timeback.transport import read_capped

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


def timed(
    exchange: Awaitable[A], *, endpoint: str, what: str, deadline: float | None = None
) -> Coroutine[Any, Any, A]:
    """Await one exchange, counted and timed (``Timing``, made for this one exchange)."""
    return Timing(endpoint, what, deadline).run(exchange)


class Timing:
    """How one kind of exchange is timed and counted: its endpoint label, ``what`` (which call
    it is, in messages) and its deadline, with the metric children bound once. The client
    makes the events POST's once; ``timed`` makes one per exchange (token, rostering, xp)."""

    __slots__ = ("_latency", "_loop", "_requests", "_watch", "deadline", "endpoint", "what")

    def __init__(self, endpoint: str, what: str, deadline: float | None = None) -> None:
        self.endpoint = endpoint
        self.what = what
        self.deadline = deadline
        self._latency = HTTP_LATENCY_BY(endpoint)
        self._requests: dict[int | None, CounterTally] = {}  # by status: its class's child
        # the watch of the loop it last ran in (the loop held weakly: a closed one is not kept)
        self._loop: weakref.ref[asyncio.AbstractEventLoop] | None = None
        self._watch: _Watch | None = None

    async def run(self, exchange: Awaitable[A]) -> A:
        """Await one exchange, counted and timed; no answer (timeout, refused, reset) raises
        ``ApiTransientError`` naming the cause, ``what`` saying which call it was.

        ``deadline`` bounds the whole exchange, body included: the read timeout bounds each
        read only, so a reply that drips bytes would otherwise hold its slot (an event's, the
        half-open probe's, the single-flight token refresh's) forever. The exchanges in flight
        share one timer (``_Watch``) rather than an ``asyncio.timeout`` each."""
        started = time.perf_counter()
        deadline = self.deadline
        watch = None
        if deadline is not None:
            loop = asyncio.get_running_loop()
            mine = self._loop
            if mine is None or mine() is not loop:
                self._loop, self._watch = weakref.ref(loop), _watch(deadline)
            watch = self._watch
        task = watch.enter() if watch is not None else None
        if watch is not None and task is None:  # what the shared watch cannot serve
            exchange = _bounded(exchange, watch.seconds)
        try:
            answer = await exchange
        except BaseException as exc:
            cut = watch is not None and task is not None and watch.leave(task)
            endpoint = self.endpoint
            if isinstance(exc, httpx.TransportError):
                self.observe(None, started)
                cause = network_cause(exc)
                message = f"{self.what} ({cause}: {type(exc).__name__})"
                raise ApiTransientError(message, endpoint=endpoint, cause=cause) from None
            if isinstance(exc, TimeoutError) or (cut and isinstance(exc, asyncio.CancelledError)):
                self.observe(None, started)
                message = f"{self.what} (no complete response within the {deadline:g} s deadline)"
                raise ApiTransientError(message, endpoint=endpoint, cause="timeout") from None
            raise
        if watch is not None and task is not None:
            watch.leave(task)  # cut as it ended, the answer stands (as with ``asyncio.timeout``)
        self.observe(answer.status_code, started)
        return answer

    def observe(self, status: int | None, started: float) -> None:
        """Count one request (``status`` None: no response) and its latency since ``started``."""
        requests = self._requests.get(status)
        if requests is None:
            requests = self._requests[status] = HTTP_REQUESTS_BY(
                self.endpoint, status_class(status)
            )
        requests.inc()
        self._latency.observe(time.perf_counter() - started)


async def _bounded(exchange: Awaitable[A], seconds: float) -> A:
    async with asyncio.timeout(seconds):
        return await exchange


class _Watch:
    """The exchanges of one event loop in flight under one allowance (``seconds``), by task, in
    the order they started, which is the order of their deadlines: one timer, at the earliest
    deadline, cancels those past theirs (as ``asyncio.timeout`` does: the exchange raises
    ``CancelledError``, withdrawn by ``leave``). Entering and leaving is a dict insert and
    delete; an ``asyncio.timeout`` each was a ``TimerHandle`` pushed on (and popped off) the
    loop's heap per request, a few microseconds of the relay's CPU per event."""

    __slots__ = ("_armed", "cut_off", "due", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.due: dict[asyncio.Task[Any], float] = {}  # deadline (loop time), in that order
        self.cut_off: set[asyncio.Task[Any]] = set()  # cancelled by the watch, not left yet
        # A timer is pending. Its handle is not kept: the handle holds the loop, and the watch
        # (a value of the loops' weak mapping) would then keep a closed loop alive forever.
        self._armed = False

    def enter(self) -> asyncio.Task[Any] | None:
        """The current task, watched from now on; None when it cannot be: a task already being
        cancelled (``leave`` compares the count with 0), or timing an exchange already."""
        task = asyncio.current_task()
        if task is None or task.cancelling() or task in self.due:
            return None
        loop = task.get_loop()
        deadline = loop.time() + self.seconds
        self.due[task] = deadline
        if not self._armed:
            loop.call_at(deadline, self._expire)
            self._armed = True
        return task

    def leave(self, task: asyncio.Task[Any]) -> bool:
        """``task``'s exchange ended. True when the watch cancelled it and nobody else did
        meanwhile: its cancellation is the deadline's, and is withdrawn (``uncancel``)."""
        self.due.pop(task, None)
        if task not in self.cut_off:
            return False
        self.cut_off.discard(task)
        return task.uncancel() == 0

    def _expire(self) -> None:
        """Cancel every exchange past its deadline; the timer again at the next deadline."""
        self._armed = False
        loop = asyncio.get_running_loop()
        now = loop.time()
        late = []
        for task, deadline in self.due.items():
            if deadline > now:
                loop.call_at(deadline, self._expire)
                self._armed = True
                break
            late.append(task)
        for task in late:
            del self.due[task]
            self.cut_off.add(task)
            task.cancel()


# Per event loop (tests run many, one after another), per allowance (a client has one).
_WATCHES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[float, _Watch]] = (
    weakref.WeakKeyDictionary()
)
# The last loop's watches, a look-up saved; the loop held weakly (a closed loop is not kept).
_last: tuple[weakref.ref[asyncio.AbstractEventLoop] | None, dict[float, _Watch]] = (None, {})


def _watch(seconds: float) -> _Watch:
    """This loop's watch of exchanges allowed ``seconds``."""
    global _last
    loop = asyncio.get_running_loop()
    mine, watches = _last
    if mine is None or mine() is not loop:
        watches = _WATCHES.setdefault(loop, {})
        _last = (weakref.ref(loop), watches)
    watch = watches.get(seconds)
    if watch is None:
        watch = watches[seconds] = _Watch(seconds)
    return watch


async def _read(exchange: Exchange, request: httpx.Request) -> httpx.Response:
    answer = await exchange(request)
    answer.request = request  # a transport need not set it (httpx.MockTransport does not)
    return await read_capped(answer)


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
