"""The rate-limit trials of issue 24 as tests: the real broker, the sandbox, ``relay run`` as a
process, reconciled by event id (tests/reliability/ledger.py). Figures only, never speed: the
throughput and resume times are the business of bench/limits_trials.py and docs/rate-limits.md.

Built on the reliability harness rather than on bench/limits_trials.py: its sandbox runs in this
process, so a test reads the sandbox's own journal of accepted requests with their times
(``Journal.taken``), not counts sampled over HTTP; reconciliation, the DLQ watch and the
figures report are the suite's, shared with every other trial.

Every request rate here is read at the sandbox. The relay's token bucket promises at most
``burst + rate x w`` requests leaving its gate in any ``w`` seconds. Between the gate and the
sandbox are the network and two event loops, which can only delay a request: a delay never adds
a request, but a stall can bunch the requests that fell due during it. So the assertions hold
whatever the machine's load as long as the slack they leave covers the bunching (below).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from statistics import median

import pytest

from relay.sandbox.journal import Taken
from relay.tools.traffic import TrafficGenerator
from tests.integration.conftest import SandboxFactory, SandboxHandle
from tests.reliability.conftest import Report, ScenarioFactory
from tests.reliability.harness import requires_relay
from tests.reliability.ledger import Expected, Figures, expectations
from tests.reliability.scenario import Scenario

pytestmark = [requires_relay, pytest.mark.reliability, pytest.mark.timeout(300)]

EVENTS = "/events/1.0"
OUTAGE_S = 20.0
WINDOWS_S = (1.0, 2.0, 5.0)  # the sliding windows the catch-up is checked over


@dataclass(frozen=True)
class Limit:
    """The relay's limiter: ``rate`` requests per second, ``burst`` saved up."""

    rate: float
    burst: int

    def env(self) -> dict[str, str]:
        return {
            "RELAY_MAX_REQUESTS_PER_SECOND": f"{self.rate:g}",
            "RELAY_MAX_REQUESTS_BURST": str(self.burst),
        }

    def allows(self, seconds: float) -> float:
        return self.rate * seconds + self.burst


def taken(box: SandboxHandle) -> list[Taken]:
    """The sandbox's accepted events requests, in arrival order (read in its loop thread)."""
    return list(box.thread.run_in_loop(lambda sandbox: list(sandbox.journal.taken)))


def faulted(box: SandboxHandle) -> int:
    return int(box.stats()["faulted"])


def busiest(requests: list[Taken], seconds: float) -> int:
    """The most requests the sandbox accepted in any ``seconds`` (windows starting at each)."""
    times = [r.at for r in requests]
    best, end = 0, 0
    for start, at in enumerate(times):
        while end < len(times) and times[end] < at + seconds:
            end += 1
        best = max(best, end - start)
    return best


def backlog(s: Scenario, records: int, seed: int) -> list[Expected]:
    """Valid records only (every one must arrive, none may be dead-lettered), their students
    and courses seeded at the sandbox."""
    traffic = TrafficGenerator(students=20, invalid_ratio=0.0, seed=seed).plan(records)
    s.seed_roster(traffic)
    return expectations(traffic)


def check_delivered(figures: Figures) -> None:
    assert figures.dlq_total == 0, figures.dlq_by_reason
    assert figures.lost == 0, figures.problems
    assert figures.ok, figures.problems


# -- a throttled API, the limiter below its rate --------------------------------------------------


def test_a_limiter_below_the_apis_rate_limit_is_rarely_told_429(
    scenario: ScenarioFactory, sandbox_factory: SandboxFactory, report: Report
) -> None:
    """The sandbox takes 60 requests/s (a bucket of one second's worth, Retry-After: 1), the
    relay sends at most 50/s with a burst of 10: a backlog of 500 records goes through with 0
    lost, 0 dead-lettered and under 2 % of the requests answered 429.

    Why the machine's load does not matter: the relay's bucket refills by the clock, so load can
    only make the relay send fewer requests, never more; over any ``w`` seconds at most
    ``10 + 50 w`` leave its gate, and the sandbox allows ``60 + 60 w``. What load can do is
    bunch requests: a relay stalled ``s`` seconds sends the ``50 s`` requests that fell due
    meanwhile at once, while the sandbox's bucket refilled ``60 s`` (up to 60) during the
    same stall. A 429 needs a bunch beyond the sandbox's burst, that is a stall of more than a
    second, and then its Retry-After pauses every request of the relay (one shared pause), so
    the bucket refills before the next: a handful of 429s per such stall, never a storm."""
    box = sandbox_factory()
    box.faults(paths=[EVENTS], throttle={"rps": 60, "burst": 60, "retry_after_s": 1})
    s = scenario("limit-throttled", box)
    limit = Limit(50, 10)
    s.produce(backlog(s, 500, seed=2401), wait=True)
    relay = s.relay("a", **limit.env()).start()
    s.wait_complete(timeout=180, alive=[relay])
    figures = s.finish()

    requests, refused = taken(box), faulted(box)
    share = refused / (len(requests) + refused)
    figures.notes.update(
        requests=len(requests),
        answered_429=refused,
        share_429=round(share, 4),
        events_per_request=round(sum(r.events for r in requests) / len(requests), 2),
        busiest_1s=busiest(requests, 1.0),
    )
    report(figures)
    check_delivered(figures)
    assert share < 0.02, figures.notes


