"""``relay produce``: synthetic activity records to Kafka, at a steady rate, with a progress bar."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import click
from confluent_kafka import KafkaException, Producer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from relay.config import Settings, load_settings
from relay.contract.registry import client_config
from relay.errors import ConfigError
from relay.tools.traffic import RECORD_TYPES, PlannedRecord, TrafficGenerator


def confluent_config(settings: Settings) -> dict[str, Any]:
    """Client configuration for confluent-kafka (security included) from the RELAY_* settings."""
    from relay.kafka.settings import confluent_config as from_settings

    return from_settings(settings)


def make_producer(settings: Settings, **extra: Any) -> Producer:
    config = confluent_config(settings) | {
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
        "compression.type": "lz4",
    }
    return Producer(config | extra)


def produce_records(
    producer: Producer,
    topic: str,
    records: Iterable[PlannedRecord],
    *,
    rate: float = 0.0,
    on_sent: Callable[[int], None] = lambda n: None,
) -> int:
    """Produce ``records`` (keyed by student), at most ``rate`` per second (0: as fast as
    possible); waits until every record is acknowledged by the broker. Returns the count."""
    errors: list[str] = []

    def delivered(err: Any, _msg: Any) -> None:
        if err is not None:
            errors.append(str(err))

    started, sent = time.monotonic(), 0
    for record in records:
        while True:
            try:
                producer.produce(topic, record.value, record.key, on_delivery=delivered)
                break
            except BufferError:  # local queue full: let the broker catch up
                producer.poll(0.1)
        sent += 1
        producer.poll(0)
        on_sent(sent)
        if rate > 0:
            ahead = sent / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
    if producer.flush(60) or errors:
        raise KafkaException(f"{len(errors)} records not acknowledged: {errors[:3]}")
    return sent


@click.command(name="produce")
@click.option("--count", default=1000, show_default=True, help="records to produce")
@click.option("--rate", default=200.0, show_default=True, help="records per second (0: max)")
@click.option("--students", default=20, show_default=True, help="distinct students")
@click.option(
    "--types",
    default=",".join(RECORD_TYPES),
    show_default=True,
    help="comma-separated record types",
)
@click.option(
    "--invalid-ratio", default=0.0, show_default=True, help="share of planted bad records"
)
@click.option(
    "--framing",
    type=click.Choice(["single-object", "confluent"]),
    default="single-object",
    show_default=True,
)
@click.option("--topic", default=None, help="topic (default: the first of RELAY_TOPICS)")
@click.option("--seed", default=7, show_default=True, help="random seed (same seed, same plan)")
def produce_command(
    count: int,
    rate: float,
    students: int,
    types: str,
    invalid_ratio: float,
    framing: str,
    topic: str | None,
    seed: int,
) -> None:
    """Produce realistic synthetic activity (sessions first, then lessons, questions, quizzes,
    views), optionally with a share of deliberately invalid records."""
    try:
        settings = load_settings()
        registry = _registry(settings) if framing == "confluent" else None
        generator = TrafficGenerator(
            students=students,
            types=tuple(t.strip() for t in types.split(",") if t.strip()),
            invalid_ratio=invalid_ratio,
            framing=framing,  # type: ignore[arg-type]
            registry=registry,
            seed=seed,
        )
    except (ConfigError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    target = topic or settings.topics[0]
    plan = generator.plan(count)
    console = Console(stderr=True)
    with _progress(console) as progress:
        task = progress.add_task(f"producing to {target}", total=count)
        produce_records(
            make_producer(settings),
            target,
            plan.records,
            rate=rate,
            on_sent=lambda n: progress.update(task, completed=n),
        )
    planted = len(plan.invalid())
    console.print(f"produced {count} records to {target} ({planted} planted invalid)")


def _registry(settings: Settings) -> Any:
    if not settings.schema_registry_url:
        raise ConfigError("RELAY_SCHEMA_REGISTRY_URL: required for --framing confluent")
    from confluent_kafka.schema_registry import SchemaRegistryClient

    return SchemaRegistryClient(client_config(settings))


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
    )
