"""The lean conductor hands a raw-bytes partition's message to its stream as the very event
faust's own handler would, and leaves every case where faust's handler could wait (or decode)
to that handler. Real faust objects; no broker is needed before a message is fetched."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
from pathlib import Path
from typing import Any

import faust
import pytest
from faust.transport import conductor as faust_conductor
from faust.transport.conductor import Conductor
from faust.types import TP, Message

from relay.pipeline.conductor import LeanConductor, RawHandler, install
from relay.pipeline.fetch_loop import eager


def _app(name: str) -> faust.App:
    app = faust.App(name, broker="kafka://localhost:1", store="memory://")
    install(app)
    app.flow_control.resume()  # as after the first assignment (a new app starts suspended)
    return app


def _raw_topic(app: faust.App) -> Any:
    """The relay's source topic as its agent's stream reads it (an iterator's clone)."""
    topic = app.topic(
        "activity", key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )
    return topic.clone(is_iterator=True)


def _message(offset: int, key: bytes | None = b"k", value: bytes | None = b"v") -> Message:
    return Message("activity", 0, offset, 1.5, 0, [("h", b"1")], key, value, None)


def _handler(app: faust.App, channel: Any) -> Any:
    return app.topics._build_handler(TP("activity", 0), {channel})  # type: ignore[attr-defined]


@pytest.mark.parametrize(("key", "value"), [(b"k", b"v"), (None, b"v"), (b"k", None)])
async def test_a_raw_message_becomes_the_event_faust_would_build(
    key: bytes | None, value: bytes | None
) -> None:
    app = _app("lean-conductor-event")
    assert isinstance(app.topics, LeanConductor)
    channel = _raw_topic(app)
    handler = _handler(app, channel)
    assert isinstance(handler, RawHandler)
    message = _message(7, key, value)
    assert eager(handler(message)) is None  # handed over without waiting
    ours = channel.queue.get_nowait()
    theirs = await channel.decode(_message(7, key, value), propagate=True)
    assert type(ours) is type(theirs)
    assert (ours.key, ours.value, ours.headers) == (theirs.key, theirs.value, theirs.headers)
    assert ours.message is message and message.refcount == 1


async def test_while_the_flow_is_suspended_faust_s_handler_waits_for_it() -> None:
    app = _app("lean-conductor-flow")
    channel = _raw_topic(app)
    handler = _handler(app, channel)
    app.flow_control.suspend()  # a rebalance
    rest = eager(handler(_message(1)))
    assert rest is not None and channel.queue.empty()
    task = asyncio.ensure_future(rest)
    await asyncio.sleep(0)
    assert not task.done()
    app.flow_control.resume()
    await task
    assert channel.queue.get_nowait().message.offset == 1


async def test_a_full_stream_buffer_is_faust_s_to_wait_on() -> None:
    app = _app("lean-conductor-full")
    app.conf.stream_buffer_maxsize = 1
    channel = _raw_topic(app)
    handler = _handler(app, channel)
    assert eager(handler(_message(1))) is None
    rest = eager(handler(_message(2)))
    assert rest is not None  # faust's handler puts it once there is room
    task = asyncio.ensure_future(rest)
    await asyncio.sleep(0)
    assert channel.queue.get_nowait().message.offset == 1
    await task
    assert channel.queue.get_nowait().message.offset == 2


def test_a_topic_that_faust_decodes_keeps_faust_s_handler() -> None:
    app = _app("lean-conductor-json")
    channel = app.topic("activity", value_serializer="json")
    assert not isinstance(_handler(app, channel), RawHandler)


async def test_the_callback_look_up_waits_while_a_resubscription_holds_the_map() -> None:
    app = _app("lean-conductor-lock")
    conductor = app.topics
    delivered: list[int] = []

    async def callback(message: Message) -> None:
        delivered.append(message.offset)

    tp = TP("activity", 0)
    conductor._tp_to_callback[tp] = callback  # type: ignore[attr-defined]
    async with conductor._tp_to_callback_lock:  # type: ignore[attr-defined]
        task = asyncio.ensure_future(conductor.on_message(_message(3)))
        await asyncio.sleep(0)
        assert delivered == []
    await task
    assert delivered == [3]


async def test_hand_over_puts_a_raw_message_in_without_a_coroutine() -> None:
    app = _app("lean-conductor-hand-over")
    conductor = app.topics
    channel = _raw_topic(app)
    tp = TP("activity", 0)
    conductor._tp_to_callback[tp] = _handler(app, channel)  # type: ignore[attr-defined]
    message = _message(4)
    assert conductor.hand_over(message)  # type: ignore[attr-defined]
    event = channel.queue.get_nowait()
    assert event.message is message and message.refcount == 1 and event.value == b"v"


async def test_hand_over_leaves_to_on_message_whatever_could_wait() -> None:
    app = _app("lean-conductor-hand-over-waits")
    app.conf.stream_buffer_maxsize = 1
    conductor = app.topics
    raw = _raw_topic(app)
    conductor._tp_to_callback[TP("activity", 0)] = _handler(app, raw)  # type: ignore[attr-defined]
    conductor._tp_to_callback[TP("json", 0)] = _handler(  # type: ignore[attr-defined]
        app, app.topic("json", value_serializer="json")
    )
    json_message = Message("json", 0, 1, 1.5, 0, None, b"k", b"{}", None)
    assert not conductor.hand_over(json_message)  # faust decodes it
    unknown = Message("unknown", 0, 1, 1.5, 0, None, b"k", b"v", None)
    assert not conductor.hand_over(unknown)  # type: ignore[attr-defined]  # no handler here
    app.flow_control.suspend()
    assert not conductor.hand_over(_message(1))  # type: ignore[attr-defined]
    app.flow_control.resume()
    async with conductor._tp_to_callback_lock:  # type: ignore[attr-defined]
        assert not conductor.hand_over(_message(2))  # type: ignore[attr-defined]
    assert conductor.hand_over(_message(3))  # type: ignore[attr-defined]
    assert not conductor.hand_over(_message(4))  # type: ignore[attr-defined]  # buffer full
    assert [raw.queue.get_nowait().message.offset] == [3] and raw.queue.empty()
    assert json_message.refcount == 0


def test_faust_s_conductor_is_still_the_one_read() -> None:
    """LeanConductor stands in for faust 0.15.3's message handler and its per-partition handler
    (conductor.pyx): a faust that changes them must be compared with relay/pipeline/conductor.py."""
    sources = [
        inspect.getsource(Conductor._compile_message_handler),
        inspect.getsource(Conductor._build_handler),
        (Path(faust_conductor.__file__).parent / "_cython" / "conductor.pyx").read_text(),
    ]
    digests = [hashlib.sha256(source.encode()).hexdigest()[:16] for source in sources]
    assert digests == FAUST_CONDUCTOR, f"faust's conductor changed ({digests}): reread conductor.py"


FAUST_CONDUCTOR = ["9fbc0538097aa4ec", "5c071d1277988c57", "dde1f974267881cf"]  # sha256, 16 hex
