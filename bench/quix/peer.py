"""S9's peer: the Quix Streams 3.28 application a Python user would write instead of the relay to
move pre-mapped Caliper JSON from a topic to the Partner API (``POST /events/1.0``).

Runs in its own environment (bench/quix/.venv, ``make bench-quix``), never imports the relay:

    bench/quix/.venv/bin/python bench/quix/peer.py --brokers B --topic T --group G --url URL \
        [--in-flight 64] [--commit-every 1000] [--commit-interval 5]

Client credentials come from BENCH_CLIENT_ID / BENCH_CLIENT_SECRET; the token is fetched once
(client_credentials, Basic), as the other peers do.

At-least-once the way Quix Streams does it: a ``BatchingSink`` collects each partition's records
between checkpoints; at a checkpoint the application calls ``flush``, which hands each
partition's batch to ``write`` in turn, and commits the offsets only after every ``write``
returned. ``write`` POSTs the batch's events on a pool of ``--in-flight`` threads over one httpx
client (Quix's own uploading sinks use a thread pool the same way); a POST that meets a 429, a
5xx or a transport error is tried again a few times, and if it still fails the sink raises
``SinkBackpressureError``: Quix drops the batches, pauses every assigned partition for
``retry_after`` seconds and seeks them back to the checkpoint's start, so the whole checkpoint
is read and POSTed again (events already accepted are sent twice: at-least-once). Any other 4xx
is logged and skipped (this peer has no dead-letter topic; the Go sink never rejects). The
checkpoint size follows the Quix docs' example: ``commit_interval=5.0, commit_every=1000``.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

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
    """POSTs every record's value, as it is, to ``{base}/events/1.0``, ``in_flight`` at a time."""

    def __init__(self, base: str, in_flight: int, client_id: str, client_secret: str) -> None:
        super().__init__()
        self.base = base.rstrip("/")
        self.in_flight = in_flight
        self._credentials = (client_id, client_secret)
        self._client: httpx.Client | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._headers: dict[str, str] = {}
        self.skipped = 0  # events refused with a 4xx other than 429

    def setup(self) -> None:
        limits = httpx.Limits(max_connections=self.in_flight,
                              max_keepalive_connections=self.in_flight)  # fmt: skip
        self._client = httpx.Client(limits=limits, timeout=30.0)
        self._pool = ThreadPoolExecutor(self.in_flight, thread_name_prefix="post")
        reply = self._client.post(f"{self.base}/auth/1.0/token",
                                  data={"grant_type": "client_credentials"},
                                  auth=self._credentials)  # fmt: skip
        token = reply.json().get("access_token") if reply.is_success else None
        if not token:
            raise RuntimeError(f"token endpoint answered {reply.status_code} without a token")
        self._headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def write(self, batch: SinkBatch) -> None:
        assert self._pool is not None, "write before setup"
        outcomes = list(self._pool.map(self._post, (item.value for item in batch)))
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

    def _post(self, body: bytes) -> Outcome:
        """One event, tried up to ``ATTEMPTS`` times while the failure is transient."""
        assert self._client is not None
        backoff = FIRST_BACKOFF
        outcome = Outcome(None)
        for attempt in range(ATTEMPTS):
            if attempt:
                time.sleep(backoff)
                backoff *= 2
            try:
                reply = self._client.post(f"{self.base}/events/1.0", content=body,
                                          headers=self._headers)  # fmt: skip
            except httpx.TransportError:
                outcome = Outcome(None)
                continue
            outcome = Outcome(reply.status_code, _retry_after(reply))
            if not outcome.transient:
                break
        return outcome


def _retry_after(reply: httpx.Response) -> float | None:
    try:
        return float(reply.headers["Retry-After"])
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
    args = parser.parse_args()
    missing = [name for name in CREDENTIALS if not os.environ.get(name)]
    if missing:
        parser.error(f"set {' and '.join(missing)} (the Partner API's client credentials)")
    client_id, client_secret = (os.environ[name] for name in CREDENTIALS)
    with tempfile.TemporaryDirectory(prefix="quix-peer-state-") as state:
        run(args, client_id, client_secret, Path(state))


def run(args: argparse.Namespace, client_id: str, client_secret: str, state: Path) -> None:
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
    app.dataframe(topic).sink(PartnerApiSink(args.url, args.in_flight, client_id, client_secret))
    app.run()  # until SIGTERM: Quix stops, flushes the sink and commits the last checkpoint


if __name__ == "__main__":
    main()
