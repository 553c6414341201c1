"""``relay check``: can this relay run? Each check is printed; the first failure says what to fix.

1. configuration (every RELAY_* variable valid; credentials and app id present)
2. Kafka reachable (metadata within the timeout), with the configured security: a refused
   login, an unknown CA, a hostname mismatch or a refused client certificate is named as such
3. the input topics exist and may be read, the dead-letter topic exists and may be written
   (the broker's ACLs, as it reports them for the relay's principal)
4. the quarantine's strike topic (RELAY_QUARANTINE_TOPIC) exists and may be read and written,
   or is missing and may be created (the relay creates it on the first processing bug)
5. the consumer group may be joined (READ on the group)
6. a token from the token endpoint (the client credentials work)
7. the Schema Registry, when RELAY_SCHEMA_REGISTRY_URL is set (relay/ops/registry_report.py)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, TypeVar

import click
from confluent_kafka import KafkaError, KafkaException, TopicCollection
from confluent_kafka.admin import AclOperation, AdminClient, NewTopic
from rich.console import Console
from rich.markup import escape

from relay import wiring
from relay.config import Settings, load_settings
from relay.errors import ConfigError, RelayError
from relay.kafka.diagnosis import Diagnosis, KafkaLog, diagnose, principal
from relay.kafka.settings import confluent_config
from relay.timeback.client import TimeBackClient

T = TypeVar("T")


class CheckFailed(Exception):
    """A check failed; the message says what to fix."""


def check_settings() -> Settings:
    try:
        settings = load_settings()
        settings.require("client_id", "client_secret", "app_id")
    except ConfigError as exc:
        raise CheckFailed(
            f"{exc}\n  fix: set the variables named above (README: Configuration)"
        ) from None
    return settings


def check_kafka(settings: Settings, timeout: float = 10.0) -> AdminClient:
    """An admin client that got the cluster's metadata; else what refused it, and the fix."""
    log = KafkaLog()
    admin = AdminClient(confluent_config(settings) | {"logger": log.logger})
    try:
        admin.list_topics(timeout=timeout)
    except KafkaException as exc:  # broker down, TLS or SASL refused: the reason is in the log
        admin.poll(0.5)
        raise CheckFailed(str(diagnose(settings, log.lines, str(exc)))) from None
    return admin


def check_topics(settings: Settings, admin: AdminClient, timeout: float = 10.0) -> None:
    """Each input topic readable, the dead-letter topic writable, by the relay's principal."""
    needs = {t: AclOperation.READ for t in settings.topics} | {
        settings.dlq_topic: AclOperation.WRITE
    }
    futures = admin.describe_topics(
        TopicCollection(list(needs)), request_timeout=timeout, include_authorized_operations=True
    )
    problems = []
    for topic, future in futures.items():
        try:
            allowed = future.result(timeout=timeout).authorized_operations
        except KafkaException as exc:
            problems.append(_topic_problem(settings, topic, needs[topic], exc.args[0]))
            continue
        if allowed is not None and needs[topic] not in allowed:
            problems.append(_denied(settings, "topic", topic, needs[topic]))
    if problems:
        raise CheckFailed("\n".join(str(p) for p in problems))


def check_strike_topic(settings: Settings, admin: AdminClient, timeout: float = 10.0) -> None:
    """The strike topic readable and writable by the relay's principal, or creatable: without
    it a processing bug is never quarantined (the partition stays blocked). Nothing to check
    with quarantine off (RELAY_QUARANTINE_AFTER=0)."""
    if settings.quarantine_after <= 0:
        return
    topic = settings.strike_topic
    future = admin.describe_topics(
        TopicCollection([topic]), request_timeout=timeout, include_authorized_operations=True
    )[topic]
    try:
        allowed = future.result(timeout=timeout).authorized_operations
    except KafkaException as exc:
        error: KafkaError = exc.args[0]
        if error.code() not in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC):
            raise CheckFailed(str(_strike_problem(settings, error))) from None
        _check_creatable(settings, admin, timeout)
        return
    missing = [op for op in (AclOperation.READ, AclOperation.WRITE)
               if allowed is not None and op not in allowed]  # fmt: skip
    if missing:
        raise CheckFailed("\n".join(str(_denied(settings, "topic", topic, op)) for op in missing))


