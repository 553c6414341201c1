"""The agent's stream buffer: faust's queue with its per-message calls flattened.

Every message goes through the stream's buffer, a ``mode`` ``ThrowableQueue`` (an
``asyncio.Queue`` with flow control, pressure callbacks and errors), twice: the conductor puts it
in (``full``, ``put_nowait_enhanced``) and faust's stream iterator takes it out (``empty``,
``get_nowait``). Through the class layers that is about sixteen Python calls per message
(``get_nowait`` alone goes through ``ThrowableQueue``, ``FlowControlQueue``, the pressure check,
``asyncio.Queue``, ``empty`` twice, ``_get`` and ``_wakeup_next``; the pressure threshold is
read through a ``cached_property`` whose ``__get__`` runs in Python at every read).

``StreamBuffer`` is the same queue with those four methods written out in one frame each: the
same checks in the same order, the same state afterwards (the unit test runs both side by side
and pins the sources it flattens: mode's and asyncio's). Everything else (``get``, ``put``,
``clear`` on a rebalance, errors thrown into it) is the class it extends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import faust
from mode.utils.queues import ThrowableQueue


def install(app: faust.App) -> None:
    """Give ``app``'s channels (the agent's stream) a ``StreamBuffer``; before they exist."""

    def flow_control_queue(maxsize: int | None = None, *, clear_on_resume: bool = False) -> Any:
        # App.FlowControlQueue, faust 0.15.3, with this class
        return StreamBuffer(
            maxsize=maxsize, flow_control=app.flow_control, clear_on_resume=clear_on_resume
        )

    app.FlowControlQueue = flow_control_queue  # type: ignore[method-assign]


class StreamBuffer(ThrowableQueue[Any]):
    _queue: Any  # asyncio.Queue's deque
    _getters: Any
    _putters: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # mode's cached_property runs its __get__ in Python at each read; the size never changes
        self._high_size: int = self.pressure_high_size

    def empty(self) -> bool:
        return not self._queue and not self._errors

    def full(self) -> bool:
        maxsize = self._maxsize  # type: ignore[attr-defined]
        return maxsize > 0 and len(self._queue) >= maxsize

    def get_nowait(self) -> Any:
        if self._errors:
            raise self._errors.popleft()
        if self._pending_pressure_drop_callbacks:  # FlowControlQueue's, when there are any
            self.maybe_endorse_pressure_drop()
        queue = self._queue
        if not queue:
            raise asyncio.QueueEmpty
        item = queue.popleft()
        if self._putters:
            self._wakeup_next(self._putters)  # type: ignore[attr-defined]
        return item

    def put_nowait_enhanced(
        self,
        value: Any,
        *,
        on_pressure_high: Callable[[], Any],
        on_pressure_drop: Callable[[], Any],
    ) -> bool:
        queue = self._queue
        pending = self._pending_pressure_drop_callbacks
        high = on_pressure_drop not in pending and len(queue) >= self._high_size
        if high:
            pending.add(on_pressure_drop)
            self.on_pressure_high()
            on_pressure_high()
        queue.append(value)  # force_put_nowait
        self._unfinished_tasks += 1  # type: ignore[attr-defined]
        self._finished.clear()  # type: ignore[attr-defined]
        if self._getters:
            self._wakeup_next(self._getters)  # type: ignore[attr-defined]
        return high
