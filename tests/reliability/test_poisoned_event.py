"""Issue 23 item 1: one event the API answers 500 forever, every other event accepted.

tests/reliability/fault_proxy.py answers every POST carrying the poisoned event's id with a 500
(a bare event or an envelope holding it) and forwards everything else to the real sandbox. All
records are produced at once, the poisoned one early, so its partition's later records finish
behind it and fill the window: after a few seconds the only request the relay has left to send
is that event's (the case where the relay cannot tell "this event fails" from "the API is down"
by the traffic it already has). The window is kept small (RELAY_MAX_IN_FLIGHT=2) so that happens
within seconds, and the liveness stall limit (RELAY_STALL_AFTER) is set below the retry budget, so
a relay that counts a record spending its budget as a stall shows it on /livez.

Passes when the poisoned record is dead-lettered ``deliver/retries-exhausted``, every other record
is delivered, and /livez stayed 200 throughout (no restart would have been ordered). A failure looks
like: no dead letter before the guard's timeout (the circuit opened on that event's own retries and
paused its budget for good), lag left behind it, or /livez 503.
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
from tests.reliability.harness import requires_relay, wait_for
from tests.reliability.ledger import expectations
from tests.reliability.probes import livez

pytestmark = [requires_relay, pytest.mark.reliability, pytest.mark.timeout(150)]

RECORDS, POISONED_AT = 400, 20
BUDGET_S, STALL_S = 10.0, 6.0
GUARD_S = 75.0  # a hang guard, not a measurement: the time to dead-letter is reported


@pytest.mark.parametrize("per_request", [1, 20])
def test_one_event_the_api_keeps_failing_is_dead_lettered(
    per_request: int, scenario: ScenarioFactory, sandbox_factory: SandboxFactory, report: Report
) -> None:
    box = sandbox_factory()
    proxy = FaultProxy(box.url).start()
    try:
        s = scenario(f"poisoned-{per_request}", box, partitions=3)
        plan = TrafficGenerator(students=20, seed=231).plan(RECORDS)
        s.seed_roster(plan)
        records = expectations(plan)
        poisoned = records[POISONED_AT]
        target = poisoned.event_ids[0]
        proxy.answer(target, 500)  # forever
        s.tolerate_dead_letter(poisoned)

        relay = s.relay(
            "a",
            RELAY_EVENTS_PER_REQUEST=str(per_request),
            RELAY_MAX_IN_FLIGHT="2",
            RELAY_RETRY_BUDGET=str(BUDGET_S),
            RELAY_STALL_AFTER=str(STALL_S),
        )
        relay.env["RELAY_API_BASE_URL"] = proxy.url
        relay.start()
        relay.wait_assigned()
        s.produce(records, wait=True)

        samples: Counter[str] = Counter()
        first_hit: list[float] = []

        def dead_lettered() -> bool:
            samples[f"livez={livez(relay)}"] += 1
            if not first_hit and proxy.hits[target]:
                first_hit.append(time.monotonic())
            s.poll()
            return any(x.value == poisoned.value for x in s.dlq_watch.letters)

        timed_out = False
        try:
            wait_for(dead_lettered, GUARD_S, "the poisoned record's dead letter", relay.check_alive)
        except AssertionError:
            timed_out = True  # the figures below say what happened
        to_dead_letter = time.monotonic() - first_hit[0] if first_hit and not timed_out else None
        others = [i for r in records if r is not poisoned for i in r.event_ids]

        def others_delivered() -> bool:
            s.poll()
            return s.watch.delivered(others) == len(others)

        if not timed_out:  # every other record's events at the sandbox (a guard, not a measure)
            with contextlib.suppress(AssertionError):  # the figures tell
                wait_for(others_delivered, 60, "every other record delivered", relay.check_alive)
        lag = relay.metric("consumer_lag")
        figures = s.finish()
        letter = next((x for x in s.dlq_watch.letters if x.value == poisoned.value), None)
        figures.notes.update(
            events_per_request=per_request,
            budget_s=BUDGET_S,
            stall_after_s=STALL_S,
            seconds_to_dead_letter=None if to_dead_letter is None else round(to_dead_letter, 1),
            proxy_500s=proxy.hits[target],
            livez_samples=dict(samples),
            lag_at_end=lag,
            restarts=relay.starts - 1,
        )
        report(figures)
    finally:
        proxy.stop()

    assert proxy.hits[target] > 0, "the poisoned event never reached the proxy"
    assert letter is not None, f"not dead-lettered within {GUARD_S:g} s: {figures.line()}"
    assert letter.reason == ("deliver", "retries-exhausted"), letter.reason
    assert dict(figures.dlq_by_reason) == {"deliver/retries-exhausted": 1}, figures.dlq_by_reason
    assert figures.lost == 1, figures.problems  # the poisoned record alone
    assert set(samples) == {"livez=200"}, f"/livez said {samples}"
