"""``relay dlq inspect`` and ``relay dlq replay``: what failed, why, and sending it again.

Replay re-publishes each original record (key, value, its own headers) to its source topic with
``relay.replays`` incremented, and stops at the end offsets seen when it started, so records that
fail again and land back in the dead-letter topic are not replayed in the same run.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import click
from confluent_kafka import Producer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from relay.config import Settings, load_settings
from relay.contract.decode import Decoder
from relay.errors import ConfigError, Rejection
from relay.kafka.settings import confluent_config
from relay.ops.dead_letters import DeadLetterView, dead_letters
from relay.pipeline.deadletter import PREFIX, REPLAYS


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@click.group(name="dlq")
def dlq_group() -> None:
    """Inspect and replay the dead-letter topic (RELAY_DLQ_TOPIC)."""


@dlq_group.command(name="inspect")
@click.option("--show", default=0, show_default=True, help="also print the last N records")
def inspect_command(show: int) -> None:
    """Counts by stage, reason and source topic; --show N prints records decoded."""
    settings = _settings()
    letters = dead_letters(confluent_config(settings), settings.dlq_topic)
    console = Console()
    console.print(counts_table(letters, settings.dlq_topic))
    if show:
        decoder = Decoder.from_settings(settings)
        for letter in letters[-show:]:
            console.print(describe(letter, decoder), highlight=False)


def counts_table(letters: list[DeadLetterView], topic: str) -> Table:
    counts = Counter((v.stage, v.reason, _header(v, "relay.source.topic")) for v in letters)
    table = Table(title=f"{topic}: {len(letters)} dead letters")
    for column in ("stage", "reason", "source topic", "records"):
        table.add_column(column, justify="right" if column == "records" else "left")
    for (stage, reason, source), n in counts.most_common():
        table.add_row(stage, reason, source, str(n))
    return table


def describe(letter: DeadLetterView, decoder: Decoder) -> str:
    relay_headers = {
        k: v.decode(errors="replace") for k, v in letter.headers.items() if k.startswith(PREFIX)
    }
    try:
        body = repr(decoder.decode_sync(letter.value))
    except (Rejection, LookupError) as exc:
        body = f"(undecodable: {exc}) {letter.value[:64].hex()}"
    lines = [f"--- {letter.stage}/{letter.reason}"]
    lines += [f"  {k}: {v}" for k, v in sorted(relay_headers.items())]
    lines.append(f"  value: {body}")
    return "\n".join(lines)


@dlq_group.command(name="replay")
@click.option("--reason", default=None, help="only records with this reason code")
@click.option("--since", default=None, help="only records that last failed at/after (ISO-8601)")
@click.option("--dry-run", is_flag=True, help="count what would be replayed, send nothing")
def replay_command(reason: str | None, since: str | None, dry_run: bool) -> None:
    """Re-publish dead-lettered originals to their source topics."""
    settings = _settings()
    cutoff = _parse_since(since)
    letters = [
        v
        for v in dead_letters(confluent_config(settings), settings.dlq_topic)
        if selected(v, reason, cutoff)
    ]
    console = Console()
    if dry_run:
        console.print(counts_table(letters, f"{settings.dlq_topic} (dry run: would replay)"))
        return
    producer = Producer(confluent_config(settings) | {"acks": "all", "enable.idempotence": True})
    with Progress(console=console) as progress:
        task = progress.add_task("replaying", total=len(letters))
        for letter in letters:
            topic, partition, headers = replay_target(letter)
            producer.produce(
                topic,
                letter.value,
                letter.key,
                partition=partition,
                headers=headers,  # type: ignore[arg-type]
            )
            producer.poll(0)
            progress.advance(task)
    left = producer.flush(60)
    if left:
        raise click.ClickException(f"{left} replayed records not acknowledged by Kafka")
    console.print(f"replayed {len(letters)} records")


def selected(letter: DeadLetterView, reason: str | None, since: datetime | None) -> bool:
    if reason is not None and letter.reason != reason:
        return False
    if since is not None:
        last = _header(letter, "relay.failure.last")
        return bool(last) and datetime.fromisoformat(last) >= since
    return True


def replay_target(letter: DeadLetterView) -> tuple[str, int, list[tuple[str, bytes]]]:
    """The source topic and partition, and the original headers with ``relay.replays``
    incremented. Back to its own partition: our producer's key hash need not be the original
    producer's (librdkafka's CRC32 vs the Java client's murmur2), and one student's records must
    stay in one partition to stay in order."""
    topic = _header(letter, "relay.source.topic")
    if not topic:
        raise click.ClickException("a dead letter without relay.source.topic cannot be replayed")
    partition = int(_header(letter, "relay.source.partition") or -1)  # -1: by key
    replays = int(_header(letter, REPLAYS) or 0) + 1
    headers = [(k, v) for k, v in letter.headers.items() if not k.startswith(PREFIX)]
    return topic, partition, [*headers, (REPLAYS, str(replays).encode())]


def _header(letter: DeadLetterView, name: str) -> str:
    return letter.headers.get(name, b"").decode(errors="replace")


def _parse_since(since: str | None) -> datetime | None:
    if since is None:
        return None
    try:
        moment = datetime.fromisoformat(since)
    except ValueError:
        raise click.BadParameter(f"not an ISO-8601 time: {since!r}", param_hint="--since") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
