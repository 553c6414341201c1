"""RELAY_KAFKA_* security settings reach both Kafka clients (relay/kafka/settings.py):
faust/aiokafka (the consumer) and confluent-kafka (DLQ producer, admin, tools). No broker needed:
the configurations are inspected, and each client is built from them (librdkafka and aiokafka
both refuse unknown or inconsistent settings, and librdkafka loads the CA file when it starts).
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from relay.config import Settings
from relay.errors import ConfigError
from relay.kafka import settings as kafka_settings
from relay.pipeline import faust_config
from tests.shared import self_signed

pytestmark = pytest.mark.reliability

USER, PASSWORD = "relay-user", "kafka-pass-6f2b8e1d-Zq9"
BOOTSTRAP = "broker-1.example.test:9094,broker-2.example.test:9094"


@pytest.fixture(scope="module")
def ca_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A self-signed CA certificate (PEM) with a recognisable subject."""
    from cryptography.hazmat.primitives import serialization

    cert, _key = self_signed("reliability-test-ca", ca=True)
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, kafka_bootstrap=BOOTSTRAP, **values)  # type: ignore[call-arg]


def sasl(protocol: str, mechanism: str, ca: Path | None = None) -> Settings:
    return settings(
        kafka_security_protocol=protocol,
        kafka_sasl_mechanism=mechanism,
        kafka_sasl_username=USER,
        kafka_sasl_password=PASSWORD,
        kafka_ssl_ca_file=ca,
    )


def ca_subjects(context: ssl.SSLContext) -> list[str]:
    names = []
    for cert in context.get_ca_certs():
        for rdn in cert.get("subject", ()):
            names += [pair[1] for pair in rdn if pair[0] == "commonName"]
    return names


def build_confluent_clients(config: dict[str, Any]) -> None:
    """librdkafka validates every property (and reads ssl.ca.location) when a client is made."""
    Producer(config).flush(0)
    consumer = Consumer(config | {"group.id": "reliability-security-check"})
    consumer.close()
    AdminClient(config)


async def build_aiokafka_consumer(auth: dict[str, Any]) -> None:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP.split(","), **auth)
    assert consumer._client._security_protocol == auth["security_protocol"]
    await consumer.stop()


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"])
async def test_sasl_ssl_with_ca_file(mechanism: str, ca_file: Path) -> None:
    from faust.auth import SASLCredentials
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    s = sasl("SASL_SSL", mechanism, ca_file)

    confluent = kafka_settings.confluent_config(s)
    assert confluent == {
        "bootstrap.servers": BOOTSTRAP,
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": mechanism,
        "sasl.username": USER,
        "sasl.password": PASSWORD,
        "ssl.ca.location": str(ca_file),
    }
    build_confluent_clients(confluent)

    assert faust_config.broker_urls(s) == [
        "kafka://broker-1.example.test:9094",
        "kafka://broker-2.example.test:9094",
    ]
    credentials = faust_config.faust_credentials(s)
    assert isinstance(credentials, SASLCredentials)
    auth = dict(credentials_to_aiokafka_auth(credentials))
    context = auth.pop("ssl_context")
    assert auth == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": mechanism,
        "sasl_plain_username": USER,
        "sasl_plain_password": PASSWORD,
    }
    assert isinstance(context, ssl.SSLContext)
    assert "reliability-test-ca" in ca_subjects(context)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    await build_aiokafka_consumer(auth | {"ssl_context": context})

    described = kafka_settings.describe(s)
    assert PASSWORD not in described and mechanism in described and USER in described


async def test_sasl_plaintext() -> None:
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    s = sasl("SASL_PLAINTEXT", "SCRAM-SHA-512")
    confluent = kafka_settings.confluent_config(s)
    assert confluent["security.protocol"] == "SASL_PLAINTEXT"
    assert confluent["sasl.mechanism"] == "SCRAM-SHA-512"
    assert confluent["sasl.password"] == PASSWORD
    assert "ssl.ca.location" not in confluent
    build_confluent_clients(confluent)
    auth = dict(credentials_to_aiokafka_auth(faust_config.faust_credentials(s)))
    assert auth["security_protocol"] == "SASL_PLAINTEXT"
    assert auth["sasl_mechanism"] == "SCRAM-SHA-512"
    assert auth["sasl_plain_password"] == PASSWORD
    assert auth.get("ssl_context") is None
    await build_aiokafka_consumer(auth)


