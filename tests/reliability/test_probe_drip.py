"""Issue 16 item 5, the half-open probe: after an outage opens the circuit, the one request let
through to probe the API gets a reply that drips a byte a second (each read well under
RELAY_HTTP_TIMEOUT). Every other request waits behind that probe, so without a total deadline
the relay would wait forever with the API healthy again.

The trial (the real sandbox behind tests/reliability/fault_proxy.py, which answers every events
POST 503, then drips the next one, then forwards): the dripped probe must be cut at
RELAY_HTTP_DEADLINE, the circuit must re-open on that failure and close on a later probe, and
every record must arrive, none dead-lettered. A failure: the drip still held well past the
deadline, no re-open after it, the circuit never closing, or a record lost or dead-lettered.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from relay.tools.traffic import TrafficGenerator
from tests.integration.conftest import SandboxFactory
from tests.integration.pipeline_helpers import sample
from tests.reliability.conftest import Report, ScenarioFactory
from tests.reliability.fault_proxy import FaultProxy
from tests.reliability.harness import requires_relay, wait_for
from tests.reliability.ledger import expectations

pytestmark = [requires_relay, pytest.mark.reliability, pytest.mark.timeout(240)]

HTTP_TIMEOUT = 2.0  # each dripped read takes 1 s, under it
HTTP_DEADLINE = 4.0
CIRCUIT_FAILURES = 3


def test_a_dripping_half_open_probe_is_cut_at_the_deadline_and_the_circuit_goes_on(
    scenario: ScenarioFactory, sandbox_factory: SandboxFactory, tmp_path: Path, report: Report
) -> None:
    box = sandbox_factory()
    proxy = FaultProxy(box.url).start()
    s = scenario("probe-drip", box)
    try:
        plan = TrafficGenerator(students=8, seed=181).plan(240)
        records = expectations(plan)
        s.seed_roster(plan)
        relay = s.relay(
            "a",
            RELAY_API_BASE_URL=proxy.url,
            RELAY_HTTP_TIMEOUT=str(HTTP_TIMEOUT),
            RELAY_HTTP_DEADLINE=str(HTTP_DEADLINE),
            RELAY_CIRCUIT_FAILURES=str(CIRCUIT_FAILURES),
        ).start()
        relay.wait_assigned()
        s.produce(records[:80], wait=True)
        s.wait_progress(1.0, timeout=60, alive=[relay])

        proxy.answer_all(503)  # the outage
        s.produce(records[80:], wait=True)
        wait_for(lambda: sample(relay, "circuit_transitions", to="open") >= 1, 60,
                 "the circuit open", relay.check_alive)  # fmt: skip
        # Every POST from now on is a probe (the circuit has not closed since it opened): the
        # next one drips, then the API is healthy.
        proxy.drip_all(times=1)
        wait_for(lambda: proxy.dripping == 1 or bool(proxy.drips), 60, "the probe dripping",
                 relay.check_alive)  # fmt: skip
        opened_before = sample(relay, "circuit_transitions", to="open")
        # a guard against a hang, not a measurement: without a deadline the drip never ends
        wait_for(lambda: bool(proxy.drips), HTTP_DEADLINE + 30, "the dripped probe cut",
                 relay.check_alive)  # fmt: skip
        held = proxy.drips[0]
        wait_for(lambda: sample(relay, "circuit_transitions", to="open") > opened_before, 30,
                 "the circuit re-opened on the cut probe", relay.check_alive)  # fmt: skip
        s.wait_complete(timeout=120, alive=[relay])
        wait_for(lambda: sample(relay, "circuit_state") == 0, 30, "the circuit closed",
                 relay.check_alive)  # fmt: skip
        closed = sample(relay, "circuit_transitions", to="closed")
        timeouts = sample(relay, "http_requests", endpoint="events", status_class="error")
        figures = s.finish()
        figures.notes.update(
            drip_held_s=round(held, 2),
            answered_503=proxy.faulted_all - 1,
            circuit_opened=opened_before,
            circuit_closed=closed,
            events_requests_without_answer=timeouts,
        )
        report(figures)
    finally:
        s.close()
        proxy.stop()

    assert len(proxy.drips) == 1, proxy.drips
    # Cut by the total deadline: not before it (the reads each came within the read timeout),
    # and not long after (the drip would go on for days).
    assert HTTP_DEADLINE - 0.5 <= held <= 2 * HTTP_DEADLINE + 2, held
    assert closed >= 1
    assert figures.lost == 0, figures.problems
    assert figures.dlq_total == 0, figures.dlq_by_reason
    assert figures.duplicate_mismatch == 0, figures.problems
