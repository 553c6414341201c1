"""Fixtures the unit tests share (their sample data: tests/shared.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from relay.contract.catalogue import default_catalogue
from relay.contract.decode import Decoder
from tests.shared import fixed_checks


@pytest.fixture(scope="module")
def registry(request: pytest.FixtureRequest) -> Iterator[SchemaRegistryClient]:
    """confluent-kafka's in-memory Schema Registry for unit tests of the framing bytes and decoding
    (no HTTP; relay run against one over HTTP: tests/integration/test_pipeline_registry.py), one
    per module: a second new_client() would not see the schemas registered through the first."""
    yield SchemaRegistryClient.new_client({"url": f"mock://{request.module.__name__}"})


@pytest.fixture
def decoder(registry: SchemaRegistryClient) -> Decoder:
    """The default catalogue with fixed checks, reading Confluent framing through ``registry``."""
    return Decoder(default_catalogue(), fixed_checks(), registry)
