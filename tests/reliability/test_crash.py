"""Crash trials: the relay is SIGKILLed at random moments while records flow, and restarted.

Every valid record must reach the sandbox at least once (each of its Caliper event ids), every
planted one must be in the DLQ with its reason, nothing else may be; duplicates (redeliveries of
records in flight or done but not committed at the kill) are counted and reported, not failed.
"""

from __future__ import annotations

import os
import random
import time

import pytest

from relay.tools.traffic import TrafficGenerator
from tests.integration.conftest import SandboxFactory
from tests.reliability.conftest import Report, ScenarioFactory
from tests.reliability.harness import requires_relay
from tests.reliability.ledger import expectations

pytestmark = [requires_relay, pytest.mark.reliability, pytest.mark.timeout(600)]

RECORDS = int(os.environ.get("RELIABILITY_CRASH_RECORDS", "5000"))
KILLS = 5
# Slow enough that records still flow at the last kill: the relay keeps up with production, so at
# 1,000/s it had delivered everything before the later kill points came.
RATE = float(os.environ.get("RELIABILITY_CRASH_RATE", "200"))
LAST_POINT = 0.97  # a kill point beyond this could wait for progress that never comes
SEED = int(os.environ.get("RELIABILITY_SEED", "20240610"))


def test_sigkill_five_times_while_records_flow(
    scenario: ScenarioFactory, sandbox_factory: SandboxFactory, report: Report
) -> None:
    rng = random.Random(SEED)
    box = sandbox_factory()
    s = scenario("crash", box, partitions=3)
    plan = TrafficGenerator(students=40, invalid_ratio=0.02, seed=SEED).plan(RECORDS)
    expected = expectations(plan)
    s.seed_roster(plan)

    relay = s.relay("a").start()
    relay.wait_assigned()
    s.produce(expected, rate=RATE)

    # Kill points: progress shares, spread over the run, each at least a little after the last
    # restart so every incarnation does some work before it dies.
    points = sorted(rng.uniform(0.05, 0.85) for _ in range(KILLS))
    kills: list[dict[str, float]] = []
    for point in points:
        floor = s.progress() + 0.01
        s.wait_progress(min(max(point, floor), LAST_POINT), timeout=180, alive=[relay])
        time.sleep(rng.uniform(0.0, 0.4))  # not always right at a poll
        at = s.progress()
        relay.kill()
        kills.append({"progress": round(at, 3), "incarnation": relay.starts})
        relay.start()

    s.wait_complete(timeout=300, alive=[relay])
    figures = s.finish(trials=len(kills))
    figures.notes.update(kills=kills, starts=relay.starts, seed=SEED)
    report(figures)

    assert relay.kills == KILLS
    assert all(k["progress"] < 1.0 for k in kills), f"a kill came after the flow ended: {kills}"
    assert figures.lost == 0, figures.problems
    assert figures.notes["sigterm_exit"] == {"a": 0}, "SIGTERM: a clean exit"
    assert figures.duplicate_mismatch == 0, "a redelivered event differs from the first"
    assert figures.dlq_missing == 0 and figures.dlq_wrong_reason == 0, figures.problems
    assert figures.dlq_unexpected == 0, figures.problems
    assert figures.sandbox_refused == 0
    assert figures.planted_leaked == 0
    assert figures.ok
