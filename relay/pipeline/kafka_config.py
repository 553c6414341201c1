"""The one place where the ``RELAY_KAFKA_*`` settings become client configuration.

faust (aiokafka) and confluent-kafka (librdkafka) name the same things differently; both are
derived here from one ``Settings`` so the relay's consumer, its dead-letter producer, ``relay
check``, ``relay dlq`` and the tools always connect the same way.

| setting                        | faust / aiokafka                   | confluent-kafka        |
|--------------------------------|------------------------------------|------------------------|
| RELAY_KAFKA_BOOTSTRAP          | ``broker`` (kafka:// URLs)         | ``bootstrap.servers``  |
| RELAY_KAFKA_SECURITY_PROTOCOL  | credentials class (protocol)       | ``security.protocol``  |
| RELAY_KAFKA_SASL_MECHANISM     | ``SASLCredentials(mechanism=)``    | ``sasl.mechanism``     |
| RELAY_KAFKA_SASL_USERNAME      | ``SASLCredentials(username=)``     | ``sasl.username``      |
| RELAY_KAFKA_SASL_PASSWORD      | ``SASLCredentials(password=)``     | ``sasl.password``      |
| RELAY_KAFKA_SSL_CA_FILE        | ``ssl.create_default_context(cafile=)`` | ``ssl.ca.location`` |

The SASL password only ever lives inside these objects; ``describe`` is the loggable view.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any

from relay.config import Settings

if TYPE_CHECKING:
    from faust.types.auth import CredentialsT


def bootstrap_servers(settings: Settings) -> list[str]:
    return [host.strip() for host in settings.kafka_bootstrap.split(",") if host.strip()]


def broker_urls(settings: Settings) -> list[str]:
    """faust's ``broker`` setting: one ``kafka://host:port`` URL per bootstrap server."""
    return [f"kafka://{host}" for host in bootstrap_servers(settings)]


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context of SSL / SASL_SSL (system CAs, or RELAY_KAFKA_SSL_CA_FILE); else None."""
    if not settings.kafka_security_protocol.endswith("SSL"):
        return None
    cafile = str(settings.kafka_ssl_ca_file) if settings.kafka_ssl_ca_file else None
    return ssl.create_default_context(purpose=ssl.Purpose.SERVER_AUTH, cafile=cafile)


def faust_credentials(settings: Settings) -> CredentialsT | None:
    """faust's ``broker_credentials``: None for PLAINTEXT."""
    from faust.auth import SASLCredentials, SSLCredentials

    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = ssl_context(settings)
    if protocol == "SSL":
        return SSLCredentials(context)
    # SASL_PLAINTEXT or SASL_SSL: the SSL context (or its absence) picks the protocol.
    return SASLCredentials(
        username=settings.kafka_sasl_username,
        password=settings.secret("kafka_sasl_password"),
        mechanism=settings.kafka_sasl_mechanism,
        ssl_context=context,
    )


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
    return config


def describe(settings: Settings) -> str:
    """How the relay connects to Kafka, safe to log and print (no password)."""
    parts = [settings.kafka_bootstrap, settings.kafka_security_protocol]
    if settings.kafka_security_protocol.startswith("SASL"):
        parts.append(f"{settings.kafka_sasl_mechanism} as {settings.kafka_sasl_username}")
    if settings.kafka_ssl_ca_file:
        parts.append(f"CA {settings.kafka_ssl_ca_file}")
    return " ".join(parts)
