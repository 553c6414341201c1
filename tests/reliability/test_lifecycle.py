"""Trusted sinks' life-cycle trials this suite lacked: SIGTERM under load (not only after the
flow ended) and a replica joining mid-flight.

- SIGTERM under load: records flow at 250/s into a relay whose API answers in 150-300 ms, so
  dozens are in flight at the signal. The relay drains (RELAY_SHUTDOWN_GRACE) and exits 0; a
  restart finishes the rest. A failure looks like: lost > 0, or an exit status other than 0.
- A replica joining: a second relay joins the group while records flow; partitions move to it
  (its assigned-partitions gauge > 0) and nothing is lost. A failure: lost > 0, or the second
  replica never owns a partition.

Duplicates (records done but not committed at a revocation or at the signal) are reported.
"""

from __future__ import annotations

import pytest

from relay.tools.traffic import TrafficGenerator
from tests.integration.conftest import SandboxFactory
from tests.reliability.conftest import Report, ScenarioFactory
from tests.reliability.harness import requires_relay, wait_for
from tests.reliability.ledger import expectations

pytestmark = [requires_relay, pytest.mark.reliability, pytest.mark.timeout(240)]

RECORDS, RATE = 1000, 250.0


def test_sigterm_under_load_drains_and_loses_nothing(
    scenario: ScenarioFactory, sandbox_factory: SandboxFactory, report: Report
) -> None:
    box = sandbox_factory()
    s = scenario("sigterm-load", box)
    plan = TrafficGenerator(students=30, invalid_ratio=0.02, seed=201).plan(RECORDS)
    s.seed_roster(plan)
    box.faults(latency_ms={"fixed": 150, "jitter": 150}, paths=["/events/1.0"], seed=201)
    relay = s.relay("a").start()
    relay.wait_assigned()
    s.produce(expectations(plan), rate=RATE)
    s.wait_progress(0.3, timeout=60, alive=[relay])
    in_flight = relay.metric("in_flight") or 0.0
    at = s.progress()
    exit_status = relay.terminate()
    relay.start()
    s.wait_complete(timeout=120, alive=[relay])
    figures = s.finish(trials=1)
    figures.notes.update(
        first_exit=exit_status, in_flight_at_sigterm=in_flight, progress_at_sigterm=round(at, 3)
    )
    report(figures)

    assert at < 1.0, "the signal came after the flow ended: the trial proves nothing"
    assert exit_status == 0, f"SIGTERM under load: exit {exit_status}\n{relay.logs()[-3000:]}"
    assert figures.lost == 0, figures.problems
    assert figures.ok, figures.problems


def test_a_replica_joining_mid_flight_loses_nothing(
    scenario: ScenarioFactory, sandbox_factory: SandboxFactory, report: Report
) -> None:
    box = sandbox_factory()
    s = scenario("replica-joins", box, partitions=4)
    plan = TrafficGenerator(students=30, invalid_ratio=0.02, seed=202).plan(RECORDS)
    s.seed_roster(plan)
    box.faults(latency_ms={"fixed": 50, "jitter": 100}, paths=["/events/1.0"], seed=202)
    a = s.relay("a").start()
    a.wait_assigned()
    s.produce(expectations(plan), rate=RATE)
    s.wait_progress(0.2, timeout=60, alive=[a])
    at = s.progress()
    b = s.relay("b").start()
    wait_for(lambda: (b.metric("assigned_partitions") or 0) > 0, 60, "b owns a partition",
             b.check_alive)  # fmt: skip
    s.wait_complete(timeout=120, alive=[a, b])
    figures = s.finish(trials=1)
    figures.notes.update(progress_when_b_joined=round(at, 3))
    report(figures)

    assert at < 1.0, "b joined after the flow ended: the trial proves nothing"
    assert figures.lost == 0, figures.problems
    assert figures.ok, figures.problems
