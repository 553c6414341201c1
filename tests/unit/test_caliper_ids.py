"""relay.caliper.ids: deterministic event ids, the .SSSZ time format, IRIs."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.caliper.ids import (
    MEMO_LIMIT,
    EventIds,
    Iris,
    activity_iri,
    app_iri,
    course_iri,
    event_id,
    format_time,
    is_absolute_iri,
    parse_course_id,
    session_iri,
    user_iri,
)
from relay.caliper.validate.terms import DATETIME, EVENT_ID
from relay.errors import Rejection

NS = uuid.UUID("6f1d2c3a-8b4e-5f60-9a7b-c8d9e0f1a2b3")
BASE = "https://api.alpha-1edtech.ai"

# --- event ids --------------------------------------------------------------------------------


def test_event_id_is_the_uuid5_urn_of_type_event_and_index() -> None:
    name = "timeback.activity.XpEarned\x1fe-1\x1f0"
    assert event_id(NS, "timeback.activity.XpEarned", "e-1", 0) == uuid.uuid5(NS, name).urn


@given(st.text(min_size=1), st.text(min_size=1), st.integers(0, 5))
def test_event_id_is_deterministic_valid_and_the_mappers_maker_agrees(
    record_type: str, producer_id: str, index: int
) -> None:
    first = event_id(NS, record_type, producer_id, index)
    assert first == event_id(NS, record_type, producer_id, index)
    ids = EventIds(NS)
    assert first == ids(record_type, producer_id, index) == ids(record_type, producer_id, index)
    # the version and variant digits written as text are uuid5's, for any digest
    name = f"{record_type}\x1f{producer_id}\x1f{index}"
    assert first == uuid.uuid5(NS, name).urn
    assert EVENT_ID.match(first)


def test_event_ids_differ_by_index_record_type_event_and_namespace() -> None:
    ids = {
        event_id(NS, "timeback.activity.QuestionAnswered", "e-1", 0),
        event_id(NS, "timeback.activity.QuestionAnswered", "e-1", 1),
        event_id(NS, "timeback.activity.XpEarned", "e-1", 0),
        event_id(NS, "timeback.activity.QuestionAnswered", "e-2", 0),
        event_id(uuid.uuid4(), "timeback.activity.QuestionAnswered", "e-1", 0),
    }
    assert len(ids) == 5


def test_event_id_name_parts_cannot_run_together() -> None:
    # "a" + "b1" and "ab" + "1" must not hash the same name
    assert event_id(NS, "a", "b1", 0) != event_id(NS, "ab", "1", 0)
    assert event_id(NS, "t", "e1", 1) != event_id(NS, "t", "e", 11)


# --- times ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (datetime(2026, 1, 15, 14, 30, tzinfo=UTC), "2026-01-15T14:30:00.000Z"),  # microsecond 0
        (datetime(2026, 1, 15, 14, 30, 5, 999_999, tzinfo=UTC), "2026-01-15T14:30:05.999Z"),
        (datetime(2026, 1, 15, 14, 30, 5, 1_000, tzinfo=UTC), "2026-01-15T14:30:05.001Z"),
        (datetime(2026, 1, 15, 14, 30, 5, 999, tzinfo=UTC), "2026-01-15T14:30:05.000Z"),
        # non-UTC offsets are converted, across a day boundary too
        (
            datetime(2026, 1, 15, 23, 30, tzinfo=timezone(timedelta(hours=-5))),
            "2026-01-16T04:30:00.000Z",
        ),
        (datetime(2026, 7, 1, 2, 0, tzinfo=ZoneInfo("Europe/Paris")), "2026-07-01T00:00:00.000Z"),
        (datetime(2026, 1, 1, 12, 0, tzinfo=ZoneInfo("UTC")), "2026-01-01T12:00:00.000Z"),
        (datetime(2026, 3, 1, 8, 0), "2026-03-01T08:00:00.000Z"),  # naive: taken as UTC
        (datetime(5, 1, 2, tzinfo=UTC), "0005-01-02T00:00:00.000Z"),  # years padded to 4
    ],
)
def test_format_time(when: datetime, expected: str) -> None:
    assert format_time(when) == expected


@given(st.datetimes(timezones=st.timezones()))
def test_format_time_always_matches_the_caliper_pattern_and_keeps_the_instant(
    when: datetime,
) -> None:
    text = format_time(when)
    assert DATETIME.match(text)
    back = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert timedelta(0) <= when - back < timedelta(milliseconds=1)  # truncated, never rounded up


# --- IRIs -------------------------------------------------------------------------------------


def test_user_course_app_iris() -> None:
    assert user_iri(BASE, "stu-1") == f"{BASE}/rostering/1.0/users/stu-1"
    assert course_iri(BASE, "math 5/a") == f"{BASE}/rostering/1.0/courses/math%205%2Fa"
    assert app_iri(BASE, "my-app") == f"{BASE}/applications/1.0/my-app"
    full = "https://example.org/apps/mine"
    assert app_iri(BASE, full) == full  # RELAY_APP_ID may already be the IRI


@pytest.mark.parametrize(
    "iri",
    ["https://app.example.com/lessons/1", "http://x.org/a?b=c", "urn:isbn:0451450523", "tag:a,1:b"],
)
def test_absolute_activity_iri_stays(iri: str) -> None:
    assert activity_iri(iri, None) == iri
    assert activity_iri(iri, "https://base.example") == iri


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        ("lesson-1", "https://base.example/a/lesson-1"),
        ("math5/lesson 3", "https://base.example/a/math5/lesson%203"),  # "/" kept, space encoded
        ("math:lesson-3", "https://base.example/a/math:lesson-3"),  # not a scheme we recognise
        ("100%", "https://base.example/a/100%25"),
    ],
)
def test_local_activity_id_goes_under_the_base(local: str, expected: str) -> None:
    assert activity_iri(local, "https://base.example/a") == expected


def test_local_activity_id_without_a_base_is_a_map_rejection_naming_the_setting() -> None:
    with pytest.raises(Rejection) as caught:
        activity_iri("lesson-1", None)
    assert (caught.value.stage, caught.value.reason) == ("map", "activity-iri-unresolved")
    assert "RELAY_ACTIVITY_BASE_URL" in caught.value.detail


@given(st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=30))
def test_iris_remember_what_the_functions_make(ids: list[str]) -> None:
    iris = Iris(BASE, "https://base.example/a")
    for _ in range(2):  # made, then remembered: the same answer
        for value in ids:
            assert iris.user(value) == user_iri(BASE, value)
            assert iris.course(value) == course_iri(BASE, value)
            assert iris.activity(value) == activity_iri(value, "https://base.example/a")


def test_iris_refuse_a_local_activity_without_a_base_every_time_and_stay_bounded() -> None:
    iris = Iris(BASE, None)
    for _ in range(2):  # a refusal is never remembered
        with pytest.raises(Rejection, match="RELAY_ACTIVITY_BASE_URL"):
            iris.activity("lesson-1")
    for n in range(MEMO_LIMIT + 10):
        assert iris.user(f"s{n}") == user_iri(BASE, f"s{n}")
    assert len(iris._users) <= MEMO_LIMIT  # started afresh at the limit


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("math-5", "math-5"),
        (f"{BASE}/rostering/1.0/courses/math-5", "math-5"),
        ("https://other.host/rostering/1.0/courses/math-5/", "math-5"),
        (f"{BASE}/rostering/1.0/courses/math%205", "math 5"),
    ],
)
def test_parse_course_id(value: str, expected: str) -> None:
    assert parse_course_id(value) == expected
    assert parse_course_id(course_iri(BASE, expected)) == expected  # round trip


@pytest.mark.parametrize(
    "value", ["", "  ", "https://app.example.com/courses/7", f"{BASE}/rostering/1.0/courses/a/b"]
)
def test_parse_course_id_refuses_what_is_no_course(value: str) -> None:
    with pytest.raises(ValueError):
        parse_course_id(value)


def test_session_iri() -> None:
    u = "6F1D2C3A-8B4E-4F60-9A7B-C8D9E0F1A2B3"
    assert session_iri(NS, u) == "urn:uuid:" + u.lower()
    assert session_iri(NS, "https://app/s/1") == "https://app/s/1"
    derived = session_iri(NS, "sess-1")
    assert derived.startswith("urn:uuid:") and derived == session_iri(NS, "sess-1")
    assert derived != session_iri(NS, "sess-2")


@given(st.uuids(), st.sampled_from([str, str.upper, lambda s: "{" + s + "}", lambda s: s[:-1]]))
def test_a_uuid_session_id_becomes_its_urn_in_every_form_uuid_accepts(
    value: uuid.UUID, form: Callable[[str], str]
) -> None:
    text = form(str(value))
    try:
        expected = uuid.UUID(text).urn
    except ValueError:  # one digit short: not a UUID, so a UUIDv5 of the text
        expected = uuid.uuid5(NS, "session\x1f" + text).urn
    assert session_iri(NS, text) == expected


def test_is_absolute_iri() -> None:
    assert is_absolute_iri("https://a.b/c")
    assert is_absolute_iri("URN:x:y")
    assert not is_absolute_iri("lesson 1")
    assert not is_absolute_iri("https://a b")
    assert not is_absolute_iri("mailto-ish:x")


def test_characters_an_iri_may_not_hold_are_escaped_in_absolute_ids() -> None:
    assert activity_iri('https://a.b/x<y>"{|}^`\\', None) == (
        "https://a.b/x%3Cy%3E%22%7B%7C%7D%5E%60%5C"
    )
    assert session_iri(NS, "urn:s:<1>") == "urn:s:%3C1%3E"
