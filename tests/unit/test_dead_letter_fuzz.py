"""Issue 23 item 6: every header the dead letter builds survives any input. Fuzzed with
hypothesis over the record (key, value, headers with any bytes or no value, topic, partition,
offset, any Kafka timestamp) and the Rejection (detail and body with any text, lone surrogates
included). The headers must then be taken by a real confluent-kafka producer: ``produce`` checks
and encodes them on the spot (its broker is unreachable, so nothing is sent; the queue is purged).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from confluent_kafka import Producer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay.errors import STAGES, Rejection
from relay.pipeline.deadletter import BODY_CAP, DETAIL_CAP, PREFIX, REPLAYS, dead_letter_headers
from relay.pipeline.record import SourceRecord

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
# any Kafka timestamp as faust hands it over (ms / 1000), and floats no clock gives
TIMESTAMPS = st.none() | INT64.map(lambda ms: ms / 1000.0) | st.floats()
# text from anywhere: lone surrogates too (a library's message, a body decoded with errors=...)
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=300)
HEADERS = st.lists(
    st.tuples(st.sampled_from(["trace", "relay.stage", REPLAYS, "x"]) | st.text(max_size=20),
              st.none() | st.binary(max_size=50)),
    max_size=6,
)  # fmt: skip

records = st.builds(
    SourceRecord,
    topic=st.text(min_size=1, max_size=60),
    partition=st.integers(min_value=-1, max_value=2**31 - 1),
    offset=INT64,
    timestamp=TIMESTAMPS,
    key=st.none() | st.binary(max_size=100),
    value=st.binary(max_size=500),
    headers=HEADERS,
    handle=st.none(),  # a named tuple's every field is inferred: Any has no strategy
)
rejections = st.builds(
    Rejection,
    st.sampled_from([*STAGES, "relay"]),
    ANY_TEXT,
    ANY_TEXT | st.text(min_size=DETAIL_CAP, max_size=DETAIL_CAP + 50),
    status=st.none() | st.integers(min_value=100, max_value=599),
    body=st.none() | ANY_TEXT | st.text(min_size=BODY_CAP, max_size=BODY_CAP + 50),
    attempts=st.integers(min_value=0, max_value=10**6),
    first_failure=TIMESTAMPS,
)


@pytest.fixture(scope="module")
def producer() -> Iterator[Producer]:
    """A real producer whose broker never answers: produce() validates and queues only."""
    real = Producer({"bootstrap.servers": "127.0.0.1:1", "log_level": 0})
    yield real
    real.purge()
    real.flush(0)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    record=records,
    rejection=rejections,
    event_ids=st.lists(ANY_TEXT, max_size=3),
    first=TIMESTAMPS.filter(lambda t: t is not None),
    last=TIMESTAMPS.filter(lambda t: t is not None),
)
def test_any_record_and_rejection_make_headers_a_producer_takes(
    producer: Producer,
    record: SourceRecord,
    rejection: Rejection,
    event_ids: list[str],
    first: float,
    last: float,
) -> None:
    headers = dead_letter_headers(
        record, rejection, event_ids=event_ids, first_failure=first, last_failure=last
    )
    ours = [k for k, _ in headers if k.startswith(PREFIX) and k != REPLAYS]
    assert len(ours) == len(set(ours)), "a relay.* header appears twice"
    kept = [(k, v) for k, v in record.headers if not k.startswith(PREFIX) or k == REPLAYS]
    assert headers[: len(kept)] == kept, "the original headers are kept as they came"
    values = dict(headers[len(kept) :])
    assert all(isinstance(v, bytes) for v in values.values())
    detail = values["relay.detail"] or b""
    assert len(detail.decode()) <= 4 * DETAIL_CAP  # escapes may lengthen it
    producer.produce("dead-letters", record.value, record.key, headers=headers)  # type: ignore[arg-type]
    producer.purge()


@pytest.mark.parametrize(
    ("seconds", "header"),
    [
        (253_402_300_800.0, "253402300800.0"),  # 10000-01-01: past datetime's year 9999
        ((2**63 - 1) / 1000, "9223372036854776.0"),  # the largest CreateTime Kafka carries
        (-0.001, "-0.001"),  # Kafka's "no timestamp" (-1 ms)
        (1767225600.0, "2026-01-01T00:00:00.000+00:00"),
    ],
)
def test_a_source_timestamp_no_date_holds_is_written_as_its_seconds(
    seconds: float, header: str
) -> None:
    record = SourceRecord("t", 0, 1, seconds, None, b"v")
    headers = dict(dead_letter_headers(record, Rejection("decode", "x"), first_failure=1.0,
                                       last_failure=1.0))  # fmt: skip
    assert headers["relay.source.timestamp"] == header.encode()
