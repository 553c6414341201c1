"""faust's conductor, with a lean hand-over for the relay's raw topics.

faust's conductor hands every fetched message to the streams of its partition: the message
handler takes an ``asyncio.Lock`` to look the partition's callback up, and the callback awaits
the flow-control switch, the producer buffer's ebb and the channel's decoder (key and value
through the serializer registry, the event class read from the settings) before it puts the
event into the stream's buffer. For the relay's one agent reading raw bytes, most of that is
work per message that never changes the outcome: the decoders return the bytes as they are, and
the two waits never wait while the flow runs and nothing is produced through faust.

``LeanConductor`` looks the callback up without the lock while nobody holds it (the lock only
guards the map while a resubscription rebuilds it), and hands a message of a partition read by
one raw-bytes channel straight to that channel's buffer as the same ``Event`` faust would build.
Whenever one of faust's waits could wait (flow suspended for a rebalance, a producer buffer over
its bound, a full stream buffer), the message goes through faust's own handler instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableSet
from typing import Any

import faust
from faust.transport.conductor import Conductor
from faust.types import TP, Message

Handler = Callable[[Message], Awaitable[None]]


def install(app: faust.App) -> None:
    """Give ``app`` the lean conductor; before its conductor is first created."""
    assert "topics" not in app.__dict__, "install the conductor before app.topics exists"
    app.transport.Conductor = LeanConductor  # type: ignore[misc]


def _reads_raw_bytes(channel: Any) -> bool:
    """True when faust's decoder hands this channel each key and value as they are."""
    schema = getattr(channel, "schema", None)
    return schema is not None and all(
        serializer == "raw" and typ in (bytes, None)
        for serializer, typ in (
            (schema.key_serializer, schema.key_type),
            (schema.value_serializer, schema.value_type),
        )
    )


class LeanConductor(Conductor):
    def _compile_message_handler(self) -> Handler:
        if self.app.client_only:
            return super()._compile_message_handler()
        get_callback = self._tp_to_callback.__getitem__
        lock = self._tp_to_callback_lock

        async def on_message(message: Message) -> None:
            if lock.locked():  # the map is being rebuilt: wait for it, as faust does
                async with lock:
                    callback = get_callback(message.tp)
            else:
                callback = get_callback(message.tp)
            return await callback(message)

        return on_message

    def hand_over(self, message: Message) -> bool:
        """Put ``message`` into its stream's buffer now, without a coroutine, when its
        partition's handler is a ``RawHandler`` that need not wait: True. False leaves the
        message to ``on_message`` (faust's path, or the raw handler's own wait)."""
        if self._tp_to_callback_lock.locked():
            return False
        handler = self._tp_to_callback.get(message.tp)
        return type(handler) is RawHandler and handler.offer(message)

    def _build_handler(self, tp: TP, channels: MutableSet[Any]) -> Handler:
        faust_handler: Handler = super()._build_handler(tp, channels)
        if len(channels) != 1 or self.app.conf.producer_threaded:
            return faust_handler
        (channel,) = channels
        if not _reads_raw_bytes(channel):
            return faust_handler
        return RawHandler(self.app, tp, channel, faust_handler)


class RawHandler:
    """One partition's hand-over to its one raw-bytes channel (faust's handler otherwise)."""

    __slots__ = (
        "_app",
        "_drop",
        "_event",
        "_faust",
        "_flowing",
        "_high",
        "_producer_over",
        "_queue",
    )

    def __init__(self, app: Any, tp: TP, channel: Any, faust_handler: Handler) -> None:
        self._app = app
        self._event: Any = app.conf.Event
        self._flowing = app.flow_control.is_active
        buffer = app.producer.buffer
        pending, bound = buffer.pending, buffer.max_messages  # ProducerBuffer.size, unthreaded
        self._producer_over = lambda: pending.qsize() > bound
        self._queue = channel.queue
        self._faust = faust_handler
        on_buffer_full, on_buffer_drop = app.consumer.on_buffer_full, app.consumer.on_buffer_drop
        on_topic_buffer_full = app.sensors.on_topic_buffer_full

        def on_pressure_high() -> None:  # as faust's handler: stop fetching the partition
            on_topic_buffer_full(tp)
            on_buffer_full(tp)

        self._high = on_pressure_high
        self._drop = lambda: on_buffer_drop(tp)

    async def __call__(self, message: Message) -> None:
        if not self.offer(message):
            await self._faust(message)  # faust's waits, its decoder, its handler

    def offer(self, message: Message) -> bool:
        """Hand ``message`` over now if none of faust's waits could wait: True when done."""
        queue = self._queue
        if queue.full() or not self._flowing() or self._producer_over():
            return False
        message.refcount += 1  # message.incref(), as faust counts one per channel
        event = self._event(self._app, message.key, message.value, message.headers, message)
        queue.put_nowait_enhanced(event, on_pressure_high=self._high, on_pressure_drop=self._drop)
        return True
