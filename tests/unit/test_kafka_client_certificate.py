"""RELAY_KAFKA_SSL_CERT_FILE / KEY_FILE / KEY_PASSWORD (mutual TLS): validated, loaded into the
aiokafka SSL context, passed to librdkafka, and the key password never shown."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from confluent_kafka import Producer

from relay.config import load_settings
from relay.errors import ConfigError
from relay.kafka.diagnosis import principal
from relay.kafka.settings import confluent_config, describe, ssl_context
from tests.shared import self_signed

KEY_PASSWORD = "key-pass-Wombat-417"


@pytest.fixture(scope="module")
def client_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed client certificate (CN=relay-unit) and its key, encrypted (PKCS#8)."""
    from cryptography.hazmat.primitives import serialization

    cert, key = self_signed("relay-unit")
    folder = tmp_path_factory.mktemp("client-cert")
    cert_file, key_file = folder / "client.pem", folder / "client.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    encryption = serialization.BestAvailableEncryption(KEY_PASSWORD.encode())
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    )
    return cert_file, key_file


def mtls(cert: Path, key: Path, **extra: object):  # type: ignore[no-untyped-def]
    return load_settings(
        _env_file=None,
        kafka_security_protocol="SSL",
        kafka_ssl_cert_file=cert,
        kafka_ssl_key_file=key,
        **extra,
    )


def test_client_certificate_reaches_both_clients(client_cert: tuple[Path, Path]) -> None:
    cert, key = client_cert
    s = mtls(cert, key, kafka_ssl_key_password=KEY_PASSWORD)
    config = confluent_config(s)
    assert config["ssl.certificate.location"] == str(cert)
    assert config["ssl.key.location"] == str(key)
    assert config["ssl.key.password"] == KEY_PASSWORD
    Producer(config).flush(0)  # librdkafka loads (and decrypts) the key when the client starts
    context = ssl_context(s)
    assert context is not None and context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert principal(s) == "User:CN=relay-unit"
    assert KEY_PASSWORD not in describe(s) and KEY_PASSWORD not in repr(s)


def test_wrong_key_password_is_a_config_error_without_the_password(
    client_cert: tuple[Path, Path],
) -> None:
    cert, key = client_cert
    s = mtls(cert, key, kafka_ssl_key_password="not-" + KEY_PASSWORD)
    with pytest.raises(ConfigError) as error:
        ssl_context(s)
    assert "RELAY_KAFKA_SSL_KEY_PASSWORD" in str(error.value)
    assert KEY_PASSWORD not in str(error.value)


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"kafka_ssl_key_file": None}, "RELAY_KAFKA_SSL_CERT_FILE and RELAY_KAFKA_SSL_KEY_FILE"),
        ({"kafka_security_protocol": "SASL_PLAINTEXT"}, "RELAY_KAFKA_SSL_CERT_FILE"),
        ({"kafka_ssl_cert_file": "/nonexistent/client.pem"}, "RELAY_KAFKA_SSL_CERT_FILE"),
    ],
)
def test_inconsistent_certificate_settings_are_refused(
    client_cert: tuple[Path, Path], values: dict[str, object], named: str
) -> None:
    cert, key = client_cert
    settings: dict[str, object] = {
        "kafka_security_protocol": "SSL",
        "kafka_ssl_cert_file": cert,
        "kafka_ssl_key_file": key,
        "kafka_sasl_mechanism": "SCRAM-SHA-512",
        "kafka_sasl_username": "u",
        "kafka_sasl_password": "p",
    } | values
    with pytest.raises(ConfigError) as error:
        load_settings(_env_file=None, **settings)
    assert named in str(error.value)


def test_key_password_without_a_key_is_refused() -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(_env_file=None, kafka_ssl_key_password=KEY_PASSWORD)
    assert "RELAY_KAFKA_SSL_KEY_PASSWORD" in str(error.value)
    assert KEY_PASSWORD not in str(error.value)
