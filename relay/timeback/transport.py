"""The exchange layer: one request to one response, read and capped, over aiohttp's pool.

``ApiTransport`` is an ``httpx.AsyncBaseTransport`` (httpx stays the client's API) built on
aiohttp's public API only. Its contract, which ``_http.send`` relies on:

- every response comes back **read**: its body in memory, at most ``body_limit(status)`` bytes
  (``BODY_LIMIT`` of an error, all a dead letter keeps; ``ANSWER_LIMIT`` of a success), and
  ``extensions["body_cut"]`` says whether the rest was dropped (its connection is then closed,
  not drained). The body is decoded, so the headers describing the encoded one are left out;
- a request that gets no response raises an ``httpx.TransportError`` whose ``__cause__`` is
  aiohttp's own exception (``_http.network_cause`` reads it).

Another transport (a test's ``httpx.MockTransport``, the benchmark's variants) may hand back a
streamed or uncapped response: ``read_capped`` brings it to the same contract. URLs and timeouts
are converted for aiohttp once per distinct value (the events endpoint is one URL).

``exchange`` is the same under aiohttp's own terms (a yarl URL, headers, bytes, a
``ClientTimeout``) and answers an ``Answer``: the client's events POST (``Lane``, prepared once)
needs no ``httpx.Request``, and of a 2xx no ``httpx.Response`` (bench/NOTES-client.md). By
default the events POST leaves aiohttp out too (``lane`` makes a ``wire.WireLane``: its own
keep-alive HTTP/1.1 connections, the same contract); behind a proxy, or with
``lean_events=False`` (RELAY_EVENTS_WIRE=aiohttp), it goes through ``exchange``.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import aiohttp
import httpx
import yarl
from multidict import CIMultiDict, CIMultiDictProxy

from relay.timeback.answer import READ, Answer, body_limit, read_response

if TYPE_CHECKING:
    from relay.timeback.wire import WireLane

_URLS_KEPT: Final = 256  # parsed URLs remembered (events, token, a few rostering paths)
# aiohttp's errors as httpx's, most specific first (the first match wins).
_ERRORS: Final[tuple[tuple[type[Exception], type[httpx.TransportError]], ...]] = (
    (aiohttp.ClientProxyConnectionError, httpx.ProxyError),
    (aiohttp.ClientHttpProxyError, httpx.ProxyError),
    (aiohttp.SocketTimeoutError, httpx.ReadTimeout),
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),
    (aiohttp.ServerTimeoutError, httpx.TimeoutException),
    (aiohttp.ClientConnectorError, httpx.ConnectError),
    (aiohttp.ClientPayloadError, httpx.ReadError),
    (aiohttp.NonHttpUrlClientError, httpx.UnsupportedProtocol),
    (aiohttp.InvalidUrlClientError, httpx.UnsupportedProtocol),
    (aiohttp.ClientError, httpx.NetworkError),
)


class ApiTransport(httpx.AsyncBaseTransport):
    """aiohttp's connection pool; every response comes back read and capped (module doc)."""

    def __init__(
        self,
        *,
        limits: httpx.Limits,
        proxy: httpx.Proxy | None = None,
        body_limit: Callable[[int], int] = body_limit,
        lean_events: bool = True,
    ) -> None:
        self._limits = limits
        self._proxy = _proxy_options(proxy)
        # the events POST on connections of its own (wire.py), unless behind a proxy
        self._lean_events = lean_events and proxy is None
        self._wires: list[WireLane] = []
        self._body_limit = body_limit
        # the CA store follows the environment (SSL_CERT_FILE, SSL_CERT_DIR), as httpx's does
        self._ssl = httpx.create_ssl_context(trust_env=True)
        self._session: aiohttp.ClientSession | None = None  # made in the running loop
        self._urls: dict[str, yarl.URL] = {}
        self._timeouts: dict[tuple[Any, ...], aiohttp.ClientTimeout] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        answer = await self.exchange(
            request.method,
            self._url(request.url),
            request.headers.multi_items(),
            request.content or None,
            self._timeout(request.extensions.get("timeout", {})),
            request.extensions.get("sni_hostname"),
        )
        return answer.response(request)

    async def exchange(
        self,
        method: str,
        url: yarl.URL,
        headers: Any,
        body: bytes | None,
        timeouts: aiohttp.ClientTimeout,
        server_hostname: str | None = None,
    ) -> Answer:
        """One request in aiohttp's terms, its answer read and capped (the module's contract)."""
        session = self._session or self._open()
        try:
            answer = await session.request(
                method,
                url,
                headers=headers,
                data=body,
                allow_redirects=False,
                compress=False,
                timeout=timeouts,
                server_hostname=server_hostname,
                **self._proxy,
            )
            try:
                read, whole = await _read(answer.content, self._body_limit(answer.status))
            finally:
                answer.release() if answer.content.at_eof() else answer.close()
        except aiohttp.ClientError as exc:
            raise _as_httpx_error(exc) from exc
        return Answer(answer.status, answer.raw_headers, read, cut=not whole)

    def lane(
        self, url: httpx.URL, headers: list[tuple[str, str]], timeout: httpx.Timeout
    ) -> Lane | WireLane:
        """One POST prepared once, the client's events endpoint: on lean connections of its own
        (``wire.WireLane``), or behind a proxy or when told to, for aiohttp (``Lane``)."""
        if not self._lean_events:
            return Lane(self, self._url(url), headers, self._timeout(timeout.as_dict()))
        from relay.timeback.wire import WireLane  # here: wire builds on this module

        wire = WireLane(url, headers, timeout, self._limits, self._ssl, self._body_limit)
        self._wires.append(wire)
        return wire

    async def aclose(self) -> None:
        for wire in self._wires:
            await wire.aclose()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._limits.max_connections or 0,  # 0: aiohttp's "no limit"
            keepalive_timeout=self._limits.keepalive_expiry,
            ssl=self._ssl,
        )
        self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    def _url(self, url: httpx.URL) -> yarl.URL:
        text = str(url)
        parsed = self._urls.get(text)
        if parsed is None:
            if len(self._urls) >= _URLS_KEPT:
                self._urls.clear()
            parsed = self._urls[text] = yarl.URL(text, encoded=True)
        return parsed

    def _timeout(self, timeout: dict[str, float | None]) -> aiohttp.ClientTimeout:
        key = (timeout.get("connect"), timeout.get("read"), timeout.get("pool"))
        cached = self._timeouts.get(key)
        if cached is None:
            cached = self._timeouts[key] = aiohttp.ClientTimeout(
                sock_connect=key[0], sock_read=key[1], connect=key[2]
            )
        return cached


