"""``relay check``: can this relay run? Each check is printed; the first failure says what to fix.

1. configuration (every RELAY_* variable valid; credentials and app id present)
2. Kafka reachable (metadata within the timeout), with the configured security
3. the input topics and the dead-letter topic exist
4. a token from the token endpoint (the client credentials work)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

import click
from confluent_kafka.admin import AdminClient
from rich.console import Console

from relay import wiring
from relay.config import Settings, load_settings
from relay.errors import ConfigError, RelayError
from relay.pipeline.kafka_config import confluent_config, describe
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


def check_kafka(settings: Settings, timeout: float = 10.0) -> set[str]:
    admin = AdminClient(confluent_config(settings))
    try:
        metadata = admin.list_topics(timeout=timeout)
    except Exception as exc:  # KafkaException: broker down, TLS or SASL refused
        raise CheckFailed(
            f"Kafka at {describe(settings)} did not answer: {exc}\n"
            "  fix: RELAY_KAFKA_BOOTSTRAP and RELAY_KAFKA_SECURITY_PROTOCOL / SASL / CA settings"
        ) from None
    return set(metadata.topics)


def check_topics(settings: Settings, existing: set[str]) -> None:
    missing = [t for t in (*settings.topics, settings.dlq_topic) if t not in existing]
    if missing:
        raise CheckFailed(
            f"missing topics: {', '.join(missing)}\n"
            "  fix: create them (the dead-letter topic with the retention you want to keep "
            "failures for), or correct RELAY_TOPICS / RELAY_DLQ_TOPIC"
        )


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
    """Validate configuration, reach Kafka, confirm the topics, obtain a token."""
    console = Console()
    settings = _step(console, "configuration", check_settings)
    topics = _step(console, "kafka", lambda: check_kafka(settings, timeout))
    _step(console, "topics", lambda: check_topics(settings, topics))
    _step(console, "token", lambda: asyncio.run(check_token(settings)))
    console.print("all checks passed")


def _step(console: Console, name: str, check: Callable[[], T]) -> T:
    try:
        result = check()
    except CheckFailed as exc:
        console.print(f"[red]✗ {name}[/]: {exc}", highlight=False)
        raise SystemExit(1) from None
    console.print(f"[green]✓ {name}[/]")
    return result
