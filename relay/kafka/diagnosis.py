"""What went wrong between the relay and Kafka, in words that name the fix.

librdkafka reports a refused login or a failed TLS handshake only in its log (the call itself
fails with a bare "transport failure"), so ``KafkaLog`` collects that log and ``diagnose`` turns
it into one ``Diagnosis``: what happened and which ``RELAY_*`` settings fix it. Authorization is
read from the broker's answer (``authorized_operations``, KIP-430): ``principal`` names who the
broker sees, so the fix can say what to grant to whom.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from relay.config import Settings


@dataclass(frozen=True)
class Diagnosis:
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.problem}\n  fix: {self.fix}"


class KafkaLog(logging.Handler):
    """librdkafka's log lines (``{"logger": log.logger}`` in a client config), kept, not shown."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.logger = logging.getLogger(f"relay.kafka.client.{id(self)}")
        self.logger.propagate = False
        self.logger.setLevel(logging.INFO)
        self.logger.addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


# (words in librdkafka's log, the problem, the fix); the first that matches wins
_RULES: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (
        ("SASL authentication error", "invalid credentials", "Authentication failed"),
        "Kafka refused the SASL login of {user} ({mechanism})",
        "RELAY_KAFKA_SASL_PASSWORD (and RELAY_KAFKA_SASL_USERNAME) of a user the broker knows for "
        "RELAY_KAFKA_SASL_MECHANISM (after a password rotation: the new secret, then restart)",
    ),
    (
        ("Hostname mismatch", "hostname mismatch", "IP address mismatch"),
        "the broker certificate does not name the host the relay connected to",
        "RELAY_KAFKA_BOOTSTRAP must use the host names (or IPs) in the broker certificate's "
        "subjectAltName; hostname verification stays on",
    ),
    (
        ("certificate verify failed",),
        "the broker's TLS certificate is not signed by a CA the relay trusts (unknown CA)",
        "RELAY_KAFKA_SSL_CA_FILE: the PEM bundle of the CA that signed the broker certificates "
        "(unset: the system trust store)",
    ),
    (
        ("alert bad certificate", "alert certificate required", "alert unknown ca"),
        "the broker refused the relay's client certificate (mutual TLS)",
        "RELAY_KAFKA_SSL_CERT_FILE / RELAY_KAFKA_SSL_KEY_FILE: a client certificate signed by a "
        "CA in the broker's truststore (this listener requires one)",
    ),
    (
        ("SSL handshake failed", "wrong version number", "packet length too long"),
        "the TLS handshake with the broker failed",
        "RELAY_KAFKA_SECURITY_PROTOCOL must match the listener of RELAY_KAFKA_BOOTSTRAP "
        "(SSL / SASL_SSL for a TLS port, PLAINTEXT / SASL_PLAINTEXT otherwise)",
    ),
    (
        ("Disconnected while requesting ApiVersion", "Unsupported SASL mechanism"),
        "the broker closed the connection before the relay could log in",
        "RELAY_KAFKA_SECURITY_PROTOCOL / RELAY_KAFKA_SASL_MECHANISM must be what this listener "
        "expects",
    ),
)

UNREACHABLE = (
    "RELAY_KAFKA_BOOTSTRAP (host:port of the listener) and RELAY_KAFKA_SECURITY_PROTOCOL / "
    "SASL / CA settings"
)


def diagnose(settings: Settings, lines: list[str], error: str) -> Diagnosis:
    """The first known failure in ``lines`` (librdkafka's log), else "did not answer"."""
    user = f"user {settings.kafka_sasl_username!r}"
    mechanism = settings.kafka_sasl_mechanism or "no mechanism"
    for words, problem, fix in _RULES:
        for line in lines:
            if any(word in line for word in words):
                reason = redact(settings, _reason(line))
                return Diagnosis(f"{problem.format(user=user, mechanism=mechanism)}: {reason}", fix)
    return Diagnosis(f"Kafka did not answer: {redact(settings, error)}", UNREACHABLE)


def _reason(line: str) -> str:
    """librdkafka's line without its thread, broker and timing decorations."""
    line = re.sub(r"^[A-Z]+ \[[^\]]*\] ", "", line)  # facility and client: "FAIL [rdkafka#1] "
    line = re.sub(r"^\[thrd:[^\]]*\]: ", "", line)
    line = re.sub(r"^\S+://\S+: ", "", line)
    return re.sub(r" \(after \d+ms in state \w+\)$", "", line)


def redact(settings: Settings, text: str) -> str:
    """``text`` with every configured secret blanked (librdkafka never logs them; belt and
    braces)."""
    for secret in (settings.kafka_sasl_password, settings.kafka_ssl_key_password):
        if secret is not None and secret.get_secret_value():
            text = text.replace(secret.get_secret_value(), "***")
    return text


def principal(settings: Settings) -> str:
    """The principal the broker sees: User:<SASL user>, the certificate's DN, or ANONYMOUS."""
    if settings.kafka_security_protocol.startswith("SASL"):
        return f"User:{settings.kafka_sasl_username}"
    if settings.kafka_ssl_cert_file:
        return f"User:{certificate_subject(settings.kafka_ssl_cert_file)}"
    return "User:ANONYMOUS"


def certificate_subject(path: Path) -> str:
    """The subject DN of a PEM certificate, as Kafka's default SSL principal builder names it."""
    try:
        from cryptography import x509
    except ImportError:  # cryptography comes with confluent-kafka[schemaregistry]; be safe
        return f"<subject of {path}>"
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return f"<subject of {path}>"
    return cert.subject.rfc4514_string()
