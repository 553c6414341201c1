"""Broker restart mid-stream: the Kafka broker this session owns is stopped and started again
while records flow; the relay (never restarted) recovers by itself and loses nothing.

Needs a broker the session starts (run without RELAY_KAFKA_BOOTSTRAP); skipped otherwise.
"""

from __future__ import annotations

import time

import pytest

from relay.tools.traffic import TrafficGenerator
from tests.conftest import Broker
from tests.integration.conftest import SandboxFactory
from tests.reliability.conftest import Report, ScenarioFactory
from tests.reliability.harness import requires_relay, wait_for
from tests.reliability.ledger import expectations

pytestmark = [requires_relay, pytest.mark.reliability, pytest.mark.timeout(600)]

RECORDS = 2000
DOWN_FOR_S = 8.0  # longer than the relay's session timeout: the group has to be rebuilt


def test_relay_recovers_from_a_broker_restart(
    kafka: Broker, scenario: ScenarioFactory, sandbox_factory: SandboxFactory, report: Report
) -> None:
    if kafka.env is None:
        pytest.skip("the broker at RELAY_KAFKA_BOOTSTRAP is not ours to restart")
    box = sandbox_factory()
    s = scenario("broker-restart", box, partitions=3)
    plan = TrafficGenerator(students=20, invalid_ratio=0.02, seed=31).plan(RECORDS)
    expected = expectations(plan)
    s.seed_roster(plan)

    relay = s.relay("a").start()
    relay.wait_assigned()
    s.produce(expected, rate=100)  # ~20 s of traffic: the restart lands in the middle
    s.wait_progress(0.25, timeout=120, alive=[relay])

    kafka.script("stop")
    stopped_at = s.progress()
    time.sleep(DOWN_FOR_S)
    relay.check_alive()
    kafka.script("start")

    s.wait_complete(timeout=300, alive=[relay])
    # Recovered by itself: the same process, ready again.
    wait_for(lambda: relay.readyz() == 200, 60, "/readyz after the restart", relay.check_alive)
    assert relay.starts == 1
    figures = s.finish()
    figures.notes.update(stopped_at_progress=round(stopped_at, 3), down_for_s=DOWN_FOR_S)
    report(figures)

    assert figures.lost == 0, figures.problems
    assert figures.notes["sigterm_exit"] == {"a": 0}, "SIGTERM: a clean exit"
    assert figures.duplicate_mismatch == 0, "a redelivered event differs from the first"
    assert figures.dlq_missing == 0 and figures.dlq_wrong_reason == 0, figures.problems
    assert figures.dlq_unexpected == 0, figures.problems
    assert figures.ok
