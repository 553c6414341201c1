"""faust's acknowledgement of a message, in one step.

faust 0.15.3 acknowledges a message through five calls, three of which take its process-wide
``ack_lock`` (an ``RLock``): ``Event.ack`` -> ``Message.ack`` -> ``Message.decref`` and
``ConsumerMessage.on_final_ack`` -> ``Consumer.ack``, which also discards the message from the
consumer's ``WeakSet`` of unacknowledged messages and wakes a waiter of ``wait_empty``, if any.
``acknowledge`` does the same under one acquisition of that lock, with the same outcome and the
same state afterwards (a unit test runs both on the same messages and pins faust's sources).

``wait_empty`` is the only reader of that ``WeakSet`` (and ``Consumer.unacked``, which streams
bind to add each message they take in). It runs only with ``stream_wait_empty`` on; the relay
turns it off (its in-flight work is its own to cancel on revocation, ``worker.create_app``), so
a consumer whose app has it off keeps ``Untracked`` instead: no weak reference made and
discarded for every message.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableSet
from typing import Any

from faust.types.tuples import ConsumerMessage, Message, ack_lock


def acknowledge(consumer: Any, message: Message) -> bool:
    """``message.ack(consumer)``: one reference fewer; on the last, the offset is marked safe
    to commit. True when that happened now (faust's sensor then counts the message out)."""
    if type(message) is not ConsumerMessage:  # a Message's final ack skips the consumer
        return message.ack(consumer)
    with ack_lock:
        if message.acked:
            return False
        refcount = message.refcount - 1  # Message.decref: never below 0
        if refcount > 0:
            message.refcount = refcount
            return False
        message.refcount = 0
        message.acked = True  # Consumer.ack from here on, as faust 0.15.3 has it
        if not consumer.app.topics.acks_enabled_for(message.topic):
            return False
        tp, offset = message.tp, message.offset
        try:
            committed = consumer._committed_offset[tp]
            if committed is None or offset >= committed:
                acked_index = consumer._acked_index[tp]
                if offset not in acked_index:
                    consumer._unacked_messages.discard(message)
                    acked_index.add(offset)
                    consumer._acked[tp].append(offset)
                    consumer._n_acked += 1
                    return True
        finally:
            waiting = consumer._waiting_for_ack  # mode's notify(), inlined
            if waiting is not None and not waiting.done():
                waiting.set_result(None)
        return False


class Untracked(MutableSet[Message]):
    """Stands in for the consumer's ``WeakSet`` of unacknowledged messages when nothing reads
    it (``stream_wait_empty`` off): keeps nothing."""

    __slots__ = ()

    def add(self, value: Message) -> None:
        pass

    def discard(self, value: Message) -> None:
        pass

    def __contains__(self, value: object) -> bool:
        return False

    def __iter__(self) -> Iterator[Message]:
        return iter(())

    def __len__(self) -> int:
        return 0
