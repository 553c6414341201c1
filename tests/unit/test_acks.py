"""``acknowledge`` is faust's ``message.ack(consumer)`` in one step: run side by side with faust's
own path on real faust consumers (no broker is needed before a fetch), every case ends with the
same answer and the same state; faust's sources are pinned."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
from collections.abc import Callable
from typing import Any
from weakref import WeakSet

import faust
import pytest
from faust.events import Event
from faust.transport.consumer import Consumer
from faust.types import TP
from faust.types.tuples import ConsumerMessage, Message

from relay.pipeline import acks, fetch_loop
from relay.pipeline.acks import Untracked, acknowledge

TOPIC = "activity"
TP0 = TP(TOPIC, 0)


def _consumer(name: str, *, lean: bool, wait_empty: bool = False) -> Any:
    app = faust.App(name, broker="kafka://localhost:1", store="memory://",
                    stream_wait_empty=wait_empty)  # fmt: skip
    if lean:
        fetch_loop.install(app)
    app.topics._acking_topics.add(TOPIC)  # type: ignore[attr-defined]  # as a subscription does
    return app.consumer


def _message(offset: int, refcount: int = 1, topic: str = TOPIC) -> ConsumerMessage:
    message = ConsumerMessage(topic, 0, offset, 1.5, 0, None, b"k", b"v", None)
    message.refcount = refcount
    return message


def _faust(consumer: Any, message: Message) -> bool:
    return message.ack(consumer)


def _state(consumer: Any, messages: list[Message]) -> tuple[Any, ...]:
    return (
        {tp: list(offsets) for tp, offsets in consumer._acked.items()},
        {tp: set(offsets) for tp, offsets in consumer._acked_index.items()},
        consumer._n_acked,
        [(m.acked, m.refcount) for m in messages],
    )


Scenario = Callable[[Any, Callable[[Any, Message], bool]], tuple[list[bool], list[Message]]]


def _first_ack(consumer: Any, ack: Callable[[Any, Message], bool]) -> Any:
    messages = [_message(0), _message(1)]
    consumer._unacked_messages.add(messages[0])
    return [ack(consumer, m) for m in messages], messages


def _two_references(consumer: Any, ack: Callable[[Any, Message], bool]) -> Any:
    message = _message(5, refcount=2)
    return [ack(consumer, message), ack(consumer, message), ack(consumer, message)], [message]


def _below_the_commit(consumer: Any, ack: Callable[[Any, Message], bool]) -> Any:
    consumer._committed_offset[TP0] = 10
    messages = [_message(9), _message(10)]
    return [ack(consumer, m) for m in messages], messages


def _same_offset_twice(consumer: Any, ack: Callable[[Any, Message], bool]) -> Any:
    messages = [_message(3), _message(3)]  # a record read again after a seek
    return [ack(consumer, m) for m in messages], messages


def _topic_without_acks(consumer: Any, ack: Callable[[Any, Message], bool]) -> Any:
    message = _message(1, topic="other")
    return [ack(consumer, message)], [message]


def _never_referenced(consumer: Any, ack: Callable[[Any, Message], bool]) -> Any:
    message = _message(2, refcount=0)
    return [ack(consumer, message)], [message]


def _plain_message(consumer: Any, ack: Callable[[Any, Message], bool]) -> Any:
    message = Message(TOPIC, 0, 4, 1.5, 0, None, b"k", b"v", None)
    message.refcount = 1
    return [ack(consumer, message)], [message]


SCENARIOS = [
    _first_ack,
    _two_references,
    _below_the_commit,
    _same_offset_twice,
    _topic_without_acks,
    _never_referenced,
    _plain_message,
]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_same_answers_and_state_as_faust_s_ack(scenario: Scenario) -> None:
    theirs = _consumer(f"acks-faust-{scenario.__name__}", lean=False, wait_empty=True)
    ours = _consumer(f"acks-lean-{scenario.__name__}", lean=True, wait_empty=True)
    faust_answers, faust_messages = scenario(theirs, _faust)
    lean_answers, lean_messages = scenario(ours, acknowledge)
    assert lean_answers == faust_answers
    assert _state(ours, lean_messages) == _state(theirs, faust_messages)
    assert len(ours._unacked_messages) == len(theirs._unacked_messages)


def test_the_first_ack_answers_true_and_the_rest_false() -> None:
    """The comparison above is only worth something if faust's answers differ by case."""
    consumer = _consumer("acks-answers", lean=True)
    assert _first_ack(consumer, acknowledge)[0] == [True, True]
    assert _two_references(consumer, acknowledge)[0] == [False, True, False]
    assert _same_offset_twice(_consumer("acks-twice", lean=True), acknowledge)[0] == [True, False]


async def test_a_waiter_for_acks_is_woken() -> None:
    consumer = _consumer("acks-waiter", lean=True)
    consumer._waiting_for_ack = asyncio.get_running_loop().create_future()
    assert acknowledge(consumer, _message(0))
    assert consumer._waiting_for_ack.done()


def test_unacknowledged_messages_are_kept_only_where_wait_empty_reads_them() -> None:
    assert isinstance(_consumer("acks-untracked", lean=True).unacked, Untracked)
    assert isinstance(_consumer("acks-tracked", lean=True, wait_empty=True).unacked, WeakSet)
    untracked = Untracked()
    untracked.add(_message(1))
    untracked -= {_message(1)}  # as Consumer._clean_unacked_messages does
    assert not untracked and len(untracked) == 0


def test_faust_s_ack_is_still_the_one_inlined() -> None:
    """acks.acknowledge inlines faust 0.15.3's ack path: a faust that changes any of these must be
    compared with relay/pipeline/acks.py before it is taken."""
    sources = [
        inspect.getsource(Event.ack),
        inspect.getsource(Message.ack),
        inspect.getsource(Message.decref),
        inspect.getsource(ConsumerMessage.on_final_ack),
        inspect.getsource(Consumer.ack),
    ]
    digests = [hashlib.sha256(source.encode()).hexdigest()[:16] for source in sources]
    assert digests == FAUST_ACK, f"faust's ack path changed ({digests}): reread {acks.__file__}"


FAUST_ACK = [
    "2d29a6eda87c4ce5",
    "4751b72c4ed84153",
    "f23396189d0e5592",
    "45d670b6a8ac4bd0",
    "5fcf41cf45153475",
]  # sha256 of faust 0.15.3's sources, first 16 hex digits
