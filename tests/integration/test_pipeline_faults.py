"""Transient API trouble through ``relay run``: nothing is dead-lettered, everything is delivered.

- A 30 s 503 outage on /events/1.0 while records arrive: the circuit opens, then closes, as
  /metrics shows (the reliability suite also runs 503s followed by connection resets).
- 429 with ``Retry-After: 2`` on a share of the requests: waited out and retried.
- Tokens that live 3 s: refreshed ahead of expiry, no request refused for an expired token.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import TopicFactory
from tests.integration.conftest import SandboxFactory, SandboxHandle
from tests.integration.pipeline_helpers import (
    RelayProcess,
    deliver,
    ledger_total,
    letters,
    produce,
    running_relay,
    sample,
    seed_students,
    wait_acked,
    wait_for,
    xp_record,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]
STUDENTS = [f"student-{n:02d}" for n in range(10)]
PER_STUDENT = 5


def _records():  # type: ignore[no-untyped-def]
    return [xp_record(s, seq, xp=1.5) for seq in range(PER_STUDENT) for s in STUDENTS]


@contextmanager
def _run(box: SandboxHandle, kafka_bootstrap: str, make_topic: TopicFactory, tmp_path: Path,
         **env: str) -> Iterator[tuple[RelayProcess, str, str]]:  # fmt: skip
    """A ready relay on fresh topics (relay, topic, dlq), stopped at the end of the block."""
    seed_students(box, STUDENTS)
    topic, dlq = make_topic("faults", partitions=2), make_topic("faults-dlq")
    with running_relay(tmp_path, kafka_bootstrap, topic, dlq, box.url, **env) as relay:
        relay.wait_ready(60)
        yield relay, topic, dlq


def test_a_503_outage_opens_then_closes_the_circuit_and_loses_nothing(
    kafka_bootstrap: str, make_topic, sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    box = sandbox_factory()
    records = _records()
    with _run(box, kafka_bootstrap, make_topic, tmp_path) as (relay, topic, dlq):
        box.faults(
            paths=["/events/1.0"], outages=[{"start_in_s": 0, "duration_s": 30, "mode": "503"}]
        )
        produce(kafka_bootstrap, topic, records, rate=len(records) / 20)
        wait_for(lambda: relay.readyz() == 503, 30, "not ready while the circuit is open")
        wait_acked(relay, len(records))
        wait_for(lambda: relay.readyz() == 200, 30, "ready again", relay.check_alive)
        opened = sample(relay, "circuit_transitions", to="open")
        closed = sample(relay, "circuit_transitions", to="closed")
        state = sample(relay, "circuit_state")
        rejected = sample(relay, "records_rejected")
    assert box.show_faults()["faulted"] > 0
    assert opened >= 1 and closed >= 1, (opened, closed)
    assert state == 0  # closed
    assert rejected == 0
    assert letters(kafka_bootstrap, dlq) == []
    assert ledger_total(box, STUDENTS) == 1.5 * len(records)


def test_429_with_retry_after_is_waited_out(
    kafka_bootstrap: str, make_topic, sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    box = sandbox_factory()
    records = _records()
    with _run(box, kafka_bootstrap, make_topic, tmp_path) as (relay, topic, dlq):
        box.faults(paths=["/events/1.0"], rate_limit={"rate": 0.3, "retry_after_s": 2}, seed=3)
        deliver(relay, kafka_bootstrap, topic, records)
        retried = sample(relay, "retries", endpoint="events", cause="429")
    assert retried > 0
    assert letters(kafka_bootstrap, dlq) == []
    assert ledger_total(box, STUDENTS) == 1.5 * len(records)


def test_three_second_tokens_are_refreshed_without_failed_deliveries(
    kafka_bootstrap: str, make_topic, sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    box = sandbox_factory(token_ttl_s=3.0)
    records = _records()
    with _run(box, kafka_bootstrap, make_topic, tmp_path) as (relay, topic, dlq):
        produce(kafka_bootstrap, topic, records, rate=len(records) / 10)  # over ~10 s
        wait_acked(relay, len(records))
        refreshed = sample(relay, "token_refreshes", outcome="ok")
        failed_refreshes = sample(relay, "token_refreshes", outcome="failed")
        refused = sample(relay, "http_requests", endpoint="events", status_class="4xx")
        sent_rejected = sample(relay, "events_sent", outcome="rejected")
    assert refreshed >= 4, refreshed  # a 3 s token lasts 1.5 s: several over ~10 s
    assert failed_refreshes == 0
    assert refused == 0  # no 401 for an expired token
    assert sent_rejected == 0
    assert letters(kafka_bootstrap, dlq) == []
    assert ledger_total(box, STUDENTS) == 1.5 * len(records)
