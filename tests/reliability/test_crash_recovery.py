"""Time to recover from a crash, measured from outside: SIGKILL, restart, first new delivery.

A SIGKILLed member sends no LeaveGroup, so the broker keeps it in the group until its session
expires; a restarted relay's JoinGroup waits for that (for a dynamic member) unless it rejoins under
the same ``RELAY_GROUP_INSTANCE_ID`` (a static member: the broker swaps the member id and hands the
old assignment back). Each cycle: records delivered, SIGKILL, more records produced while the relay
is down, restart, and the time from the restart to the first of them at the sandbox. Three cycles
without static membership and three with it, the relay on its default session settings.

The bounds are not speed targets: they are derived from the configured session, so the trial fails
if recovery regresses to waiting out a 45-60 s session (Kafka's and faust's defaults), not if this
machine is slow to start a Python process.
"""

from __future__ import annotations

import statistics
import time

import pytest

from relay.config import Settings
from relay.tools.traffic import TrafficGenerator
from tests.integration.conftest import SandboxFactory
from tests.reliability.conftest import Report, ScenarioFactory
from tests.reliability.harness import RelayProcess, requires_relay, wait_for
from tests.reliability.ledger import Expected, expectations
from tests.reliability.scenario import Scenario

pytestmark = [requires_relay, pytest.mark.reliability, pytest.mark.timeout(600)]

KILLS = 3
BATCH = 30  # records produced while the relay is down, per cycle
# The defaults under test (model_construct: no environment, no .env, as the relays get them).
DEFAULTS = Settings.model_construct()
SESSION = DEFAULTS.kafka_session_timeout
# A restarted process needs time of its own before it can join: the interpreter, faust's start,
# the token and the first POST. On two shared cores that was 3-6 s; 10 s leaves room for noise.
STARTUP_ALLOWANCE = 10.0
# Dynamic: the join waits out the dead member's session (from its last heartbeat, before the kill).
DYNAMIC_BOUND = SESSION + DEFAULTS.heartbeat_interval + STARTUP_ALLOWANCE
# Static: the broker hands the old assignment back at once; waiting out the session is the bug.
STATIC_BOUND = SESSION


def test_restart_after_sigkill_resumes_delivery_within_the_session(
    scenario: ScenarioFactory, sandbox_factory: SandboxFactory, report: Report
) -> None:
    box = sandbox_factory()
    s = scenario("recovery", box, partitions=3)
    batches = _batches(s, cycles=2 * KILLS + 2)

    dynamic = _relay(s, "dynamic", static=False)
    dynamic_s = _crash_cycles(s, dynamic, batches)
    assert dynamic.terminate() == 0, "SIGTERM: a clean exit (a dynamic member leaves the group)"

    static = _relay(s, "static", static=True)
    static_s = _crash_cycles(s, static, batches)

    s.wait_complete(timeout=120, alive=[static])
    figures = s.finish(trials=2 * KILLS)
    figures.notes.update(
        session_timeout=SESSION,
        heartbeat_interval=DEFAULTS.heartbeat_interval,
        rebalance_timeout=DEFAULTS.kafka_rebalance_timeout,
        restart_to_delivery_dynamic=dynamic_s,
        restart_to_delivery_static=static_s,
    )
    report(figures)
    print(
        f"restart -> first new delivery, without static membership: {_show(dynamic_s)}; "
        f"with RELAY_GROUP_INSTANCE_ID: {_show(static_s)} (session {SESSION:g} s)"
    )

    assert max(dynamic_s) < DYNAMIC_BOUND, f"waited out more than the session: {dynamic_s}"
    assert max(static_s) < STATIC_BOUND, f"a static member waited for its session: {static_s}"
    assert figures.lost == 0, figures.problems
    assert figures.duplicate_mismatch == 0, "a redelivered event differs from the first"
    assert figures.dlq_unexpected == 0, figures.problems


def _relay(s: Scenario, name: str, *, static: bool) -> RelayProcess:
    """A replica on the relay's default session settings (the harness's 6 s session removed)."""
    env = s.env()
    env.pop("RELAY_KAFKA_SESSION_TIMEOUT")
    if static:
        env["RELAY_GROUP_INSTANCE_ID"] = f"{s.name}-{name}"
    relay = RelayProcess(name, env, s.workdir / "relays" / name)
    s.relays.append(relay)
    return relay


def _batches(s: Scenario, cycles: int) -> list[list[Expected]]:
    plan = TrafficGenerator(students=20, invalid_ratio=0.0, seed=735).plan(BATCH * cycles)
    s.seed_roster(plan)
    records = expectations(plan)
    return [records[n * BATCH : (n + 1) * BATCH] for n in range(cycles)]


def _crash_cycles(s: Scenario, relay: RelayProcess, batches: list[list[Expected]]) -> list[float]:
    """Start ``relay``, then KILLS times: delivering, SIGKILL, records produced while it is down,
    restart; the seconds from each restart to the sandbox's first new acceptance."""
    relay.start()
    s.produce(batches.pop(), wait=True)
    s.wait_complete(timeout=120, alive=[relay])
    figures = []
    for _ in range(KILLS):
        relay.kill()
        s.produce(batches.pop(), wait=True)  # waiting in Kafka when the relay comes back
        time.sleep(0.3)  # a request the dead process had sent is settled before the baseline
        before = _accepted(s)
        started = time.monotonic()
        relay.start()
        wait_for(lambda b=before: _accepted(s) > b, 120, "a delivery after the restart",
                 relay.check_alive, interval=0.05)  # fmt: skip
        figures.append(round(time.monotonic() - started, 2))
        s.wait_complete(timeout=120, alive=[relay])
    return figures


def _accepted(s: Scenario) -> int:
    s.watch.poll()
    return sum(s.watch.accepted.values())


def _show(seconds: list[float]) -> str:
    return f"{seconds} s (median {statistics.median(seconds):g})"
