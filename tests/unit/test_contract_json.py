"""JSON input (``relay map``) and encode arguments: accepted exactly as decoded records are."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from confluent_kafka.schema_registry import AsyncSchemaRegistryClient

from relay.contract import encode
from relay.contract.activity import AssessmentAction, XpEarned
from relay.contract.build import Checks
from relay.contract.catalogue import default_catalogue
from relay.contract.decode import Decoder
from relay.contract.json_input import activity_from_json
from relay.errors import Rejection
from tests.shared import (
    EVENT_ID,
    NOW,
    NS,
    OCCURRED,
    SHORT_NAMES,
    fixed_checks,
    full,
    minimal,
)


def as_json(record: dict[str, Any]) -> dict[str, Any]:
    """The sample as a JSON document would carry it: ISO-8601 strings for times."""
    return json.loads(json.dumps(record, default=lambda value: value.isoformat()))


def from_json(obj: dict[str, Any], checks: Checks | None = None) -> Any:
    return activity_from_json(obj, default_catalogue(), checks or fixed_checks())


def detail_of(obj: dict[str, Any]) -> str:
    with pytest.raises(Rejection) as caught:
        from_json(obj)
    assert (caught.value.stage, caught.value.reason) == ("validate", "invalid-field")
    return caught.value.detail


@pytest.mark.parametrize("short", SHORT_NAMES)
@pytest.mark.parametrize("sample", [full, minimal], ids=["full", "minimal"])
def test_json_gives_what_decoding_the_encoded_record_gives(short: str, sample: Any) -> None:
    record = sample(short)
    decoded = Decoder(default_catalogue(), fixed_checks()).decode_sync(encode(short, record))
    assert from_json({"type": short, **as_json(record)}) == decoded
    assert from_json({"type": f"{NS}.{short}", **as_json(record)}) == decoded


def test_times_in_every_accepted_form() -> None:
    millis = (OCCURRED - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    offset = OCCURRED.astimezone(timezone(timedelta(hours=-5))).isoformat()
    zulu = OCCURRED.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    for form in (millis, float(millis), offset, zulu, OCCURRED):
        obj = {"type": "ResourceViewed", **minimal("ResourceViewed"), "occurred_at": form}
        assert from_json(obj).occurred_at == OCCURRED, form


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        ({"occurred_at": "2024-05-01T12:00:00"}, "occurred_at: date-time without a timezone"),
        ({"occurred_at": "yesterday"}, "occurred_at: 'yesterday' is not an ISO-8601 date-time"),
        ({"occurred_at": True}, "occurred_at: expected an ISO-8601 string or epoch milliseconds"),
        ({"xp": "12"}, "xp: expected a number, got str"),
        ({"xp": None}, "xp: expected a number, got null"),
        ({"attempt": 1.5}, "attempt: expected an integer, got float"),
        ({"attempt": 2**31}, "attempt: 2147483648 does not fit an Avro int"),
        ({"activity": {"id": 7, "name": "n"}}, "activity.id: expected a string, got int"),
        ({"activity": {"id": "a"}}, "activity.name: missing"),
        ({"activity": {"id": "a", "name": "n", "url": "x"}}, "activity.url: unknown field"),
        ({"activity": "lesson-1"}, "activity: expected an object, got str"),
        ({"course_id": 5}, "course_id: expected a string, got int"),
        ({"corse_id": "c"}, "corse_id: unknown field"),
        ({"xp": float("nan")}, "xp: must be finite"),
        ({"student_id": "a\ud800b"}, "student_id: must not contain an invalid or control char"),
    ],
)
def test_json_errors_name_the_field(change: dict[str, Any], detail: str) -> None:
    obj = {"type": "XpEarned", **as_json(full("XpEarned")), **change}
    assert detail_of(obj).startswith(detail)


def test_missing_required_fields_and_enums() -> None:
    obj = {"type": "XpEarned", **as_json(full("XpEarned"))}
    del obj["xp"]
    assert detail_of(obj) == "xp: missing"
    bad_action = {"type": "SessionChanged", **as_json(full("SessionChanged")), "action": "BYE"}
    assert detail_of(bad_action).startswith("action: 'BYE' is not one of LOGGED_IN")
    enum_member = {**full("AssessmentProgress"), "action": AssessmentAction.STARTED}
    enum_member["type"] = "AssessmentProgress"
    assert from_json(enum_member).action is AssessmentAction.STARTED


@pytest.mark.parametrize("obj", [{"xp": 1}, {"type": "XpBurned"}, {"type": 3}, ["XpEarned"]])
def test_unknown_or_missing_type_is_unsupported(obj: Any) -> None:
    with pytest.raises(Rejection) as caught:
        from_json(obj)
    assert (caught.value.stage, caught.value.reason) == ("decode", "unsupported-record")


def test_semantic_checks_apply_to_json_too() -> None:
    future = {"type": "XpEarned", **as_json(full("XpEarned"))}
    future["occurred_at"] = (NOW + timedelta(hours=1)).isoformat()
    assert detail_of(future).startswith("occurred_at: ")
    negative = {"type": "XpEarned", **as_json(full("XpEarned")), "xp": -3}
    assert detail_of(negative).startswith("xp: must be >= 0")
    corrected = from_json(negative, fixed_checks(allow_negative_xp=True))
    assert isinstance(corrected, XpEarned) and corrected.xp == -3.0


# -- encode arguments ---------------------------------------------------------------------------


def test_encode_refuses_what_the_relay_would_refuse() -> None:
    with pytest.raises(Rejection, match="attempt: must be >= 1"):
        encode("XpEarned", {**full("XpEarned"), "attempt": 0})
    with pytest.raises(Rejection, match="unknown record type 'Xp'"):
        encode("Xp", full("XpEarned"))
    negative = {**full("XpEarned"), "xp": -2.0}
    encode("XpEarned", negative)  # a correction: the relay's setting decides
    with pytest.raises(Rejection, match="xp: must be >= 0"):
        encode("XpEarned", negative, checks=Checks())


def test_encode_accepts_uuid_objects_and_keeps_the_schema_default() -> None:
    record = {**minimal("XpEarned"), "event_id": uuid.UUID(EVENT_ID)}
    activity = Decoder(default_catalogue(), fixed_checks()).decode_sync(encode("XpEarned", record))
    assert isinstance(activity, XpEarned)
    assert activity.event_id == EVENT_ID and activity.attempt == 1


def test_encode_argument_errors() -> None:
    with pytest.raises(ValueError, match="registry: a SchemaRegistryClient is required"):
        encode("XpEarned", full("XpEarned"), framing="confluent")
    with pytest.raises(ValueError, match="framing: must be"):
        encode("XpEarned", full("XpEarned"), framing="avro")  # type: ignore[arg-type]
    async_client = AsyncSchemaRegistryClient.new_client({"url": "mock://encode-async"})
    with pytest.raises(ValueError, match="synchronous"):
        encode("XpEarned", full("XpEarned"), framing="confluent", registry=async_client)  # type: ignore[arg-type]
    with pytest.raises(Rejection, match="record: expected a mapping"):
        encode("XpEarned", [1, 2])  # type: ignore[arg-type]
