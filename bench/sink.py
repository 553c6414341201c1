"""The sink's capacity: a bare httpx loop POSTing pre-built events at a fixed concurrency.

No Kafka, no decoding, no mapping, no retries, no metrics: ``concurrency`` tasks share one
``httpx.AsyncClient`` (pool sized like the relay's), one bearer token, and a list of serialized
Caliper events built beforehand. What it reaches is what the sandbox (and an httpx client on one
core) can take at that concurrency: the ceiling the relay is compared with. ``go_load_rate`` is
the compiled client (bench/go) measuring the Go sink's own capacity.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import tempfile
import time
from dataclasses import dataclass

import httpx

from bench.common import CLIENT_ID, CLIENT_SECRET
from bench.gobuild import binary
from relay.timeback.transport import basic_credentials


@dataclass(frozen=True)
class SinkRun:
    events: int
    seconds: float
    errors: int

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    def summary(self) -> dict[str, float]:
        return {"events_per_s": round(self.rate, 1), "events": self.events,
                "seconds": round(self.seconds, 2), "errors": self.errors}  # fmt: skip


def sink_rate(
    url: str, events: list[bytes], concurrency: int, seconds: float, client: str = "httpx"
) -> SinkRun:
    """``client="aiohttp"``: the same loop over an aiohttp session, a second opinion on the
    sink's capacity (it shows how much of the httpx figure is the client's own cost)."""
    loop = _sink if client == "httpx" else _aiohttp_sink
    return asyncio.run(loop(url, events, concurrency, seconds))


async def _sink(url: str, events: list[bytes], concurrency: int, seconds: float) -> SinkRun:
    size = concurrency + 1
    limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as http:
        reply = await http.post(
            "/auth/1.0/token",
            data={"grant_type": "client_credentials"},
            auth=(CLIENT_ID, CLIENT_SECRET),
        )
        reply.raise_for_status()
        headers = {
            "Authorization": f"Bearer {reply.json()['access_token']}",
            "Content-Type": "application/json",
        }
        position, done, errors = 0, 0, 0
        stop_at = 0.0

        async def worker() -> None:
            nonlocal position, done, errors
            while time.perf_counter() < stop_at:
                body = events[position % len(events)]
                position += 1
                response = await http.post("/events/1.0", content=body, headers=headers)
                if 200 <= response.status_code < 300:
                    done += 1
                else:
                    errors += 1

        # a short warm-up opens the pool's connections before the clock starts
        stop_at = time.perf_counter() + 0.5
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        done = errors = 0
        start = time.perf_counter()
        stop_at = start + seconds
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return SinkRun(done, time.perf_counter() - start, errors)


async def _aiohttp_sink(url: str, events: list[bytes], concurrency: int, seconds: float) -> SinkRun:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=concurrency + 1)
    async with aiohttp.ClientSession(url, connector=connector) as http:
        token_form = {"grant_type": "client_credentials"}
        # the header itself: aiohttp.BasicAuth and ``auth=`` are deprecated since aiohttp 3.14
        auth = {"Authorization": basic_credentials(CLIENT_ID, CLIENT_SECRET)}
        async with http.post("/auth/1.0/token", data=token_form, headers=auth) as reply:
            reply.raise_for_status()
            token = (await reply.json())["access_token"]
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        position, done, errors = 0, 0, 0
        stop_at = 0.0

        async def worker() -> None:
            nonlocal position, done, errors
            while time.perf_counter() < stop_at:
                body = events[position % len(events)]
                position += 1
                async with http.post("/events/1.0", data=body, headers=headers) as response:
                    await response.read()
                    if 200 <= response.status < 300:
                        done += 1
                    else:
                        errors += 1

        stop_at = time.perf_counter() + 0.5
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        done = errors = 0
        start = time.perf_counter()
        stop_at = start + seconds
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return SinkRun(done, time.perf_counter() - start, errors)


def go_load_rate(url: str, body: bytes, concurrency: int, seconds: float) -> SinkRun:
    """The Go load client (``benchgo load``) POSTing ``body`` to ``url``/events/1.0: the sink's
    own capacity, as a client that costs next to nothing sees it (it shares the cores, too)."""
    with tempfile.NamedTemporaryFile(prefix="bench-event-", suffix=".json") as event:
        event.write(body)
        event.flush()
        argv = [str(binary()), "load", "-url", f"{url}/events/1.0", "-body", event.name,
                "-concurrency", str(concurrency), "-seconds", str(seconds)]  # fmt: skip
        done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        raise RuntimeError(f"benchgo load failed: {done.stderr[-500:]}")
    figures = json.loads(done.stdout)
    return SinkRun(int(figures["events"]), float(figures["seconds"]), int(figures["errors"]))
