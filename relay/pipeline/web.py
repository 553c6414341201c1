"""The relay's web views on faust's web server: /metrics, /livez, /readyz; and consumer lag.

faust serves them (its web server is already running); what they say comes from the metric
registry and the runtime's ``Health``, which says why when they are red. Lag is read from
faust's consumer: end offset minus committed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

import faust
from faust.types import TP
from prometheus_client import generate_latest

from relay.health import Health
from relay.metrics import CONSUMER_LAG, REGISTRY

METRICS_TYPE = "text/plain; version=0.0.4"


def mount(app: faust.App, health: Health) -> None:
    """Add the relay's pages to ``app``; /livez and /readyz say why when they are red."""

    @app.page("/metrics")
    async def metrics(self: Any, request: Any) -> Any:
        if health.assigned:  # fresh at every scrape, not up to LAG_EVERY old
            update_lag(app)
        # aiohttp refuses a charset inside content_type; exposition text is UTF-8 anyway
        return self.bytes(generate_latest(REGISTRY), content_type=METRICS_TYPE)

    @app.page("/livez")
    async def livez(self: Any, request: Any) -> Any:
        why = health.liveness(lagging=total_lag() > 0)
        body: dict[str, Any] = {"live": why is None}
        if health.broken is not None:
            body["error"] = health.broken
        if why is not None:
            body["reason"] = why
        return self.json(body, status=200 if why is None else 503)

    @app.page("/readyz")
    async def readyz(self: Any, request: Any) -> Any:
        ready = health.ready
        body = {"ready": ready, **health.readiness(), "reasons": health.reasons()}
        return self.json(body, status=200 if ready else 503)


def update_lag(app: faust.App) -> None:
    """Lag per assigned partition. faust has no public committed-offset API (aiokafka's
    ``committed`` is a broker round trip on faust's consumer thread), so its own dict is read."""
    consumer: Any = app.consumer
    for tp in consumer.assignment():
        try:
            end = consumer.highwater(tp)
        except Exception:  # not fetched yet
            continue
        committed = consumer._committed_offset.get(tp) or 0
        CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(max(0, (end or 0) - committed))


def total_lag() -> float:
    return sum(s.value for m in CONSUMER_LAG.collect() for s in m.samples)


def forget_lag(revoked: Iterable[TP]) -> None:
    for tp in revoked:
        with contextlib.suppress(KeyError):
            CONSUMER_LAG.remove(tp.topic, str(tp.partition))
