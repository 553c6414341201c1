"""CPU per request of the relay's HTTP layers alone, against the compiled Go sink.

    python -m bench.client_bench [requests] [rounds]

One process, 64 requests in flight, the same ~1 KB event each time, no Kafka and no mapping:
``EventSink.send`` through the ``Deliverer`` (what the pipeline calls per record: retry,
breaker, failure rate, evidence), ``TimeBackClient.send_event`` as the relay sends it (the
events lane on its own connections, ``wire.WireLane``), the same on aiohttp's lane
(``transport.Lane``, RELAY_EVENTS_WIRE=aiohttp), the same without a lane (an ``httpx.Request`` and
``httpx.Response`` per event, the path any other transport takes), the same client through
``AsyncClient.build_request`` + ``send(stream=True)`` + a capped copy (the path before
relay/timeback/transport.py), and a bare aiohttp loop (what the HTTP work costs without httpx).
Each is measured in the same run, after a warm-up, in interleaved rounds (every client once per
round, each round starting with the next client; default 3); the figure is this process's CPU
(user + system) per request, the median of the rounds.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import resource
import statistics
import sys
import time
from collections.abc import Awaitable, Callable

import aiohttp
import httpx
from httpx_aiohttp import HttpxAiohttpClient
from pydantic import SecretStr

from bench.procs import GoSink
from relay.resilience import Attempts, Backoff, CircuitBreaker
from relay.timeback.client import TimeBackClient
from relay.timeback.client_config import ClientConfig
from relay.timeback.delivery import Deliverer
from relay.timeback.sink import EventSink
from relay.timeback.transport import read_capped

IN_FLIGHT = 64
EVENT = b'{"id":"urn:uuid:0","type":"ViewEvent","pad":"' + b"a" * 900 + b'"}'
Send = Callable[[], Awaitable[object]]
JSON = {"Content-Type": "application/json", "Authorization": "Bearer t"}


class _Event:
    type = "ViewEvent"
    payload = EVENT


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _measure(send: Send, requests: int) -> float:
    """Microseconds of CPU per request at IN_FLIGHT concurrent requests (warmed up first, at
    the same concurrency, so every pooled connection is open before the clock starts)."""
    start = _cpu()
    await _in_flight(send, requests)
    return (_cpu() - start) / requests * 1e6


async def _in_flight(send: Send, requests: int) -> None:
    left = requests

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await send()

    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))


async def _run(url: str, requests: int, rounds: int) -> dict[str, list[float]]:
    """Every client measured in turn, ``rounds`` times over: each round's figures side by side."""
    async with contextlib.AsyncExitStack() as stack:
        clients = await _clients(url, stack)
        figures: dict[str, list[float]] = {name: [] for name in clients}
        for send in clients.values():  # warm-up at the same concurrency (_measure)
            await _in_flight(send, 5 * IN_FLIGHT)
        names = list(clients)
        for round_ in range(rounds):
            # each round starts with the next client: whichever runs first tends to pay for it
            turn = round_ % len(names)
            for name in names[turn:] + names[:turn]:
                figures[name].append(await _measure(clients[name], requests))
    return figures


async def _clients(url: str, stack: contextlib.AsyncExitStack) -> dict[str, Send]:
    config = ClientConfig(url, "bench", SecretStr("bench"), max_in_flight=IN_FLIGHT)
    client = await stack.enter_async_context(TimeBackClient(config))
    sink = EventSink(Deliverer(client, CircuitBreaker(5, 10.0), Backoff(0.5, 30), 60.0, 300.0))
    aiohttp_lane = await stack.enter_async_context(
        TimeBackClient(dataclasses.replace(config, events_wire="aiohttp"))
    )
    no_lane = await stack.enter_async_context(TimeBackClient(config))
    no_lane._lane = None  # the httpx request and response, as another transport gets them
    limits = httpx.Limits(max_connections=IN_FLIGHT + 1, max_keepalive_connections=IN_FLIGHT + 1)
    http = await stack.enter_async_context(HttpxAiohttpClient(base_url=url, limits=limits))
    connector = aiohttp.TCPConnector(limit=IN_FLIGHT + 1)
    session = await stack.enter_async_context(aiohttp.ClientSession(connector=connector))

    async def via_client() -> object:
        request = http.build_request("POST", "/events/1.0", content=EVENT, headers=JSON)
        return await read_capped(await http.send(request, stream=True))

    async def bare() -> object:
        async with session.post(f"{url}/events/1.0", data=EVENT, headers=JSON) as answer:
            return await answer.read()

    return {
        "EventSink.send (Deliverer, send_event)": lambda: sink.send([_Event()], Attempts()),
        "TimeBackClient.send_event": lambda: client.send_event(EVENT, event_type="ViewEvent"),
        "send_event on aiohttp's lane": lambda: aiohttp_lane.send_event(
            EVENT, event_type="ViewEvent"
        ),
        "send_event without the lane": lambda: no_lane.send_event(EVENT, event_type="ViewEvent"),
        "AsyncClient.build_request + send + capped copy": via_client,
        "bare aiohttp": bare,
    }


def main(argv: list[str]) -> dict[str, float]:
    """Medians over the rounds, µs of CPU per request, by client."""
    requests = int(argv[0]) if argv else 6_000
    rounds = int(argv[1]) if len(argv) > 1 else 3
    sink = GoSink("client-bench")
    try:
        started = time.perf_counter()
        figures = asyncio.run(_run(sink.url, requests, rounds))
    finally:
        sink.stop()
    medians = {name: statistics.median(us) for name, us in figures.items()}
    base = medians["TimeBackClient.send_event"]
    print(f"{'client':<48}{'us CPU/request':>16}{'vs the relay':>14}  rounds")
    for name, us in medians.items():
        each = ", ".join(f"{x:.0f}" for x in figures[name])
        print(f"{name:<48}{us:>16.0f}{us / base:>14.2f}  {each}")
    seconds = time.perf_counter() - started
    print(f"({requests:,} requests each, {IN_FLIGHT} in flight, {rounds} rounds, {seconds:.0f} s)")
    return medians


if __name__ == "__main__":
    main(sys.argv[1:])
