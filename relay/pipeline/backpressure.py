"""Reading pauses while the dispatcher's window holds RELAY_MAX_PENDING_BYTES.

The dispatcher stops admitting at that bound, but faust's stream buffer in front of it counts
records (``stream_buffer_maxsize``), not bytes: it would go on reading, and holding, thousands of
records of any size. ``FetchGate`` switches faust's fetching off for the assigned partitions
while the window is over its byte bound and back on once it is under. It uses faust's own
buffer-full switch (``Consumer.on_buffer_full`` / ``on_buffer_drop``), which still hands over
records already fetched; ``pause_partitions`` would skip them in the fetch loop.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.types import TP

from relay.pipeline.dispatch import Dispatcher


class FetchGate:
    def __init__(self, app: faust.App) -> None:
        self.app = app
        self._paused: set[TP] = set()

    def update(self, dispatcher: Dispatcher[Any, Any] | None) -> None:
        """Pause fetching while ``dispatcher`` is over its byte bound, resume when under."""
        # Called after every record: the common case (under the bound, nothing paused) does
        # no work at all.
        over = dispatcher is not None and dispatcher.over_bytes
        if not over and not self._paused:
            return
        consumer: Any = self.app.consumer
        assigned = set(consumer.assignment())
        if over:
            for tp in assigned:  # idempotent; covers partitions assigned since
                consumer.on_buffer_full(tp)
            self._paused |= assigned
        else:
            for tp in self._paused & assigned:  # a revoked partition is not fetched anyway
                consumer.on_buffer_drop(tp)
            self._paused.clear()
