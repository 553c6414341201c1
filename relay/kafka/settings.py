"""The one place where the ``RELAY_KAFKA_*`` settings become client configuration.

faust (aiokafka) and confluent-kafka (librdkafka) name the same things differently; both are
derived from one ``Settings`` so the relay's consumer, its dead-letter producer, ``relay
check``, ``relay dlq`` and the tools always connect the same way. confluent-kafka's half and the
TLS context are here; faust's half (broker URLs, credentials) is ``relay.pipeline.faust_config``,
since only ``relay.pipeline`` imports faust.

| setting                        | faust / aiokafka                   | confluent-kafka        |
|--------------------------------|------------------------------------|------------------------|
| RELAY_KAFKA_BOOTSTRAP          | ``broker`` (kafka:// URLs)         | ``bootstrap.servers``  |
| RELAY_KAFKA_SECURITY_PROTOCOL  | credentials class (protocol)       | ``security.protocol``  |
| RELAY_KAFKA_SASL_MECHANISM     | ``SASLCredentials(mechanism=)``    | ``sasl.mechanism``     |
| RELAY_KAFKA_SASL_USERNAME      | ``SASLCredentials(username=)``     | ``sasl.username``      |
| RELAY_KAFKA_SASL_PASSWORD      | ``SASLCredentials(password=)``     | ``sasl.password``      |
| RELAY_KAFKA_SSL_CA_FILE        | ``ssl.create_default_context(cafile=)`` | ``ssl.ca.location`` |
| RELAY_KAFKA_SSL_CERT_FILE      | ``load_cert_chain(certfile=)`` | ``ssl.certificate.location`` |
| RELAY_KAFKA_SSL_KEY_FILE       | ``load_cert_chain(keyfile=)``      | ``ssl.key.location``   |
| RELAY_KAFKA_SSL_KEY_PASSWORD   | ``load_cert_chain(password=)``     | ``ssl.key.password``   |

Hostname verification is on in both (Python's default context; librdkafka's default
``ssl.endpoint.identification.algorithm=https``): the broker certificate must name the host of
RELAY_KAFKA_BOOTSTRAP. OAUTHBEARER is not supported (faust's credentials need a token provider
the relay does not have). The passwords only ever live inside these objects; ``describe`` is the
loggable view.
"""

from __future__ import annotations

import ssl
from typing import Any

from relay.config import Settings
from relay.errors import ConfigError


def bootstrap_servers(settings: Settings) -> list[str]:
    return [host.strip() for host in settings.kafka_bootstrap.split(",") if host.strip()]


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context of SSL / SASL_SSL (system CAs, or RELAY_KAFKA_SSL_CA_FILE); else None."""
    if not settings.kafka_security_protocol.endswith("SSL"):
        return None
    cafile = str(settings.kafka_ssl_ca_file) if settings.kafka_ssl_ca_file else None
    try:
        context = ssl.create_default_context(purpose=ssl.Purpose.SERVER_AUTH, cafile=cafile)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            f"RELAY_KAFKA_SSL_CA_FILE: {cafile} is not a PEM CA bundle ({exc})"
        ) from None
    if settings.kafka_ssl_cert_file and settings.kafka_ssl_key_file:
        _load_client_certificate(context, settings)
    return context


def _load_client_certificate(context: ssl.SSLContext, settings: Settings) -> None:
    password = settings.kafka_ssl_key_password
    try:
        context.load_cert_chain(
            certfile=str(settings.kafka_ssl_cert_file),
            keyfile=str(settings.kafka_ssl_key_file),
            password=password.get_secret_value() if password else None,
        )
    except (ssl.SSLError, OSError) as exc:
        # OpenSSL's reason only ("bad decrypt", "key values mismatch"), never the password
        reason = getattr(exc, "reason", None) or type(exc).__name__
        raise ConfigError(
            "RELAY_KAFKA_SSL_CERT_FILE / RELAY_KAFKA_SSL_KEY_FILE / RELAY_KAFKA_SSL_KEY_PASSWORD: "
            f"the client certificate and key do not load ({reason}); the key must match the "
            "certificate, and an encrypted key needs its password"
        ) from None


def confluent_config(settings: Settings) -> dict[str, Any]:
    """Client configuration for confluent-kafka (producer, consumer, admin alike)."""
    config: dict[str, Any] = {
        "bootstrap.servers": ",".join(bootstrap_servers(settings)),
        "security.protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol.startswith("SASL"):
        config |= {
            "sasl.mechanism": settings.kafka_sasl_mechanism,
            "sasl.username": settings.kafka_sasl_username,
            "sasl.password": settings.secret("kafka_sasl_password"),
        }
    if settings.kafka_security_protocol.endswith("SSL") and settings.kafka_ssl_ca_file:
        config["ssl.ca.location"] = str(settings.kafka_ssl_ca_file)
    if settings.kafka_ssl_cert_file and settings.kafka_ssl_key_file:
        config["ssl.certificate.location"] = str(settings.kafka_ssl_cert_file)
        config["ssl.key.location"] = str(settings.kafka_ssl_key_file)
        if settings.kafka_ssl_key_password is not None:
            config["ssl.key.password"] = settings.secret("kafka_ssl_key_password")
    return config


def describe(settings: Settings) -> str:
    """How the relay connects to Kafka, safe to log and print (no password)."""
    parts = [settings.kafka_bootstrap, settings.kafka_security_protocol]
    if settings.kafka_security_protocol.startswith("SASL"):
        parts.append(f"{settings.kafka_sasl_mechanism} as {settings.kafka_sasl_username}")
    if settings.kafka_ssl_ca_file:
        parts.append(f"CA {settings.kafka_ssl_ca_file}")
    if settings.kafka_ssl_cert_file:
        parts.append(f"client certificate {settings.kafka_ssl_cert_file}")
    return " ".join(parts)
