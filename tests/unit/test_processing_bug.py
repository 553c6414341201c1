"""A record whose processing raises (a bug, not a rejection) blocks its partition and makes the
process not live, so the orchestrator restarts it and the record is read again."""

from __future__ import annotations

import asyncio
import functools
import logging

import pytest

from relay.health import Health
from relay.logs import JsonFormatter, outline
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

    d: Dispatcher[SourceRecord, SourceRecord] = Dispatcher(
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


async def test_the_log_line_says_where_the_bug_was_raised_but_not_its_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The dispatcher's ERROR line names the exception's type and the frames it came through
    (file:line in function) and never its message, which may quote the record; the formatted
    JSON line carries no traceback either (its last line would repeat the message)."""

    def lookup(payload: dict[str, str]) -> str:
        return payload["Quokka-student-4711"]  # a KeyError's message is the payload's key

    async def process(rec: SourceRecord) -> None:
        try:
            lookup({})
        except KeyError as exc:
            raise ValueError(f"cannot map {rec.value!r}") from exc

    d: Dispatcher[SourceRecord, SourceRecord] = Dispatcher(
        process, lambda rec: None, max_in_flight=1, max_pending=2, on_error=lambda r, e: None
    )
    with caplog.at_level(logging.ERROR, logger="relay.pipeline.dispatch"):
        await d.submit(record(7), partition=2, key=7)
        for _ in range(6):
            await asyncio.sleep(0)
    (line,) = [r for r in caplog.records if "is blocked" in r.getMessage()]
    message = line.getMessage()
    here = "tests/unit/test_processing_bug.py"
    assert "is blocked: ValueError at " in message, message
    assert f"> {here}:" in message and " in process (while handling KeyError at " in message
    assert message.endswith(" in lookup)"), message
    assert line.exc_info is None
    formatted = JsonFormatter().format(line)
    for leaked in ("Quokka", "payload-bytes", "cannot map"):
        assert leaked not in formatted, formatted


def test_an_outline_without_a_traceback_is_the_type() -> None:
    assert outline(KeyError("Quokka")) == "KeyError"
