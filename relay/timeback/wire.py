"""The events POST on lean HTTP/1.1 connections of its own (``WireLane``).

The events endpoint is one URL, one method and fixed headers but for the bearer token and the
length, so a request is a byte prefix (prepared once per token), its ``Content-Length`` and the
body, written with one ``transport.write``; the answer is parsed from the bytes the protocol
receives. aiohttp's generic path (a ``ClientRequest``, header merging, cookies, tracing, proxy
checks, a writer task per request, a ``StreamReader``, a response object) cost the relay about
twice the CPU of the exchange itself (docs/events-wire.md has the figures).

The parser is ours, a few dozen lines: the API's answers are a status line, a few headers and a
small body, which ``bytes.find``/``split`` parse in 2.3 us (a 2xx with four headers, head,
framing and body). aiohttp's C parser (llhttp, ``aiohttp.http.HttpResponseParser``) took 2.9 us
for the same bytes with a parser reused, 3.5 us made per connection, and it is bound to aiohttp's
protocol class and hands every body to a ``StreamReader``, the machinery this lane leaves out;
h11 (a generic pure-Python state machine) cost ~68 us per exchange. A library would not do it
better here.

The contract is ``transport``'s: an ``Answer(status, raw_headers, body, cut=)`` read at most
``body_limit(status)`` bytes, a cut body's connection closed, never reused; a request that gets
no answer raises an ``httpx.TransportError`` (``ConnectError``, ``ConnectTimeout``,
``ReadTimeout``, ``WriteTimeout``, ``PoolTimeout``, ``ReadError``, ``RemoteProtocolError``), which
``_http.network_cause`` labels as it labels aiohttp's (connect / timeout / network). Framing:
``Content-Length``, chunked (trailers skipped), close-delimited; 1xx answers skipped; an
HTTP/1.0 answer or ``Connection: close`` ends the connection. ``Accept-Encoding: identity`` is
asked; a gzip or deflate answer anyway is decoded (error bodies end up as text in DLQ headers).

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
import zlib
from collections import deque
from collections.abc import Callable
from typing import Final

import httpx

from relay.timeback.transport import Answer

_HEAD_LIMIT: Final = 64 * 1024  # bytes of a status line and headers; more is not an API answer
_LINE_LIMIT: Final = 8 * 1024  # bytes of a chunk-size or trailer line
_NO_BODY: Final = frozenset({204, 304})
_VERSIONS: Final = {b"HTTP/1.1": True, b"HTTP/1.0": False}  # version -> keep-alive by default
_DECODERS: Final = {b"gzip": 16 + zlib.MAX_WBITS, b"x-gzip": 16 + zlib.MAX_WBITS, b"deflate": 0}
Headers = list[tuple[bytes, bytes]]


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
        self._start = _request_start(url, headers)
        self._body_limit = body_limit
        self._authorized: tuple[str, bytes] = ("", b"")  # token, the request's start with it

    async def post(self, body: bytes, token: str) -> Answer:
        start = self._authorized
        if start[0] != token or not start[1]:
            start = self._authorized = (token, self._start + _authorization(token))
        request = start[1] + b"%d\r\n\r\n" % len(body) + body
        pool = self._pool
        conn = await pool.acquire()
        try:
            try:
                answer, reusable = await self._exchange(conn, request)
            except _Stale:  # the server had closed it while idle: once more on a fresh one
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

    async def _exchange(self, conn: _Connection, request: bytes) -> tuple[Answer, bool]:
        await conn.send(request)
        return await conn.answer(self._body_limit)


class _Stale(Exception):
    """A reused connection ended before any byte of the answer."""


class _Connection(asyncio.Protocol):
    """One connection: the bytes received, the end of them, and a waiter for more."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: httpx.Timeout) -> None:
        self._loop = loop
        self._read_timeout = timeout.read  # per wait for bytes, as aiohttp's sock_read
        self._write_timeout = timeout.write  # per wait for room in the socket's buffer
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.ended = False  # EOF or lost: no more bytes will come
        self.lost: BaseException | None = None
        self.reused = False  # taken from the idle pool (an EOF then may just be stale)
        self.idle_since = 0.0
        self._waiter: asyncio.Future[None] | None = None
        self._drained: asyncio.Future[None] | None = None  # while the transport is paused

    # --- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._wake()

    def eof_received(self) -> bool:
        self.ended = True
        self._wake()
        return False  # let the transport close

    def connection_lost(self, exc: Exception | None) -> None:
        self.ended = True
        self.lost = exc
        self._wake()
        self.resume_writing()

    def pause_writing(self) -> None:
        self._drained = self._loop.create_future()

    def resume_writing(self) -> None:
        drained, self._drained = self._drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    # --- one exchange -----------------------------------------------------------------------

    @property
    def usable(self) -> bool:
        """Still open, and nothing unasked arrived while it was idle."""
        return not self.ended and not self.buffer

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    async def send(self, request: bytes) -> None:
        assert self.transport is not None
        self.transport.write(request)
        drained = self._drained
        if drained is not None:  # a large envelope filled the socket's buffer: wait for room
            timeout = self._write_timeout
            timer = (
                self._loop.call_later(timeout, _expire, drained, httpx.WriteTimeout)
                if timeout is not None
                else None
            )
            try:
                await drained
            finally:
                if timer is not None:
                    timer.cancel()

    async def answer(self, body_limit: Callable[[int], int]) -> tuple[Answer, bool]:
        """The answer, read and capped, and whether the connection may serve another request."""
        status, headers, keep_alive = await self._head(first=True)
        while 100 <= status < 200:  # interim answers (100 Continue, 103 Early Hints)
            if status == 101:
                raise httpx.RemoteProtocolError("the server switched protocols on an events POST")
            status, headers, keep_alive = await self._head(first=False)
        framing = _framing(status, headers)
        limit = body_limit(status)
        if framing.chunked:
            body, whole = await self._chunked(limit)
        elif framing.length is not None:
            body, whole = await self._sized(framing.length, limit)
        else:
            body, whole = await self._until_end(limit)
        if framing.encoding is not None:
            body, whole = _decoded(body, framing.encoding, limit, whole)
        reusable = keep_alive and whole and not framing.close and framing.delimited
        return Answer(status, headers, body, cut=not whole), reusable and not self.buffer

    async def _head(self, *, first: bool) -> tuple[int, Headers, bool]:
        buf = self.buffer
        searched = 0
        while (end := buf.find(b"\r\n\r\n", searched)) < 0:
            if len(buf) > _HEAD_LIMIT:
                raise httpx.RemoteProtocolError(f"an answer's head over {_HEAD_LIMIT} bytes")
            if self.ended:
                if first and not buf and self.reused:
                    raise _Stale
                raise self._ended("before the answer's head was complete")
            searched = max(0, len(buf) - 3)
            await self._more()
        head = bytes(buf[:end])
        del buf[: end + 4]
        return _parse_head(head)

    async def _sized(self, length: int, limit: int) -> tuple[bytes, bool]:
        want = min(length, limit)
        await self._fill(want)
        body = bytes(self.buffer[:want])
        del self.buffer[:want]
        return body, length <= limit

    async def _until_end(self, limit: int) -> tuple[bytes, bool]:
        while not self.ended and len(self.buffer) <= limit:
            await self._more()
        if self.lost is not None:  # a reset, not an end: the body may be cut anywhere
            raise httpx.ReadError(f"the connection failed mid-answer: {self.lost}") from self.lost
        body = bytes(self.buffer[:limit])
        whole = len(self.buffer) <= limit
        self.buffer.clear()
        return body, whole

    async def _chunked(self, limit: int) -> tuple[bytes, bool]:
        kept = bytearray()
        while size := _chunk_size(await self._line()):
            room = limit - len(kept)
            if size > room:  # over the cap: keep what fits, the rest is never read
                await self._fill(room)
                kept += self.buffer[:room]
                return bytes(kept), False
            await self._fill(size + 2)
            if self.buffer[size : size + 2] != b"\r\n":
                raise httpx.RemoteProtocolError("a chunk not followed by CRLF")
            kept += self.buffer[:size]
            del self.buffer[: size + 2]
        while await self._line():  # trailers, up to the empty line
            pass
        return bytes(kept), True

    async def _line(self) -> bytes:
        buf = self.buffer
        while (end := buf.find(b"\r\n")) < 0:
            if len(buf) > _LINE_LIMIT:
                raise httpx.RemoteProtocolError(f"a chunk line over {_LINE_LIMIT} bytes")
            if self.ended:
                raise self._ended("mid-body")
            await self._more()
        line = bytes(buf[:end])
        del buf[: end + 2]
        return line

    async def _fill(self, size: int) -> None:
        while len(self.buffer) < size:
            if self.ended:
                raise self._ended("mid-body")
            await self._more()

    async def _more(self) -> None:
        """Wait for more bytes, or their end; none within the read timeout raises ReadTimeout."""
        waiter = self._waiter = self._loop.create_future()
        timeout = self._read_timeout
        timer = (
            self._loop.call_later(timeout, _expire, waiter, httpx.ReadTimeout)
            if timeout is not None
            else None
        )
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _ended(self, when: str) -> httpx.TransportError:
        if self.lost is not None:
            error: httpx.TransportError = httpx.ReadError(f"the connection failed {when}")
            error.__cause__ = self.lost
            return error
        return httpx.RemoteProtocolError(f"the server closed the connection {when}")


