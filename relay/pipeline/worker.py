"""The faust adapter of the relay: its topics, its one agent, rebalances, shutdown, ``relay run``.

One agent, ``concurrency=1``, reads with ``noack()``; the Runtime's dispatcher runs up to
RELAY_MAX_IN_FLIGHT records at once and acknowledges each partition's records strictly in offset
order, so faust only ever sees contiguous acks from the relay (faust #606 cannot bite). faust
acknowledges records it skips on its own, so the ``CommitGuard`` bounds each commit by the
relay's acknowledgements (commit_guard.py). While it runs, ``AuthWatch`` logs in to Kafka afresh
now and then: credentials refused for RELAY_KAFKA_LOGIN_GRACE make the relay drain and exit 1
(auth_watch.py). On revocation the
in-flight work of the revoked partitions is cancelled, unacknowledged; on SIGTERM the relay stops
admitting and drains for RELAY_SHUTDOWN_GRACE seconds before faust commits and stops. The web
views (/metrics, /livez, /readyz) are ``relay.pipeline.web``'s.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

import click
import faust
from faust.types import TP

from relay import __version__
from relay.config import Settings, load_settings
from relay.errors import ConfigError
from relay.health import Condition
from relay.kafka.login import await_login
from relay.kafka.settings import describe
from relay.logs import configure, trace_crashes
from relay.metrics import ASSIGNED_PARTITIONS, REBALANCES, REGISTRY
from relay.pipeline import conductor, faust_sensor, fetch_loop, stream_buffer, stream_pace, web
from relay.pipeline.acks import acknowledge
from relay.pipeline.auth_watch import AuthWatch
from relay.pipeline.backpressure import FetchGate
from relay.pipeline.commit_guard import CommitGuard
from relay.pipeline.faust_config import broker_urls, faust_credentials
from relay.pipeline.record import SourceRecord
from relay.pipeline.runtime import Runtime

log = logging.getLogger(__name__)
LAG_EVERY = 5.0  # seconds between consumer-lag updates
GATE_EVERY = 0.2  # seconds between checks whether reading, paused at the byte bound, may resume
COMMIT_WITHIN = 10.0  # seconds the last commit may take on the way out
STOP_WITHIN = 30.0  # seconds faust may take to stop after the drain when Kafka refuses the relay


def create_app(settings: Settings) -> tuple[faust.App, Runtime]:
    app = faust.App(
        settings.group_id,
        broker=broker_urls(settings),
        broker_credentials=faust_credentials(settings),
        consumer_group_instance_id=settings.group_instance_id,  # static membership
        **_canonical_url(settings),
        store="memory://",
        autodiscover=False,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        stream_wait_empty=False,  # in-flight work is ours to cancel on revocation
        broker_commit_interval=1.0,
        **_session(settings),
        stream_buffer_maxsize=max(4096, settings.pending_limit),
        # the agent's stream takes a buffered event at once instead of awaiting the channel for
        # each (faust's compiled iterator, repaired and opt-in in 0.15.3; the Python one does so)
        cython_optimizations=True,
        web_enabled=True,
        web_port=settings.web_port,
        web_bind=settings.web_host,
        web_router_enabled=False,
        web_tables_enabled=False,
        web_graph_enabled=False,
        web_stats_enabled=False,
    )
    fetch_loop.install(app)  # faust's fetch loop without four tasks per message
    conductor.install(app)  # and its hand-over to the agent's stream without per-message waits
    stream_buffer.install(app)  # the stream's buffer with its per-message calls flattened
    stream_pace.install()  # the stream yields to the loop once per few events, not per event
    if settings.faust_metrics:
        # faust's own sensor (messages, commits, rebalances) joins our registry under faust_*;
        # its page is a duplicate of /metrics, so it is mounted out of the way.
        faust_sensor.install(app, REGISTRY, pattern="/faust/metrics", prefix="faust")
    guard = CommitGuard()
    runtime = Runtime(settings, ack=_acknowledger(app, guard))
    source = app.topic(
        *settings.topics,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )

    gate = FetchGate(app)

    @app.timer(GATE_EVERY)
    async def reopen_fetching() -> None:  # the agent waits for records while reading is paused
        gate.update(runtime.dispatcher)

    @app.agent(source, concurrency=1)
    async def relay(stream: faust.StreamT[bytes]) -> None:
        # Stream.events() without its async generator around the stream's: the same test of
        # the event the stream is on (None for a value that is not an event)
        events = stream.noack()  # type: ignore[attr-defined]
        async for _ in events:
            event = events.current_event
            if event is not None:
                await runtime.submit(_source_record(event))
                gate.update(runtime.dispatcher)

    # faust sends the partitions positionally: handler(app, partitions, signal=...)
    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def on_revoked(sender: Any, revoked: set[TP], **_: Any) -> None:
        await runtime.revoke((tp.topic, tp.partition) for tp in revoked)
        guard.revoked(revoked)  # after: the revoked work can no longer acknowledge
        web.forget_lag(revoked)

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def on_assigned(sender: Any, assigned: set[TP], **_: Any) -> None:
        guard.install(app.consumer)  # before the first acknowledgement, hence the first commit
        runtime.health.report(
            Condition.ASSIGNED, bool(assigned), "no partitions assigned", source="consumer"
        )
        ASSIGNED_PARTITIONS.set(len(assigned))
        REBALANCES.inc()
        log.info("assigned %d partitions", len(assigned))

    @app.task
    async def start_runtime() -> None:
        await runtime.start()  # HTTP pool, producer, first token: ready before any record

    @app.timer(LAG_EVERY)
    async def update_lag() -> None:
        web.update_lag(app)

    web.mount(app, runtime.health)
    return app, runtime


def _acknowledger(app: faust.App, guard: CommitGuard) -> Callable[[Any], None]:
    """Acknowledge a faust event (and raise the guard's watermark): ``event.ack()`` in one step
    (acks.py). A noack stream skips faust's own bookkeeping of the message leaving, so its
    sensor (faust_active_messages) is told here."""

    def ack(event: Any) -> None:
        message = event.message
        guard.acknowledged(message.tp, message.offset)
        if acknowledge(app.consumer, message):  # the last reference: now committable
            app.sensors.on_message_out(message.tp, message.offset, message)

    return ack


def _canonical_url(settings: Settings) -> dict[str, Any]:
    """A static member is handed back its previous assignment, and faust's assignor asserts that
    the assignment's worker URL is its own: one derived from the web host and port would change
    across restarts (a new port, a new pod IP) and wedge the consumer. Tie it to the member id."""
    if settings.group_instance_id is None:
        return {}
    return {"canonical_url": f"http://{settings.group_instance_id}"}


def _session(settings: Settings) -> dict[str, Any]:
    """The group session (RELAY_KAFKA_SESSION_TIMEOUT, _HEARTBEAT_INTERVAL, _REBALANCE_TIMEOUT)
    instead of faust's 60 s / 3 s / 60 s: a SIGKILLed member holds its partitions until its
    session expires, and a restarted one's join waits for that (min of session and rebalance)."""
    return {
        "broker_session_timeout": settings.kafka_session_timeout,
        "broker_heartbeat_interval": settings.heartbeat_interval,
        "broker_rebalance_timeout": settings.kafka_rebalance_timeout,
    }


def _source_record(event: Any) -> SourceRecord:
    message = event.message
    return SourceRecord(  # positionally (topic, partition, offset, timestamp, key, value,
        message.topic,  # headers, handle): a named tuple's keywords cost as much again
        message.partition,
        message.offset,
        message.timestamp,
        message.key,
        message.value or b"",
        tuple(message.headers or ()),  # aiokafka's is a tuple already: not copied
        event,
    )


class RelayWorker(faust.Worker):
    """faust's worker, with a drain before the stop: in-flight records get RELAY_SHUTDOWN_GRACE
    seconds to finish and be acknowledged, so their offsets are committed on the way out."""

    def __init__(self, app: faust.App, runtime: Runtime, grace: float, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.runtime, self.grace = runtime, grace

    async def _stop_on_signal(self, sig: signal.Signals) -> None:
        log.info("%s: draining in-flight records for up to %.0f s", sig.name, self.grace)
        await self.runtime.drain(self.grace)
        try:  # a broker that refuses or does not answer would hold the commit forever
            await asyncio.wait_for(self.app.commit(None), COMMIT_WITHIN)  # type: ignore[attr-defined]
        except TimeoutError:
            log.warning("the last commit took over %.0f s: left undone (read again)", COMMIT_WITHIN)
        await self.runtime.close()
        await super()._stop_on_signal(sig)

    def exit_failed(self, why: str) -> None:
        """Drain and stop as on SIGTERM (``run_command`` then exits 1). faust's stop can wait
        on brokers that refuse the relay: after the drain and STOP_WITHIN seconds more the
        process exits 1 regardless (nothing unfinished was acknowledged)."""
        self._schedule_shutdown(signal.SIGTERM)
        deadline = threading.Timer(self.grace + STOP_WITHIN, _exit_now, args=(why,))
        deadline.daemon = True
        deadline.start()


def _exit_now(why: str) -> None:
    log.critical("the relay did not stop within its bound: exiting 1 now (%s)", why)
    logging.shutdown()
    os._exit(1)


@click.command(name="run")
def run_command() -> None:
    """Consume RELAY_TOPICS and deliver Caliper events to the Partner API until stopped."""
    trace_crashes()
    try:
        settings = load_settings()
        settings.require("client_id", "client_secret", "app_id")
        if not settings.activity_base_url:
            log.info("RELAY_ACTIVITY_BASE_URL unset: activity ids must be absolute IRIs")
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    configure(settings.log_level)
    await_login(settings)  # a refused login: up and not ready, saying why, then exit 1
    app, runtime = create_app(settings)
    watch = AuthWatch(settings, runtime.health)

    @app.task
    async def watch_kafka_login() -> None:
        await watch.run()

    log.info(
        "timeback-relay %s: %s -> %s, group %s, kafka %s",
        __version__,
        ",".join(settings.topics),
        settings.api_base_url,
        settings.group_id,
        describe(settings),
    )
    worker = RelayWorker(
        app,
        runtime,
        settings.shutdown_grace,
        loglevel=settings.log_level,
        override_logging=False,
        quiet=True,
        redirect_stdouts=False,
    )
    watch.on_lost = worker.exit_failed
    try:
        worker.execute_from_commandline()
    except SystemExit as done:
        if watch.lost is not None and not done.code:
            raise SystemExit(1) from None  # the brokers refused the relay's credentials
        raise


if __name__ == "__main__":
    sys.exit(run_command())
