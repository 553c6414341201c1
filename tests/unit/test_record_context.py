"""A worker coroutine processes record after record in one context: each record's log lines carry
its own topic, partition and offset, and nothing the record before it bound (its event id)."""

from __future__ import annotations

from typing import Any

from relay.errors import Rejection
from relay.logs import record_context, start_record
from relay.pipeline.record import Prepared, SourceRecord
from relay.pipeline.stages import Pipeline


class Letters:
    """The dead-letter writer's place in the pipeline: what the log context is when it writes."""

    def __init__(self) -> None:
        self.contexts: list[dict[str, Any]] = []

    async def write(self, record: SourceRecord, rejection: Rejection, **_: Any) -> None:
        self.contexts.append(record_context())


async def test_a_record_s_log_context_holds_nothing_of_the_previous_record() -> None:
    start_record(topic="activity", partition=1, offset=6, event_id="of-the-previous-record")
    letters = Letters()
    # Only the dead-letter writer is reached by an undecodable record: the rest stays unused.
    pipeline = Pipeline(None, None, None, letters, registry=None, rostering=None)  # type: ignore[arg-type]
    record = SourceRecord("activity", 2, 7, None, b"student-1", b"not avro")
    await pipeline.handle(Prepared(record, Rejection("decode", "avro-decode-error", "bad")))
    assert letters.contexts == [{"topic": "activity", "partition": 2, "offset": 7}]
