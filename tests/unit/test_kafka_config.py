"""RELAY_KAFKA_* → faust credentials and confluent-kafka config, from the same Settings."""

from __future__ import annotations

import ssl
from pathlib import Path

import certifi
import pytest
from faust.auth import SASLCredentials, SSLCredentials
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from relay.config import load_settings
from relay.kafka.settings import confluent_config, describe
from relay.pipeline.faust_config import broker_urls, faust_credentials

CA = Path(certifi.where())  # any readable PEM bundle


def test_plaintext_by_default() -> None:
    s = load_settings(kafka_bootstrap="k1:9092, k2:9093")
    assert broker_urls(s) == ["kafka://k1:9092", "kafka://k2:9093"]
    assert faust_credentials(s) is None
    assert confluent_config(s) == {
        "bootstrap.servers": "k1:9092,k2:9093",
        "security.protocol": "PLAINTEXT",
    }


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_ssl_reaches_both_clients(mechanism: str) -> None:
    s = load_settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism=mechanism,
        kafka_sasl_username="relay",
        kafka_sasl_password="s3cret-pw",
        kafka_ssl_ca_file=CA,
    )
    creds = faust_credentials(s)
    assert isinstance(creds, SASLCredentials)
    aiokafka = credentials_to_aiokafka_auth(creds)
    assert aiokafka["security_protocol"] == "SASL_SSL"
    assert aiokafka["sasl_mechanism"] == mechanism
    assert (aiokafka["sasl_plain_username"], aiokafka["sasl_plain_password"]) == (
        "relay",
        "s3cret-pw",
    )
    assert isinstance(aiokafka["ssl_context"], ssl.SSLContext)
    assert confluent_config(s) == {
        "bootstrap.servers": "127.0.0.1:9092",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": mechanism,
        "sasl.username": "relay",
        "sasl.password": "s3cret-pw",
        "ssl.ca.location": str(CA),
    }
    assert "s3cret-pw" not in describe(s) and "s3cret-pw" not in repr(creds)


def test_sasl_plaintext_has_no_tls() -> None:
    s = load_settings(
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="PLAIN",
        kafka_sasl_username="relay",
        kafka_sasl_password="pw",
    )
    aiokafka = credentials_to_aiokafka_auth(faust_credentials(s))
    assert aiokafka["security_protocol"] == "SASL_PLAINTEXT"
    assert aiokafka["ssl_context"] is None
    assert "ssl.ca.location" not in confluent_config(s)


def test_ssl_only() -> None:
    s = load_settings(kafka_security_protocol="ssl", kafka_ssl_ca_file=CA)
    creds = faust_credentials(s)
    assert isinstance(creds, SSLCredentials)
    assert credentials_to_aiokafka_auth(creds)["security_protocol"] == "SSL"
    assert confluent_config(s)["ssl.ca.location"] == str(CA)
    assert "sasl.username" not in confluent_config(s)