class Lane:
    """One POST prepared for aiohttp once (its URL, timeout and headers): per call only the body
    and the bearer token vary, and the headers are rebuilt once per token. The client's
    events POST goes this way when its transport is ``ApiTransport``: no ``httpx.Request``, and
    no ``httpx.Response`` for an ``Answer`` it only needs the status and body of."""

    __slots__ = ("_authorized", "_headers", "_timeout", "_transport", "_url")

    def __init__(
        self,
        transport: ApiTransport,
        url: yarl.URL,
        headers: list[tuple[str, str]],
        timeout: aiohttp.ClientTimeout,
    ) -> None:
        self._transport = transport
        self._url = url
        self._headers = headers
        self._timeout = timeout
        self._authorized: tuple[str, CIMultiDictProxy[str]] | None = None  # token, headers

    async def post(self, body: bytes, token: str) -> Answer:
        authorized = self._authorized
        if authorized is None or authorized[0] != token:
            headers = CIMultiDict(self._headers)
            headers["Authorization"] = f"Bearer {token}"
            authorized = self._authorized = (token, CIMultiDictProxy(headers))
        return await self._transport.exchange("POST", self._url, authorized[1], body, self._timeout)


async def read_capped(response: httpx.Response) -> httpx.Response:
    """``response`` under the transport's contract: read, at most ``body_limit`` bytes, the
    rest never read (a huge body is never held whole; a cut stream's connection is closed). A
    response ``ApiTransport`` made is returned as it is."""
    if READ in response.extensions:
        return response
    limit = body_limit(response.status_code)
    if isinstance(response.stream, httpx.ByteStream):  # in memory already (a mock's)
        body = response.content
    else:
        kept = bytearray()
        try:
            async for chunk in response.aiter_bytes():
                kept += chunk[: limit + 1 - len(kept)]  # one byte past: was there more?
                if len(kept) > limit:
                    break
        finally:
            await response.aclose()
        body = bytes(kept)
    status, headers, cut = response.status_code, response.headers.raw, len(body) > limit
    return read_response(status, headers, body[:limit], response.request, cut=cut)


async def _read(content: aiohttp.StreamReader, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes of the body, and whether that was all of it."""
    first = await content.read(limit)
    if not first or content.at_eof():  # the common case: a small answer, whole in one read
        return first, True
    kept = bytearray(first)
    while len(kept) < limit:
        chunk = await content.read(limit - len(kept))
        if not chunk:
            return bytes(kept), True
        kept += chunk
    return bytes(kept), content.at_eof()


def _as_httpx_error(exc: aiohttp.ClientError) -> httpx.TransportError:
    """aiohttp's exception as the matching ``httpx.TransportError`` (raised ``from`` it)."""
    mapped = next(to for frm, to in _ERRORS if isinstance(exc, frm))
    return mapped(str(exc))


def _proxy_options(proxy: httpx.Proxy | None) -> dict[str, Any]:
    if proxy is None:
        return {}
    headers = dict(proxy.headers)
    if proxy.auth:
        headers["Proxy-Authorization"] = basic_credentials(*proxy.auth)
    return {"proxy": str(proxy.url), "proxy_headers": headers}


def basic_credentials(user: str, password: str) -> str:
    """The value of a Basic ``Authorization`` header, as aiohttp.BasicAuth wrote it (latin-1):
    BasicAuth is deprecated since aiohttp 3.14 (gone in 4.0), and its replacement is not in the
    older releases the relay accepts."""
    encoded = base64.b64encode(f"{user}:{password}".encode("latin-1")).decode("ascii")
    return f"Basic {encoded}"
