"""Issue 16 item 3: one event's 403 / 404 / 3xx / repeated 401 must not wedge its partition
silently.

tests/reliability/fault_proxy.py answers one event with the status every time; every other
request reaches the real sandbox. Other students' records keep flowing meanwhile (as in
production: their successes are what keep the breaker closed). Once the earlier records are
through, /readyz and /livez are sampled for a few seconds.

The relay passes when the record is dead-lettered (this record's fault) or when every sample
reports the trouble (/readyz or /livez 503: systemic, paused and alerting). A failure looks like:
the record neither in the DLQ nor reported, i.e. /readyz and /livez 200 while its partition's
commits have stopped.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter

import pytest

from relay.tools.traffic import TrafficGenerator
from tests.integration.conftest import SandboxFactory
from tests.reliability.conftest import Report, ScenarioFactory
from tests.reliability.fault_proxy import FaultProxy
from tests.reliability.harness import requires_relay
from tests.reliability.ledger import expectations
from tests.reliability.probes import livez

pytestmark = [requires_relay, pytest.mark.reliability, pytest.mark.timeout(120)]

TRICKLE_RATE, TRICKLE_SECONDS = 30.0, 6.0
WATCH_SECONDS = 3.0
# Three partitions: the other two keep succeeding, so the breaker sees what production sees
# (with one, the window fills behind the record, successes stop and the circuit opens).
PARTITIONS = 3


@pytest.mark.parametrize("status", [403, 404, 301, 401])
def test_one_events_status_never_wedges_its_partition_silently(
    status: int, scenario: ScenarioFactory, sandbox_factory: SandboxFactory, report: Report
) -> None:
    box = sandbox_factory()
    proxy = FaultProxy(box.url).start()
    try:
        s = scenario(f"wedge-{status}", box, partitions=PARTITIONS)
        before = TrafficGenerator(students=6, seed=181).plan(30)
        lone = TrafficGenerator(students=1, types=("XpEarned",), seed=182).plan(40)
        trickle = TrafficGenerator(students=6, types=("XpEarned",), seed=183)
        during = trickle.plan(int(TRICKLE_RATE * TRICKLE_SECONDS))
        for plan in (before, lone, during):
            s.seed_roster(plan)
        wedged = expectations(lone)[0]  # the others of its student are not produced
        proxy.answer(wedged.event_ids[0], status)
        s.tolerate_dead_letter(wedged)  # a pass, by the docstring: progress() must not refuse it

        relay = s.relay("a", RELAY_SHUTDOWN_GRACE="1")
        relay.env["RELAY_API_BASE_URL"] = proxy.url
        relay.start()
        relay.wait_assigned()
        s.produce([*expectations(before), wedged], wait=True)
        s.produce(expectations(during), rate=TRICKLE_RATE)
        with contextlib.suppress(AssertionError):  # the samples tell
            s.wait_progress(len(before.records) / len(s.expected) * 0.9, 30, alive=[relay])
        samples: Counter[str] = Counter()
        end = time.monotonic() + WATCH_SECONDS
        while time.monotonic() < end:
            samples[f"readyz={relay.readyz()} livez={livez(relay)}"] += 1
            time.sleep(0.25)
        flowing = s.progress()
        figures = s.finish()
        letter = next((x.reason for x in s.dlq_watch.letters if x.value == wedged.value), None)
        figures.notes.update(
            status=status,
            samples=dict(samples),
            proxy_answers=proxy.hits[wedged.event_ids[0]],
            share_delivered_when_watched=round(flowing, 3),
            dead_letter=letter,
        )
        report(figures)
    finally:
        proxy.stop()

    assert proxy.hits[wedged.event_ids[0]] >= 1, "the planted status was never served"
    reported = all("503" in k for k in samples)
    assert letter is not None or reported, (
        f"HTTP {status} for one event: not dead-lettered, and /readyz, /livez said {samples}"
    )
