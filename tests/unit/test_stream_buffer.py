"""``StreamBuffer`` is mode's ``ThrowableQueue`` with its per-message methods written out: run side
by side with the original on the same operations, every answer, callback and piece of state is
the same; the sources it flattens are pinned."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
from collections.abc import Callable
from typing import Any

import faust
from faust.app.base import App
from mode.utils.queues import FlowControlEvent, FlowControlQueue, ThrowableQueue

from relay.pipeline import stream_buffer
from relay.pipeline.stream_buffer import StreamBuffer


class Log:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def high(self) -> None:
        self.calls.append("high")

    def drop(self) -> None:
        self.calls.append("drop")


def _state(queue: Any) -> tuple[Any, ...]:
    return (
        list(queue._queue),
        queue._unfinished_tasks,
        queue._finished.is_set(),
        len(queue._pending_pressure_drop_callbacks),
        queue.empty(),
        queue.full(),
        len(queue._errors),
    )


def _put(queue: Any, value: int, log: Log) -> bool:
    return bool(
        queue.put_nowait_enhanced(value, on_pressure_high=log.high, on_pressure_drop=log.drop)
    )


def _get(queue: Any) -> Any:
    try:
        return queue.get_nowait()
    except asyncio.QueueEmpty:
        return "empty"
    except KeyError as exc:
        return f"error {exc}"


async def _run(kind: type[ThrowableQueue[Any]]) -> list[Any]:
    """Fill past the pressure mark, drain below the drop mark, with errors and waiters."""
    flow = FlowControlEvent()
    flow.resume()  # a new one starts suspended: put() would wait
    queue = kind(maxsize=8, flow_control=flow, clear_on_resume=True)
    log = Log()
    seen: list[Any] = [_state(queue), _get(queue)]
    for value in range(9):  # the high mark is 8 / 1.25 -> 6; one past maxsize, as faust forces
        seen += [_put(queue, value, log), _state(queue), list(log.calls)]
    for _ in range(6):  # the drop mark is 8 * 0.4 -> 3
        seen += [_get(queue), _state(queue), list(log.calls)]
    queue._errors.append(KeyError("thrown"))
    seen += [_state(queue), _get(queue), _state(queue)]
    waiting = asyncio.ensure_future(queue.put(99))  # a putter: woken by the next get
    await asyncio.sleep(0)
    while not queue.empty():
        seen += [_get(queue), _state(queue)]
    await waiting
    seen += [_state(queue), list(log.calls)]
    getter = asyncio.ensure_future(queue.get())  # a getter: woken by the next put
    await asyncio.sleep(0)
    seen += [_get(queue), _put(queue, 100, log)]
    seen += [await getter, _state(queue), list(log.calls)]
    return seen


async def test_the_same_answers_callbacks_and_state_as_mode_s_queue() -> None:
    ours, theirs = await _run(StreamBuffer), await _run(ThrowableQueue)
    assert ours == theirs
    assert "high" in theirs[-1] and "drop" in theirs[-1]  # both pressure paths were taken


def test_install_gives_the_app_s_channels_a_stream_buffer() -> None:
    app = faust.App("stream-buffer", broker="kafka://localhost:1", store="memory://")
    stream_buffer.install(app)
    channel = app.topic("t", value_serializer="raw").clone(is_iterator=True)
    assert type(channel.queue) is StreamBuffer
    assert channel.queue.maxsize == app.conf.stream_buffer_maxsize
    app.flow_control.resume()
    channel.queue.put_nowait(1)
    app.flow_control.resume()  # a rebalance's resume clears the buffers it manages
    assert channel.queue.empty()


SOURCES: list[Callable[..., Any]] = [
    App.FlowControlQueue,
    ThrowableQueue.get_nowait,
    ThrowableQueue.empty,
    FlowControlQueue.__init__,
    FlowControlQueue.get_nowait,
    FlowControlQueue.put_nowait_enhanced,
    FlowControlQueue.in_pressure_high_state,
    FlowControlQueue.force_put_nowait,
    asyncio.Queue.get_nowait,
    asyncio.Queue.empty,
    asyncio.Queue.full,
    asyncio.Queue._get,  # type: ignore[attr-defined]
    asyncio.Queue._put,  # type: ignore[attr-defined]
]


def test_the_sources_flattened_are_still_the_same() -> None:
    """StreamBuffer writes out these methods (faust 0.15.3, its mode, Python 3.11's asyncio):
    a change to any must be compared with relay/pipeline/stream_buffer.py before it is taken."""
    digests = [hashlib.sha256(inspect.getsource(f).encode()).hexdigest()[:16] for f in SOURCES]
    assert digests == FLATTENED, f"a flattened source changed ({digests}): reread stream_buffer.py"


FLATTENED = [  # sha256 of each source in SOURCES, first 16 hex digits
    "9451c49351ae3667",
    "d42b1be9219a0e6e",
    "737285dcae32c653",
    "965b0ca0d6c29c88",
    "57cb9b5c12e7ebd9",
    "f1839f43dda3d2cf",
    "3165f14880191c41",
    "e029f3d278247909",
    "d87a04947ce6dd18",
    "29fe690a4fd86965",
    "2a0d8cd6fc7628bf",
    "479315e0e46c6cd7",
    "f7e76e57ef6fe491",
]
