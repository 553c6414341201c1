"""An answer read and capped: what every exchange of the client hands back (``transport``'s
aiohttp exchange, ``wire``'s own connections), and the limits of what is kept of a body.

``Answer`` is all the client needs of a 2xx (its status and body); ``Answer.response`` and
``read_response`` make any other answer the ``httpx.Response`` the error paths read, already
read (``ReadResponse``), with ``extensions["body_cut"]`` saying whether the body was cut.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import httpx

BODY_LIMIT: Final = 2048  # bytes of a response body kept on a rejection (DLQ header)
# Bytes of a successful answer read (rostering pages, tokens, event acknowledgements are far
# smaller); a longer one is cut, so its JSON fails to parse like any malformed answer.
ANSWER_LIMIT: Final = 4 << 20

# the body is handed back decoded: drop the headers that describe the encoded one
ENCODING_HEADERS: Final = frozenset({b"content-encoding", b"content-length", b"transfer-encoding"})
READ: Final = "body_cut"  # the extension of a response read (and perhaps cut) already


def body_limit(status: int) -> int:
    """Bytes of an answer's body kept: ``BODY_LIMIT`` of an error, ``ANSWER_LIMIT`` of a success."""
    return ANSWER_LIMIT if 200 <= status < 300 else BODY_LIMIT


class Answer:
    """An answer read (and perhaps cut) by the exchange: all the client needs of a 2xx
    (``status_code``, ``content``); ``response`` makes it the ``httpx.Response`` every other
    answer is read as."""

    __slots__ = ("content", "cut", "raw_headers", "status_code")

    def __init__(
        self, status: int, raw_headers: Iterable[tuple[bytes, bytes]], body: bytes, *, cut: bool
    ) -> None:
        self.status_code = status
        self.raw_headers = raw_headers
        self.content = body
        self.cut = cut

    def response(self, request: httpx.Request) -> httpx.Response:
        return read_response(
            self.status_code, self.raw_headers, self.content, request, cut=self.cut
        )


class ReadResponse(httpx.Response):
    """An ``httpx.Response`` whose body the transport read already: made from a byte stream with
    its content set, the state ``Response.read()`` leaves. ``Response(content=...)`` reaches
    the same state through httpx's encoding, decoding and chunking layers, which cost ten times
    this for the relay's small answers (bench/NOTES-client.md)."""

    def __init__(
        self,
        status: int,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        request: httpx.Request,
        extensions: dict[str, Any],
    ) -> None:
        super().__init__(
            status,
            headers=headers,
            stream=httpx.ByteStream(body),
            request=request,
            extensions=extensions,
        )
        self._content = body  # what ``read()`` caches: the whole (decoded, capped) body


def read_response(
    status: int,
    headers: Iterable[tuple[bytes, bytes]],
    body: bytes,
    request: httpx.Request,
    *,
    cut: bool,
) -> httpx.Response:
    kept = [(k, v) for k, v in headers if k.lower() not in ENCODING_HEADERS]
    kept.append((b"Content-Length", b"%d" % len(body)))  # of the body as handed back
    return ReadResponse(status, kept, body, request, {"http_version": b"HTTP/1.1", READ: cut})
