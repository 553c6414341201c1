"""S9's peer: the Quix Streams 3.28 application a Python user would write instead of the relay to
move pre-mapped Caliper JSON from a topic to the Partner API (``POST /events/1.0``).

Runs in its own environment (bench/quix/.venv, ``make bench-quix``), never imports the relay:

    bench/quix/.venv/bin/python bench/quix/peer.py --brokers B --topic T --group G --url URL \
        [--in-flight 64] [--client asyncio|threads] [--commit-every 1000] [--commit-interval 5]

Client credentials come from BENCH_CLIENT_ID / BENCH_CLIENT_SECRET; the token is fetched once
(client_credentials, Basic), as the other peers do.

At-least-once the way Quix Streams does it: a ``BatchingSink`` collects each partition's records
between checkpoints; at a checkpoint the application calls ``flush``, which hands each
partition's batch to ``write`` in turn, and commits the offsets only after every ``write``
returned. ``write`` POSTs the batch's events ``--in-flight`` at a time: with ``--client
asyncio`` (the default, S9's headline) as coroutines over one aiohttp session on an event loop
the sink runs during the write; with ``--client threads`` on a thread pool over one httpx client
(the way Quix's own uploading sinks write in parallel; S9's side figure: it costs several times
the CPU per event). A POST that meets a 429, a 5xx or a transport error is tried again a few
times, and if it still fails the sink raises ``SinkBackpressureError``: Quix drops the batches,
pauses every assigned partition for ``retry_after`` seconds and seeks them back to the
checkpoint's start, so the whole checkpoint is read and POSTed again (events already accepted
are sent twice: at-least-once). Any other 4xx is logged and skipped (this peer has no
dead-letter topic; the Go sink never rejects). The checkpoint size follows the Quix docs'
example: ``commit_interval=5.0, commit_every=1000``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import tempfile
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import httpx
from quixstreams import Application
from quixstreams.sinks import BatchingSink, SinkBackpressureError, SinkBatch

logger = logging.getLogger("quix-peer")

ATTEMPTS = 4  # tries of one POST inside a write before the sink reports backpressure
FIRST_BACKOFF = 0.05  # seconds before the second try; doubled after each
DEFAULT_RETRY_AFTER = 1.0  # pause when the API names none (Retry-After)
CREDENTIALS = ("BENCH_CLIENT_ID", "BENCH_CLIENT_SECRET")


@dataclass(frozen=True)
class Outcome:
    """One event's fate in a write: accepted, refused for good (a 4xx), or still failing."""

    status: int | None  # None: no answer (transport error)
    retry_after: float | None = None

    @property
    def accepted(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def transient(self) -> bool:
        return self.status is None or self.status == 429 or self.status >= 500


class PartnerApiSink(BatchingSink):
    """POSTs every record's value, as it is, to ``{base}/events/1.0``, ``in_flight`` at a time,
    on threads (httpx) or, with ``client="asyncio"``, on an event loop of its own (aiohttp)."""

    def __init__(
        self, base: str, in_flight: int, credentials: tuple[str, str], client: str = "asyncio"
    ) -> None:
        super().__init__()
        self.base = base.rstrip("/")
        self.in_flight = in_flight
        self.client = client
        self._credentials = credentials
        self._poster: ThreadPoster | AsyncPoster | None = None
        self.skipped = 0  # events refused with a 4xx other than 429

    def setup(self) -> None:
        reply = httpx.post(f"{self.base}/auth/1.0/token", auth=self._credentials,
                           data={"grant_type": "client_credentials"}, timeout=30)  # fmt: skip
        token = reply.json().get("access_token") if reply.is_success else None
        if not token:
            raise RuntimeError(f"token endpoint answered {reply.status_code} without a token")
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        kind = AsyncPoster if self.client == "asyncio" else ThreadPoster
        self._poster = kind(f"{self.base}/events/1.0", headers, self.in_flight)

    def write(self, batch: SinkBatch) -> None:
        assert self._poster is not None, "write before setup"
        outcomes = self._poster.post_all([item.value for item in batch])
        failing = [o for o in outcomes if o.transient]
        if failing:
            waits = [o.retry_after for o in failing if o.retry_after is not None]
            retry_after = max(waits, default=DEFAULT_RETRY_AFTER)
            logger.warning("%d of %d events of %s[%d] not accepted: pausing %.1fs",
                           len(failing), batch.size, batch.topic, batch.partition,
                           retry_after)  # fmt: skip
            raise SinkBackpressureError(retry_after=retry_after)
        refused = sum(1 for o in outcomes if not o.accepted)
        if refused:
            self.skipped += refused
            logger.error("%d events of %s[%d] rejected by the API (4xx), skipped",
                         refused, batch.topic, batch.partition)  # fmt: skip


class ThreadPoster:
    """A pool of ``in_flight`` threads over one httpx client (the way Quix's own uploading sinks
    write in parallel)."""

    def __init__(self, url: str, headers: dict[str, str], in_flight: int) -> None:
        self.url, self.headers = url, headers
        limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
        self._client = httpx.Client(limits=limits, timeout=30.0)
        self._pool = ThreadPoolExecutor(in_flight, thread_name_prefix="post")

    def post_all(self, bodies: list[bytes]) -> list[Outcome]:
        return list(self._pool.map(self._post, bodies))

    def _post(self, body: bytes) -> Outcome:
        """One event, tried up to ``ATTEMPTS`` times while the failure is transient."""
        backoff, outcome = FIRST_BACKOFF, Outcome(None)
        for attempt in range(ATTEMPTS):
            if attempt:
                time.sleep(backoff)
                backoff *= 2
            try:
                reply = self._client.post(self.url, content=body, headers=self.headers)
            except httpx.TransportError:
                outcome = Outcome(None)
                continue
            outcome = Outcome(reply.status_code, _retry_after(reply.headers))
            if not outcome.transient:
                break
        return outcome


class AsyncPoster:
    """``in_flight`` coroutines at a time over one aiohttp session, on an event loop that the
    sink runs for the length of each write (Quix calls sinks synchronously)."""

    def __init__(self, url: str, headers: dict[str, str], in_flight: int) -> None:
        self.url, self.headers, self.in_flight = url, headers, in_flight
        self._loop = asyncio.new_event_loop()
        self._session: aiohttp.ClientSession | None = None

    def post_all(self, bodies: list[bytes]) -> list[Outcome]:
        return self._loop.run_until_complete(self._all(bodies))

    async def _all(self, bodies: list[bytes]) -> list[Outcome]:
        if self._session is None:  # made inside the loop that uses it
            connector = aiohttp.TCPConnector(limit=self.in_flight)
            timeout = aiohttp.ClientTimeout(total=30)
            self._session = aiohttp.ClientSession(connector=connector, timeout=timeout)
        gate = asyncio.Semaphore(self.in_flight)
        return list(await asyncio.gather(*(self._post(body, gate) for body in bodies)))

    async def _post(self, body: bytes, gate: asyncio.Semaphore) -> Outcome:
        assert self._session is not None
        backoff, outcome = FIRST_BACKOFF, Outcome(None)
        async with gate:
            for attempt in range(ATTEMPTS):
                if attempt:
                    await asyncio.sleep(backoff)
                    backoff *= 2
                try:
                    async with self._session.post(self.url, data=body,
                                                  headers=self.headers) as reply:  # fmt: skip
                        await reply.read()
                        outcome = Outcome(reply.status, _retry_after(reply.headers))
                except (aiohttp.ClientError, TimeoutError):
                    outcome = Outcome(None)
                    continue
                if not outcome.transient:
                    break
        return outcome


def _retry_after(headers: Mapping[str, str]) -> float | None:
    try:
        return float(headers["Retry-After"])
    except (KeyError, ValueError):
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brokers", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--url", required=True, help="Partner API base URL")
    parser.add_argument("--in-flight", type=int, default=64, help="POSTs at a time (threads)")
    parser.add_argument("--commit-every", type=int, default=1000, help="records per checkpoint")
    parser.add_argument("--commit-interval", type=float, default=5.0, help="seconds")
    parser.add_argument("--client", choices=["asyncio", "threads"], default="asyncio",
                        help="asyncio: aiohttp coroutines; threads: httpx on threads")  # fmt: skip
    args = parser.parse_args()
    missing = [name for name in CREDENTIALS if not os.environ.get(name)]
    if missing:
        parser.error(f"set {' and '.join(missing)} (the Partner API's client credentials)")
    client_id, client_secret = (os.environ[name] for name in CREDENTIALS)
    with tempfile.TemporaryDirectory(prefix="quix-peer-state-") as state:
        run(args, (client_id, client_secret), Path(state))


def run(args: argparse.Namespace, credentials: tuple[str, str], state: Path) -> None:
    """The app; ``state``: its state directory (Quix makes one even for a stateless app, by
    default in the working directory)."""
    app = Application(
        broker_address=args.brokers,
        state_dir=state,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        processing_guarantee="at-least-once",
        commit_interval=args.commit_interval,
        commit_every=args.commit_every,
        loglevel="WARNING",
    )
    topic = app.topic(args.topic, key_deserializer="bytes", value_deserializer="bytes")
    app.dataframe(topic).sink(PartnerApiSink(args.url, args.in_flight, credentials, args.client))
    app.run()  # until SIGTERM: Quix stops, flushes the sink and commits the last checkpoint


if __name__ == "__main__":
    main()
