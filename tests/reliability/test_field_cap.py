"""Issue 16 item 9, "no field length cap": a string field over RELAY_MAX_FIELD_BYTES (UTF-8
bytes) is dead-lettered as validate/field-too-long, its dead letter naming the field and its size
but not its value, and the records after it (the same student's included) are delivered.

The relay runs with a 64 KiB cap (the 4 MiB default is above what the local broker's 4 MiB
records can carry beside their other fields): planted are an ASCII name of 100 KiB and a name of
25,000 three-byte characters (75,000 bytes: over the cap in bytes, under it in characters); a
60 KiB name, under the cap, must be delivered. A failure: an oversized record delivered or
dead-lettered for another reason, the value in a dead-letter header, a later record lost.
"""

from __future__ import annotations

import pytest

from relay.tools.traffic import TrafficGenerator
from tests.integration.conftest import SandboxFactory
from tests.reliability.conftest import Report, ScenarioFactory
from tests.reliability.harness import requires_relay
from tests.reliability.ledger import Expected, caliper_ids, expectations
from tests.reliability.poison import PoisonCorpus

pytestmark = [requires_relay, pytest.mark.reliability, pytest.mark.timeout(180)]

CAP = 64 * 1024
MARK = "Quokka-4711-"  # in every oversized value: it must reach no dead-letter header
TOO_LONG = ("validate", "field-too-long")


def named(corpus: PoisonCorpus, name: str, reason: tuple[str, str] | None) -> Expected:
    """An XpEarned of the corpus's student whose activity is called ``name``."""
    big = {"id": f"{corpus.course_id}/lessons/long-name", "name": name}
    fields, value = corpus.good(activity=big)
    ids = () if reason else caliper_ids([value])[0]
    kind = "XpEarned" if reason is None else "field-too-long"
    return Expected(corpus.student.encode(), value, fields["event_id"], "XpEarned", kind,
                    reason, ids)  # fmt: skip


def test_a_field_over_the_byte_cap_is_dead_lettered_and_later_records_flow(
    scenario: ScenarioFactory, sandbox_factory: SandboxFactory, report: Report
) -> None:
    box = sandbox_factory()
    s = scenario("field-cap", box)
    plan = TrafficGenerator(students=4, seed=191).plan(160)
    student = plan.students[0]
    course = next(c for c in plan.courses if c.id == plan.enrollments[student])
    corpus = PoisonCorpus(student, course.id, course.subject, seed=19)
    ascii_long = named(corpus, MARK * (100 * 1024 // len(MARK)), TOO_LONG)
    wide_long = named(corpus, MARK + "\u20ac" * 25_000, TOO_LONG)  # 75,012 bytes
    under = named(corpus, "x" * (60 * 1024), None)
    good = expectations(plan)
    records = [*good[:80], ascii_long, wide_long, under, *good[80:]]
    s.seed_roster(plan)

    relay = s.relay("a", RELAY_MAX_FIELD_BYTES=str(CAP)).start()
    relay.wait_assigned()
    s.produce(records, wait=True)
    s.wait_complete(timeout=120, alive=[relay])
    figures = s.finish()
    letters = {x.value: x for x in s.dlq_watch.letters}
    details = [letters[x.value].headers["relay.detail"].decode() if x.value in letters else None
               for x in (ascii_long, wide_long)]  # fmt: skip
    figures.notes["details"] = details
    report(figures)

    assert figures.lost == 0, figures.problems
    assert figures.dlq_total == 2 and figures.dlq_by_reason == {"validate/field-too-long": 2}
    assert figures.dlq_missing == 0 and figures.dlq_wrong_reason == 0, figures.problems
    assert figures.planted_leaked == 0
    cap = "over the 65536-byte cap (RELAY_MAX_FIELD_BYTES)"
    assert details == [f"activity.name: {n} bytes of UTF-8, {cap}" for n in (102396, 75012)]
    for letter in letters.values():
        headers = b"".join(v for k, v in letter.headers.items() if k.startswith("relay."))
        assert MARK.encode() not in headers, "the field's value reached a dead-letter header"
