"""The API's transport: aiohttp's connection pool behind httpx, each answer read whole up to a
byte cap before it is handed back.

``httpx_aiohttp.AiohttpTransport`` hands back a streamed response that the client then reads
through httpx's stream layers and copies into a second ``httpx.Response`` to cap it
(``_http.read_capped``); for the relay's small answers that wrapping cost more CPU than the
exchange itself. This transport reads the body off aiohttp directly, at most ``body_limit``
bytes for the answer's status (a longer body is cut and its connection closed, not drained),
and builds one ``httpx.Response`` already read. URLs are parsed for aiohttp once per distinct
URL (the events endpoint is one). Everything else (pool, TLS context, proxy, the mapping of
aiohttp's errors to httpx's) is ``AiohttpTransport``'s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import aiohttp
import httpx
import yarl
from httpx_aiohttp import AiohttpTransport
from httpx_aiohttp.transport import map_aiohttp_exceptions

_URLS_KEPT: Final = 256  # parsed URLs remembered (events, token, a few rostering paths)
# the body is handed back decoded: drop the headers that describe the encoded one
_ENCODING_HEADERS: Final = frozenset({"content-encoding", "content-length", "transfer-encoding"})


class CappedAiohttpTransport(AiohttpTransport):
    """aiohttp's pool; every response comes back read, at most ``body_limit(status)`` bytes."""

    def __init__(self, *, body_limit: Callable[[int], int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._body_limit = body_limit
        self._urls: dict[str, yarl.URL] = {}
        self._timeouts: dict[tuple[Any, ...], aiohttp.ClientTimeout] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not isinstance(self.client, aiohttp.ClientSession):
            self.client = self.get_client()
        with map_aiohttp_exceptions():
            answer = await self.client.request(
                request.method,
                self._url(request.url),
                headers=request.headers.multi_items(),
                data=request.content or None,
                allow_redirects=False,
                compress=False,
                timeout=self._timeout(request.extensions.get("timeout", {})),
                server_hostname=request.extensions.get("sni_hostname"),
                **self._proxy(),
            )
            try:
                body, whole = await _read(answer.content, self._body_limit(answer.status))
            finally:
                answer.release() if answer.content.at_eof() else answer.close()
        headers = [
            (k, v) for k, v in answer.raw_headers if k.decode().lower() not in _ENCODING_HEADERS
        ]
        return httpx.Response(
            answer.status,
            headers=headers,
            content=body,
            request=request,
            extensions={"http_version": b"HTTP/1.1", "body_cut": not whole},
        )

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

    def _proxy(self) -> dict[str, Any]:
        if self.proxy is None:
            return {}
        auth = self.proxy.auth
        return {
            "proxy": str(self.proxy.url),
            "proxy_auth": aiohttp.BasicAuth(auth[0], auth[1]) if auth else None,
            "proxy_headers": self.proxy.headers,
        }


async def _read(content: aiohttp.StreamReader, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes of the body, and whether that was all of it."""
    kept = bytearray()
    while len(kept) < limit:
        chunk = await content.read(limit - len(kept))
        if not chunk:
            return bytes(kept), True
        kept += chunk
    return bytes(kept), content.at_eof()
