"""The dead-letter record format (docs/dead-letters.md): original headers kept, old
``relay.*`` headers replaced (the replay count survives), details and bodies capped and masked."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError

from relay import __version__
from relay.errors import Rejection
from relay.pipeline.deadletter import (
    BODY_CAP,
    DETAIL_CAP,
    DeadLetterWriteFailed,
    dead_letter_headers,
)
from relay.pipeline.record import SourceRecord

FIRST, LAST = 1767225600.0, 1767225601.5  # 2026-01-01T00:00:00Z and 1.5 s later


def record(headers: list[tuple[str, bytes]] | None = None) -> SourceRecord:
    return SourceRecord(
        topic="timeback.activity",
        partition=2,
        offset=41,
        timestamp=FIRST - 10,
        key=b"student-1",
        value=b"\xc3\x01payload",
        headers=headers or [],
    )


def build(rejection: Rejection, rec: SourceRecord | None = None, **kw: object) -> dict[str, str]:
    headers = dead_letter_headers(
        rec or record(),
        rejection,
        first_failure=FIRST,
        last_failure=LAST,
        **kw,  # type: ignore[arg-type]
    )
    names = [k for k, _ in headers]
    assert len(names) == len(set(names)), f"a header appears twice: {names}"
    return {k: v.decode() for k, v in headers}


def test_every_header_of_an_api_rejection() -> None:
    rejection = Rejection("deliver", "api-rejected", "HTTP 400", status=400, body='{"e":1}')
    h = build(rejection, event_ids=["urn:uuid:a", "urn:uuid:b"], attempts=3)
    assert h == {
        "relay.stage": "deliver",
        "relay.reason": "api-rejected",
        "relay.detail": "HTTP 400",
        "relay.http.status": "400",
        "relay.http.body": '{"e":1}',
        "relay.attempts": "3",
        "relay.source.topic": "timeback.activity",
        "relay.source.partition": "2",
        "relay.source.offset": "41",
        "relay.source.timestamp": "2025-12-31T23:59:50.000+00:00",
        "relay.failure.first": "2026-01-01T00:00:00.000+00:00",
        "relay.failure.last": "2026-01-01T00:00:01.500+00:00",
        "relay.event_ids": "urn:uuid:a,urn:uuid:b",
        "relay.version": __version__,
    }


def test_a_decode_rejection_has_no_http_headers_nor_event_ids() -> None:
    h = build(Rejection("decode", "unknown-framing", "first byte 0x7b"))
    assert not {"relay.http.status", "relay.http.body", "relay.event_ids"} & set(h)
    assert h["relay.attempts"] == "1"


def test_original_headers_kept_previous_relay_headers_replaced_replays_survive() -> None:
    rec = record(
        [
            ("traceparent", b"00-abc-def-01"),
            ("relay.reason", b"old-reason"),
            ("relay.stage", b"map"),
            ("relay.replays", b"2"),
        ]
    )
    headers = dead_letter_headers(
        rec, Rejection("enrich", "course-unresolved"), first_failure=FIRST, last_failure=LAST
    )
    assert ("traceparent", b"00-abc-def-01") in headers
    assert ("relay.replays", b"2") in headers
    assert [v for k, v in headers if k == "relay.reason"] == [b"course-unresolved"]
    assert [v for k, v in headers if k == "relay.stage"] == [b"enrich"]


def test_detail_and_body_are_capped_and_credentials_masked() -> None:
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    rejection = Rejection(
        "deliver",
        "api-rejected",
        f"refused with Authorization: Bearer {token} " + "d" * 5000,
        status=422,
        body=f'{{"client_secret": "hunter2-secret", "echo": "Bearer {token}"}}' + "b" * 5000,
    )
    h = build(rejection)
    assert len(h["relay.detail"]) <= DETAIL_CAP
    assert len(h["relay.http.body"]) <= BODY_CAP
    for value in h.values():
        assert token not in value and "hunter2-secret" not in value
    assert "[redacted]" in h["relay.detail"] and "[redacted]" in h["relay.http.body"]


@pytest.mark.parametrize(
    ("code", "name"),
    [
        (KafkaError.MSG_SIZE_TOO_LARGE, "MSG_SIZE_TOO_LARGE"),
        (KafkaError.TOPIC_AUTHORIZATION_FAILED, "TOPIC_AUTHORIZATION_FAILED"),
        (KafkaError.UNKNOWN_TOPIC_OR_PART, "UNKNOWN_TOPIC_OR_PART"),
        (KafkaError._UNKNOWN_TOPIC, "_UNKNOWN_TOPIC"),
    ],
)
def test_errors_no_retry_fixes_are_permanent_with_a_remedy(code: int, name: str) -> None:
    failed = DeadLetterWriteFailed("refused", KafkaError(code, "refused"))
    assert failed.permanent == name
    assert failed.remedy


@pytest.mark.parametrize(
    "code",
    [KafkaError._MSG_TIMED_OUT, KafkaError._QUEUE_FULL, KafkaError.NOT_ENOUGH_REPLICAS,
     KafkaError._TRANSPORT, KafkaError.LEADER_NOT_AVAILABLE],
)  # fmt: skip
def test_broker_blips_are_transient(code: int) -> None:
    failed = DeadLetterWriteFailed("blip", KafkaError(code, "blip"))
    assert failed.permanent is None and failed.remedy == ""
    assert DeadLetterWriteFailed("no error object").permanent is None
