"""A record whose processing raises (a bug, not a rejection) blocks its partition and makes the
process not live, so the orchestrator restarts it and the record is read again."""

from __future__ import annotations

import asyncio
import functools

from relay.health import Health
from relay.pipeline.dispatch import Dispatcher
from relay.pipeline.record import SourceRecord
from relay.pipeline.runtime import processing_bug


def record(offset: int) -> SourceRecord:
    return SourceRecord("activity", 2, offset, None, b"student-1", b"payload-bytes")


async def test_a_bug_blocks_the_partition_and_fails_liveness() -> None:
    acked: list[int] = []
    health = Health()

    async def process(rec: SourceRecord) -> None:
        if rec.offset == 7:
            raise KeyError("secret-looking detail from the payload")

    d: Dispatcher[SourceRecord] = Dispatcher(
        process,
        lambda rec: acked.append(rec.offset),
        max_in_flight=4,
        max_pending=8,
        on_error=functools.partial(processing_bug, health),
    )
    assert health.live(lagging=False)
    for offset in (6, 7, 8):
        await d.submit(record(offset), partition=2, key=offset)
    for _ in range(6):
        await asyncio.sleep(0)
    assert acked == [6]  # nothing past the failed record
    assert not health.live(lagging=False)
    assert health.broken is not None
    assert "activity[2]@7" in health.broken and "KeyError" in health.broken
    assert "secret-looking" not in health.broken and "payload" not in health.broken
