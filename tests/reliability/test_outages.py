"""Transient trouble at the API: an outage (503s, then connection resets), a 429 storm with
Retry-After, the token endpoint down. While it lasts /readyz reports not ready; nothing is
dead-lettered for a transient reason (only the planted records are in the DLQ); afterwards
every record is delivered.

Durations as in the issue: a 30 s outage (15 s of 503s, 15 s of connection resets), the token
endpoint down for 20 s (tokens live 3 s, so the relay's token expires meanwhile), a 10 s storm of
429s with Retry-After: 2.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from relay.tools.traffic import TrafficGenerator
from tests.integration.conftest import SandboxFactory
from tests.reliability.conftest import Report, ScenarioFactory
from tests.reliability.harness import RelayProcess, requires_relay, wait_for
from tests.reliability.ledger import Figures, expectations
from tests.reliability.scenario import Scenario

pytestmark = [requires_relay, pytest.mark.reliability, pytest.mark.timeout(300)]

BEFORE, DURING = 200, 400  # records delivered before the fault, produced while it lasts


def run_fault(
    s: Scenario,
    relay: RelayProcess,
    seed: int,
    inject: Callable[[], object],
    clear: Callable[[], None],
    seconds: float,
) -> tuple[Figures, Counter[str]]:
    """Deliver a first batch, inject the fault, produce during it while sampling /readyz, clear
    it, wait until everything is delivered; the figures and the /readyz samples."""
    plan = TrafficGenerator(students=20, invalid_ratio=0.02, seed=seed).plan(BEFORE + DURING)
    expected = expectations(plan)
    s.seed_roster(plan)
    relay.start()
    relay.wait_assigned()
    s.produce(expected[:BEFORE], wait=True)
    s.wait_progress(1.0, timeout=120, alive=[relay])
    relay.wait_ready(60)  # ready before the fault, so "not ready during" means something

    inject()
    s.produce(expected[BEFORE:], rate=DURING / seconds)
    samples: Counter[str] = Counter()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        relay.check_alive()
        status = relay.readyz()
        samples[str(status)] += 1
        time.sleep(0.2)
    faulted = s.sandbox.stats()["faulted"]
    clear()

    s.wait_complete(timeout=180, alive=[relay])
    wait_for(lambda: relay.readyz() == 200, 60, "/readyz after the fault", relay.check_alive)
    figures = s.finish()
    figures.notes.update(readyz_samples=dict(samples), faulted_replies=faulted, seconds=seconds)
    return figures, samples


def check(figures: Figures, samples: Counter[str]) -> None:
    assert samples["503"] > 0, f"/readyz never reported not ready during the fault: {samples}"
    assert figures.notes["faulted_replies"] > 0, "the fault was never hit"
    # Only the planted records are dead letters, each with its reason: nothing transient.
    assert figures.dlq_unexpected == 0, figures.problems
    assert figures.dlq_missing == 0 and figures.dlq_wrong_reason == 0, figures.problems
    assert not any(k.startswith("deliver/") for k in figures.dlq_by_reason), figures.dlq_by_reason
    assert figures.lost == 0, figures.problems
    assert figures.ok


def test_api_outage(
    scenario: ScenarioFactory, sandbox_factory: SandboxFactory, report: Report
) -> None:
    box = sandbox_factory()
    s = scenario("api-outage", box)
    relay = s.relay("a")
    outages: list[dict[str, Any]] = [
        {"start_in_s": 0, "duration_s": 15, "mode": "503"},
        {"start_in_s": 15, "duration_s": 15, "mode": "reset"},
    ]
    figures, samples = run_fault(
        s, relay, 41, lambda: box.faults(outages=outages), box.clear_faults, 30.0
    )
    report(figures)
    check(figures, samples)


def test_429_storm_with_retry_after(
    scenario: ScenarioFactory, sandbox_factory: SandboxFactory, report: Report
) -> None:
    box = sandbox_factory()
    s = scenario("429-storm", box)
    relay = s.relay("a")
    storm = {"rate_limit": {"rate": 1.0, "retry_after_s": 2}, "paths": ["/events/1.0"]}
    figures, samples = run_fault(s, relay, 42, lambda: box.faults(storm), box.clear_faults, 10.0)
    report(figures)
    check(figures, samples)


def test_token_endpoint_down(
    scenario: ScenarioFactory, sandbox_factory: SandboxFactory, report: Report
) -> None:
    # Tokens live 3 s, so the relay's token expires while the endpoint is down.
    box = sandbox_factory(token_ttl_s=3.0)
    s = scenario("token-down", box)
    relay = s.relay("a")
    figures, samples = run_fault(
        s,
        relay,
        43,
        lambda: box.faults(token_endpoint_down="503"),
        box.clear_faults,
        20.0,
    )
    report(figures)
    check(figures, samples)


def test_an_idle_relay_becomes_ready(
    scenario: ScenarioFactory, sandbox_factory: SandboxFactory
) -> None:
    """Ready before any record arrives (assigned, token obtained, circuit closed, DLQ healthy):
    the fault tests' "not ready during" starts from ready."""
    s = scenario("idle-ready", sandbox_factory())
    relay = s.relay("a").start()
    relay.wait_assigned()
    relay.wait_ready(30)