def _check_creatable(settings: Settings, admin: AdminClient, timeout: float) -> None:
    """The broker would let the relay create the missing strike topic (validated, not made)."""
    new = NewTopic(settings.strike_topic, num_partitions=1, replication_factor=-1)
    future = admin.create_topics([new], operation_timeout=timeout, validate_only=True)
    try:
        future[settings.strike_topic].result(timeout=timeout)
    except KafkaException as exc:
        error: KafkaError = exc.args[0]
        if error.code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise CheckFailed(str(_strike_problem(settings, error, missing=True))) from None


def _strike_problem(settings: Settings, error: KafkaError, missing: bool = False) -> Diagnosis:
    topic, who = settings.strike_topic, principal(settings)
    denied = error.code() in (
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
    )
    create = (
        f"create it (1 partition, cleanup.policy=compact,delete) and grant {who} READ and WRITE "
        f"on it, or grant {who} CREATE on it"
    )
    if missing and denied:
        return Diagnosis(
            f"the strike topic {topic} does not exist and {who} may not create it",
            f"{create}, or correct RELAY_QUARANTINE_TOPIC",
        )
    if denied:  # no DESCRIBE: Kafka does not say whether it exists
        return Diagnosis(
            f"the broker's ACLs deny {who} access to the strike topic {topic}",
            f"grant {who} READ and WRITE on TOPIC {topic} (or {create}), or correct "
            "RELAY_QUARANTINE_TOPIC",
        )
    return Diagnosis(f"strike topic {topic}: {error.str()}", "check RELAY_QUARANTINE_TOPIC")


def check_group(settings: Settings, admin: AdminClient, timeout: float = 10.0) -> None:
    """READ on RELAY_GROUP_ID: without it the consumer can neither join nor commit."""
    allowed = _group_operations(settings, admin, timeout)
    if allowed is not None and AclOperation.READ not in allowed:
        raise CheckFailed(str(_denied(settings, "group", settings.group_id, AclOperation.READ)))


_COORDINATOR_LOADING = {
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
}


def _group_operations(
    settings: Settings, admin: AdminClient, timeout: float
) -> list[AclOperation] | None:
    """The operations the broker allows on the group; retried while its coordinator loads (a
    fresh cluster creates __consumer_offsets on the first group request)."""
    deadline = time.monotonic() + timeout
    while True:
        future = admin.describe_consumer_groups(
            [settings.group_id], request_timeout=timeout, include_authorized_operations=True
        )[settings.group_id]
        try:
            operations: list[AclOperation] | None = future.result(
                timeout=timeout
            ).authorized_operations
            return operations
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if error.code() == KafkaError.GROUP_AUTHORIZATION_FAILED:
                return []
            loading = error.retriable() or error.code() in _COORDINATOR_LOADING
            if not loading or time.monotonic() > deadline:
                raise CheckFailed(
                    f"group {settings.group_id}: {error.name()} {error.str()}\n"
                    "  fix: the broker's group coordinator must be available (check the brokers)"
                ) from None
        time.sleep(0.5)


def _topic_problem(
    settings: Settings, topic: str, needed: AclOperation, error: KafkaError
) -> Diagnosis:
    variable = "RELAY_DLQ_TOPIC" if topic == settings.dlq_topic else "RELAY_TOPICS"
    if error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
        # Kafka does not tell a principal without DESCRIBE whether the topic exists.
        return _denied(settings, "topic", topic, needed, maybe_missing=True)
    if error.code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC):
        return Diagnosis(
            f"topic {topic} does not exist",
            f"create it (replication factor 3, min.insync.replicas=2 in production; the "
            f"dead-letter topic with the retention you want to keep failures for), or correct "
            f"{variable}",
        )
    return Diagnosis(f"topic {topic}: {error.str()}", f"check {variable} and the broker")