class _Framing:
    """How an answer's body is delimited, and whether its connection ends with it."""

    __slots__ = ("chunked", "close", "encoding", "length")

    def __init__(self) -> None:
        self.length: int | None = None
        self.chunked = False
        self.close = False
        self.encoding: bytes | None = None

    @property
    def delimited(self) -> bool:
        """The body's end is known without the connection's end."""
        return self.chunked or self.length is not None


def _framing(status: int, headers: Headers) -> _Framing:
    framing = _Framing()
    transfer = False
    for name, value in headers:
        key = name.lower()
        if key == b"content-length":
            length = int(value) if value.isdigit() else -1
            if length < 0 or framing.length not in (None, length):
                raise httpx.RemoteProtocolError(f"an invalid Content-Length: {value[:40]!r}")
            framing.length = length
        elif key == b"transfer-encoding":
            transfer = True
            framing.chunked = value.lower().rstrip().endswith(b"chunked")
        elif key == b"connection":
            framing.close |= b"close" in value.lower()
        elif key == b"content-encoding":
            coding = value.strip().lower()
            framing.encoding = None if coding == b"identity" else coding
    if status in _NO_BODY:
        framing.length, framing.chunked = 0, False
    elif transfer:  # Transfer-Encoding overrides Content-Length, and then ends the connection
        framing.close |= framing.length is not None
        framing.length = None
    return framing


