"""CPU per request of the relay's HTTP layers alone, against the compiled Go sink.

    python -m bench.client_bench [requests]

One process, 64 requests in flight, the same ~1 KB event each time, no Kafka and no mapping:
``EventSink.send`` through the ``Deliverer`` (what the pipeline calls per record: retry,
breaker, failure rate, evidence), ``TimeBackClient.send_event`` as the relay sends it (the
events lane, ``transport.Lane``), the same without the lane (an ``httpx.Request`` and
``httpx.Response`` per event, the path any other transport takes), the same client through
``AsyncClient.build_request`` + ``send(stream=True)`` + a capped copy (the path before
relay/timeback/transport.py), and a bare aiohttp loop (what the HTTP work costs without httpx).
Each is measured in the same run, after a warm-up; the figure is this process's CPU (user +
system) per request.
"""

from __future__ import annotations

import asyncio
import resource
import sys
import time
from collections.abc import Awaitable, Callable

import aiohttp
import httpx
from httpx_aiohttp import HttpxAiohttpClient
from pydantic import SecretStr

from bench.procs import GoSink
from relay.resilience import Attempts, Backoff, CircuitBreaker
from relay.timeback.client import ClientConfig, TimeBackClient
from relay.timeback.delivery import Deliverer
from relay.timeback.sink import EventSink
from relay.timeback.transport import read_capped

IN_FLIGHT = 64
EVENT = b'{"id":"urn:uuid:0","type":"ViewEvent","pad":"' + b"a" * 900 + b'"}'
JSON = {"Content-Type": "application/json", "Authorization": "Bearer t"}


class _Event:
    type = "ViewEvent"
    payload = EVENT


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _measure(send: Callable[[], Awaitable[object]], requests: int) -> float:
    """Microseconds of CPU per request at IN_FLIGHT concurrent requests."""
    for _ in range(300):  # warm-up: the pool's connections open before the clock starts
        await send()
    left = requests

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await send()

    start = _cpu()
    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
    return (_cpu() - start) / requests * 1e6


async def _run(url: str, requests: int) -> dict[str, float]:
    figures: dict[str, float] = {}
    config = ClientConfig(url, "bench", SecretStr("bench"), max_in_flight=IN_FLIGHT)
    async with TimeBackClient(config) as client:
        sink = EventSink(Deliverer(client, CircuitBreaker(5, 10.0), Backoff(0.5, 30), 60.0, 300.0))
        figures["EventSink.send (Deliverer, send_event)"] = await _measure(
            lambda: sink.send([_Event()], Attempts()), requests
        )
        figures["TimeBackClient.send_event"] = await _measure(
            lambda: client.send_event(EVENT, event_type="ViewEvent"), requests
        )
        client._lane = None  # the httpx request and response, as another transport gets them
        figures["send_event without the lane"] = await _measure(
            lambda: client.send_event(EVENT, event_type="ViewEvent"), requests
        )
    limits = httpx.Limits(max_connections=IN_FLIGHT + 1, max_keepalive_connections=IN_FLIGHT + 1)
    async with HttpxAiohttpClient(base_url=url, limits=limits) as http:

        async def via_client() -> object:
            request = http.build_request("POST", "/events/1.0", content=EVENT, headers=JSON)
            return await read_capped(await http.send(request, stream=True))

        figures["AsyncClient.build_request + send + capped copy"] = await _measure(
            via_client, requests
        )
    connector = aiohttp.TCPConnector(limit=IN_FLIGHT + 1)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def bare() -> object:
            async with session.post(f"{url}/events/1.0", data=EVENT, headers=JSON) as answer:
                return await answer.read()

        figures["bare aiohttp"] = await _measure(bare, requests)
    return figures


def main(argv: list[str]) -> dict[str, float]:
    requests = int(argv[0]) if argv else 6_000
    sink = GoSink("client-bench")
    try:
        started = time.perf_counter()
        figures = asyncio.run(_run(sink.url, requests))
    finally:
        sink.stop()
    base = figures["TimeBackClient.send_event"]
    print(f"{'client':<48}{'us CPU/request':>16}{'vs the relay':>14}")
    for name, us in figures.items():
        print(f"{name:<48}{us:>16.0f}{us / base:>14.2f}")
    seconds = time.perf_counter() - started
    print(f"({requests:,} requests each, {IN_FLIGHT} in flight, {seconds:.0f} s)")
    return figures


if __name__ == "__main__":
    main(sys.argv[1:])
