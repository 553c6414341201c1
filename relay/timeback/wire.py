"""The events POST on lean HTTP/1.1 connections of its own (``WireLane``).

The events endpoint is one URL, one method and fixed headers but for the bearer token and the
length, so a request is a byte prefix (prepared once per token), its ``Content-Length`` and the
body, written with one ``transport.write``; the answer is parsed from the bytes the protocol
receives. aiohttp's generic path (a ``ClientRequest``, header merging, cookies, tracing, proxy
checks, a writer task per request, a ``StreamReader``, a response object) cost the relay about
twice the CPU of the exchange itself (docs/events-wire.md has the figures).

The connection itself, its answer parser and why it is ours: ``http1``.

The contract is ``transport``'s: an ``Answer(status, raw_headers, body, cut=)`` read at most
``body_limit(status)`` bytes, a cut body's connection closed, never reused; a request that gets
no answer raises an ``httpx.TransportError`` (``ConnectError``, ``ConnectTimeout``,
``ReadTimeout``, ``WriteTimeout``, ``PoolTimeout``, ``ReadError``, ``RemoteProtocolError``), which
``_http.network_cause`` labels as it labels aiohttp's (connect / timeout / network).

A reused keep-alive connection the server closed while idle answers EOF before any byte: that
request is sent again once, on a fresh connection (as httpcore and urllib3 do); a second EOF
is an error. Cancellation (the exchange's deadline, shutdown) aborts the connection: it never
goes back to the pool half-read.

Not here: proxies (``ApiTransport`` keeps aiohttp's lane when one is configured), HTTP/2,
redirects (the events POST follows none anyway).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import sys
from collections import deque
from collections.abc import Callable

import httpx

from relay.timeback.answer import Answer
from relay.timeback.http1 import Connection, StaleConnection, authorization, request_start


class WireLane:
    """The events POST over a keep-alive pool of its own: ``post(body, token)`` answers an
    ``Answer`` as ``transport.Lane`` does (the module doc says what differs: nothing above)."""

    def __init__(
        self,
        url: httpx.URL,
        headers: list[tuple[str, str]],
        timeout: httpx.Timeout,
        limits: httpx.Limits,
        ssl_context: ssl.SSLContext,
        body_limit: Callable[[int], int],
    ) -> None:
        if url.scheme not in ("http", "https"):
            raise ValueError(f"the events URL must be http or https, not {url.scheme!r}")
        tls = ssl_context if url.scheme == "https" else None
        host = url.raw_host.decode("ascii")
        port = url.port or (443 if tls else 80)
        self._pool = _Pool(host, port, tls, limits, timeout)
        self._start = request_start(url, headers)
        self._body_limit = body_limit
        self._authorized: tuple[str, bytes] = ("", b"")  # token, the request's start with it

    async def post(self, body: bytes, token: str) -> Answer:
        start = self._authorized
        if start[0] != token or not start[1]:
            start = self._authorized = (token, self._start + authorization(token))
        request = start[1] + b"%d\r\n\r\n" % len(body) + body
        pool = self._pool
        conn = pool.idle() or await pool.acquire()
        try:
            try:
                # the exchange inline (no coroutine of its own): every resumption of the
                # request passes through each frame of its await chain
                if conn.write(request):
                    await conn.drained()
                answer, reusable = await conn.answer(self._body_limit)
            except StaleConnection:  # the server had closed it while idle: once more on a fresh one
                if not pool.holds(conn):  # no: aclose() closed it
                    raise httpx.RemoteProtocolError("the events connections were closed") from None
                pool.discard(conn)
                conn = await pool.acquire(fresh=True)
                conn.reused = False  # a second EOF is the answer, not staleness
                answer, reusable = await self._exchange(conn, request)
        except BaseException:  # cancelled or failed mid-exchange: never back to the pool
            pool.discard(conn)
            raise
        pool.release(conn, reusable)
        return answer

    async def aclose(self) -> None:
        """Close every connection, idle or busy (a busy exchange fails as a dropped one)."""
        self._pool.close()

    async def _exchange(self, conn: Connection, request: bytes) -> tuple[Answer, bool]:
        if conn.write(request):
            await conn.drained()
        return await conn.answer(self._body_limit)


class _Pool:
    """Keep-alive connections to one origin: at most ``max_connections`` open (or opening),
    idle ones reused most recently used first and dropped after ``keepalive_expiry``."""

    def __init__(
        self,
        host: str,
        port: int,
        tls: ssl.SSLContext | None,
        limits: httpx.Limits,
        timeout: httpx.Timeout,
    ) -> None:
        self._host, self._port, self._tls = host, port, tls
        self._max = limits.max_connections or sys.maxsize
        self._keep = min(self._max, limits.max_keepalive_connections or sys.maxsize)
        self._expiry = limits.keepalive_expiry
        self._timeout = timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._open: set[Connection] = set()  # connected, idle or busy
        self._idle: list[Connection] = []  # the most recently used last
        self._connecting = 0  # slots taken by connections being made
        self._waiters: deque[asyncio.Future[Connection | None]] = deque()
        self._epoch = 0  # bumped by close(): a connection made across it is dropped

    def idle(self) -> Connection | None:
        """An idle connection, if one is ready: the common case, without a coroutine."""
        if not self._idle:
            return None
        loop = self._loop = self._loop or asyncio.get_running_loop()
        return self._take_idle(loop.time())

    async def acquire(self, *, fresh: bool = False) -> Connection:
        """An idle connection (unless ``fresh``), a new one, or one released to the waiter."""
        loop = self._loop = self._loop or asyncio.get_running_loop()
        if not fresh and (idle := self._take_idle(loop.time())) is not None:
            return idle
        if fresh and self._idle and self._full:  # make room: the oldest idle one goes
            self.discard(self._idle.pop(0))
        if not self._full:
            self._connecting += 1
            return await self._connect(loop)
        handed = await self._wait(loop)
        return handed if handed is not None else await self._connect(loop)

    def release(self, conn: Connection, reusable: bool) -> None:
        if not reusable or not conn.usable or conn not in self._open:
            self.discard(conn)
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                conn.reused = True
                waiter.set_result(conn)
                return
        if len(self._idle) >= self._keep:
            self.discard(conn)
            return
        assert self._loop is not None
        conn.idle_since = self._loop.time()
        self._idle.append(conn)

    def holds(self, conn: Connection) -> bool:
        """``conn`` is one of the pool's (not closed by ``close``, nor discarded)."""
        return conn in self._open

    def discard(self, conn: Connection) -> None:
        """Close ``conn`` (at once, not flushed) and free its slot."""
        conn.abort()
        if conn in self._open:
            self._open.discard(conn)
            self._hand_slot()

    def close(self) -> None:
        self._epoch += 1
        connections, self._idle = list(self._open), []
        self._open.clear()
        for conn in connections:
            conn.abort()
        waiters, self._waiters = self._waiters, deque()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(httpx.ConnectError("the events connections were closed"))

    @property
    def _full(self) -> bool:
        return len(self._open) + self._connecting >= self._max

    def _take_idle(self, now: float) -> Connection | None:
        while self._idle:
            conn = self._idle.pop()
            expiry = self._expiry
            if conn.usable and (expiry is None or now - conn.idle_since < expiry):
                conn.reused = True
                return conn
            self.discard(conn)
        return None

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> Connection:
        """A new connection in the slot the caller reserved (``_connecting``)."""
        epoch = self._epoch
        try:
            async with asyncio.timeout(self._timeout.connect):
                _, conn = await loop.create_connection(
                    lambda: Connection(loop, self._timeout),
                    self._host,
                    self._port,
                    ssl=self._tls,
                    server_hostname=self._host if self._tls else None,
                )
        except TimeoutError as exc:
            self._connecting -= 1
            self._hand_slot()
            message = f"no connection to {self._host}:{self._port} within the timeout"
            raise httpx.ConnectTimeout(message) from exc
        except OSError as exc:  # refused, unreachable, no such host, TLS refused
            self._connecting -= 1
            self._hand_slot()
            raise httpx.ConnectError(f"{self._host}:{self._port}: {exc}") from exc
        except BaseException:
            self._connecting -= 1
            self._hand_slot()
            raise
        self._connecting -= 1
        if epoch != self._epoch:  # the pool was closed meanwhile: this one is not kept
            conn.abort()
            self._hand_slot()
            raise httpx.ConnectError("the events connections were closed")
        self._open.add(conn)
        return conn

    async def _wait(self, loop: asyncio.AbstractEventLoop) -> Connection | None:
        """A connection another request released, or None: a slot reserved to connect in."""
        waiter: asyncio.Future[Connection | None] = loop.create_future()
        self._waiters.append(waiter)
        timer = (
            loop.call_later(self._timeout.pool, _expire_wait, waiter)
            if self._timeout.pool is not None
            else None
        )
        try:
            return await waiter
        except BaseException:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                handed = waiter.result()  # handed over just as it was cancelled: pass it on
                if handed is None:
                    self._connecting -= 1
                    self._hand_slot()
                else:
                    self.release(handed, True)
            raise
        finally:
            if timer is not None:
                timer.cancel()

    def _hand_slot(self) -> None:
        """A slot is free: the first live waiter connects in it."""
        while self._waiters and not self._full:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._connecting += 1
                waiter.set_result(None)
                return


def _expire_wait(waiter: asyncio.Future[Connection | None]) -> None:
    if not waiter.done():
        waiter.set_exception(httpx.PoolTimeout("no free connection within the pool timeout"))
