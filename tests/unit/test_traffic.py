"""The synthetic traffic plan: valid records decode, planted ones fail the way the plan says."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from relay.contract.activity import SessionChanged, XpEarned
from relay.contract.build import Checks
from relay.contract.catalogue import default_catalogue
from relay.contract.decode import Decoder
from relay.errors import Rejection
from relay.tools.traffic import INVALID_KINDS, TrafficGenerator


@pytest.fixture(scope="module")
def decoder() -> Decoder:
    return Decoder(default_catalogue(), Checks())


def test_valid_records_decode_to_what_was_planned(decoder: Decoder) -> None:
    plan = TrafficGenerator(students=5, seed=1).plan(300)
    assert not plan.invalid()
    xp: dict[str, float] = dict.fromkeys(plan.students, 0.0)
    for record in plan.records:
        activity = decoder.decode_sync(record.value)
        assert (activity.event_id, activity.student_id) == (record.event_id, record.student_id)
        assert record.key == activity.student_id.encode()
        if isinstance(activity, XpEarned):
            xp[activity.student_id] += activity.xp
    assert xp == plan.expected_xp() and sum(xp.values()) > 0
    assert set(plan.counts()) == {
        "XpEarned",
        "AssessmentProgress",
        "QuestionAnswered",
        "ResourceViewed",
        "SessionChanged",
    }


def test_sessions_open_before_a_students_activity(decoder: Decoder) -> None:
    plan = TrafficGenerator(students=4, seed=2).plan(200)
    seen: set[str] = set()
    for record in plan.records:
        activity = decoder.decode_sync(record.value)
        if record.student_id not in seen:
            assert isinstance(activity, SessionChanged) and activity.action == "LOGGED_IN"
            seen.add(record.student_id)


def test_planted_records_fail_with_their_planned_reason(decoder: Decoder) -> None:
    plan = TrafficGenerator(students=5, invalid_ratio=0.5, seed=3).plan(400)
    planted = plan.invalid()
    assert {r.invalid_kind for r in planted} == set(INVALID_KINDS)
    for record in planted:
        stage, reason = INVALID_KINDS[record.invalid_kind or ""]
        if stage == "enrich":  # decodes fine; the course/subject stage rejects it
            assert decoder.decode_sync(record.value).event_id == record.event_id
            continue
        with pytest.raises(Rejection) as caught:
            decoder.decode_sync(record.value)
        assert (caught.value.stage, caught.value.reason) == (stage, reason)
    assert all(record.xp == 0 for record in planted)


def test_same_seed_same_plan() -> None:
    start = datetime(2026, 5, 1, tzinfo=UTC)
    a = TrafficGenerator(students=3, invalid_ratio=0.1, seed=9, start=start).plan(50)
    b = TrafficGenerator(students=3, invalid_ratio=0.1, seed=9, start=start).plan(50)
    assert [r.value for r in a.records] == [r.value for r in b.records]


def test_activity_times_never_lie_in_the_future(decoder: Decoder) -> None:
    # A large plan must not run past "now" (the relay rejects far-future occurred_at).
    plan = TrafficGenerator(students=3, seed=4).plan(5000)
    last = decoder.decode_sync(plan.records[-1].value).occurred_at
    assert last <= datetime.now(UTC)


def test_bad_arguments_name_the_option() -> None:
    with pytest.raises(ValueError, match="invalid_ratio"):
        TrafficGenerator(invalid_ratio=2)
    with pytest.raises(ValueError, match="types"):
        TrafficGenerator(types=("Nope",))