# -- the catch-up after an outage ---------------------------------------------------------------


def outage_with_backlog(
    s: Scenario, box: SandboxHandle, limit: Limit, seed: int, **env: str
) -> tuple[Figures, list[Taken]]:
    """150 records delivered, a 20 s outage (503s) while 250 more arrive, then the catch-up:
    the figures and the requests the sandbox accepted after the outage."""
    records = backlog(s, 400, seed)
    relay = s.relay("a", **limit.env(), **env).start()
    s.produce(records[:150], wait=True)
    s.wait_progress(1.0, timeout=120, alive=[relay])
    box.faults(paths=[EVENTS], outages=[{"start_in_s": 0, "duration_s": OUTAGE_S, "mode": "503"}])
    back = time.monotonic() + OUTAGE_S  # the sandbox's clock: it runs in this process
    s.produce(records[150:], rate=250 / (OUTAGE_S * 0.75))
    s.wait_complete(timeout=180, alive=[relay])
    figures = s.finish()
    after = [r for r in taken(box) if r.at >= back]
    assert faulted(box) > 0, "the outage was never hit"
    figures.notes.update(
        outage_s=OUTAGE_S,
        limit=f"{limit.rate:g}/s burst {limit.burst}",
        catch_up_requests=len(after),
        catch_up_events=sum(r.events for r in after),
        events_per_request=round(sum(r.events for r in after) / max(len(after), 1), 2),
        median_events_per_request=median(r.events for r in after) if after else 0,
        sizes=[r.events for r in after] if env else None,  # envelopes: events per request
        busiest={f"{w:g}s": busiest(after, w) for w in WINDOWS_S},
        allowed={f"{w:g}s": limit.allows(w) for w in WINDOWS_S},
    )
    return figures, after


def check_catch_up(after: list[Taken], limit: Limit) -> None:
    """At most ``rate x w + burst`` requests in any ``w`` seconds of the catch-up, at the
    sandbox. The backlog keeps the relay's bucket empty (it restarted empty when the API came
    back, and every token is taken as soon as it is due), so the burst is never spent during
    the catch-up: here it is the slack for the bunching a stalled relay causes (module doc),
    ``burst / rate`` seconds of stall."""
    assert after, "nothing was accepted after the outage: no catch-up to check"
    for w in WINDOWS_S:
        most = busiest(after, w)
        assert most <= limit.allows(w), (
            f"{most} requests in {w:g} s, the limit allows {limit.allows(w):g}"
        )


def test_the_catch_up_after_an_outage_keeps_to_the_rate_limit(
    scenario: ScenarioFactory, sandbox_factory: SandboxFactory, report: Report
) -> None:
    box = sandbox_factory()
    s = scenario("limit-outage", box)
    limit = Limit(25, 10)
    figures, after = outage_with_backlog(s, box, limit, seed=2402)
    report(figures)
    check_delivered(figures)
    check_catch_up(after, limit)


def test_with_envelopes_the_limit_counts_requests_and_envelopes_leave_full(
    scenario: ScenarioFactory, sandbox_factory: SandboxFactory, report: Report
) -> None:
    """RELAY_EVENTS_PER_REQUEST=20 at 4 requests/s: the catch-up keeps to 4 requests/s (not
    events), and the envelopes the rate limit holds fill up while they wait: the median request
    of the catch-up carries 16 events or more (an envelope is closed when its request has its
    token; closed at its 5 ms linger before waiting for it, they left with ~5). The mean is
    lower and only reported: the first requests after the outage carry envelopes closed while
    the breaker held them (the gate let them through; the API did not), the last ones the end
    of the backlog."""
    box = sandbox_factory(max_events_per_request=20)
    s = scenario("limit-outage-n20", box)
    limit = Limit(4, 2)
    figures, after = outage_with_backlog(s, box, limit, seed=2403, RELAY_EVENTS_PER_REQUEST="20")
    report(figures)
    check_delivered(figures)
    check_catch_up(after, limit)
    assert figures.notes["median_events_per_request"] >= 16, figures.notes
