"""Two relay replicas in one consumer group; one is SIGKILLed mid-stream and not restarted.

Its partitions move to the survivor (its assigned-partitions gauge reaches all of them once the
dead member's session times out) and nothing is lost; duplicates are reported.
"""

from __future__ import annotations

import pytest

from relay.tools.traffic import TrafficGenerator
from tests.integration.conftest import SandboxFactory
from tests.reliability.conftest import Report, ScenarioFactory
from tests.reliability.harness import RelayProcess, requires_relay, wait_for
from tests.reliability.ledger import expectations

pytestmark = [requires_relay, pytest.mark.reliability, pytest.mark.timeout(420)]

PARTITIONS = 4
RECORDS = 3000


def assigned(relay: RelayProcess) -> float:
    return relay.metric("assigned_partitions") or 0.0


def test_two_replicas_one_killed_partitions_move(
    scenario: ScenarioFactory, sandbox_factory: SandboxFactory, report: Report
) -> None:
    box = sandbox_factory()
    s = scenario("replicas", box, partitions=PARTITIONS)
    plan = TrafficGenerator(students=40, invalid_ratio=0.02, seed=61).plan(RECORDS)
    expected = expectations(plan)
    s.seed_roster(plan)

    a, b = s.relay("a").start(), s.relay("b").start()

    def both_alive() -> None:
        a.check_alive()
        b.check_alive()

    # Both members own partitions before the kill (the group has settled on two members).
    wait_for(
        lambda: assigned(a) > 0 and assigned(b) > 0 and assigned(a) + assigned(b) == PARTITIONS,
        120,
        "both replicas assigned",
        both_alive,
    )
    before = {"a": assigned(a), "b": assigned(b)}

    s.produce(expected, rate=200)
    s.wait_progress(0.3, timeout=180, alive=[a, b])
    b.kill()
    killed_at = s.progress()

    wait_for(
        lambda: assigned(a) == PARTITIONS, 120, "the survivor owns every partition", a.check_alive
    )
    s.wait_complete(timeout=300, alive=[a])
    figures = s.finish()
    figures.notes.update(assigned_before=before, killed_at_progress=round(killed_at, 3))
    report(figures)

    assert figures.lost == 0, figures.problems
    assert figures.notes["sigterm_exit"] == {"a": 0, "b": None}, "SIGTERM: a clean exit"
    assert figures.duplicate_mismatch == 0, "a redelivered event differs from the first"
    assert figures.dlq_missing == 0 and figures.dlq_wrong_reason == 0, figures.problems
    assert figures.dlq_unexpected == 0, figures.problems
    assert figures.ok