async def test_ssl_only_with_ca_file(ca_file: Path) -> None:
    from faust.auth import SSLCredentials
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    s = settings(kafka_security_protocol="SSL", kafka_ssl_ca_file=ca_file)
    confluent = kafka_settings.confluent_config(s)
    assert confluent == {
        "bootstrap.servers": BOOTSTRAP,
        "security.protocol": "SSL",
        "ssl.ca.location": str(ca_file),
    }
    build_confluent_clients(confluent)
    credentials = faust_config.faust_credentials(s)
    assert isinstance(credentials, SSLCredentials)
    auth = dict(credentials_to_aiokafka_auth(credentials))
    assert auth["security_protocol"] == "SSL"
    assert "reliability-test-ca" in ca_subjects(auth["ssl_context"])
    await build_aiokafka_consumer(auth)


def test_sasl_ssl_without_ca_file_uses_the_system_trust_store() -> None:
    s = sasl("SASL_SSL", "SCRAM-SHA-512")
    assert "ssl.ca.location" not in kafka_settings.confluent_config(s)
    context = kafka_settings.ssl_context(s)
    assert context is not None and context.verify_mode == ssl.CERT_REQUIRED


def test_plaintext_is_the_default() -> None:
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    s = settings()
    assert kafka_settings.confluent_config(s) == {
        "bootstrap.servers": BOOTSTRAP,
        "security.protocol": "PLAINTEXT",
    }
    assert faust_config.faust_credentials(s) is None
    assert dict(credentials_to_aiokafka_auth(None)) == {"security_protocol": "PLAINTEXT"}


def test_environment_names_reach_both_clients(
    ca_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The documented RELAY_KAFKA_* variables, read from the environment as the relay does."""
    from relay.config import load_settings

    for name, value in {
        "RELAY_KAFKA_BOOTSTRAP": BOOTSTRAP,
        "RELAY_KAFKA_SECURITY_PROTOCOL": "sasl_ssl",  # any case
        "RELAY_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "RELAY_KAFKA_SASL_USERNAME": USER,
        "RELAY_KAFKA_SASL_PASSWORD": PASSWORD,
        "RELAY_KAFKA_SSL_CA_FILE": str(ca_file),
    }.items():
        monkeypatch.setenv(name, value)
    s = load_settings()
    assert PASSWORD not in repr(s) and PASSWORD not in str(s.model_dump())
    confluent = kafka_settings.confluent_config(s)
    assert confluent["security.protocol"] == "SASL_SSL"
    assert confluent["sasl.password"] == PASSWORD
    assert confluent["ssl.ca.location"] == str(ca_file)


@pytest.mark.parametrize(
    "missing", ["kafka_sasl_mechanism", "kafka_sasl_username", "kafka_sasl_password"]
)
def test_sasl_without_credentials_is_refused(missing: str) -> None:
    from relay.config import load_settings

    values: dict[str, Any] = {
        "kafka_bootstrap": BOOTSTRAP,
        "kafka_security_protocol": "SASL_SSL",
        "kafka_sasl_mechanism": "PLAIN",
        "kafka_sasl_username": USER,
        "kafka_sasl_password": PASSWORD,
    }
    del values[missing]
    with pytest.raises(ConfigError) as error:
        load_settings(_env_file=None, **values)
    assert f"RELAY_{missing.upper()}" in str(error.value)
    assert PASSWORD not in str(error.value)


async def test_the_relay_wires_both_clients_from_these_settings(
    ca_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``relay run``'s faust app gets the credentials, and its dead-letter producer the
    confluent configuration, of the same RELAY_KAFKA_* settings."""
    pytest.importorskip("relay.pipeline.worker")
    from faust.auth import SASLCredentials

    from relay.pipeline import runtime as runtime_module
    from relay.pipeline.worker import create_app

    s = settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username=USER,
        kafka_sasl_password=PASSWORD,
        kafka_ssl_ca_file=ca_file,
        client_id="c",
        client_secret="unused-secret",
        app_id="a",
        api_base_url="https://127.0.0.1:9",
        activity_base_url="https://reliability.example",
    )
    app, runtime = create_app(s)
    credentials = app.conf.broker_credentials
    assert isinstance(credentials, SASLCredentials)
    assert (credentials.username, credentials.password) == (USER, PASSWORD)
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    assert credentials.protocol.value == "SASL_SSL"
    assert credentials.ssl_context is not None
    assert "reliability-test-ca" in ca_subjects(credentials.ssl_context)
    assert [str(url) for url in app.conf.broker] == faust_config.broker_urls(s)

    seen: dict[str, Any] = {}

    class Recorder:
        def __init__(self, config: dict[str, Any], topic: str, **_: Any) -> None:
            seen.update(config=config, topic=topic)

        def close(self, timeout: float = 0) -> None:
            pass

    monkeypatch.setattr(runtime_module, "DeadLetterWriter", Recorder)
    await runtime.start()
    await runtime.close()
    assert seen["topic"] == s.dlq_topic
    assert seen["config"] == kafka_settings.confluent_config(s)
    assert seen["config"]["sasl.password"] == PASSWORD