def _denied(
    settings: Settings, kind: str, name: str, needed: AclOperation, maybe_missing: bool = False
) -> Diagnosis:
    who = principal(settings)
    unknown = " (or it does not exist: Kafka hides that from a principal without access)"
    return Diagnosis(
        f"the broker's ACLs deny {who} {needed.name} on {kind} {name}"
        + (unknown if maybe_missing else ""),
        f"grant it: ALLOW {who} {needed.name} on {kind.upper()} {name} (e.g. kafka-acls --add "
        f"--allow-principal {who} --operation {needed.name.title()} --{kind} {name}), or "
        f"correct {_variable(settings, kind, name)}",
    )


def _variable(settings: Settings, kind: str, name: str) -> str:
    if kind == "group":
        return "RELAY_GROUP_ID"
    if name == settings.strike_topic:
        return "RELAY_QUARANTINE_TOPIC"
    return "RELAY_DLQ_TOPIC" if name == settings.dlq_topic else "RELAY_TOPICS"


async def check_token(settings: Settings) -> None:
    async with TimeBackClient(wiring.client_config(settings)) as client:
        try:
            await client.auth.token()
        except RelayError as exc:
            raise CheckFailed(
                f"no token from {settings.effective_token_url}: {exc}\n"
                "  fix: RELAY_CLIENT_ID / RELAY_CLIENT_SECRET / RELAY_AUTH_METHOD / RELAY_TOKEN_URL"
            ) from None


@click.command(name="check")
@click.option("--timeout", default=10.0, show_default=True, help="seconds per network check")
def check_command(timeout: float) -> None:
    """Validate configuration, reach Kafka, confirm topics (strike topic included), ACLs and
    group, obtain a token."""
    console = Console()
    settings = _step(console, "configuration", check_settings)
    console.print(f"  limits: {limits_summary(settings)}", highlight=False)
    admin = _step(console, "kafka", lambda: check_kafka(settings, timeout))
    _step(console, "topics", lambda: check_topics(settings, admin, timeout))
    _step(console, "quarantine", lambda: check_strike_topic(settings, admin, timeout))
    _step(console, "group", lambda: check_group(settings, admin, timeout))
    _step(console, "token", lambda: asyncio.run(check_token(settings)))
    report = _step(console, "schema registry", lambda: check_registry(settings, timeout))
    for line in report.lines() if report else ["not configured: single-object framing only"]:
        console.print(f"  {escape(line)}", highlight=False)
    console.print("all checks passed")


def check_registry(settings: Settings, timeout: float) -> Any:
    # imported here: relay.ops is the operators' package, which relay.pipeline does not import
    # (this command is on its way there)
    from relay.ops.registry_report import RegistryProblem, registry_report

    try:
        return registry_report(settings, timeout)
    except RegistryProblem as exc:
        raise CheckFailed(str(exc)) from None


def limits_summary(settings: Settings) -> str:
    """The request gate's settings in one line (docs/rate-limits.md)."""
    rate = settings.max_requests_per_second
    burst = settings.max_requests_burst or max(1, round(rate or 1))
    limit = f"{rate:g} requests/s, burst {burst}" if rate else "no rate limit"
    return (
        f"{settings.concurrency} concurrency up to {settings.max_in_flight} requests in flight, "
        f"{limit} (per process), circuit open {settings.circuit_open_for:g}-"
        f"{settings.circuit_max_open_for:g} s"
    )


def _step(console: Console, name: str, check: Callable[[], T]) -> T:
    try:
        result = check()
    except CheckFailed as exc:
        console.print(f"[red]✗ {name}[/]: {escape(str(exc))}", highlight=False)
        raise SystemExit(1) from None
    console.print(f"[green]✓ {name}[/]")
    return result
