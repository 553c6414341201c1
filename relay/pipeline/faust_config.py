"""faust's half of the Kafka client settings (``relay.kafka.settings`` has the table of both):
the broker URLs and the credentials, built from the same ``Settings`` and TLS context as
confluent-kafka's, so both clients always connect the same way."""

from __future__ import annotations

from faust.auth import SASLCredentials, SSLCredentials
from faust.types.auth import CredentialsT

from relay.config import Settings
from relay.kafka.settings import bootstrap_servers, ssl_context


def broker_urls(settings: Settings) -> list[str]:
    """faust's ``broker`` setting: one ``kafka://host:port`` URL per bootstrap server."""
    return [f"kafka://{host}" for host in bootstrap_servers(settings)]


def faust_credentials(settings: Settings) -> CredentialsT | None:
    """faust's ``broker_credentials``: None for PLAINTEXT."""
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
