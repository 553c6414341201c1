"""The events POST on its own connections (``wire.WireLane``) against real servers on loopback:
a scripted HTTP/1.1 server (asyncio streams, so every framing and every misbehaviour can be
written byte for byte) and a TLS one. What is checked: framing (chunked with trailers,
close-delimited, ``Connection: close``, HTTP/1.0, interim 1xx, gzip), the cap on bodies, the
stale keep-alive retry (once, never twice), resets, drip-fed answers, the pool's limit, reuse
and expiry, cancellation, ``aclose`` and the errors' labels (``_http.network_cause``). The
client-level cases (the same request, 4xx, 401, 429, drops, caps, deadline) run through this lane
in test_timeback_lane.py."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import re
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from relay.config import Settings
from relay.timeback._http import network_cause
from relay.timeback.answer import ANSWER_LIMIT, BODY_LIMIT, body_limit
from relay.timeback.client import TimeBackClient
from relay.timeback.http1 import Connection
from relay.timeback.transport import Lane
from relay.timeback.wire import WireLane
from relay.wiring import client_config
from tests.shared import self_signed

EVENT = b'{"id":"urn:uuid:1","type":"ViewEvent"}'
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
# What the scripted server does with request n (1-based) on a connection: write, and say
# whether to keep reading that connection.
Script = Callable[[int, asyncio.StreamWriter], Awaitable[bool]]


class Server:
    """A real TCP server (optionally TLS) that reads each request whole and answers by script."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[bytes] = []  # each request's head and body, as received
        self.connections = 0  # accepted so far
        self.open = 0  # open now
        self.peak = 0  # most open at once
        self.closed = asyncio.Event()  # set whenever a connection ends
        self._server: asyncio.Server | None = None

    async def start(self, tls: ssl.SSLContext | None = None) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=tls)
        port = self._server.sockets[0].getsockname()[1]
        return f"{'https' if tls else 'http'}://127.0.0.1:{port}/events/1.0"

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open += 1
        self.peak = max(self.peak, self.open)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                found = re.search(rb"Content-Length: (\d+)", head)
                assert found is not None, head
                self.requests.append(head + await reader.readexactly(int(found[1])))
                if not await self.script(len(self.requests), writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass  # the client closed it
        finally:
            self.open -= 1
            self.closed.set()
            writer.close()


Serve = Callable[..., Awaitable[tuple[Server, WireLane]]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Start a scripted server; a lane to it (``max_connections``, ``expiry``, ``read``...)."""
    made: list[tuple[Server, WireLane]] = []

    async def start(
        script: Script,
        *,
        max_connections: int = 8,
        expiry: float = 30.0,
        read: float = 5.0,
        tls: tuple[ssl.SSLContext, ssl.SSLContext] | None = None,
    ) -> tuple[Server, WireLane]:
        server = Server(script)
        url = await server.start(tls[0] if tls else None)
        lane = WireLane(
            httpx.URL(url),
            [("Host", httpx.URL(url).netloc.decode()), ("Content-Type", "application/json")],
            httpx.Timeout(5.0, read=read),
            httpx.Limits(max_connections=max_connections, keepalive_expiry=expiry),
            tls[1] if tls else ssl.create_default_context(),
            body_limit,
        )
        made.append((server, lane))
        return server, lane

    yield start
    for server, lane in made:
        await lane.aclose()
        await server.stop()


def answer(*chunks: bytes, keep: bool = True) -> Script:
    """A script writing ``chunks`` to every request, keeping the connection or closing it."""

    async def script(n: int, writer: asyncio.StreamWriter) -> bool:
        for chunk in chunks:
            writer.write(chunk)
        await writer.drain()
        return keep

    return script


async def test_the_request_is_one_post_with_the_token_and_the_length(serve: Serve) -> None:
    server, lane = await serve(answer(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}"))
    got = await lane.post(EVENT, "t1")
    assert (got.status_code, got.content, got.cut) == (202, b"{}", False)
    head, _, body = server.requests[0].partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /events/1.0 HTTP/1.1"
    assert b"Authorization: Bearer t1" in lines
    assert b"Accept-Encoding: identity" in lines
    assert f"Content-Length: {len(EVENT)}".encode() in lines
    assert body == EVENT


async def test_a_keep_alive_connection_serves_the_next_request(serve: Serve) -> None:
    server, lane = await serve(answer(OK))
    for _ in range(3):
        assert (await lane.post(EVENT, "t")).status_code == 200
    assert server.connections == 1


async def test_a_chunked_answer_with_trailers_is_joined_and_keeps_its_connection(
    serve: Serve,
) -> None:
    chunked = (
        b'HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\n{"ok"\r\n',
        b"2\r\n:1\r\n1\r\n}\r\n0\r\nX-Trailer: yes\r\n\r\n",
    )
    server, lane = await serve(answer(*chunked))
    first = await lane.post(EVENT, "t")
    second = await lane.post(EVENT, "t")
    assert first.content == second.content == b'{"ok":1}'
    assert server.connections == 1


async def test_a_close_delimited_answer_is_read_to_the_end_and_its_connection_not_reused(
    serve: Serve,
) -> None:
    server, lane = await serve(answer(b"HTTP/1.1 200 OK\r\n\r\n", b'{"all":', b"1}", keep=False))
    assert (await lane.post(EVENT, "t")).content == b'{"all":1}'
    assert (await lane.post(EVENT, "t")).content == b'{"all":1}'
    assert server.connections == 2


@pytest.mark.parametrize(
    "head",
    [b"HTTP/1.1 200 OK\r\nConnection: close\r\n", b"HTTP/1.0 200 OK\r\n"],
    ids=["connection-close", "http-1.0"],
)
async def test_an_answer_that_ends_its_connection_is_not_reused(serve: Serve, head: bytes) -> None:
    # the server would serve another request on it: the lane must not ask
    server, lane = await serve(answer(head + b"Content-Length: 2\r\n\r\n{}"))
    for _ in range(2):
        assert (await lane.post(EVENT, "t")).content == b"{}"
    assert server.connections == 2


async def test_interim_answers_are_skipped(serve: Serve) -> None:
    _, lane = await serve(
        answer(
            b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n", OK
        )
    )
    got = await lane.post(EVENT, "t")
    assert (got.status_code, got.content) == (200, b"{}")


async def test_a_gzip_answer_is_decoded(serve: Serve) -> None:
    text = b'{"error":"invalid_event"}'
    packed = gzip.compress(text)
    head = b"HTTP/1.1 400 Bad Request\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n"
    _, lane = await serve(answer(head % len(packed) + packed))
    got = await lane.post(EVENT, "t")
    assert (got.status_code, got.content) == (400, text)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_body_over_the_cap_is_cut_and_its_connection_closed(
    serve: Serve, chunked: bool
) -> None:
    body = b"x" * (BODY_LIMIT + 100)
    if chunked:
        head = b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n"
        wire = head + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"
    else:
        wire = b"HTTP/1.1 500 Oops\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    server, lane = await serve(answer(wire))
    got = await lane.post(EVENT, "t")
    assert (got.status_code, len(got.content), got.cut) == (500, BODY_LIMIT, True)
    await lane.post(EVENT, "t")
    assert server.connections == 2  # the rest was never read: the connection is gone


async def test_a_success_is_kept_up_to_the_answer_limit(serve: Serve) -> None:
    body = b"y" * (BODY_LIMIT * 3)  # over an error's cap, well under a success's
    _, lane = await serve(
        answer(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body), body)
    )
    got = await lane.post(EVENT, "t")
    assert (got.content, got.cut) == (body, False)
    assert len(body) < ANSWER_LIMIT


async def test_an_idle_connection_the_server_closed_is_not_reused(serve: Serve) -> None:
    server, lane = await serve(answer(OK, keep=False))  # keep-alive answered, then closed
    await lane.post(EVENT, "t")
    await server.closed.wait()
    await asyncio.sleep(0)  # the lane's side hears of it
    assert (await lane.post(EVENT, "t")).status_code == 200
    assert (server.connections, len(server.requests)) == (2, 2)


async def test_a_stale_keep_alive_connection_is_retried_once_on_a_fresh_one(serve: Serve) -> None:
    async def close_the_second(n: int, writer: asyncio.StreamWriter) -> bool:
        if n == 2:  # read, then closed without a byte: what a keep-alive timeout race looks like
            return False
        writer.write(OK)
        return True

    server, lane = await serve(close_the_second)
    await lane.post(EVENT, "t")
    assert (await lane.post(EVENT, "t")).status_code == 200
    assert (server.connections, len(server.requests)) == (2, 3)


async def test_a_second_eof_is_an_error_not_another_retry(serve: Serve) -> None:
    async def only_the_first(n: int, writer: asyncio.StreamWriter) -> bool:
        if n == 1:
            writer.write(OK)
        return n == 1

    server, lane = await serve(only_the_first)
    await lane.post(EVENT, "t")
    with pytest.raises(httpx.RemoteProtocolError) as caught:
        await lane.post(EVENT, "t")
    assert network_cause(caught.value) == "network"
    assert len(server.requests) == 3  # the first, the stale attempt and one retry: no more


async def test_a_fresh_connection_closed_without_an_answer_is_not_retried(serve: Serve) -> None:
    server, lane = await serve(answer(keep=False))
    with pytest.raises(httpx.RemoteProtocolError):
        await lane.post(EVENT, "t")
    assert len(server.requests) == 1


async def test_a_reset_mid_answer_is_a_network_error(serve: Serve) -> None:
    async def reset(n: int, writer: asyncio.StreamWriter) -> bool:
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"partial')
        await writer.drain()
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()  # linger 0: a reset, not a clean end
        return False

    _, lane = await serve(reset)
    with pytest.raises(httpx.TransportError) as caught:
        await lane.post(EVENT, "t")
    assert isinstance(caught.value, httpx.ReadError | httpx.RemoteProtocolError)
    assert network_cause(caught.value) == "network"


async def test_a_drip_fed_answer_within_the_read_timeout_is_read_whole(serve: Serve) -> None:
    body = b'{"status":"accepted"}'

    async def drip(n: int, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 202 Accepted\r\nContent-Length: %d\r\n\r\n" % len(body))
        for byte in body:
            await writer.drain()
            await asyncio.sleep(0.01)
            writer.write(bytes([byte]))
        return True

    _, lane = await serve(drip)
    got = await lane.post(EVENT, "t")
    assert (got.status_code, got.content) == (202, body)


async def test_no_byte_within_the_read_timeout_is_a_timeout(serve: Serve) -> None:
    silent = asyncio.Event()

    async def never(n: int, writer: asyncio.StreamWriter) -> bool:
        await silent.wait()
        return False

    _, lane = await serve(never, read=0.2)
    with pytest.raises(httpx.ReadTimeout) as caught:
        await lane.post(EVENT, "t")
    assert network_cause(caught.value) == "timeout"
    silent.set()


async def test_a_connection_idle_past_its_read_timeout_still_times_out_its_next_read(
    serve: Serve,
) -> None:
    # the read timer is one per connection, re-armed lazily: it fires while the connection is
    # idle (nothing awaited) and must be armed again by the next request's wait
    silent = asyncio.Event()

    async def once(n: int, writer: asyncio.StreamWriter) -> bool:
        if n == 1:
            writer.write(OK)
            return True
        await silent.wait()
        return False

    _, lane = await serve(once, read=0.2)
    assert (await lane.post(EVENT, "t")).status_code == 200
    await asyncio.sleep(0.3)  # past the first read's timeout, idle in the pool
    with pytest.raises(httpx.ReadTimeout):
        await asyncio.wait_for(lane.post(EVENT, "t"), 30)  # a guard against a hang
    silent.set()


async def test_the_read_timer_serves_the_latest_wait_not_the_one_that_armed_it() -> None:
    # white-box, no clock to wait on: the timer armed by an earlier wait finds a later wait
    # due after it, and re-arms for that one instead of failing it
    loop = asyncio.get_running_loop()
    conn = Connection(loop, httpx.Timeout(5.0))
    waiter = conn._expect()
    conn._read_by = loop.time() + 60  # a later wait's due time
    conn._read_timed_out()
    assert not waiter.done() and conn._read_timer is not None
    conn._read_by = loop.time() - 1  # due: the wait fails as a read timeout
    conn._read_timed_out()
    assert isinstance(waiter.exception(), httpx.ReadTimeout)
    conn._read_timed_out()  # nothing awaited: it rests until the next wait
    assert conn._read_timer is None
    conn.connection_lost(None)


async def test_a_refused_connection_is_a_connect_error() -> None:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: refused
        lane = WireLane(
            httpx.URL(f"http://127.0.0.1:{port}/events/1.0"),
            [],
            httpx.Timeout(5.0),
            httpx.Limits(max_connections=2),
            ssl.create_default_context(),
            body_limit,
        )
        with pytest.raises(httpx.ConnectError) as caught:
            await lane.post(EVENT, "t")
    assert network_cause(caught.value) == "connect"
    await lane.aclose()


async def test_never_more_connections_than_the_budget(serve: Serve) -> None:
    gate, two_in = asyncio.Event(), asyncio.Event()

    async def held(n: int, writer: asyncio.StreamWriter) -> bool:
        if n == 2:
            two_in.set()
        await gate.wait()
        writer.write(OK)
        return True

    server, lane = await serve(held, max_connections=2)
    posts = [asyncio.create_task(lane.post(EVENT, "t")) for _ in range(6)]
    await two_in.wait()
    await asyncio.sleep(0.05)  # room for a third connection, were the lane to open one
    assert (server.open, server.connections) == (2, 2)
    gate.set()
    assert [a.status_code for a in await asyncio.gather(*posts)] == [200] * 6
    assert (server.peak, server.connections) == (2, 2)


async def test_idle_connections_expire(serve: Serve) -> None:
    server, lane = await serve(answer(OK), expiry=0.05)
    await lane.post(EVENT, "t")
    await asyncio.sleep(0.1)
    await lane.post(EVENT, "t")
    assert server.connections == 2


async def test_cancelled_mid_answer_closes_the_connection(serve: Serve) -> None:
    started = asyncio.Event()

    async def half(n: int, writer: asyncio.StreamWriter) -> bool:
        if n == 1:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{")
            started.set()
            return True  # the rest never comes
        writer.write(OK)
        return True

    server, lane = await serve(half)
    post = asyncio.create_task(lane.post(EVENT, "t"))
    await started.wait()
    await asyncio.sleep(0.05)  # the head reached the lane
    post.cancel()
    with pytest.raises(asyncio.CancelledError):
        await post
    async with asyncio.timeout(10):  # a guard, not a measure: a hang means it was kept
        await server.closed.wait()  # the lane closed it: never back to the pool half-read
    assert (await lane.post(EVENT, "t")).content == b"{}"
    assert server.connections == 2


async def test_aclose_closes_every_connection(serve: Serve) -> None:
    server, lane = await serve(answer(OK))
    await asyncio.gather(*(lane.post(EVENT, "t") for _ in range(3)))
    assert server.open == 3
    await lane.aclose()
    async with asyncio.timeout(10):  # a guard, not a measure: a hang means one stayed open
        while server.open:
            server.closed.clear()
            await server.closed.wait()
    assert server.open == 0


def _certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, and its key, as PEM files."""
    certificate, key = self_signed("localhost", ca=True, hosts=("localhost", "127.0.0.1"))
    from cryptography.hazmat.primitives import serialization  # there: self_signed skips without it

    cert, pem_key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    pem_key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, pem_key


async def test_tls_with_a_trusted_certificate(
    serve: Serve, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = _certificate(tmp_path)
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(cert, key)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the CA store as ApiTransport builds it
    client_side = httpx.create_ssl_context(trust_env=True)
    server, lane = await serve(answer(OK), tls=(server_side, client_side))
    for _ in range(2):
        assert (await lane.post(EVENT, "t")).content == b"{}"
    assert server.connections == 1
    assert server.requests[0].startswith(b"POST /events/1.0 HTTP/1.1\r\n")


async def test_tls_with_an_untrusted_certificate_is_a_connect_error(
    serve: Serve, tmp_path: Path
) -> None:
    cert, key = _certificate(tmp_path)
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(cert, key)
    _, lane = await serve(answer(OK), tls=(server_side, ssl.create_default_context()))
    with pytest.raises(httpx.ConnectError) as caught:
        await lane.post(EVENT, "t")
    assert isinstance(caught.value.__cause__, ssl.SSLCertVerificationError)
    assert network_cause(caught.value) == "connect"


async def test_a_large_envelope_waits_for_room_and_a_peer_that_never_reads_times_out() -> None:
    """Back-pressure: a body larger than the socket buffers is written as the peer reads it; a
    peer that reads nothing leaves the write paused, and the write timeout ends it."""
    stalled: list[asyncio.StreamWriter] = []

    async def never_read(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stalled.append(writer)

    server = await asyncio.start_server(never_read, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    lane = WireLane(
        httpx.URL(f"http://127.0.0.1:{port}/events/1.0"),
        [],
        httpx.Timeout(5.0, write=0.2),
        httpx.Limits(max_connections=2),
        ssl.create_default_context(),
        body_limit,
    )
    try:
        with pytest.raises(httpx.WriteTimeout) as caught:
            await lane.post(b"x" * (64 << 20), "t")  # far beyond what the kernel buffers
        assert network_cause(caught.value) == "timeout"
    finally:
        await lane.aclose()
        for writer in stalled:
            writer.close()
        server.close()


async def test_a_large_envelope_reaches_a_peer_that_reads(serve: Serve) -> None:
    server, lane = await serve(answer(OK))
    body = b"y" * (8 << 20)
    assert (await lane.post(body, "t")).status_code == 200
    assert server.requests[0].endswith(body)


@pytest.mark.parametrize(
    ("setting", "proxy", "lane"),
    [
        ("lean", None, WireLane),
        ("aiohttp", None, Lane),  # the operators' way back
        ("lean", "http://proxy.internal:3128", Lane),  # the lane speaks to no proxy
    ],
)
async def test_which_lane_the_events_post_takes(
    monkeypatch: pytest.MonkeyPatch, setting: str, proxy: str | None, lane: type
) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    if proxy is not None:
        monkeypatch.setenv("HTTPS_PROXY", proxy)
    monkeypatch.setenv("RELAY_EVENTS_WIRE", setting)
    monkeypatch.setenv("RELAY_CLIENT_ID", "id")
    monkeypatch.setenv("RELAY_CLIENT_SECRET", "secret")
    monkeypatch.chdir(Path(__file__).parent)  # no stray .env
    async with TimeBackClient(client_config(Settings())) as client:
        assert type(client._lane) is lane


async def test_aclose_fails_a_request_in_flight_and_opens_nothing_after(serve: Serve) -> None:
    arrived = asyncio.Event()

    async def first_held(n: int, writer: asyncio.StreamWriter) -> bool:
        if n == 1:
            writer.write(OK)
            return True
        arrived.set()  # the second request, on the reused connection: no answer yet
        return True

    server, lane = await serve(first_held)
    await lane.post(EVENT, "t")
    post = asyncio.create_task(lane.post(EVENT, "t"))
    await arrived.wait()
    await lane.aclose()
    with pytest.raises(httpx.RemoteProtocolError):
        await post
    assert (server.connections, len(server.requests)) == (1, 2)  # no stale retry after close


async def test_aclose_fails_a_request_waiting_for_a_connection(serve: Serve) -> None:
    arrived = asyncio.Event()

    async def held(n: int, writer: asyncio.StreamWriter) -> bool:
        arrived.set()  # never answered
        return True

    server, lane = await serve(held, max_connections=1)
    first = asyncio.create_task(lane.post(EVENT, "t"))
    await arrived.wait()
    waiting = asyncio.create_task(lane.post(EVENT, "t"))  # the only connection is busy
    await asyncio.sleep(0)
    await lane.aclose()
    with pytest.raises(httpx.ConnectError):
        await waiting
    with pytest.raises(httpx.RemoteProtocolError):
        await first
    assert server.connections == 1
