"""The poison corpus, between good records: each poison record ends in the DLQ with its reason
(and its original bytes), the good records before, between and after it are all delivered, and
the relay never stops (same process throughout)."""

from __future__ import annotations

import pytest

from relay.tools.traffic import TrafficGenerator
from tests.integration.conftest import SandboxFactory
from tests.reliability.conftest import Report, ScenarioFactory
from tests.reliability.harness import requires_relay
from tests.reliability.ledger import Expected, expectations
from tests.reliability.poison import POISON_KINDS, PoisonCorpus

pytestmark = [requires_relay, pytest.mark.reliability, pytest.mark.timeout(300)]

GOOD = 1200


def test_poison_corpus_is_dead_lettered_and_good_records_keep_flowing(
    scenario: ScenarioFactory, sandbox_factory: SandboxFactory, report: Report
) -> None:
    box = sandbox_factory()
    s = scenario("poison", box, partitions=3)
    plan = TrafficGenerator(students=12, seed=51).plan(GOOD)
    good = expectations(plan)
    s.seed_roster(plan)
    # Poison of several students, so it lands on several partitions.
    poison: list[Expected] = []
    for n, student in enumerate(plan.students[:3]):
        course = next(c for c in plan.courses if c.id == plan.enrollments[student])
        poison += PoisonCorpus(student, course.id, course.subject, seed=n).corpus()
    assert len({p.value for p in poison}) == len(poison) - 2  # empty values are all b""
    poison = _unique(poison)

    # good, then poison spread through good, then good: the tail must be delivered too.
    third = GOOD // 3
    middle, pending = good[third : 2 * third], iter(poison)
    every = len(middle) // (len(poison) + 1)
    mixed: list[Expected] = []
    for i, record in enumerate(middle, 1):
        mixed.append(record)
        if i % every == 0:
            mixed.extend(p for p in [next(pending, None)] if p is not None)
    mixed.extend(pending)
    records = good[:third] + mixed + good[2 * third :]
    assert len(records) == len(good) + len(poison)

    relay = s.relay("a").start()
    relay.wait_assigned()
    s.produce(records, rate=300)
    s.wait_complete(timeout=240, alive=[relay])
    assert relay.starts == 1
    figures = s.finish()
    figures.notes["poison_kinds"] = sorted({p.kind for p in poison})
    report(figures)

    assert figures.planted == len(poison)
    assert figures.dlq_missing == 0 and figures.dlq_wrong_reason == 0, figures.problems
    assert figures.dlq_unexpected == 0, figures.problems
    assert figures.lost == 0, figures.problems
    assert figures.notes["sigterm_exit"] == {"a": 0}, "SIGTERM: a clean exit"
    assert figures.planted_leaked == 0, "a poison record's event reached the API"
    assert figures.ok
    # Every kind of the corpus was tried.
    assert {p.kind for p in poison} == set(POISON_KINDS)

    # Each dead letter says where the record came from and why, in its headers.
    by_value = {letter.value: letter for letter in s.dlq_watch.letters}
    for record in poison:
        h = by_value[record.value].headers
        assert h["relay.source.topic"].decode() == s.topic, record.kind
        assert int(h["relay.source.offset"]) >= 0 and int(h["relay.source.partition"]) >= 0
        assert h.get("relay.detail"), f"{record.kind}: no detail"
        if record.kind in ("nan-xp", "inf-xp", "-inf-xp"):
            assert h["relay.detail"].startswith(b"xp:"), h["relay.detail"]
        if record.kind == "far-future":
            assert h["relay.detail"].startswith(b"occurred_at:"), h["relay.detail"]
        if record.kind == "oversized-2mb":
            assert h["relay.http.status"] == b"413", h.get("relay.http.status")
            assert h["relay.event_ids"].decode() == record.first_event_id()


def _unique(records: list[Expected]) -> list[Expected]:
    """Planted records are matched in the DLQ by value: keep one of identical values."""
    seen: set[bytes] = set()
    out = []
    for r in records:
        if r.value not in seen:
            seen.add(r.value)
            out.append(r)
    return out
