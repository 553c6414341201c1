"""The semantic checks of an activity, each on the decode path (bytes written without checks)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from relay.config import load_settings
from relay.contract.activity import AssessmentAction, XpEarned
from relay.contract.build import Checks, activity_from_record
from relay.contract.catalogue import default_catalogue
from relay.contract.decode import Decoder
from relay.errors import Rejection
from tests.shared import (
    NOW,
    NS,
    OCCURRED,
    fixed_checks,
    full,
    minimal,
    plain_datum,
    raw_value,
)


def decode(short: str, record: dict[str, Any], checks: Checks | None = None) -> Any:
    decoder = Decoder(default_catalogue(), checks or fixed_checks())
    return decoder.decode_sync(raw_value(short, record))


def rejected(short: str, changes: dict[str, Any], checks: Checks | None = None) -> str:
    """The detail of the invalid-field rejection of ``full(short)`` with ``changes``."""
    with pytest.raises(Rejection) as caught:
        decode(short, {**full(short), **changes}, checks)
    assert (caught.value.stage, caught.value.reason) == ("validate", "invalid-field")
    return caught.value.detail


@pytest.mark.parametrize(
    "event_id",
    ["", "not-a-uuid", "0b6f1c7e3a594c1e9d6f2f6a8e4b7c10", "{0b6f1c7e-3a59-4c1e-9d6f-2f6a8e4b7c10}",
     "0b6f1c7e-3a59-4c1e-9d6f-2f6a8e4b7c1g", "urn:uuid:0b6f1c7e-3a59-4c1e-9d6f-2f6a8e4b7c10"],
)  # fmt: skip
def test_event_id_must_be_a_uuid(event_id: str) -> None:
    assert rejected("ResourceViewed", {"event_id": event_id}).startswith("event_id: must be a UUID")


def test_event_id_is_normalised_to_lower_case() -> None:
    upper = "0B6F1C7E-3A59-4C1E-9D6F-2F6A8E4B7C10"
    assert decode("ResourceViewed", {**full("ResourceViewed"), "event_id": upper}).event_id == (
        upper.lower()
    )


@pytest.mark.parametrize(
    ("value", "why"),
    [("", "must not be empty"), ("a b", "whitespace (U+0020 at 1)"), ("a\tb", "whitespace"),
     ("a\u00a0b", "whitespace"), ("a\u200bb", "invalid or control character (U+200B"),
     ("a\x00b", "control character")],
)  # fmt: skip
@pytest.mark.parametrize("field", ["student_id", "course_id", "resource.id"])
def test_ids_are_non_empty_without_whitespace(field: str, value: str, why: str) -> None:
    record = full("ResourceViewed")
    if field == "resource.id":
        record["resource"] = {**record["resource"], "id": value}
    else:
        record[field] = value
    with pytest.raises(Rejection) as caught:
        decode("ResourceViewed", record)
    assert caught.value.detail.startswith(f"{field}: ") and why in caught.value.detail


def test_session_and_nested_ids_are_checked() -> None:
    assert rejected("SessionChanged", {"session_id": " "}).startswith("session_id: ")
    bad_item = {"id": "", "name": "x"}
    assert rejected("QuestionAnswered", {"item": bad_item}).startswith("item.id: ")
    assert rejected("QuestionAnswered", {"assessment": bad_item}).startswith("assessment.id: ")


def test_names_and_responses_are_free_text() -> None:
    record = {**full("QuestionAnswered"), "item": {"id": "i-1", "name": ""}, "response": " \t"}
    activity = decode("QuestionAnswered", record)
    assert (activity.item.name, activity.response) == ("", " \t")
    assert rejected("XpEarned", {"subject": "  "}).startswith("subject: must not be blank")


@pytest.mark.parametrize("xp", [float("nan"), float("inf"), float("-inf")])
def test_xp_must_be_finite(xp: float) -> None:
    assert rejected("XpEarned", {"xp": xp}).startswith("xp: must be finite")
    assert rejected("XpEarned", {"xp": xp}, fixed_checks(allow_negative_xp=True))


def test_negative_xp_only_when_allowed() -> None:
    assert "RELAY_ALLOW_NEGATIVE_XP" in rejected("XpEarned", {"xp": -5.0})
    activity = decode(
        "XpEarned", {**full("XpEarned"), "xp": -5.0}, fixed_checks(allow_negative_xp=True)
    )
    assert activity.xp == -5.0
    assert decode("XpEarned", {**full("XpEarned"), "xp": 0.0}).xp == 0.0


@pytest.mark.parametrize("short", ["XpEarned", "AssessmentProgress", "QuestionAnswered"])
@pytest.mark.parametrize("attempt", [0, -1, -(2**31)])
def test_attempt_is_at_least_one(short: str, attempt: int) -> None:
    assert rejected(short, {"attempt": attempt}) == f"attempt: must be >= 1, got {attempt}"


def test_correct_questions_at_most_total() -> None:
    detail = rejected("AssessmentProgress", {"total_questions": 5, "correct_questions": 6})
    assert detail == "correct_questions: 6 exceeds total_questions 5"
    assert rejected("AssessmentProgress", {"total_questions": -1}).startswith("total_questions: ")
    assert rejected("AssessmentProgress", {"correct_questions": -1}).startswith("correct_questions")
    only_correct = {**full("AssessmentProgress"), "total_questions": None, "correct_questions": 3}
    assert decode("AssessmentProgress", only_correct).correct_questions == 3


@pytest.mark.parametrize("short", ["AssessmentProgress", "QuestionAnswered"])
def test_started_at_not_after_ended_at(short: str) -> None:
    later = OCCURRED + timedelta(milliseconds=1)
    assert rejected(short, {"started_at": later, "ended_at": OCCURRED}).startswith("ended_at: ")
    same = decode(short, {**full(short), "started_at": OCCURRED, "ended_at": OCCURRED})
    assert same.started_at == same.ended_at == OCCURRED
    open_ended = decode(short, {**full(short), "ended_at": None, "started_at": later})
    assert open_ended.ended_at is None


def test_occurred_at_at_most_max_clock_skew_in_the_future() -> None:
    checks = fixed_checks(max_clock_skew=60)
    at_limit = decode(
        "XpEarned", {**full("XpEarned"), "occurred_at": NOW + timedelta(seconds=60)}, checks
    )
    assert at_limit.occurred_at == NOW + timedelta(seconds=60)
    too_late = {"occurred_at": NOW + timedelta(seconds=60, milliseconds=1)}
    assert "RELAY_MAX_CLOCK_SKEW" in rejected("XpEarned", too_late, checks)
    long_ago = decode(
        "XpEarned", {**full("XpEarned"), "occurred_at": datetime(1999, 1, 1, tzinfo=UTC)}
    )
    assert long_ago.occurred_at.year == 1999


def test_occurred_at_against_the_system_clock() -> None:
    """Checks() reads the system clock (compared in epoch milliseconds, without a datetime for
    now): a record from a minute ago passes, one ten minutes ahead is over the 300 s skew."""
    checks = Checks()
    recent = datetime.now(UTC) - timedelta(minutes=1)
    passed = decode("XpEarned", {**full("XpEarned"), "occurred_at": recent}, checks)
    assert passed.occurred_at == recent.replace(microsecond=recent.microsecond // 1000 * 1000)
    ahead = {"occurred_at": datetime.now(UTC) + timedelta(minutes=10)}
    assert "RELAY_MAX_CLOCK_SKEW" in rejected("XpEarned", ahead, checks)
    assert "RELAY_MAX_CLOCK_SKEW" not in rejected(  # within the skew: only the bad xp is refused
        "XpEarned", {"occurred_at": datetime.now(UTC) + timedelta(minutes=4), "xp": -1.0}, checks
    )


@pytest.mark.parametrize(
    "event_id",
    ["0B6F1C7E-3A59-4C1E-9D6F-2F6A8E4B7C10", "0b6f1c7e-3a59-4C1E-9d6f-2f6a8e4b7c10"],
)
def test_event_ids_in_any_case_become_lower_case(event_id: str) -> None:
    assert decode("XpEarned", {**full("XpEarned"), "event_id": event_id}).event_id == (
        event_id.lower()
    )


@pytest.mark.parametrize(
    "event_id",
    [
        "0b6f1c7e-3a59-4c1e-9d6f-2f6a8e4b7c1\uff10",
        "\u212a" * 36,
        "0b6f1c7e-3a59-4c1e-9d6f-2f6a8e4b7c1\u0130",
    ],
)
def test_non_ascii_event_ids_are_refused(event_id: str) -> None:
    assert "event_id: must be a UUID" in rejected("XpEarned", {"event_id": event_id})


@pytest.mark.parametrize("field", ["occurred_at", "started_at", "ended_at"])
def test_timestamps_out_of_datetime_range(field: str) -> None:
    detail = rejected("AssessmentProgress", {field: 2**62})
    assert detail.startswith(f"{field}: ") and "out of range" in detail


def test_times_are_aware_utc_with_milliseconds() -> None:
    activity = decode("AssessmentProgress", full("AssessmentProgress"))
    for when in (activity.occurred_at, activity.started_at, activity.ended_at):
        assert when is not None and when.utcoffset() == timedelta(0)
    assert activity.occurred_at.microsecond == OCCURRED.microsecond != 0
    assert activity.action is AssessmentAction.SUBMITTED


def test_hand_built_records() -> None:
    """activity_from_record also takes aware datetimes and names what is missing or wrong."""
    record = {**minimal("XpEarned")}  # datetimes, no optional fields
    activity = activity_from_record(f"{NS}.XpEarned", record, fixed_checks())
    assert isinstance(activity, XpEarned) and activity.attempt == 1 and activity.course_id is None
    cases = {
        "event_id": (None, "event_id: must be a UUID"),
        "occurred_at": (datetime(2024, 1, 1), "occurred_at: datetime without a timezone"),
        "xp": ("12", "xp: expected a number, got str"),
        "activity": ({"id": "x"}, "activity.name: missing"),
    }
    for field, (value, detail) in cases.items():
        with pytest.raises(Rejection) as caught:
            activity_from_record(f"{NS}.XpEarned", {**record, field: value}, fixed_checks())
        assert caught.value.detail.startswith(detail), field
    without = {k: v for k, v in record.items() if k != "student_id"}
    with pytest.raises(Rejection, match="student_id: missing"):
        activity_from_record(f"{NS}.XpEarned", without, fixed_checks())
    with pytest.raises(Rejection, match="action: 'JUMPED' is not one of"):
        activity_from_record(
            f"{NS}.SessionChanged",
            {**minimal("SessionChanged"), "action": "JUMPED"},
            fixed_checks(),
        )
    with pytest.raises(Rejection) as caught:
        activity_from_record(f"{NS}.Nope", record, fixed_checks())
    assert (caught.value.stage, caught.value.reason) == ("decode", "unsupported-record")


def test_surrogates_in_free_text_are_rejected() -> None:
    record = {**plain_datum("QuestionAnswered", full("QuestionAnswered")), "response": "a\ud800"}
    with pytest.raises(Rejection, match=r"response: invalid character U\+D800 at 1"):
        activity_from_record(f"{NS}.QuestionAnswered", record, fixed_checks())


def test_checks_from_settings() -> None:
    checks = Checks.from_settings(load_settings(allow_negative_xp=True, max_clock_skew=12.5))
    assert (checks.allow_negative_xp, checks.max_clock_skew) == (True, 12.5)
    assert Checks().now().tzinfo is not None
    with pytest.raises(ValueError, match="max_clock_skew"):
        Checks(max_clock_skew=-1)


# -- the per-field byte cap (RELAY_MAX_FIELD_BYTES) -----------------------------------------------


def too_long(short: str, changes: dict[str, Any], cap: int) -> str:
    """The detail of the field-too-long rejection of ``full(short)`` with ``changes``."""
    with pytest.raises(Rejection) as caught:
        decode(short, {**full(short), **changes}, fixed_checks(max_field_bytes=cap))
    assert (caught.value.stage, caught.value.reason) == ("validate", "field-too-long")
    return caught.value.detail


def test_a_name_of_two_mib_is_valid_under_the_default_cap() -> None:
    # the poison corpus, secrets and paused-API trials send valid records with 1-2 MiB names
    name = "x" * (2 << 20)
    activity = decode("XpEarned", {**full("XpEarned"), "activity": {"id": "a-1", "name": name}})
    assert activity.activity.name == name


def test_a_field_over_the_cap_is_refused_naming_it_and_its_size_not_its_value() -> None:
    secretish = "Quokka-" * 200  # 1,400 bytes
    detail = too_long("XpEarned", {"activity": {"id": "a-1", "name": secretish}}, cap=1024)
    assert detail == (
        "activity.name: 1400 bytes of UTF-8, over the 1024-byte cap (RELAY_MAX_FIELD_BYTES)"
    )
    assert "Quokka" not in detail


@pytest.mark.parametrize("field", ["student_id", "course_id", "subject"])
def test_every_string_field_is_capped(field: str) -> None:
    assert too_long("XpEarned", {field: "s" * 2000}, cap=1024).startswith(f"{field}: 2000 bytes")


def test_the_cap_counts_utf8_bytes_not_characters() -> None:
    accented = "é" * 600  # 600 characters, 1,200 bytes
    assert too_long("ResourceViewed", {"resource": {"id": "r", "name": accented}}, cap=1024) == (
        "resource.name: 1200 bytes of UTF-8, over the 1024-byte cap (RELAY_MAX_FIELD_BYTES)"
    )
    emoji = "\N{BOOKS}" * 256  # 1,024 bytes: exactly the cap
    record = {**full("ResourceViewed"), "resource": {"id": "r", "name": emoji}}
    assert decode("ResourceViewed", record, fixed_checks(max_field_bytes=1024))


def test_the_cap_is_checked_before_the_other_field_checks() -> None:
    # an oversized id with a space in it: its size is the rejection, not the whitespace
    assert too_long("XpEarned", {"student_id": "a b" * 500}, cap=1024).startswith(
        "student_id: 1500 bytes"
    )


def test_the_cap_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_field_bytes"):
        Checks(max_field_bytes=0)
