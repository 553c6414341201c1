"""The API transport against a real HTTP server (aiohttp's, on a free loopback port): answers
come back read and capped, a cut body's connection is closed, a whole one reused, a gzip body
decoded, no answer is httpx's error caused by aiohttp's; and the proxy the environment names."""

from __future__ import annotations

import asyncio
import base64
import gzip
import socket
import warnings
from collections.abc import AsyncIterator

import aiohttp
import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pydantic import SecretStr

from relay.timeback._http import network_cause
from relay.timeback.answer import BODY_LIMIT
from relay.timeback.client import TimeBackClient
from relay.timeback.client_config import ClientConfig, environment_proxy
from relay.timeback.transport import ApiTransport

BIG = 1 << 20
RELEASE = web.AppKey("release", asyncio.Event)


async def _answer(request: web.Request) -> web.StreamResponse:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    if request.path == "/big-error":
        return web.Response(status=400, body=b"e" * BIG)
    if request.path == "/silent":
        await request.app[RELEASE].wait()  # no answer until the server stops
    if request.path == "/gzip":
        return web.Response(
            body=gzip.compress(b'{"ok": true}'), headers={"Content-Encoding": "gzip"}
        )
    return web.json_response({"peer": list(peer or ()), "body": len(await request.read())})


@pytest.fixture
async def server() -> AsyncIterator[str]:
    app = web.Application()
    app[RELEASE] = asyncio.Event()
    app.router.add_route("*", "/{tail:.*}", _answer)
    async with TestServer(app) as running:
        yield f"http://127.0.0.1:{running.port}"
        app[RELEASE].set()


@pytest.fixture
async def transport() -> AsyncIterator[ApiTransport]:
    t = ApiTransport(limits=httpx.Limits(max_connections=1))
    yield t
    await t.aclose()


async def test_an_error_body_is_cut_at_the_limit_and_its_connection_not_reused(
    server: str, transport: ApiTransport
) -> None:
    cut = await transport.handle_async_request(httpx.Request("GET", f"{server}/big-error"))
    assert cut.status_code == 400
    assert cut.content == b"e" * BODY_LIMIT
    assert cut.extensions["body_cut"] is True
    first = (await transport.handle_async_request(httpx.Request("GET", f"{server}/a"))).json()
    again = (await transport.handle_async_request(httpx.Request("GET", f"{server}/a"))).json()
    assert first["peer"] == again["peer"]  # a body read whole leaves its connection in the pool


async def test_the_request_body_is_sent_and_a_gzip_answer_decoded(
    server: str, transport: ApiTransport
) -> None:
    sent = await transport.handle_async_request(
        httpx.Request("POST", f"{server}/events/1.0", content=b"x" * 1000)
    )
    assert sent.json()["body"] == 1000
    zipped = await transport.handle_async_request(httpx.Request("GET", f"{server}/gzip"))
    assert zipped.json() == {"ok": True}
    assert "content-encoding" not in zipped.headers


async def test_a_refused_connection_is_httpx_s_error_caused_by_aiohttp_s(
    transport: ApiTransport,
) -> None:
    with socket.socket() as probe:  # a port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(httpx.ConnectError) as caught:
        await transport.handle_async_request(httpx.Request("GET", f"http://127.0.0.1:{port}/"))
    assert isinstance(caught.value.__cause__, aiohttp.ClientConnectorError)
    assert network_cause(caught.value) == "connect"


async def test_a_read_timeout_is_httpx_s_read_timeout(server: str, transport: ApiTransport) -> None:
    timeout = httpx.Timeout(5.0, read=0.05).as_dict()
    request = httpx.Request("GET", f"{server}/silent", extensions={"timeout": timeout})
    with pytest.raises(httpx.ReadTimeout) as caught:
        await transport.handle_async_request(request)
    assert isinstance(caught.value.__cause__, aiohttp.ServerTimeoutError)
    assert network_cause(caught.value) == "timeout"


async def test_the_client_keeps_the_base_urls_path(server: str) -> None:
    seen: list[str] = []

    def api(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.url.path.endswith("/token"):
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
        return httpx.Response(202, json={"status": "accepted"})

    config = ClientConfig(f"{server}/partner/", "id", SecretStr("secret"))
    async with TimeBackClient(config, transport=httpx.MockTransport(api)) as client:
        await client.send_event(b"{}", event_type="ViewEvent")
        await client.get_course("c 1")
    assert seen[1:] == [
        f"{server}/partner/events/1.0",
        f"{server}/partner/rostering/1.0/courses/c%201",
    ]


def test_the_proxy_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    assert environment_proxy("https://api.example.com") is None
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    proxy = environment_proxy("https://api.example.com")
    assert proxy is not None and str(proxy.url) == "http://proxy.internal:3128"
    assert environment_proxy("http://api.example.com") is None  # only https is proxied
    monkeypatch.setenv("NO_PROXY", "example.com")
    assert environment_proxy("https://api.example.com") is None


async def test_an_answer_comes_back_read_as_httpx_reads_one(
    server: str, transport: ApiTransport
) -> None:
    """``ReadResponse``: content, text, JSON, the streaming API and Content-Length all agree
    with the body, as for a response httpx read itself."""
    answer = await transport.handle_async_request(
        httpx.Request("POST", f"{server}/events/1.0", content=b"{}")
    )
    body = answer.content
    assert answer.json() == {"peer": answer.json()["peer"], "body": 2}
    assert answer.text == body.decode()
    assert await answer.aread() == body
    assert b"".join([chunk async for chunk in answer.aiter_bytes()]) == body
    assert answer.headers["content-length"] == str(len(body))


async def test_a_proxys_credentials_go_in_its_own_header_without_a_deprecated_api() -> None:
    """Behind a proxy with credentials (the relay proxies its https calls), the tunnel's CONNECT
    carries ``Proxy-Authorization`` (Basic, as aiohttp.BasicAuth wrote it), with no
    DeprecationWarning from aiohttp 3.14+. A real socket server stands in for the proxy: it
    records the CONNECT's head and refuses the tunnel (407), which the call reports as a
    ProxyError."""
    heads: list[bytes] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(proxy, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport = ApiTransport(
        limits=httpx.Limits(max_connections=1),
        proxy=httpx.Proxy(f"http://us%40er:s3cret@127.0.0.1:{port}"),
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", DeprecationWarning)
            with pytest.raises(httpx.ProxyError):
                await transport.handle_async_request(
                    httpx.Request("POST", "https://api.example.com/events/1.0", content=b"{}")
                )
    finally:
        await transport.aclose()
        server.close()
        await server.wait_closed()
    [head] = heads
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0] == "CONNECT api.example.com:443 HTTP/1.1"
    expected = "Basic " + base64.b64encode(b"us@er:s3cret").decode()
    assert f"Proxy-Authorization: {expected}" in lines