def _parse_head(head: bytes) -> tuple[int, Headers, bool]:
    """Status, headers and whether the version keeps the connection alive by default."""
    lines = head.split(b"\r\n")
    version, _, rest = lines[0].partition(b" ")
    keep_alive = _VERSIONS.get(version)
    code = rest[:3]
    if keep_alive is None or not code.isdigit() or rest[3:4] not in (b"", b" "):
        raise httpx.RemoteProtocolError(f"not an HTTP/1.x status line: {lines[0][:60]!r}")
    headers: Headers = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not name or name[-1:] in (b" ", b"\t"):
            raise httpx.RemoteProtocolError(f"a malformed header line: {line[:60]!r}")
        headers.append((name, value.strip(b" \t")))
    return int(code), headers, keep_alive


def _chunk_size(line: bytes) -> int:
    text = line.partition(b";")[0].strip()  # chunk extensions are ignored
    try:
        return int(text, 16)
    except ValueError:
        raise httpx.RemoteProtocolError(f"an invalid chunk size: {line[:40]!r}") from None


def _decoded(body: bytes, coding: bytes, limit: int, whole: bool) -> tuple[bytes, bool]:
    """A gzip or deflate body decoded, at most ``limit`` bytes of it."""
    wbits = _DECODERS.get(coding)
    if wbits is None:
        raise httpx.RemoteProtocolError(f"an answer in an unasked encoding: {coding[:20]!r}")
    for bits in (wbits,) if wbits else (zlib.MAX_WBITS, -zlib.MAX_WBITS):  # deflate: zlib or raw
        decoder = zlib.decompressobj(bits)
        try:
            text = decoder.decompress(body, limit + 1)
        except zlib.error:
            continue
        return text[:limit], whole and len(text) <= limit
    raise httpx.RemoteProtocolError(f"an answer that is not valid {coding.decode('ascii')}")


def _request_start(url: httpx.URL, headers: list[tuple[str, str]]) -> bytes:
    """The request line and fixed headers, up to the Authorization header."""
    lines = [b"POST " + url.raw_path + b" HTTP/1.1"]
    lines += [f"{name}: {value}".encode("latin-1") for name, value in headers]
    lines.append(b"Accept-Encoding: identity")
    return b"\r\n".join(lines) + b"\r\n"


def _authorization(token: str) -> bytes:
    """The bearer header and the start of Content-Length (the length and body follow)."""
    if not token.isprintable() or not token.isascii():
        # a token that would split the header: refuse to send it, and never print it
        raise httpx.LocalProtocolError("the access token holds characters a header cannot")
    return b"Authorization: Bearer " + token.encode("ascii") + b"\r\nContent-Length: "


def _expire(waiter: asyncio.Future[None], error: type[httpx.TimeoutException]) -> None:
    if not waiter.done():
        waiter.set_exception(error("no progress within the timeout"))


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
        self._open: set[_Connection] = set()  # connected, idle or busy
        self._idle: list[_Connection] = []  # the most recently used last
        self._connecting = 0  # slots taken by connections being made
        self._waiters: deque[asyncio.Future[_Connection | None]] = deque()
        self._epoch = 0  # bumped by close(): a connection made across it is dropped

    async def acquire(self, *, fresh: bool = False) -> _Connection:
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

    def release(self, conn: _Connection, reusable: bool) -> None:
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

    def holds(self, conn: _Connection) -> bool:
        """``conn`` is one of the pool's (not closed by ``close``, nor discarded)."""
        return conn in self._open

    def discard(self, conn: _Connection) -> None:
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

    def _take_idle(self, now: float) -> _Connection | None:
        while self._idle:
            conn = self._idle.pop()
            expiry = self._expiry
            if conn.usable and (expiry is None or now - conn.idle_since < expiry):
                conn.reused = True
                return conn
            self.discard(conn)
        return None

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> _Connection:
        """A new connection in the slot the caller reserved (``_connecting``)."""
        epoch = self._epoch
        try:
            async with asyncio.timeout(self._timeout.connect):
                _, conn = await loop.create_connection(
                    lambda: _Connection(loop, self._timeout),
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

    async def _wait(self, loop: asyncio.AbstractEventLoop) -> _Connection | None:
        """A connection another request released, or None: a slot reserved to connect in."""
        waiter: asyncio.Future[_Connection | None] = loop.create_future()
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


def _expire_wait(waiter: asyncio.Future[_Connection | None]) -> None:
    if not waiter.done():
        waiter.set_exception(httpx.PoolTimeout("no free connection within the pool timeout"))
