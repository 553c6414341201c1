"""One HTTP/1.1 connection of the events lane (``wire``): a request written whole, its answer
parsed from the bytes received (``Connection.answer``), and the request's prepared start.

The parser is ours, a few dozen lines: the API's answers are a status line, a few headers and a
small body, which ``bytes.find``/``split`` parse in 2.3 us (a 2xx with four headers, head,
framing and body). aiohttp's C parser (llhttp, ``aiohttp.http.HttpResponseParser``) took 2.9 us
for the same bytes with a parser reused, 3.5 us made per connection, and it is bound to aiohttp's
protocol class and hands every body to a ``StreamReader``, the machinery the lane leaves out;
h11 (a generic pure-Python state machine) cost ~68 us per exchange. A library would not do it
better here.

Framing: ``Content-Length``, chunked (trailers skipped), close-delimited; 1xx answers skipped; an
HTTP/1.0 answer or ``Connection: close`` ends the connection. ``Accept-Encoding: identity`` is
asked; a gzip or deflate answer anyway is decoded (error bodies end up as text in DLQ headers).
Errors are httpx's own (``ReadTimeout``, ``WriteTimeout``, ``ReadError``,
``RemoteProtocolError``); a reused connection that ends before any byte of the answer raises
``StaleConnection`` for the lane to send again.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable
from typing import Final, cast

import httpx

from relay.timeback.answer import Answer

_HEAD_LIMIT: Final = 64 * 1024  # bytes of a status line and headers; more is not an API answer
_LINE_LIMIT: Final = 8 * 1024  # bytes of a chunk-size or trailer line
_NO_BODY: Final = frozenset({204, 304})
_VERSIONS: Final = {b"HTTP/1.1": True, b"HTTP/1.0": False}  # version -> keep-alive by default
_DECODERS: Final = {b"gzip": 16 + zlib.MAX_WBITS, b"x-gzip": 16 + zlib.MAX_WBITS, b"deflate": 0}
Headers = list[tuple[bytes, bytes]]


class StaleConnection(Exception):
    """A reused connection ended before any byte of the answer."""


class Connection(asyncio.Protocol):
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
        # The read timeout: one timer per connection, re-armed lazily (``_expect``), rather
        # than a ``TimerHandle`` pushed on the loop's heap and cancelled per wait.
        self._read_by = 0.0  # loop time by which the awaited bytes are due
        self._read_timer: asyncio.TimerHandle | None = None
        self._drained: asyncio.Future[None] | None = None  # while the transport is paused

    # --- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport by construction (create_connection); uvloop's is not a subclass
        self.transport = cast(asyncio.Transport, transport)

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
        if self._read_timer is not None:  # nothing more to wait for: the loop lets go of it
            self._read_timer.cancel()
            self._read_timer = None

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

    def write(self, request: bytes) -> bool:
        """Write ``request`` whole; True when the socket's buffer is full (await ``drained``)."""
        assert self.transport is not None
        self.transport.write(request)
        return self._drained is not None

    async def drained(self) -> None:
        """Room in the socket's buffer again (a large envelope filled it), within the write
        timeout."""
        drained = self._drained
        if drained is not None:
            timeout = self._write_timeout
            timer = (
                self._loop.call_later(timeout, expire, drained, httpx.WriteTimeout)
                if timeout is not None
                else None
            )
            try:
                await drained
            finally:
                if timer is not None:
                    timer.cancel()

    async def answer(self, body_limit: Callable[[int], int]) -> tuple[Answer, bool]:
        """The answer, read and capped, and whether the connection may serve another request.

        Waits inline (``_expect``), and a body already received is taken without a coroutine:
        the common answer (a small 2xx) costs no frame beyond this one."""
        buf = self.buffer
        first = True
        searched = 0
        while True:
            end = buf.find(b"\r\n\r\n", searched)
            if end < 0:
                self._head_incomplete(first)
                searched = max(0, len(buf) - 3)
                await self._expect()
                continue
            status, headers, keep_alive = _parse_head(bytes(buf[:end]))
            del buf[: end + 4]
            if not 100 <= status < 200:
                break
            if status == 101:  # interim answers (100 Continue, 103 Early Hints) are skipped
                raise httpx.RemoteProtocolError("the server switched protocols on an events POST")
            first, searched = False, 0
        framing = _framing(status, headers)
        limit = body_limit(status)
        length = framing.length
        if length is not None and len(buf) >= min(length, limit):  # received whole already
            want = min(length, limit)
            body, whole = bytes(buf[:want]), length <= limit
            del buf[:want]
        elif framing.chunked:
            body, whole = await self._chunked(limit)
        elif length is not None:
            body, whole = await self._sized(length, limit)
        else:
            body, whole = await self._until_end(limit)
        if framing.encoding is not None:
            body, whole = _decoded(body, framing.encoding, limit, whole)
        reusable = keep_alive and whole and not framing.close and framing.delimited
        return Answer(status, headers, body, cut=not whole), reusable and not buf

    def _head_incomplete(self, first: bool) -> None:
        """The head is not all here yet: raise if it cannot come (too long, or the end came)."""
        buf = self.buffer
        if len(buf) > _HEAD_LIMIT:
            raise httpx.RemoteProtocolError(f"an answer's head over {_HEAD_LIMIT} bytes")
        if self.ended:
            if first and not buf and self.reused:
                raise StaleConnection
            raise self._ended("before the answer's head was complete")

    async def _sized(self, length: int, limit: int) -> tuple[bytes, bool]:
        want = min(length, limit)
        await self._fill(want)
        body = bytes(self.buffer[:want])
        del self.buffer[:want]
        return body, length <= limit

    async def _until_end(self, limit: int) -> tuple[bytes, bool]:
        while not self.ended and len(self.buffer) <= limit:
            await self._expect()
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
            await self._expect()
        line = bytes(buf[:end])
        del buf[: end + 2]
        return line

    async def _fill(self, size: int) -> None:
        while len(self.buffer) < size:
            if self.ended:
                raise self._ended("mid-body")
            await self._expect()

    def _expect(self) -> asyncio.Future[None]:
        """A waiter for more bytes, or their end; none within the read timeout (from now) fails
        it with ReadTimeout. Awaited where it is made: no coroutine of its own."""
        loop = self._loop
        waiter = self._waiter = loop.create_future()
        timeout = self._read_timeout
        if timeout is not None:
            self._read_by = loop.time() + timeout
            if self._read_timer is None:
                self._read_timer = loop.call_at(self._read_by, self._read_timed_out)
        return waiter

    def _read_timed_out(self) -> None:
        """The read timer: fail the waiter past its due time, else re-arm for it (the timer
        was armed for an earlier wait); with nothing awaited it rests until the next wait."""
        self._read_timer = None
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._loop.time() >= self._read_by:
            expire(waiter, httpx.ReadTimeout)
        else:
            self._read_timer = self._loop.call_at(self._read_by, self._read_timed_out)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
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


def request_start(url: httpx.URL, headers: list[tuple[str, str]]) -> bytes:
    """The request line and fixed headers, up to the Authorization header."""
    lines = [b"POST " + url.raw_path + b" HTTP/1.1"]
    lines += [f"{name}: {value}".encode("latin-1") for name, value in headers]
    lines.append(b"Accept-Encoding: identity")
    return b"\r\n".join(lines) + b"\r\n"


def authorization(token: str) -> bytes:
    """The bearer header and the start of Content-Length (the length and body follow)."""
    if not token.isprintable() or not token.isascii():
        # a token that would split the header: refuse to send it, and never print it
        raise httpx.LocalProtocolError("the access token holds characters a header cannot")
    return b"Authorization: Bearer " + token.encode("ascii") + b"\r\nContent-Length: "


def expire(waiter: asyncio.Future[None], error: type[httpx.TimeoutException]) -> None:
    if not waiter.done():
        waiter.set_exception(error("no progress within the timeout"))
