"""Issue 16 items 1 and 6: an unexpected error for one record, planted by
tests/reliability/faulty_relay.py (no real input triggers one: see its docstring).

Item 1, decoding raises in the faust agent, before the record enters the in-order window. The
record must never be committed past, and /livez must fail. Proof by redeployment: after the buggy
relay ran, the same replica runs without the bug; if the offset was committed past, the record is
never read again and stays lost.

Item 6, mapping raises inside the window, on every attempt (a deterministic bug). /livez already
fails and the partition is blocked; but every restart meets the same record. After a few restarts
on the same offset it must be dead-lettered as ``relay/processing-bug`` with the exception type,
never the message, and the records behind it delivered.

A failure looks like: item 1, ``lost == 1`` (the record is gone, its offset committed) or /livez
200 throughout; item 6, no ``relay/processing-bug`` dead letter after three restarts.
"""

from __future__ import annotations

import contextlib
import time

import pytest

from relay.tools.traffic import TrafficGenerator
from tests.integration.conftest import SandboxFactory
from tests.reliability.conftest import Report, ScenarioFactory
from tests.reliability.faulty_relay import SECRET_MARK
from tests.reliability.harness import requires_relay
from tests.reliability.ledger import Expected, expectations
from tests.reliability.probes import (
    committed,
    livez,
    locate,
    restart_while_stuck,
    with_planted_bug,
    without_planted_bug,
)
from tests.reliability.scenario import Scenario

pytestmark = [requires_relay, pytest.mark.reliability, pytest.mark.timeout(240)]

RECORDS = 120
RESTARTS = 3  # restarts on the same offset before a processing bug must be quarantined


def _setup(s: Scenario, seed: int) -> tuple[list[Expected], Expected]:
    plan = TrafficGenerator(students=6, seed=seed).plan(RECORDS)
    s.seed_roster(plan)
    records = expectations(plan)
    bug = next(r for r in records[RECORDS // 3 :] if r.valid)  # not the first: acks before it
    return records, bug


def _others_delivered(s: Scenario, bug: Expected) -> bool:
    s.poll()
    wanted = [i for r in s.expected if r.valid and r is not bug for i in r.event_ids]
    return s.watch.delivered(wanted) == len(wanted)


def _delivered(s: Scenario, records: list[Expected]) -> bool:
    wanted = [i for r in records if r.valid for i in r.event_ids]
    return s.watch.delivered(wanted) == len(wanted)


def test_decode_error_before_the_window_never_commits_past_the_record(
    scenario: ScenarioFactory, sandbox_factory: SandboxFactory, report: Report
) -> None:
    s = scenario("decode-bug", sandbox_factory(), partitions=1)
    records, bug = _setup(s, 161)
    relay = with_planted_bug(s.relay("a"), "decode", bug.event_id).start()
    relay.wait_assigned()
    s.produce(records, wait=True)
    partition, offset = locate(s.bootstrap, s.topic, bug.value)

    # Everything else is delivered, or the relay is blocked at the record (also acceptable):
    # /livez 503 and the records before it delivered. A blocked partition stays blocked until a
    # restart (runtime.processing_bug; health.broke is never undone), so waiting longer
    # only watches a state that no longer changes; the 45 s are a guard against neither.
    live: list[int | None] = []
    before = records[: records.index(bug)]  # one partition: the records ahead of the bug
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline and not _others_delivered(s, bug):
        live.append(livez(relay) if relay.alive else None)
        if live[-1] == 503 and _delivered(s, before):
            break
        time.sleep(0.5)
    time.sleep(3)  # broker_commit_interval is 1 s: let any commit land, one past it included
    live.append(livez(relay) if relay.alive else None)
    after = committed(s.bootstrap, s.group, s.topic, partition)
    log = relay.logs()
    relay.kill()

    # The bug is fixed and the replica redeployed: it resumes from the committed offset. Had
    # that passed the record, it is never read again (nothing to wait for).
    without_planted_bug(relay).start()
    relay.wait_assigned()
    if after is None or after <= offset:
        with contextlib.suppress(AssertionError):  # reconciled below
            s.wait_complete(timeout=20, alive=[relay])
    figures = s.finish()
    figures.notes.update(
        planted_offset=offset, committed_after_bug=after, livez=sorted(set(map(str, live)))
    )
    report(figures)

    assert "PlantedBug at " in log, "the planted bug never fired: the trial proves nothing"
    assert SECRET_MARK not in log, "the exception's message (it may quote the record) was logged"
    assert after is None or after <= offset, f"committed {after} past the record at {offset}"
    assert 503 in live, f"/livez never failed while the record was stuck: {live[-5:]}"
    assert figures.lost == 0, figures.problems


def test_a_deterministic_processing_bug_is_quarantined_after_restarts(
    scenario: ScenarioFactory, sandbox_factory: SandboxFactory, report: Report
) -> None:
    s = scenario("map-bug", sandbox_factory(), partitions=1)
    records, bug = _setup(s, 162)
    bug = Expected(bug.key, bug.value, bug.event_id, bug.record_type, "processing-bug",
                   ("relay", "processing-bug"))  # fmt: skip
    expected = [bug if r.event_id == bug.event_id else r for r in records]
    relay = with_planted_bug(s.relay("a"), "map", bug.event_id).start()
    relay.wait_assigned()
    s.produce(expected, wait=True)

    # The orchestrator: /livez fails (or the record is already quarantined), restart.
    restarts = restart_while_stuck(s, relay, RESTARTS)
    with contextlib.suppress(AssertionError):  # reconciled below
        s.wait_complete(timeout=10, alive=[relay])
    figures = s.finish(trials=restarts)
    figures.notes["restarts"] = restarts
    report(figures)

    assert "relay/processing-bug" in figures.dlq_by_reason, figures.dlq_by_reason
    letter = next(x for x in s.dlq_watch.letters if x.value == bug.value)
    detail = b" ".join(v for k, v in letter.headers.items() if k.startswith("relay."))
    assert b"PlantedBug" in detail, "the dead letter names the exception type"
    assert SECRET_MARK.encode() not in detail, "the exception's message leaked into the DLQ"
    assert figures.lost == 0 and figures.dlq_unexpected == 0, figures.problems
