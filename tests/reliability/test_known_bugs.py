"""Relay behaviours the suite found wrong, now fixed and kept as regression tests.

A static member (RELAY_GROUP_INSTANCE_ID) restarted on another web port used to be handed its
previous assignment with the old worker URL; faust's assignor asserted they match, the aiokafka
coordinator routine died and the process stayed up consuming nothing. The worker now derives
faust's canonical_url from the member id, not the web port."""

from __future__ import annotations

import pytest

from relay.tools.traffic import TrafficGenerator
from tests.integration.conftest import SandboxFactory
from tests.reliability.conftest import ScenarioFactory
from tests.reliability.harness import requires_relay, wait_for
from tests.reliability.ledger import expectations

pytestmark = [requires_relay, pytest.mark.reliability, pytest.mark.timeout(180)]


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
