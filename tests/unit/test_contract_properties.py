"""Property tests: whatever bytes arrive, decoding ends in an Activity or a Rejection with a known
reason, never another exception; JSON input and encode -> decode always agree."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay.contract import encode
from relay.contract.activity import RECORD_TYPES
from relay.contract.catalogue import default_catalogue
from relay.contract.decode import Decoder
from relay.contract.json_input import activity_from_json
from relay.errors import Rejection
from tests.shared import (
    KNOWN_REASONS,
    SHORT_NAMES,
    fixed_checks,
    full,
    minimal,
)

PROPERTY = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


class Harness:
    """A decoder with a (mock) registry, driven from sync hypothesis tests on one event loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        # confluent-kafka's in-process mock registry: unit tests of the framing bytes and decoding,
        # no HTTP (relay run against one over HTTP: tests/integration/test_pipeline_registry.py).
        self.registry = SchemaRegistryClient.new_client({"url": "mock://contract-properties"})
        self.decoder = Decoder(default_catalogue(), fixed_checks(), self.registry)
        self.valid = [
            encode(short, sample(short), framing=framing, registry=self.registry)
            for short in SHORT_NAMES
            for sample in (full, minimal)
            for framing in ("single-object", "confluent")
        ]

    def outcome(self, value: bytes) -> Any:
        """The decoded Activity, or the Rejection; any other exception fails the test."""
        try:
            return self.loop.run_until_complete(self.decoder.decode(value))
        except Rejection as rejection:
            assert rejection.reason in KNOWN_REASONS, rejection
            assert rejection.stage in ("decode", "validate")
            return rejection


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    h = Harness()
    yield h
    h.loop.close()


def is_activity(outcome: Any) -> bool:
    return f"timeback.activity.{type(outcome).__name__}" in RECORD_TYPES


@PROPERTY
@given(value=st.binary(max_size=300))
def test_arbitrary_bytes(harness: Harness, value: bytes) -> None:
    outcome = harness.outcome(value)
    assert isinstance(outcome, Rejection) or is_activity(outcome)


@PROPERTY
@given(data=st.data(), body=st.binary(max_size=200))
def test_arbitrary_bodies_behind_valid_headers(harness: Harness, data: Any, body: bytes) -> None:
    """Known fingerprints and registry ids, followed by garbage: the Avro reader's turn."""
    valid = data.draw(st.sampled_from(harness.valid))
    header = valid[:10] if valid[0] == 0xC3 else valid[:5]
    outcome = harness.outcome(header + body)
    assert isinstance(outcome, Rejection) or is_activity(outcome)


@PROPERTY
@given(data=st.data())
def test_mutated_valid_payloads(harness: Harness, data: Any) -> None:
    valid = data.draw(st.sampled_from(harness.valid))
    mutation = data.draw(st.sampled_from(["flip", "overwrite", "insert", "truncate", "append"]))
    if mutation == "truncate":
        cut = data.draw(st.integers(0, len(valid) - 1))
        outcome = harness.outcome(valid[:cut])
        assert isinstance(outcome, Rejection)  # a strict prefix is never a whole record
        return
    if mutation == "append":
        outcome = harness.outcome(valid + data.draw(st.binary(min_size=1, max_size=20)))
        assert isinstance(outcome, Rejection)
        return
    index = data.draw(st.integers(0, len(valid) - 1))
    if mutation == "flip":
        bit = data.draw(st.integers(0, 7))
        mutated = valid[:index] + bytes([valid[index] ^ (1 << bit)]) + valid[index + 1 :]
    elif mutation == "overwrite":
        mutated = valid[:index] + data.draw(st.binary(min_size=1, max_size=4)) + valid[index + 1 :]
    else:
        mutated = valid[:index] + data.draw(st.binary(min_size=1, max_size=4)) + valid[index:]
    outcome = harness.outcome(mutated)
    assert isinstance(outcome, Rejection) or is_activity(outcome)


# -- JSON input and encode agree on every value -------------------------------------------------

texts = st.text(max_size=12)  # includes whitespace, control characters and lone surrogates
json_values = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**65), 2**65), texts,
    st.floats(allow_nan=True, allow_infinity=True),
    st.fixed_dictionaries({"id": texts, "name": texts}),
)  # fmt: skip


@PROPERTY
@given(data=st.data())
def test_json_input_validates_exactly_as_decoding(harness: Harness, data: Any) -> None:
    short = data.draw(st.sampled_from(SHORT_NAMES))
    record = full(short)
    for name in data.draw(st.sets(st.sampled_from(sorted(record)), max_size=3)):
        record[name] = data.draw(json_values)
    try:
        via_json = activity_from_json(
            {"type": short, **record}, default_catalogue(), fixed_checks()
        )
    except Rejection as rejection:
        assert rejection.reason in KNOWN_REASONS
        with pytest.raises(Rejection) as caught:
            encode(short, record, checks=fixed_checks())
        assert (caught.value.reason, caught.value.detail) == (rejection.reason, rejection.detail)
        return
    assert harness.outcome(encode(short, record, checks=fixed_checks())) == via_json
