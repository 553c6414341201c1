"""``relay run`` with a candidate hot-path fix applied in memory: measure a fix before making it.

    python -m bench.variants VARIANT run      # instead of python -m relay.cli run

The relay's code is not edited: the patch is applied before ``relay.cli`` starts, so the same
backlog can be drained by the relay as it is and by the relay with the fix, side by side
(``python -m bench --variants``). Variants:

- ``sniffio``: what installing ``sniffio`` does. httpcore 1.0.9 runs ``import sniffio`` each time
  it sets up an async lock or event (several per request); with sniffio absent (anyio 4.16 no
  longer pulls it in) every one of those is a failed import that searches sys.path. Marking the
  module absent in ``sys.modules`` makes that import fail at once, as installing it makes it
  succeed at once.
- ``aiohttp``: the TimeBackClient's httpx.AsyncClient over an aiohttp connector (an httpx
  transport; aiohttp is already a dependency, the sandbox uses it), instead of httpcore's pool,
  whose request assignment scans every connection for every queued request.
- ``sharded``: still httpcore, but 16 small pools used in turn instead of one pool of
  in-flight + 1 connections, so each scan is over a few connections.
- ``window``: the dispatcher's window counts records being *processed* (at most
  RELAY_MAX_IN_FLIGHT) instead of records admitted and not yet acknowledged; admitted records
  are still capped, at 4x, to bound memory. Today a record that is done but waits for an earlier
  offset of its partition to be acknowledged, or waits behind its student's previous record,
  holds a slot without using the API.

Variants combine with ``+`` (``aiohttp+window``).
"""

from __future__ import annotations

import sys
from typing import Any

import httpx

VARIANTS = ("sniffio", "aiohttp", "sharded", "window")
ADMITTED = 4  # the window variant's cap on admitted records, in multiples of the in-flight limit
SHARDS = 16


class AiohttpTransport(httpx.AsyncBaseTransport):
    """httpx requests sent through one ``aiohttp.ClientSession`` (connection pool of ``limit``)."""

    def __init__(self, limit: int, timeout: float) -> None:
        self.limit, self.timeout = limit, timeout
        self._session: Any = None

    def _client(self) -> Any:
        import aiohttp

        if self._session is None:  # created inside the running loop, on first use
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.limit),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Content-Type"),
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        import aiohttp

        try:
            async with self._client().request(
                request.method,
                str(request.url),
                headers=list(request.headers.multi_items()),
                data=await request.aread(),
                allow_redirects=False,
            ) as reply:
                body = await reply.read()
                headers = [(k, v) for k, v in reply.raw_headers]
                return httpx.Response(reply.status, headers=headers, content=body)
        except TimeoutError:  # asyncio.TimeoutError is TimeoutError on 3.11
            raise httpx.ReadTimeout("timed out", request=request) from None
        except aiohttp.ClientConnectionError as exc:
            raise httpx.ConnectError(str(exc), request=request) from None
        except aiohttp.ClientError as exc:
            raise httpx.NetworkError(str(exc), request=request) from None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


class ShardedTransport(httpx.AsyncBaseTransport):
    """Requests spread over ``shards`` httpcore pools in turn (each ``per_shard`` connections)."""

    def __init__(self, shards: int, per_shard: int) -> None:
        limits = httpx.Limits(max_connections=per_shard, max_keepalive_connections=per_shard)
        self._pools = [httpx.AsyncHTTPTransport(limits=limits) for _ in range(shards)]
        self._next = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        pool = self._pools[self._next]
        self._next = (self._next + 1) % len(self._pools)
        return await pool.handle_async_request(request)

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()


def _with_transport(make: Any) -> None:
    """TimeBackClient gets ``make(config)`` as its transport unless one is given."""
    from relay.timeback import client

    original = client.TimeBackClient.__init__

    def init(self: Any, config: Any, *, transport: Any = None, auth: Any = None) -> None:
        original(self, config, transport=transport or make(config), auth=auth)

    client.TimeBackClient.__init__ = init  # type: ignore[method-assign]


def _window_counts_processing() -> None:
    import asyncio

    from relay.pipeline.dispatch import Dispatcher

    original = Dispatcher.__init__

    def init(self: Any, process: Any, ack: Any, *, max_in_flight: int, **kwargs: Any) -> None:
        running = asyncio.Semaphore(max_in_flight)

        async def limited(item: Any) -> None:
            async with running:
                await process(item)

        original(self, limited, ack, max_in_flight=max_in_flight * ADMITTED, **kwargs)

    Dispatcher.__init__ = init  # type: ignore[method-assign]


def apply(variant: str) -> None:
    if variant == "sniffio":
        sys.modules["sniffio"] = None  # type: ignore[assignment]
    elif variant == "aiohttp":
        _with_transport(lambda c: AiohttpTransport(c.max_in_flight + 1, c.timeout))
    elif variant == "sharded":
        _with_transport(lambda c: ShardedTransport(SHARDS, -(-(c.max_in_flight + 1) // SHARDS)))
    elif variant == "window":
        _window_counts_processing()
    else:
        raise SystemExit(f"unknown variant {variant!r}; one of {', '.join(VARIANTS)}")


def main() -> None:
    variant = sys.argv.pop(1)
    for one in variant.split("+"):
        apply(one)
    from relay.cli import main as relay_main

    relay_main()


if __name__ == "__main__":
    main()
