"""Relay behaviours the suite found wrong, kept as strict xfails: each turns into a failure (XPASS)
once the relay is fixed, so the marker gets removed with the fix."""

from __future__ import annotations

import pytest

from relay.tools.traffic import TrafficGenerator
from tests.integration.conftest import SandboxFactory
from tests.reliability.conftest import ScenarioFactory
from tests.reliability.harness import requires_relay, wait_for
from tests.reliability.ledger import expectations

pytestmark = [requires_relay, pytest.mark.reliability, pytest.mark.timeout(180)]


@pytest.mark.xfail(
    strict=True,
    reason="faust's PartitionAssignor.on_assignment asserts the assignment's worker URL equals "
    "its own; a static member (RELAY_GROUP_INSTANCE_ID) restarted with another web URL "
    "(RELAY_WEB_PORT, or hostname) is handed its previous assignment, the assertion kills the "
    "aiokafka coordinator routine, and the process stays up consuming nothing (/livez 200, "
    "/readyz 503 assigned=false) instead of failing; relay/pipeline/worker.py create_app sets "
    "no stable canonical_url",
)
def test_a_static_member_restarted_on_another_port_consumes(
    scenario: ScenarioFactory, sandbox_factory: SandboxFactory
) -> None:
    s = scenario("static-url", sandbox_factory())
    plan = TrafficGenerator(students=4, seed=81).plan(40)
    records = expectations(plan)
    relay = s.relay("a").start()
    relay.wait_assigned()
    s.produce(records[:20], wait=True)
    s.wait_progress(1.0, timeout=60, alive=[relay])
    relay.kill()
    relay.port = 0  # a new web port: the worker's URL changes
    relay.start()
    s.produce(records[20:], wait=True)
    wait_for(lambda: s.progress() >= 1.0, 25, "delivery after the restart", relay.check_alive)
