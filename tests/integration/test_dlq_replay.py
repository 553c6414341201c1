"""``relay dlq replay`` and ``inspect`` on a real broker: filters (--reason, --since, --dry-run),
originals back to their source topic *and partition*, the replay count, and the end offset seen
at the start (dead letters written during the run are not replayed)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from relay.errors import Rejection
from relay.kafka.topics import read_topic
from relay.pipeline.deadletter import DeadLetterWriter
from relay.pipeline.record import SourceRecord
from relay.resilience import Backoff

pytestmark = pytest.mark.integration


def _cli(args: list[str], bootstrap: str, dlq: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    env |= {"RELAY_KAFKA_BOOTSTRAP": bootstrap, "RELAY_DLQ_TOPIC": dlq}
    return subprocess.run(
        [sys.executable, "-m", "relay.cli", "dlq", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def _write(bootstrap: str, dlq: str, letters: list[tuple[SourceRecord, str]]) -> None:
    writer = DeadLetterWriter({"bootstrap.servers": bootstrap}, dlq, backoff=Backoff(0.05, 0.2))
    try:
        for record, reason in letters:
            await writer.write(record, Rejection("enrich", reason, "x", first_failure=0.0))
    finally:
        writer.close()


async def test_replay_filters_and_returns_each_record_to_its_partition(
    kafka_bootstrap: str, make_topic
) -> None:
    source, dlq = make_topic("replay-src", partitions=3), make_topic("replay-dlq")
    originals = [
        SourceRecord(source, p, 10 + p, None, f"student-{p}".encode(), f"v{p}".encode(), [])
        for p in range(3)
    ]
    other = SourceRecord(source, 1, 99, None, b"student-9", b"other", [("trace", b"t1")])
    await _write(
        kafka_bootstrap,
        dlq,
        [(r, "course-unresolved") for r in originals] + [(other, "subject-invalid")],
    )

    inspected = _cli(["inspect", "--show", "1"], kafka_bootstrap, dlq)
    assert inspected.returncode == 0, inspected.stderr
    assert "4 dead letters" in inspected.stdout and "course-unresolved" in inspected.stdout

    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    later = _cli(["replay", "--since", future], kafka_bootstrap, dlq)
    assert later.returncode == 0, later.stderr
    assert "replayed 0 records" in later.stdout

    dry = _cli(["replay", "--reason", "course-unresolved", "--dry-run"], kafka_bootstrap, dlq)
    assert dry.returncode == 0 and "3 dead letters" in dry.stdout
    assert read_topic({"bootstrap.servers": kafka_bootstrap}, source) == []

    done = _cli(["replay", "--reason", "course-unresolved"], kafka_bootstrap, dlq)
    assert done.returncode == 0, done.stderr
    replayed = read_topic({"bootstrap.servers": kafka_bootstrap}, source)
    assert sorted((m.partition(), m.key(), m.value()) for m in replayed) == [
        (r.partition, r.key, r.value) for r in originals
    ]
    for message in replayed:
        headers = dict(message.headers() or [])
        assert headers == {"relay.replays": b"1"}  # no relay.* header of the dead letter left
